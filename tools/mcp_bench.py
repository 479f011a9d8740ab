"""Latency of `sqlite-vector mcp` tool calls, measured at the client over stdio.

Usage: python3 tools/mcp_bench.py BIN[,BIN2...] ../shared/data/debian-minilm [QUERIES] [INDEX]

INDEX (`true`/`false`) is passed as `shard_create`'s `index` argument when given (default: the
server's default).

Fills a text shard with the 25,000 base texts of debian-minilm through `insert_batch` calls of
1,000 texts each (timing every call, end to end: JSON-RPC round trip + embedding + commit), then
times `search` calls with the known-item queries' text (mode vector, text and hybrid; embedding
included). Raw JSON-RPC lines, one request in flight at a time. Prints the numbers and the
known-item hit@1 as a sanity check.

With several binaries (comma-separated), one server per binary runs side by side on the same
data, and every query goes to each server in turn (same query, same moment, alternating order),
so that their latencies compare on a noisy machine: the ratios to the first binary are printed.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BINS, DATA = sys.argv[1].split(","), sys.argv[2]
NQ = int(sys.argv[3]) if len(sys.argv) > 3 else 500
INDEX = {"true": True, "false": False}[sys.argv[4]] if len(sys.argv) > 4 else None


class Server:
    def __init__(self, binary):
        self.binary = binary
        self.root = tempfile.mkdtemp(prefix="mcp-bench-")
        self.proc = subprocess.Popen([binary, "mcp", "--root", self.root],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0
        self.rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                "clientInfo": {"name": "bench", "version": "0"}})
        self.proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        self.proc.stdin.flush()

    def rpc(self, method, params):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()
        while True:
            reply = json.loads(self.proc.stdout.readline())
            if reply.get("id") == self.next_id:
                return reply

    def call(self, tool, args):
        res = self.rpc("tools/call", {"name": tool, "arguments": args})["result"]
        assert not res.get("isError"), res
        return res["structuredContent"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()
        shutil.rmtree(self.root)


def timed(server, tool, args):
    t = time.perf_counter()
    r = server.call(tool, args)
    return (time.perf_counter() - t) * 1000, r


def p(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


servers = [Server(b) for b in BINS]
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
batch_ms = {s.binary: [] for s in servers}
for s in servers:
    s.call("shard_create", create)
for start in range(0, len(base), 1000):
    items = [{"id": str(o["id"]), "text": o["text"], "metadata": {"package": o["package"]}}
             for o in base[start:start + 1000]]
    for s in servers:
        ms, _ = timed(s, "insert_batch", {"shard": "debian", "items": items})
        batch_ms[s.binary].append(ms)
for s in servers:
    b = batch_ms[s.binary]
    print(f"{s.binary}: insert_batch of 1,000 texts (debian-minilm base, full descriptions), "
          f"{len(b)} calls: p50 {statistics.median(b):.0f} ms, max {max(b):.0f} ms, "
          f"total {sum(b)/1000:.1f} s")
    stats = s.call("shard_stats", {"name": "debian"})
    print(f"  shard_create {json.dumps(create)}: search method {stats['search_method']}")

modes = ("vector", "text", "hybrid")
lat = {(s.binary, m): [] for s in servers for m in modes}
hits = {(s.binary, m): 0 for s in servers for m in modes}
for i, q in enumerate(queries):
    order = servers if i % 2 == 0 else servers[::-1]
    for mode in modes:
        for s in order:
            ms, r = timed(s, "search", {"shard": "debian", "text": q["query"], "k": 10, "mode": mode})
            lat[(s.binary, mode)].append(ms)
            hits[(s.binary, mode)] += bool(r["hits"]) and r["hits"][0]["id"] == str(q["target_row"])
for s in servers:
    print(s.binary)
    for mode in modes:
        ls = lat[(s.binary, mode)]
        line = (f"  search k=10 mode={mode} on {len(base):,} items, {len(queries)} text queries: "
                f"p50 {p(ls, 0.5):.2f} ms, p90 {p(ls, 0.9):.2f} ms, p99 {p(ls, 0.99):.2f} ms "
                f"(hit@1 {hits[(s.binary, mode)]/len(queries):.3f})")
        if s is not servers[0]:
            ref = lat[(servers[0].binary, mode)]
            line += f"; p50 ratio to the first: {p(ls, 0.5) / p(ref, 0.5):.2f}"
        print(line)
for s in servers:
    s.close()
