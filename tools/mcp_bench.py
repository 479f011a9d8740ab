"""Latency of `sqlite-vector mcp` tool calls, measured at the client over stdio.

Usage: python3 tools/mcp_bench.py target/release/sqlite-vector ../shared/data/debian-minilm [QUERIES] [INDEX]

INDEX (`true`/`false`) is passed as `shard_create`'s `index` argument when given (default: the
server's default).

Fills a text shard with the 25,000 base texts of debian-minilm through `insert_batch` calls of
1,000 texts each (timing every call, end to end: JSON-RPC round trip + embedding + commit), then
times `search` calls with the known-item queries' text (mode vector and mode hybrid; embedding
included). Raw JSON-RPC lines, one request in flight at a time. Prints the numbers and the
known-item hit@1 as a sanity check.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BIN, DATA = sys.argv[1], sys.argv[2]
NQ = int(sys.argv[3]) if len(sys.argv) > 3 else 500
INDEX = {"true": True, "false": False}[sys.argv[4]] if len(sys.argv) > 4 else None

root = tempfile.mkdtemp(prefix="mcp-bench-")
proc = subprocess.Popen([BIN, "mcp", "--root", root], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
next_id = 0


def rpc(method, params):
    global next_id
    next_id += 1
    proc.stdin.write((json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params}) + "\n").encode())
    proc.stdin.flush()
    while True:
        msg = json.loads(proc.stdout.readline())
        if msg.get("id") == next_id:
            return msg


def call(tool, args):
    r = rpc("tools/call", {"name": tool, "arguments": args})
    res = r["result"]
    assert not res.get("isError"), res
    return res["structuredContent"]


rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}})
proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
proc.stdin.flush()

base = []
with open(os.path.join(DATA, "texts.jsonl")) as f:
    for line in f:
        o = json.loads(line)
        if o["set"] == "base":
            base.append(o)
queries = [json.loads(l) for l in open(os.path.join(DATA, "known_item.jsonl"))][:NQ]

create = {"name": "debian"}
if INDEX is not None:
    create["index"] = INDEX
call("shard_create", create)
batch_ms = []
for start in range(0, len(base), 1000):
    items = [{"id": str(o["id"]), "text": o["text"], "metadata": {"package": o["package"]}} for o in base[start:start + 1000]]
    t = time.perf_counter()
    call("insert_batch", {"shard": "debian", "items": items})
    batch_ms.append((time.perf_counter() - t) * 1000)
print(f"insert_batch of 1,000 texts (debian-minilm base, full descriptions), {len(batch_ms)} calls: "
      f"p50 {statistics.median(batch_ms):.0f} ms, max {max(batch_ms):.0f} ms, total {sum(batch_ms)/1000:.1f} s")

stats = call("shard_stats", {"name": "debian"})
print(f"shard_create {json.dumps(create)}: search method {stats['search_method']}")
for mode in ("vector", "text", "hybrid"):
    lat, hits = [], 0
    for q in queries:
        t = time.perf_counter()
        r = call("search", {"shard": "debian", "text": q["query"], "k": 10, "mode": mode})
        lat.append((time.perf_counter() - t) * 1000)
        hits += bool(r["hits"]) and r["hits"][0]["id"] == str(q["target_row"])
    lat.sort()
    print(f"search k=10 mode={mode} on {len(base):,} items, {len(queries)} text queries: "
          f"p50 {lat[len(lat)//2]:.2f} ms, p90 {lat[int(len(lat)*0.9)]:.2f} ms, p99 {lat[int(len(lat)*0.99)]:.2f} ms "
          f"(hit@1 {hits/len(queries):.3f})")

proc.stdin.close()
proc.wait()
shutil.rmtree(root)
