"""Where ``memllm mcp --http`` listens: loopback unless the user says otherwise.

A memory is personal data. Over HTTP it is reachable by whatever can reach the
address, so a non-loopback address needs both ``--allow-remote`` and a bearer
token; on loopback the token is optional (any local program could reach it).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from memllm_cli.errors import InvalidInputError


@dataclass(frozen=True)
class Address:
    """A host and port to listen on; port 0 lets the system pick a free one."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def url(self, port: int | None = None) -> str:
        """The endpoint's URL (``port``: the one actually bound, for port 0)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port if port is None else port}/mcp"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_address(text: str, *, allow_remote: bool, token: str | None) -> Address:
    """Parse ``HOST:PORT`` (``[::1]:PORT`` for IPv6) and check that it may be used."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise InvalidInputError(f"--http takes HOST:PORT, like 127.0.0.1:8765, not {text!r}")
    address = Address(host, int(port_text))
    if not address.loopback:
        if not allow_remote:
            raise InvalidInputError(
                f"{host} is not a loopback address: other machines could reach your memory; "
                "add --allow-remote (with --token) if that is what you want"
            )
        if not token:
            raise InvalidInputError(
                "a server other machines can reach needs a bearer token: "
                "--token or MEMLLM_MCP_TOKEN"
            )
    return address
