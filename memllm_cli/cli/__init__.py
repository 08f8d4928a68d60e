"""The ``memllm`` command: parse, call the core, render. No SQL and no models here."""

from __future__ import annotations

from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from memllm_cli import system
from memllm_cli.cli import complete, converse, entities, facts, history, ingest, relations
from memllm_cli.cli import doctor as doctor_cmd
from memllm_cli.cli import mcp as mcp_cmd
from memllm_cli.cli.common import MemllmGroup, settings, state

app = typer.Typer(
    name="memllm",
    cls=MemllmGroup,
    help=(
        "A private, offline knowledge assistant: your facts in one local memory, "
        "read and written by a small language model (MemLLM)."
    ),
    epilog=(
        "The memory is MEMLLM_HOME/memory.db (or --db, MEMLLM_DB, or the settings file: "
        "memllm config show), readable by you alone. Nothing leaves this machine. An "
        "unexpected error prints one line; MEMLLM_DEBUG=1 shows its traceback."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("ingest")(ingest.ingest)
app.command("apply")(ingest.apply)
app.command("ask")(converse.ask)
app.command("chat")(converse.chat)
facts.app.command("alias")(entities.alias)
facts.app.command("merge")(entities.merge)
app.add_typer(facts.app, name="facts")
app.add_typer(relations.app, name="relations")
app.command("history")(history.history)
app.command("undo")(history.undo)
app.command("doctor")(doctor_cmd.doctor)
app.command("mcp")(mcp_cmd.mcp)
# `memllm eval` and `memllm config` are added by MemllmGroup when named (MemllmGroup.LAZY)


def _version(value: bool) -> None:
    """The version, and the model, adapter and memory protocol a command would use."""
    if value:
        from memllm_cli import __version__
        from memllm_cli.runtime.models import describe_default

        info = describe_default()
        adapter = info.adapter or "none"
        if info.adapter_protocol_version:
            adapter += f" (memory protocol {info.adapter_protocol_version})"
        typer.echo(f"memllm {__version__}")
        typer.echo(f"model: {info.name or 'none'}")
        typer.echo(f"adapter: {adapter}")
        typer.echo(f"memory protocol: {info.protocol_version}")
        if info.problem:
            typer.echo(f"problem: {info.problem}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db", help="The memory file (default: MEMLLM_DB, the settings file, or MEMLLM_HOME)."
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="A profile of the settings file: its memory, model and name (or MEMLLM_PROFILE).",
            autocompletion=complete.profiles,
        ),
    ] = None,
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version, the default model, its adapter and the memory protocol.",
        ),
    ] = None,
) -> None:
    app_state = state(ctx)
    app_state.db = db
    app_state.profile = profile
    if profile is not None and ctx.invoked_subcommand != "config":
        # A profile the settings file lacks fails before any work. (One from MEMLLM_PROFILE
        # fails where a setting is first read: a command given --db reads none.)
        settings(ctx).check()


def _terminate(signum: int, frame: FrameType | None) -> None:
    """A request to end exits like Ctrl-C aborts: transactions roll back, temporary files go."""
    raise SystemExit(128 + signum)


def main() -> None:
    system.on_termination(_terminate)
    app(prog_name="memllm")
