"""The MCP face of :mod:`.tools`: tools and resources registered with the official SDK, served.

Each tool's docstring is what a client model reads to choose and call it: what it
does, when to use it, and an example argument. Errors a client can act on (an
unknown fact id, a malformed query) come back as tool errors with memllm's own
one-line message; anything else is logged on stderr and reported as a failure.

Transports: stdio (the SDK diverts file descriptor 1 to stderr while it serves,
so a stray print, or llama.cpp's C code, cannot corrupt the protocol stream), and
streamable HTTP under uvicorn, wrapped in a bearer-token check when a token is set.
"""

from __future__ import annotations

import hmac
import json
import socket
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from memllm_cli import __version__
from memllm_cli.errors import InvalidInputError, MemllmError, explain
from memllm_cli.mcp_server.address import Address
from memllm_cli.mcp_server.tools import (
    MAX_LIMIT,
    Change,
    FactShown,
    MemoryTools,
    QueryPage,
    RecentPage,
    SearchPage,
    client_name,
)
from memllm_cli.store.models import UndoResult

T = TypeVar("T")

INSTRUCTIONS = """\
memllm is the user's personal fact memory, kept on their machine: (subject, relation, object)
facts such as "Ingrid Solberg >> residence >> Bergen", each traceable to the note, document line
or conversation that stated it. Read with query (you know the name and relation), search
(you do not), recent and show. Store what the user tells you with add_fact (an exact fact) or
remember (a short note memllm reads itself). Every write returns a batch id that undo reverts.
Results are paginated: ask for the next page only when you need it."""

Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="How many items to return.")]
Offset = Annotated[int, Field(ge=0, description="Skip this many (a previous next_offset).")]
FactId = Annotated[int, Field(ge=1, description="A fact's id, as results give it.")]
Name = Annotated[str, Field(min_length=1, max_length=500)]

READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DELETES = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)


def _answer(call: Callable[[], T]) -> T:
    """Run a tool; an error the client can act on becomes a tool error with its message."""
    try:
        return call()
    except Exception as exc:
        text = explain(exc)
        if text is None:
            raise
        raise ToolError(text) from None


def _client(ctx: Context) -> str:
    """The name the client gave in its initialize request (its provenance)."""
    params = ctx.session.client_params
    return client_name(params.client_info.name if params is not None else None)


def build(tools: MemoryTools, *, read_only: bool = False) -> MCPServer:
    """An MCP server over ``tools``; ``read_only`` leaves the write tools out."""
    server = MCPServer(
        "memllm", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    _reads(server, tools)
    if not read_only:
        _writes(server, tools)
    _resources(server, tools)
    return server


def _reads(server: MCPServer, tools: MemoryTools) -> None:
    @server.tool(annotations=READS)
    def query(
        query: Annotated[str, Field(description="'subject>>relation>>' or '>>relation>>object'.")],
        limit: Limit = 10,
        offset: Offset = 0,
    ) -> QueryPage:
        """Ask the memory a MemLLM read query; answers come ranked, each with its fact.

        Write 'subject>>relation>>' to ask for objects, '>>relation>>object' to ask for
        subjects. Names and relation labels match exactly first (aliases too), then by
        meaning. An answer marked fallback is the subject's fact with the nearest
        relation, not the one asked. Use search when you do not know the name.

        Example: {"query": "Ingrid Solberg>>residence>>"}
        Example: {"query": ">>employer>>NIVA"}
        """
        return _answer(lambda: tools.query(query, limit, offset))

    @server.tool(annotations=READS)
    def search(
        text: Annotated[str, Field(min_length=1, description="Words or a question.")],
        limit: Limit = 10,
        offset: Offset = 0,
        include_all: Annotated[
            bool, Field(description="Also superseded, retracted and deleted facts.")
        ] = False,
        keyword_only: Annotated[bool, Field(description="Match words only, not meaning.")] = False,
    ) -> SearchPage:
        """Find facts by meaning and by keyword in names, relations and source sentences.

        Best first; each hit says which signals matched. Use it when you do not know the
        exact name or relation (query is more precise when you do).

        Example: {"text": "where does Ingrid live"}
        """
        return _answer(
            lambda: tools.search(
                text, limit, offset, include_all=include_all, keyword_only=keyword_only
            )
        )

    @server.tool(annotations=READS)
    def show(fact_id: FactId, limit: Limit = 5) -> FactShown:
        """Show one fact with its provenance: every statement of it (origin, source such as
        a document path and line, a chat turn or an MCP client, and the sentence), its
        earlier and later versions, and the operations that changed it.

        Example: {"fact_id": 12}
        """
        return _answer(lambda: tools.show(fact_id, limit))

    @server.tool(annotations=READS)
    def recent(
        limit: Limit = 10,
        cursor: Annotated[
            int | None, Field(ge=1, description="A previous next_cursor: older facts.")
        ] = None,
        subject: Annotated[str | None, Field(description="Only this subject's facts.")] = None,
        origin: Annotated[
            str | None, Field(description="Only facts from: document, chat, manual or mcp.")
        ] = None,
        include_all: Annotated[
            bool, Field(description="Also superseded, retracted and deleted facts.")
        ] = False,
    ) -> RecentPage:
        """List the latest facts, newest first. Pass next_cursor back as cursor for older ones.

        Example: {"limit": 10}
        Example: {"subject": "Ingrid Solberg", "limit": 5}
        """
        return _answer(
            lambda: tools.recent(
                limit, cursor, subject=subject, origin=origin, include_all=include_all
            )
        )


def _writes(server: MCPServer, tools: MemoryTools) -> None:
    @server.tool(annotations=WRITES)
    def add_fact(
        subject: Annotated[Name, Field(description="Who or what the fact is about.")],
        relation: Annotated[
            Name, Field(description="A relation label (see memllm://relations) or a P-id.")
        ],
        object: Annotated[Name, Field(description="The value.")],
        ctx: Context,
        valid_from: Annotated[
            str | None, Field(description="When it became true: YYYY-MM-DD.")
        ] = None,
        note: Annotated[
            str | None, Field(max_length=2000, description="The user's words that state it.")
        ] = None,
    ) -> Change:
        """Store one fact the user told you: subject, relation, object.

        Relations are short labels: residence, employer, spouse, date of birth, ...
        (resource memllm://relations lists them; a new label makes a new relation). A new
        value of a one-valued relation (residence) supersedes the old one, which stays in
        history. Never overrides a fact the user set or deleted by hand. Returns the fact
        and the batch id that undo takes.

        Example: {"subject": "Ingrid Solberg", "relation": "residence", "object": "Bergen",
        "note": "Ingrid moved to Bergen in May."}
        """
        return _answer(
            lambda: tools.add_fact(
                _client(ctx), subject, relation, object, valid_from=valid_from, note=note
            )
        )

    @server.tool(annotations=WRITES)
    def edit_fact(
        fact_id: FactId,
        ctx: Context,
        subject: Annotated[Name | None, Field(description="The corrected subject.")] = None,
        relation: Annotated[Name | None, Field(description="The corrected relation.")] = None,
        object: Annotated[Name | None, Field(description="The corrected value.")] = None,
    ) -> Change:
        """Correct a stored fact: give its id and only the parts that change.

        The corrected version is a new fact; the old one stays in history, superseded.
        Facts the user entered by hand cannot be edited here.

        Example: {"fact_id": 12, "object": "Bergen"}
        """
        return _answer(
            lambda: tools.edit_fact(
                _client(ctx), fact_id, subject=subject, relation=relation, obj=object
            )
        )

    @server.tool(annotations=DELETES)
    def forget(
        fact_ids: Annotated[
            list[int], Field(min_length=1, max_length=MAX_LIMIT, description="Facts to delete.")
        ],
        ctx: Context,
    ) -> Change:
        """Delete facts by id. They stay in history as deleted; undo brings them back.

        Example: {"fact_ids": [12, 13]}
        """
        return _answer(lambda: tools.forget(_client(ctx), fact_ids))

    @server.tool(annotations=WRITES)
    def undo(
        batch_id: Annotated[
            int | None, Field(ge=1, description="The batch a write result named.")
        ] = None,
    ) -> UndoResult:
        """Undo a write made over MCP: the batch given, or else the latest one not yet undone.

        Every write result names its batch. Never undoes the user's own commands.

        Example: {"batch_id": 34}
        Example: {}
        """
        return _answer(lambda: tools.undo(batch_id))

    @server.tool(annotations=WRITES)
    def remember(
        text: Annotated[
            str, Field(min_length=1, max_length=2000, description="A short note, plain words.")
        ],
        ctx: Context,
        context: Annotated[
            str, Field(max_length=2000, description="Earlier words the note refers to.")
        ] = "",
    ) -> Change:
        """Hand memllm a short note (a sentence or a few); its own model reads it and stores
        the facts it states, with the note as their evidence.

        Use it for what the user mentions in passing; use add_fact when you know the exact
        fact. The first call loads the model, which takes a few seconds.

        Example: {"text": "Ingrid Solberg moved to Bergen and now works at NIVA."}
        """
        return _answer(lambda: tools.remember(_client(ctx), text, context))


def _resources(server: MCPServer, tools: MemoryTools) -> None:
    @server.resource(
        "memllm://relations",
        name="relations",
        mime_type="application/json",
        description="Every relation (label, P-id, one or many values, facts, aliases).",
    )
    def relations() -> str:
        return _resource(lambda: [r.to_dict() for r in tools.relations()])

    @server.resource(
        "memllm://stats",
        name="stats",
        mime_type="application/json",
        description="How much the memory holds: facts by status and origin, entities, ...",
    )
    def stats() -> str:
        return _resource(lambda: tools.stats().to_dict())


def _resource(call: Callable[[], Any]) -> str:
    try:
        return json.dumps(call(), ensure_ascii=False)
    except MemllmError as exc:
        raise ResourceError(str(exc)) from None


def serve_stdio(server: MCPServer) -> None:
    """Serve one client on stdin and stdout until it closes them."""
    anyio.run(server.run_stdio_async)


def serve_http(
    server: MCPServer,
    address: Address,
    token: str | None,
    on_ready: Callable[[str], None],
) -> None:
    """Serve streamable HTTP at ``address`` until interrupted; ``on_ready`` gets the URL."""
    import uvicorn

    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        sock = socket.create_server((address.host, address.port), family=family)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot listen on {address.host}:{address.port}: {exc.strerror or exc}"
        ) from None
    app: Any = server.streamable_http_app(host=address.host)
    if token:
        app = BearerToken(app, token)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    on_ready(address.url(sock.getsockname()[1]))
    with sock:
        anyio.run(uvicorn.Server(config).serve, [sock])


class BearerToken:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self._authorized(scope):
            body = b'{"error": "a valid bearer token is required (Authorization: Bearer ...)"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="memllm"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        return hmac.compare_digest(given, self.expected)
