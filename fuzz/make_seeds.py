#!/usr/bin/env python3
"""Writes the committed seed corpus (fuzz/seeds/<target>/): small valid inputs, a few odd ones.

Run from fuzz/: python3 make_seeds.py. Deterministic; the files are committed, this script only
documents how they were made and regenerates them.
"""
import json
import os
import struct
import zlib

SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def w(target, name, data):
    os.makedirs(os.path.join(SEEDS, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(SEEDS, target, name), "wb") as f:
        f.write(data)


def f32s(v):
    return b"".join(struct.pack("<f", x) for x in v)


# codec: u16 LE dimension, then the BLOB.
w("codec", "dim4", struct.pack("<H", 4) + f32s([0.1, -0.2, 0.3, 1.0]))
w("codec", "dim3_nan_inf", struct.pack("<H", 3) + f32s([float("nan"), float("inf"), -0.0]))
w("codec", "dim8_short", struct.pack("<H", 8) + f32s([1.0] * 7))
w("codec", "dim2_huge", struct.pack("<H", 2) + f32s([3e38, -3e38]))

# filter: JSON text.
w("filter", "simple", '{"lang": "rust", "stars": {"$gte": 3}}')
w("filter", "or_in", '{"$or": [{"tags": {"$in": ["a", "b"]}}, {"draft": {"$exists": false}}]}')
w("filter", "not_nested",
  '{"$and": [{"meta.x": {"$lt": 2.5}}, {"$not": {"lang": {"$ne": null}}}], "stars": {"$not": {"$gt": 3}}}')
w("filter", "nin_paths", '{"a.b.c": {"$nin": ["d", 1, true, null]}, "weird key": "x", "$dollar": 1}')
w("filter", "empty", "{}")


# hnsw: the 80-byte header, then records (node u16 LE, length u16 LE, record).
def header(m=4, efc=16, efs=8, metric=0, flags=0, max_level=1, entry=0, dim=3, bound=4,
           seed=0x5EED, rng=12345, ln=3, removed=1, stamp=7):
    h = b"HNSW" + struct.pack("<IIII", 1, m, efc, efs) + bytes([metric, flags, max_level, 0])
    h += struct.pack("<IIII", entry, dim, bound, 0)
    h += struct.pack("<QQQQQ", seed, rng, ln, removed, stamp)
    assert len(h) == 80
    return h


def node(level, links, removed=False):
    assert len(links) == level + 1
    b = bytes([1, level, 1 if removed else 0, 0])
    for layer in links:
        b += struct.pack("<I", len(layer)) + b"".join(struct.pack("<I", x) for x in layer)
    return b


def rec(nid, b):
    return struct.pack("<HH", nid, len(b)) + b


w("hnsw", "four_nodes", header() + rec(0, node(1, [[1, 2], [1]])) + rec(1, node(1, [[0, 2, 3], [0]]))
  + rec(2, node(0, [[0, 1]])) + rec(3, node(0, [[1, 2]], removed=True)))
w("hnsw", "empty", header(max_level=0, entry=0xFFFFFFFF, ln=0, bound=0, removed=0))
w("hnsw", "l2_one_node", header(metric=1, max_level=0, entry=0, ln=1, bound=1, removed=0, dim=2)
  + rec(0, node(0, [[]])))
w("hnsw", "count_mismatch", header() + rec(0, node(1, [[1, 2], [1]])))


# quant: a mode byte (0: the record as stored, 1: the record without its CRC-32), the record.
def quant(dim, off, sc, crc=True):
    b = b"SVQ8" + bytes([1, 1, 0, 0]) + struct.pack("<I", dim) + f32s(off) + f32s(sc)
    return b + (struct.pack("<I", zlib.crc32(b)) if crc else b"")


w("quant", "stored_dim3", b"\x00" + quant(3, [-1, 0, 0.5], [0.01, 0.002, 0]))
w("quant", "nocrc_dim4", b"\x01" + quant(4, [-1] * 4, [2 / 255] * 4, crc=False))
w("quant", "nocrc_dim1_big", b"\x01" + quant(1, [-1e30], [1e28], crc=False))


# npy: NumPy's .npy format, versions 1 and 2.
def npy(descr, shape, data, version=1, fortran=False):
    hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    pre = 10 if version == 1 else 12
    hdr += " " * (64 - (pre + len(hdr) + 1) % 64) + "\n"
    if version == 1:
        p = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr))
    else:
        p = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(hdr))
    return p + hdr.encode() + data


w("npy", "f32_2x3", npy("<f4", "(2, 3)", f32s([1, 2, 3, 4, 5, 6])))
w("npy", "i32_3x1_v2", npy("<i4", "(3, 1)", struct.pack("<3i", 7, 8, 9), version=2))
w("npy", "f32_1d", npy("<f4", "(4,)", f32s([0.5] * 4)))
w("npy", "f8_fortran", npy("<f8", "(1, 2)", struct.pack("<2d", 1, 2), fortran=True))

# jsonl: one import line each (default field names).
w("jsonl", "full", '{"id": "doc-1", "vector": [0.1, 0.2, 0.3], "text": "the quick brown fox", '
  '"metadata": {"lang": "en", "n": 3}}')
w("jsonl", "int_id_fields", '{"id": 42, "vector": [1, 0, -1], "lang": "rust", "tags": ["a", "b"]}')
w("jsonl", "no_id", '{"vector": [1e-3, 2.5e10, -7], "text": null}')
w("jsonl", "bad_vector", '{"id": "x", "vector": [1, "two", 3]}')

# mcp_tools: lines "<tool> <arguments JSON>".
w("mcp_tools", "create_insert_search", "\n".join([
    'shard_create {"name": "notes", "dim": 3, "metric": "cosine"}',
    'insert {"shard": "notes", "id": "a", "vector": [1, 0, 0], "metadata": {"lang": "en"}}',
    'insert_batch {"shard": "notes", "items": [{"id": "b", "vector": [0, 1, 0]}, '
    '{"id": "c", "vector": [0.5, 0.5, 0], "metadata": {"lang": "fr"}}]}',
    'search {"shard": "notes", "vector": [1, 0.1, 0], "k": 2, "filter": {"lang": "en"}}',
    'update {"shard": "notes", "id": "b", "metadata": {"lang": "de"}}',
    'get {"shard": "notes", "id": "b", "include_vector": true}',
    'delete {"shard": "notes", "id": "a"}',
    'shard_stats {"name": "notes"}',
    'shard_list {}',
    'shard_drop {"name": "notes"}',
]))
w("mcp_tools", "text", "\n".join([
    'shard_create {"name": "mem", "searchable": ["topic"]}',
    'insert {"shard": "mem", "text": "rust borrow checker rules", "metadata": {"topic": "rust"}}',
    'insert {"shard": "mem", "text": "sqlite write ahead log"}',
    'search {"shard": "mem", "text": "borrow rules", "k": 5, "mode": "hybrid"}',
    'search {"shard": "mem", "text": "log", "mode": "text", "fusion": "rrf"}',
    'search {"prefix": "m", "text": "rust", "min_score": 0.1}',
]))
w("mcp_tools", "l2_index", "\n".join([
    'shard_create {"name": "l2", "dim": 2, "metric": "l2", "index": true}',
    'insert {"shard": "l2", "vector": [1e17, -1e17]}',
    'insert {"shard": "l2", "vector": [0.5, 2]}',
    'search {"shard": "l2", "vector": [-1e17, 1e17], "k": 1}',
    'search {"shards": ["l2", "nope"], "vector": [0, 0], "k": 3}',
]))

# mcp_session: what a client writes, one JSON-RPC message per line.
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "fuzz", "version": "0"}}}
INITED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def session(*msgs):
    return "".join(json.dumps(m) + "\n" for m in msgs)


def call(i, name, args):
    return {"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": name, "arguments": args}}


w("mcp_session", "handshake_list", session(INIT, INITED, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                           {"jsonrpc": "2.0", "id": "p", "method": "ping"}))
w("mcp_session", "tools", session(INIT, INITED, call(2, "shard_create", {"name": "s", "dim": 2}),
                                  call(3, "insert", {"shard": "s", "id": "a", "vector": [1, 0]}),
                                  call(4, "search", {"shard": "s", "vector": [1, 1], "k": 1}),
                                  call(5, "get", {"shard": "s", "id": "a"})))
w("mcp_session", "malformed", 'not json\n[]\n{"jsonrpc":"1.0","id":1,"method":"x"}\n'
  + session(INIT, INITED, {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {}},
            {"jsonrpc": "2.0", "id": 10, "result": {}}, {"jsonrpc": "2.0", "id": 11, "method": "nope"}))
w("mcp_session", "notification_first",
  session({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}, INIT, INITED))


# sync_frames: a dimension byte, then frames as a peer sends them (kind u8, length u32 LE,
# payload; crates/sync/src/proto/frame.rs).
def frame(kind, payload):
    return bytes([kind]) + struct.pack("<I", len(payload)) + payload


def s16(text):
    b = text.encode()
    return struct.pack("<H", len(b)) + b


def s32(text):
    b = text.encode()
    return struct.pack("<I", len(b)) + b


def profile(dim=3, metric=2, model=None, fields=()):
    p = struct.pack("<IB", dim, metric)
    p += b"\x00" if model is None else b"\x01" + s16(model)
    p += bytes([len(fields)]) + b"".join(s16(f) for f in fields)
    return p


def hello(shard="notes", dim=3, cursors=()):
    p = struct.pack("<HB", 1, 3) + s16(shard) + profile(dim, 1, "minilm", ["title"])
    p += bytes(range(16)) + struct.pack("<qQQq", 42, 0xDEADBEEF, 7, 3)
    p += struct.pack("<I", len(cursors)) + b"".join(bytes([c] * 16) + struct.pack("<q", v) for c, v in cursors)
    return frame(1, p)


def change(id_, cl, hlc, vector=None, meta=None, text=None):
    flags = (1 if vector is not None else 0) | (2 if meta is not None else 0) | (4 if text is not None else 0)
    c = s16(id_) + struct.pack("<q", hlc) + bytes([9] * 16) + struct.pack("<qB", cl, flags)
    if vector is not None:
        c += f32s(vector)
    if meta is not None:
        c += s32(meta)
    if text is not None:
        c += s32(text)
    return c


def chunk(changes, frm=0, to=None):
    body = b"".join(changes)
    to = len(changes) if to is None else to
    return frame(2, struct.pack("<qqIBI", frm, to, len(changes), 0, len(body)) + body)


DIM3 = bytes([2])  # 1 + 2 % 16 = 3
w("sync_frames", "hello", DIM3 + hello(cursors=[(5, 10)]))
w("sync_frames", "chunk", DIM3 + chunk([
    change("a", 1, 1 << 20, [0.5, -1.0, 2.0], '{"title":"x"}', "hello"),
    change("b", 2, 2 << 20),
    change("c", 3, 3 << 20, [float("nan"), 0.0, 1.0]),
]))
w("sync_frames", "ack_done_fin", DIM3 + frame(3, struct.pack("<q", 3)) + frame(4, struct.pack("<qq", 3, 5))
  + frame(5, struct.pack("<QqQ", 1, 5, 2)))
w("sync_frames", "list_shards_reject", DIM3 + frame(7, s16("team/") + struct.pack("<I", 1) + s16("team/a"))
  + frame(8, struct.pack("<I", 1) + s16("team/a") + profile()) + frame(6, b"\x02" + s16("profiles differ")))
w("sync_frames", "lying_chunk", DIM3 + frame(2, struct.pack("<qqIBI", 0, 1, 1000, 1, 1 << 30) + b"\x28\xb5\x2f\xfd"))
