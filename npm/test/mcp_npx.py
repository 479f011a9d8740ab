"""Drive `npx --no sqlite-vector mcp --root ROOT` from an npm project with the real Python MCP
client (PyPI `mcp` 2.x), as an MCP client's config would start it.

Usage: python mcp_npx.py PROJECT_DIR ROOT_DIR native|wasm|fallback [--big N]
       (SQLITE_VECTOR_NPX_ARGS='["-y", "./sqlite-vector-0.1.0.tgz"]': npx runs tarballs instead)

`native`: the platform package is installed, the shim runs its CLI (text embedding works).
`wasm`: SQLITE_VECTOR_BACKEND=wasm, or no platform package: the WebAssembly fallback (vectors
only; embedding, sync and memory refused with a clear error).
`--big N`: also time the first search on an N-item 384-d shard in a fresh server (spawn to
answer), after filling it (slow; for the benchmark, not CI).
Prints one line per check and `N passed, 0 failed`; exits non-zero on a failure or when the
initialize handshake takes 1 s or more.
"""

import asyncio
import json
import os
import random
import sys
import time

from mcp import Client, StdioServerParameters

PROJECT, ROOT, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
BIG = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--big" else 0
PASSED, FAILED = [], []


def check(name, ok, detail=""):
    (PASSED if ok else FAILED).append(name)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)


# The npx arguments before `mcp`: an installed project's package by default; with
# SQLITE_VECTOR_NPX_ARGS (a JSON array) e.g. tarballs, `["-y", "./sqlite-vector-0.1.0.tgz"]`
# (npx installs them into its cache on the first run: the initialize time is then reported,
# not checked).
NPX_ARGS = json.loads(os.environ.get("SQLITE_VECTOR_NPX_ARGS") or '["--no", "sqlite-vector"]')
INSTALLED = "SQLITE_VECTOR_NPX_ARGS" not in os.environ


def server():
    env = dict(os.environ)
    if MODE == "wasm":
        env["SQLITE_VECTOR_BACKEND"] = "wasm"
    else:
        env.pop("SQLITE_VECTOR_BACKEND", None)
    return StdioServerParameters(
        command="npx", args=[*NPX_ARGS, "mcp", "--root", ROOT], cwd=PROJECT, env=env
    )


def text_of(result):
    return result.content[0].text if result.content else ""


def unit(v):
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


async def session():
    t0 = time.monotonic()
    async with Client(server()) as c:
        t_init = time.monotonic() - t0
        print(f"     initialize answered {t_init * 1000:.0f} ms after spawn (npx included)", flush=True)
        if INSTALLED:
            check("initialize < 1 s after spawn", t_init < 1.0, f"{t_init:.3f} s")
        check("server name", c.server_info.name == "sqlite-vector", c.server_info)
        tools = {t.name for t in (await c.list_tools()).tools}
        check("18 tools listed", len(tools) == 18 and {"search", "insert_batch", "memory_store"} <= tools, sorted(tools))

        r = await c.call_tool("shard_create", {"name": "npx/vecs", "dim": 4, "metric": "cosine"})
        check("shard_create (vectors)", not r.is_error, text_of(r))
        items = [{"id": f"v{i}", "vector": unit([1.0, i, 0.5, -i]), "metadata": {"i": i}} for i in range(20)]
        r = await c.call_tool("insert_batch", {"shard": "npx/vecs", "items": items})
        check("insert_batch", not r.is_error and r.structured_content["count"] == 20, text_of(r))
        r = await c.call_tool("search", {"shard": "npx/vecs", "vector": unit([1.0, 7, 0.5, -7]), "k": 3})
        hits = r.structured_content["hits"] if not r.is_error else []
        check("search by vector: nearest first", hits and hits[0]["id"] == "v7", text_of(r))
        r = await c.call_tool("search", {"shard": "npx/vecs", "vector": [1.0, 2.0], "k": 3})
        check("wrong dimension refused", r.is_error and "dimension" in text_of(r), text_of(r))
        r = await c.call_tool("shard_create", {"name": "../escape", "dim": 4})
        check("hostile shard name refused", r.is_error, text_of(r))

        if MODE == "native":
            r = await c.call_tool("shard_create", {"name": "npx/notes"})
            check("text shard (built-in embedder)", not r.is_error, text_of(r))
            docs = [{"id": "ssh", "text": "secure shell client and server for remote login"},
                    {"id": "pdf", "text": "command-line tool to convert HTML to PDF"}]
            r = await c.call_tool("insert_batch", {"shard": "npx/notes", "items": docs})
            check("insert text", not r.is_error, text_of(r))
            r = await c.call_tool("search", {"shard": "npx/notes", "text": "remote login", "k": 1})
            check("search text", not r.is_error and r.structured_content["hits"][0]["id"] == "ssh", text_of(r))
        else:
            r = await c.call_tool("insert", {"shard": "npx/vecs", "text": "no vector here"})
            check("text-only insert into a shard of vectors refused (as natively)",
                  r.is_error and "vector" in text_of(r), text_of(r))
            r = await c.call_tool("shard_create", {"name": "npx/notes"})
            check("a text shard refused, naming the native package",
                  r.is_error and "native" in text_of(r), text_of(r))
            r = await c.call_tool("memory_store", {"shard": "m", "task": "t", "outcome": "success",
                                                   "items": [{"title": "a", "description": "b", "content": "c"}]})
            check("memory tool refused", r.is_error and "native" in text_of(r), text_of(r))

    # A new server sees what the first one acknowledged.
    async with Client(server()) as c:
        r = await c.call_tool("shard_stats", {"name": "npx/vecs"})
        check("restart: items kept", not r.is_error and r.structured_content["count"] == 20, text_of(r))
        r = await c.call_tool("shard_drop", {"name": "npx/vecs"})
        check("shard_drop", not r.is_error, text_of(r))


async def big():
    rnd = random.Random(25)
    async with Client(server()) as c:
        r = await c.call_tool("shard_create", {"name": "npx/big", "dim": 384})
        check("big shard created", not r.is_error, text_of(r))
        for start in range(0, BIG, 500):
            items = [{"id": f"b{i}", "vector": [rnd.uniform(-1, 1) for _ in range(384)]}
                     for i in range(start, min(BIG, start + 500))]
            r = await c.call_tool("insert_batch", {"shard": "npx/big", "items": items})
            if r.is_error:
                check("fill big shard", False, text_of(r))
                return
    q = [rnd.uniform(-1, 1) for _ in range(384)]
    t0 = time.monotonic()
    async with Client(server()) as c:
        r = await c.call_tool("search", {"shard": "npx/big", "vector": q, "k": 10})
        t = time.monotonic() - t0
        print(f"     first search on {BIG} items answered {t * 1000:.0f} ms after spawn", flush=True)
        check(f"first search on {BIG} items < 2 s after spawn", not r.is_error and len(r.structured_content["hits"]) == 10 and t < 2.0, f"{t:.3f} s {text_of(r)[:200]}")


async def main():
    await session()
    if BIG:
        await big()


asyncio.run(main())
print(f"{len(PASSED)} passed, {len(FAILED)} failed", flush=True)
sys.exit(1 if FAILED else 0)
