"""``memllm mcp``: the memory served to MCP clients (Claude Desktop, Cursor, Zed, agents).

- :mod:`.tools`: what each tool does, over the store, with no protocol in sight:
  small paginated results (dataclasses), writes as undoable batches of origin
  ``mcp`` with the client's name as their source, the model loaded on first use.
- :mod:`.server`: the tools and resources registered with the official ``mcp`` SDK,
  served over stdio or streamable HTTP (with an optional bearer token).
- :mod:`.address`: where ``--http`` may listen (loopback unless told otherwise).

The SDK is an optional extra (``pip install 'memllm[mcp]'``): only :mod:`.server`
imports it, and only ``memllm mcp`` imports that, so no other command pays for it.
"""

from __future__ import annotations

from importlib.util import find_spec

from memllm_cli.errors import MemllmError


def require_sdk() -> None:
    """Fail with one clear line when the ``mcp`` extra is not installed."""
    if find_spec("mcp") is None:
        raise MemllmError("memllm mcp needs the MCP SDK: pip install 'memllm[mcp]'")
