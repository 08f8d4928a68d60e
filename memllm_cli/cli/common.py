"""What every command shares: the memory it opens, the embedder, and error handling."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer
from typer.core import TyperGroup

from memllm_cli.errors import InvalidInputError, MemllmError, StoreError

if TYPE_CHECKING:
    from memllm_cli.embed import Embedder
    from memllm_cli.store import Store


class MemllmGroup(TyperGroup):
    """Turns domain errors into one line on stderr and exit 1, anywhere below this group."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemllmError as exc:
            sys.stderr.write(f"error: {exc}\n")
            ctx.exit(1)
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as Unix tools do.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces stdout for the exit
            ctx.exit(141)
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            ctx.exit(130)


@dataclass
class AppState:
    db: Path | None = None
    store: Store | None = None


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def open_store(ctx: typer.Context) -> Store:
    """The memory chosen by ``--db``, ``MEMLLM_HOME`` or the platform default; opened once."""
    from memllm_cli import config
    from memllm_cli.store import Store

    app_state = state(ctx)
    if app_state.store is None:
        path = app_state.db
        if path is None:
            path = config.default_db_path()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the memory folder {path.parent}: {exc}") from exc
        app_state.store = Store.open(path)
        ctx.find_root().call_on_close(app_state.store.close)
    return app_state.store


@contextmanager
def open_input(path: str) -> Iterator[tuple[TextIO, str]]:
    """(text stream, display name) for a file path, or stdin for ``-``."""
    if path == "-":
        yield sys.stdin, "stdin"
        return
    try:
        handle = open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        yield handle, path


def embedder() -> Embedder:
    """The configured embedder; heavy models load on first use, not here."""
    from memllm_cli import config
    from memllm_cli.embed import get_embedder

    return get_embedder(config.embedder_name())
