"""What every command shares: the memory it opens, the embedder, and error handling."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from memllm_cli.errors import InvalidInputError, StoreError, explain

if TYPE_CHECKING:
    from memllm_cli.config import Settings
    from memllm_cli.embed import Embedder
    from memllm_cli.store import Store


DEBUG_ENV = "MEMLLM_DEBUG"
MAX_INT = 2**63 - 1  # the largest id or count SQLite holds: a larger one is a usage error
LONGEST_ERROR = 400  # characters: a message quoting a huge input value stays one short line


class MemllmGroup(TyperGroup):
    """Turns errors into one line on stderr and exit 1 (2 for usage), anywhere below this group.

    Domain errors and the errors bad input or a damaged file cause (see
    :func:`memllm_cli.errors.explain`) say what went wrong. Anything else is a bug: one
    line names it, and ``MEMLLM_DEBUG=1`` lets its traceback through instead.

    The command groups in :attr:`LAZY` are built only when named (or listed in help):
    typer builds every command's options at start-up, which ``facts list`` would pay for.
    """

    # name: the module whose ``app`` (a typer.Typer) makes the command
    LAZY: ClassVar[dict[str, str]] = {
        "eval": "memllm_cli.cli.evaluate",
        "config": "memllm_cli.cli.config",
    }

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in self.LAZY if n not in self.commands)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        if cmd_name in self.LAZY and cmd_name not in self.commands:
            from importlib import import_module

            from typer.main import get_command

            command = get_command(import_module(self.LAZY[cmd_name]).app)
            command.name = cmd_name
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TyperException as exc:
            # A usage error below the root (bad option or argument): one line, exit 2.
            if exc.exit_code != 2 or type(exc).__name__ == "NoArgsIsHelpError":
                raise
            where = getattr(getattr(exc, "ctx", None), "command_path", None) or "memllm"
            sys.stderr.write(f"error: {one_line(exc.format_message())} (see {where} -h)\n")
            ctx.exit(2)
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as Unix tools do.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces stdout for the exit
            ctx.exit(141)
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            ctx.exit(130)
        except Exception as exc:
            text = explain(exc)
            if text is None:
                if os.environ.get(DEBUG_ENV):
                    raise
                text = (
                    f"unexpected {type(exc).__name__}: {exc} (a bug in memllm; "
                    f"{DEBUG_ENV}=1 shows the traceback)"
                )
            sys.stderr.write(f"error: {one_line(text)}\n")
            ctx.exit(1)


def one_line(text: str) -> str:
    """``text`` on one line, cut to a readable length, without control characters."""
    text = "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))
    return text if len(text) <= LONGEST_ERROR else text[: LONGEST_ERROR - 3] + "..."


@dataclass
class AppState:
    db: Path | None = None
    profile: str | None = None
    settings: Settings | None = None
    store: Store | None = None


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def settings(ctx: typer.Context) -> Settings:
    """The settings of this command (``--profile``, environment, settings file); made once."""
    from memllm_cli.config import Settings

    app_state = state(ctx)
    if app_state.settings is None:
        app_state.settings = Settings(app_state.profile)
    return app_state.settings


def open_store(ctx: typer.Context) -> Store:
    """The memory chosen by ``--db``, ``MEMLLM_DB``, the settings file or the default
    (``MEMLLM_HOME/memory.db``); opened once."""
    from memllm_cli.store import Store

    app_state = state(ctx)
    if app_state.store is None:
        path = app_state.db  # --db needs no settings (nor their start-up time)
        if path is None:
            chosen = settings(ctx).get("db")
            path = Path(str(chosen.value))
            if not chosen.given:  # the default place, or one the settings file names
                _make_folder(path.parent)
        app_state.store = Store.open(path)
        ctx.find_root().call_on_close(app_state.store.close)
    return app_state.store


def _make_folder(folder: Path) -> None:
    """The memory's folder, readable by you alone, made if missing."""
    from memllm_cli import system

    try:
        system.make_private_folder(folder)
    except OSError as exc:
        raise StoreError(f"cannot create the memory folder {folder}: {exc}") from exc


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
