"""``memllm mcp`` driven by the MCP SDK's own client: in process, over stdio, over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.error import HTTPError

import pytest

pytest.importorskip("mcp")

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import Implementation

from memllm_cli.mcp_server.server import build
from memllm_cli.mcp_server.tools import MemoryTools
from memllm_cli.runtime.scripted import ScriptedModel

SCRIPTED = Path(__file__).resolve().parent / "scripted_memllm.py"
READ_TOOLS = {"query", "search", "show", "recent"}
WRITE_TOOLS = {"add_fact", "edit_fact", "forget", "undo", "remember"}
ME = Implementation(name="test-client", version="1.0")


@pytest.fixture
def outputs():
    return []


@pytest.fixture
def tools(store, embedder, outputs):
    made = MemoryTools(store, embedder, lambda: ScriptedModel(outputs))
    yield made
    made.close()


@asynccontextmanager
async def connected(server):
    async with Client(server, client_info=ME) as client:
        yield client


def run(scenario, *args):
    """Run ``scenario(*args)`` (a coroutine function) to its end."""
    return anyio.run(scenario, *args)


async def call(client, tool, **arguments):
    """A tool's structured result; a tool error fails the test with its message."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def session_flow(client):
    """The issue's session: list tools, add a fact, query it, show its provenance, undo it."""
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(listed) == READ_TOOLS | WRITE_TOOLS
    added = await call(
        client,
        "add_fact",
        subject="Ingrid Solberg",
        relation="residence",
        object="Bergen",
        note="Ingrid moved to Bergen.",
    )
    fact_id = added["written"][0]["fact"]["id"]
    answers = await call(client, "query", query="Ingrid Solberg>>residence>>")
    assert [(a["answer"], a["fact_id"]) for a in answers["answers"]] == [("Bergen", fact_id)]
    shown = await call(client, "show", fact_id=fact_id)
    assert [(e["origin"], e["uri"], e["sentence"]) for e in shown["evidence"]] == [
        ("mcp", "mcp:test-client", "Ingrid moved to Bergen.")
    ]
    undone = await call(client, "undo", batch_id=added["batch_id"])
    assert undone["undone_ops"] == 1
    after = await call(client, "query", query="Ingrid Solberg>>residence>>")
    assert after["total"] == 0
    return listed


def test_session_in_process(tools, store):
    listed = run(lambda: _in_process(build(tools)))
    for name, tool in listed.items():
        assert "Example: {" in tool.description, name
        assert tool.annotations.read_only_hint is (name in READ_TOOLS), name
    assert listed["forget"].annotations.destructive_hint is True
    assert store.count_facts() == 0
    assert [op.op for op in store.history()] == ["undo", "add"]


async def _in_process(server):
    async with connected(server) as client:
        return await session_flow(client)


def test_read_only_server_offers_no_writes(tools):
    async def scenario():
        async with connected(build(tools, read_only=True)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            refused = await client.call_tool("forget", {"fact_ids": [1]})
            return names, refused

    names, refused = run(scenario)
    assert names == READ_TOOLS
    assert refused.is_error


def test_errors_come_back_as_tool_errors_with_memllms_message(tools):
    async def scenario():
        async with connected(build(tools)) as client:
            return [
                await client.call_tool(name, arguments)
                for name, arguments in (
                    ("query", {"query": "Ingrid Solberg"}),
                    ("show", {"fact_id": 41}),
                    ("undo", {}),
                    ("recent", {"limit": 0}),
                )
            ]

    bad_query, unknown, nothing, bad_limit = run(scenario)
    assert all(r.is_error for r in (bad_query, unknown, nothing, bad_limit))
    assert "a read query has the form" in bad_query.content[0].text
    assert "no fact with id 41" in unknown.content[0].text
    assert "nothing to undo made by mcp" in nothing.content[0].text
    assert "limit" in bad_limit.content[0].text


def test_edit_forget_and_pages_through_the_protocol(tools, store):
    async def scenario():
        async with connected(build(tools)) as client:
            ids = []
            for child in ("Kari", "Per", "Ola"):
                added = await call(
                    client, "add_fact", subject="Ola N", relation="child", object=child
                )
                ids.append(added["written"][0]["fact"]["id"])
            edited = await call(client, "edit_fact", fact_id=ids[2], object="Oline")
            forgot = await call(client, "forget", fact_ids=ids[:1])
            first = await call(client, "recent", limit=1)
            older = await call(client, "recent", limit=1, cursor=first["next_cursor"])
            page = await call(client, "query", query="Ola N>>child>>", limit=1, offset=1)
            found = await call(client, "search", text="Oline", keyword_only=True)
            return ids, edited, forgot, first, older, page, found

    ids, edited, forgot, first, older, page, found = run(scenario)
    new_id = edited["written"][0]["fact"]["id"]
    assert store.fact(ids[2]).superseded_by == new_id
    assert forgot["removed"][0]["status"] == "deleted"
    assert [f["id"] for f in first["facts"] + older["facts"]] == [new_id, ids[1]]
    assert older["next_cursor"] is None
    assert (page["total"], page["next_offset"], len(page["answers"])) == (2, None, 1)
    assert [h["fact"]["object"] for h in found["hits"]] == ["Oline"]


def test_remember_and_resources(tools, store, outputs):
    outputs.append("({MEM_WRITE-->Ingrid Solberg>>employer>>NIVA})")

    async def scenario():
        async with connected(build(tools)) as client:
            noted = await call(client, "remember", text="Ingrid Solberg works at NIVA.")
            listed = {str(r.uri) for r in (await client.list_resources()).resources}
            stats = await client.read_resource("memllm://stats")
            relations = await client.read_resource("memllm://relations")
            return noted, listed, stats, relations

    noted, listed, stats, relations = run(scenario)
    assert noted["summary"].startswith("added fact 1: Ingrid Solberg >> employer >> NIVA")
    assert listed == {"memllm://stats", "memllm://relations"}
    assert json.loads(stats.contents[0].text)["origins"]["mcp"] == 1
    first = json.loads(relations.contents[0].text)[0]
    assert (first["label"], first["facts"]) == ("employer", 1)
    assert store.evidence(1)[0].uri == "mcp:test-client"


def test_session_over_stdio_keeps_stdout_for_protocol(tmp_path):
    """The SDK's stdio client spawns ``memllm mcp``; the model writes to stdout while it runs."""
    db = tmp_path / "memory.db"
    stderr = tmp_path / "stderr.txt"
    problems: list[Exception] = []

    async def on_message(message):
        if isinstance(message, Exception):
            problems.append(message)

    params = StdioServerParameters(
        command=sys.executable,
        args=[str(SCRIPTED), "--db", str(db), "mcp"],
        env={
            "MEMLLM_HOME": str(tmp_path / "home"),
            "MEMLLM_EMBEDDER": "hash",
            "MEMLLM_TEST_NOISY": "1",
        },
    )

    async def scenario():
        with stderr.open("w") as errlog:
            transport = stdio_client(params, errlog=errlog)
            async with Client(transport, client_info=ME, message_handler=on_message) as client:
                await session_flow(client)
                noted = await call(client, "remember", text="Ingrid Solberg works at NIVA.")
                shown = await call(client, "show", fact_id=noted["written"][0]["fact"]["id"])
                return shown

    shown = run(scenario)
    assert problems == []
    assert (shown["evidence"][0]["uri"], shown["evidence"][0]["extractor"]) == (
        "mcp:test-client",
        "rules",
    )
    noise = stderr.read_text()
    assert "noise from Python's sys.stdout" in noise
    assert "noise from file descriptor 1" in noise


def test_http_requires_the_bearer_token(tmp_path):
    """``memllm mcp --http 127.0.0.1:0 --token ...`` over real HTTP on loopback."""
    env = {**os.environ, "MEMLLM_HOME": str(tmp_path / "home"), "MEMLLM_EMBEDDER": "hash"}
    env.pop("MEMLLM_MCP_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, str(SCRIPTED), "--db", str(tmp_path / "m.db"), "mcp"]
        + ["--http", "127.0.0.1:0", "--token", "s3cret"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []  # stderr up to the line that says where the server listens
        while not seen or ("memllm MCP server at" not in seen[-1] and seen[-1]):
            seen.append(server.stderr.readline())
        line = seen[-1]
        assert "bearer token required" in line, "".join(seen)
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        bare, wrong = _post(url, None), _post(url, "Bearer nope")
        assert (bare.code, wrong.code) == (401, 401)
        assert bare.headers["WWW-Authenticate"].startswith("Bearer")

        async def scenario():
            http = create_mcp_http_client(headers={"Authorization": "Bearer s3cret"})
            async with http, connected(streamable_http_client(url, http_client=http)) as client:
                await session_flow(client)

        run(scenario)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _post(url: str, authorization: str | None) -> HTTPError:
    """A tools/list request that the server must refuse; the refusal."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, body.encode(), headers, method="POST")
    with pytest.raises(HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    return refused.value
