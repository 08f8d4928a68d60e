"""``memllm mcp``: serve the memory to MCP clients over stdio or streamable HTTP."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from memllm_cli.cli.common import embedder, open_store
from memllm_cli.cli.options import (
    GpuLayers,
    Me,
    ModelName,
    ModelPath,
    ModelUrl,
    Threads,
    chosen_me,
    load_chosen_model,
    server_options,
)
from memllm_cli.cli.output import message


def mcp(
    ctx: typer.Context,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="HOST:PORT",
            help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (port 0: any).",
        ),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option("--allow-remote", help="Let --http listen beyond loopback (needs --token)."),
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="MEMLLM_MCP_TOKEN",
            help="The bearer token every HTTP request must carry (Authorization: Bearer ...).",
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Offer the read tools only: no writes, no undo.")
    ] = False,
    model_path: ModelPath = None,
    model_url: ModelUrl = None,
    model_name: ModelName = None,
    me: Me = None,
    threads: Threads = None,
    gpu_layers: GpuLayers = None,
) -> None:
    """Serve this memory to MCP clients: Claude Desktop, Cursor, Zed, agents.

    Tools: query, search, show, recent; add_fact, edit_fact, forget, undo,
    remember. Every write is a batch that undo reverts, with origin mcp and
    the client's name as its source. Resources: memllm://relations and
    memllm://stats. On stdio (the default) stdout carries protocol only.
    The model loads on the first remember, not at start.

    Example: memllm mcp

    Example: memllm --db ~/notes/memory.db mcp --read-only

    Example: MEMLLM_MCP_TOKEN=s3cret memllm mcp --http 127.0.0.1:8765
    """
    from memllm_cli.mcp_server import require_sdk
    from memllm_cli.mcp_server.address import listen_address

    address = (
        listen_address(http, allow_remote=allow_remote, token=token) if http is not None else None
    )
    require_sdk()
    from memllm_cli.mcp_server.server import build, serve_http, serve_stdio
    from memllm_cli.mcp_server.tools import MemoryTools

    # the settings' server, key, threads and GPU layers apply; a bad one fails here
    server = server_options(model_url, None, "auto", False, None, ctx, model_path)
    store = open_store(ctx)
    tools = MemoryTools(
        store,
        embedder(),
        lambda: load_chosen_model(
            ctx,
            model_path,
            model_url,
            model_name,
            server=server,
            threads=threads,
            gpu_layers=gpu_layers,
        ),
        me=chosen_me(ctx, me),
    )
    try:
        server = build(tools, read_only=read_only)
        if address is None:
            if sys.stdin is not None and sys.stdin.isatty():
                message("memllm MCP server on stdio, for an MCP client to start (Ctrl-C stops)")
            serve_stdio(server)
        else:
            guard = "bearer token required" if token else "no token: any local program may call it"
            serve_http(
                server,
                address,
                token,
                lambda url: message(f"memllm MCP server at {url} ({guard}; Ctrl-C stops)"),
            )
    finally:
        tools.close()
