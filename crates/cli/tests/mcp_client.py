"""Drive `sqlite-vector mcp` with the real Python MCP client (PyPI `mcp` 2.x).

Usage: python mcp_client.py PATH/TO/sqlite-vector ROOT_DIR
Prints one line per check and a final `N passed, 0 failed` line; exits non-zero on failure.
"""

import asyncio
import json
import sys

from mcp import Client, StdioServerParameters

BIN, ROOT = sys.argv[1], sys.argv[2]
PASSED, FAILED = [], []


def check(name, ok, detail=""):
    (PASSED if ok else FAILED).append(name)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)


def server():
    return StdioServerParameters(command=BIN, args=["mcp", "--root", ROOT, "--max-batch", "50"])


def text_of(result):
    return result.content[0].text if result.content else ""


async def first_session():
    async with Client(server()) as c:
        check("server name", c.server_info.name == "sqlite-vector", c.server_info)
        print(f"     protocol {c.protocol_version}", flush=True)
        tools = {t.name: t for t in (await c.list_tools()).tools}
        expected = {"shard_create", "shard_list", "shard_stats", "shard_drop", "insert",
                    "insert_batch", "search", "get", "update", "delete", "sync",
                    "memory_store", "memory_find", "memory_feedback", "memory_consolidate",
                    "memory_context", "session_save", "session_restore"}
        check("tools listed", set(tools) == expected, sorted(tools))
        check("output schemas", all(t.output_schema for t in tools.values()))
        check("annotations", tools["search"].annotations.read_only_hint is True
              and tools["shard_drop"].annotations.destructive_hint is True)

        r = await c.call_tool("shard_create", {"name": "agent/notes"})
        check("shard_create", not r.is_error and r.structured_content["shard"]["dim"] == 256, text_of(r))

        docs = [
            {"id": "pdf", "text": "command-line tool to convert HTML to PDF", "metadata": {"kind": "tool"}},
            {"id": "n64", "text": "Nintendo 64 emulator audio plugins", "metadata": {"kind": "game"}},
            {"id": "toml", "text": "a library for parsing TOML configuration files"},
            {"id": "ssh", "text": "secure shell client and server for remote login"},
        ]
        r = await c.call_tool("insert_batch", {"shard": "agent/notes", "items": docs[:3]})
        check("insert_batch", not r.is_error and r.structured_content["count"] == 3, text_of(r))
        r = await c.call_tool("insert", {"shard": "agent/notes", **docs[3]})
        check("insert", not r.is_error and r.structured_content["id"] == "ssh", text_of(r))

        for mode in ("vector", "text", "hybrid"):
            r = await c.call_tool("search", {"shard": "agent/notes", "text": "secure remote login", "k": 3, "mode": mode})
            hits = r.structured_content["hits"] if not r.is_error else []
            check(f"search {mode}: expected item first", hits and hits[0]["id"] == "ssh", text_of(r))
        r = await c.call_tool("search", {"shard": "agent/notes", "text": "html to pdf converter", "k": 2})
        check("search default mode", not r.is_error and r.structured_content["hits"][0]["id"] == "pdf"
              and json.loads(text_of(r)) == r.structured_content, text_of(r))
        r = await c.call_tool("search", {"prefix": "agent/", "text": "emulator", "filter": {"kind": "game"}})
        check("search across shards with filter", not r.is_error and r.structured_content["hits"][0]["shard"] == "agent/notes"
              and [h["id"] for h in r.structured_content["hits"]] == ["n64"], text_of(r))
        r = await c.call_tool("get", {"shard": "agent/notes", "id": "toml"})
        check("get", not r.is_error and "TOML" in r.structured_content["text"], text_of(r))

        # Agent memory: store a lesson, find it for a similar task, report it worked.
        lesson = {"title": "Pin the timezone in date tests", "description": "When a date test fails only in CI",
                  "content": "CI runs in UTC; set TZ in the test."}
        r = await c.call_tool("memory_store", {"shard": "memory/me", "task": "Fix the failing date parser test",
                                               "task_id": "t1", "outcome": "success", "items": [lesson]})
        check("memory_store", not r.is_error and len(r.structured_content["stored"]) == 1, text_of(r))
        lid = r.structured_content["stored"][0]["id"] if not r.is_error else ""
        r = await c.call_tool("memory_find", {"shard": "memory/me", "task": "Fix the flaky date test in CI", "task_id": "t2"})
        hits = r.structured_content["hits"] if not r.is_error else []
        check("memory_find", hits and hits[0]["id"] == lid and hits[0]["advice"].startswith("Do: "), text_of(r))
        r = await c.call_tool("memory_feedback", {"shard": "memory/me", "task_id": "t2", "item_ids": [lid], "success": True})
        check("memory_feedback", not r.is_error and r.structured_content["items"][0]["wins"] == 1, text_of(r))
        r = await c.call_tool("memory_find", {"shard": "memory/me", "task": "Fix the failing date parser test", "task_id": "t1"})
        check("memory_find leaves the task's own lessons out", not r.is_error and r.structured_content["hits"] == [], text_of(r))

        errors = {
            "memory: bad outcome": ("memory_store", {"shard": "memory/me", "task": "x", "task_id": "t", "outcome": "meh",
                                                     "items": [lesson]}),
            "memory: empty title": ("memory_store", {"shard": "memory/me", "task": "x", "task_id": "t", "outcome": "success",
                                                     "items": [{**lesson, "title": " "}]}),
            "memory: unknown item": ("memory_feedback", {"shard": "memory/me", "task_id": "t", "item_ids": ["nope"], "success": True}),
            "hostile name": ("insert", {"shard": "../x", "text": "hi"}),
            "absolute name": ("shard_create", {"name": "/etc/passwd"}),
            "unknown shard": ("search", {"shard": "nope", "text": "hi"}),
            "dimension mismatch": ("insert", {"shard": "agent/notes", "vector": [0.1, 0.2, 0.3]}),
            "non-finite vector": ("insert", {"shard": "agent/notes", "vector": [1e39] * 256}),
            "no tokens": ("insert", {"shard": "agent/notes", "text": "\U0001F600\U0001F680"}),
            "duplicate id": ("insert", {"shard": "agent/notes", "id": "pdf", "text": "again"}),
            "unknown id": ("get", {"shard": "agent/notes", "id": "missing"}),
            "batch over limit": ("insert_batch", {"shard": "agent/notes", "items": [{"text": "a"}] * 51}),
            "bad filter": ("search", {"shard": "agent/notes", "text": "x", "filter": {"a": {"$bogus": 1}}}),
            "bad mode": ("search", {"shard": "agent/notes", "text": "x", "mode": "fuzzy"}),
            "missing argument": ("insert", {"text": "no shard"}),
            "no query": ("search", {"shard": "agent/notes"}),
            "k too large": ("search", {"shard": "agent/notes", "text": "x", "k": 1000000}),
        }
        for name, (tool, args) in errors.items():
            r = await c.call_tool(tool, args)
            check(f"error: {name}", r.is_error is True and len(text_of(r)) > 0, text_of(r))


async def second_session():
    async with Client(server()) as c:
        r = await c.call_tool("shard_list", {})
        names = [s["name"] for s in r.structured_content["shards"]] if not r.is_error else []
        check("restart: shard listed", names == ["agent/notes", "memory/me"], text_of(r))
        r = await c.call_tool("shard_stats", {"name": "agent/notes"})
        check("restart: items kept", not r.is_error and r.structured_content["count"] == 4, text_of(r))
        r = await c.call_tool("search", {"shard": "agent/notes", "text": "nintendo emulator", "k": 1})
        check("restart: search finds data", not r.is_error and r.structured_content["hits"][0]["id"] == "n64", text_of(r))
        r = await c.call_tool("delete", {"shard": "agent/notes", "id": "n64"})
        check("delete", not r.is_error, text_of(r))
        r = await c.call_tool("shard_drop", {"name": "agent/notes"})
        check("shard_drop", not r.is_error, text_of(r))


async def main():
    await first_session()
    await second_session()
    print(f"{len(PASSED)} passed, {len(FAILED)} failed", flush=True)
    return 1 if FAILED else 0


sys.exit(asyncio.run(main()))
