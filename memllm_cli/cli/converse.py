"""``memllm ask`` and ``memllm chat``: the model answers from memory, and learns in chat."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from memllm_cli.cli.options import (
    ApiKey,
    GpuLayers,
    MaxTokens,
    Me,
    ModelName,
    ModelPath,
    ModelUrl,
    ServedAdapter,
    ServerKind,
    ShowMemory,
    Threads,
    Timeout,
    open_session,
    server_options,
)
from memllm_cli.cli.output import JsonFlag, emit, message, render

if TYPE_CHECKING:
    from rich.console import Console

    from memllm_cli.cli.lineedit import LineReader
    from memllm_cli.runtime.loop import Answer, Session
    from memllm_cli.store.models import WriteResult


def _cite(answer: Answer, session: Session) -> None:
    for fact_id in answer.facts_used:
        fact = session.store.fact(fact_id)
        message(f"  fact {fact.id}: {fact.label}")


def _brief(answer: Answer) -> str:
    """The sentences path's citations, briefly: `` (notes.md:3, notes.md:5)``; else ""."""
    from pathlib import PurePath

    cites = [f"{PurePath(c.uri).name}:{c.lines}" for c in answer.citations]
    return f" ({', '.join(cites)})" if cites else ""


def ask(
    ctx: typer.Context,
    question: Annotated[
        str | None, typer.Argument(help="The question; read from stdin when absent or '-'.")
    ] = None,
    no_memory: Annotated[
        bool, typer.Option("--no-memory", help="Answer without reading memory (to compare).")
    ] = False,
    show_memory: ShowMemory = False,
    model_path: ModelPath = None,
    model_url: ModelUrl = None,
    model_name: ModelName = None,
    served_adapter: ServedAdapter = False,
    server_kind: ServerKind = "auto",
    api_key: ApiKey = None,
    timeout: Timeout = None,
    me: Me = None,
    max_tokens: MaxTokens = 256,
    threads: Threads = None,
    gpu_layers: GpuLayers = None,
    json_: JsonFlag = False,
) -> None:
    """Answer a question from memory; the answer cites the facts or note lines it used.

    When no fact answers, the stored sentences of your notes do, if they say it;
    otherwise the answer is "I do not know".

    Example: memllm ask "Where does Ingrid Solberg live?"

    Example: echo "Who works at NIVA?" | memllm ask --json

    Example: memllm ask "Who works at NIVA?" --model-url http://127.0.0.1:8080 --served-adapter
    """
    from memllm_cli.errors import InvalidInputError

    if question is None or question == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise typer.BadParameter("give a question, or pipe one on stdin")
        question = sys.stdin.read()
    question = question.strip()
    if not question:
        raise InvalidInputError("the question is empty")
    server = server_options(
        model_url, api_key, server_kind, served_adapter, timeout, ctx, model_path
    )
    session, load_seconds = open_session(
        ctx,
        model_path,
        model_url,
        model_name,
        show_memory=show_memory,
        me=me,
        max_tokens=max_tokens,
        memory=not no_memory,
        server=server,
        threads=threads,
        gpu_layers=gpu_layers,
    )
    if not json_:
        session.on_text = _stdout_stream
    answer = session.ask(question)
    answer.timings["model_load"] = load_seconds
    if json_:
        from memllm_cli.runtime.models import describe

        render([answer.to_dict() | {"model": describe(session.model).to_dict()}], "jsonl", [])
        return
    sys.stdout.write(_brief(answer) + "\n")
    if answer.facts_used:
        message("facts used:")
        _cite(answer, session)
    if show_memory and not no_memory:
        message(f"[memory path] {answer.path}")
        for citation in answer.citations:
            message(f"  {citation.cite} {citation.text}")


def _stdout_stream(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


CHAT_HELP = """commands:
  /facts [N]     the N most recent current facts (default 10)
  /undo          undo the last change to memory
  /forget ID     delete fact ID
  /memory on|off read and write memory, or not
  /help          this help
  /quit          leave (or Ctrl-D)"""
SLASH_COMMANDS = ("/facts", "/undo", "/forget", "/memory", "/help", "/quit", "/exit")


def chat(
    ctx: typer.Context,
    show_memory: Annotated[
        bool, typer.Option("--show-memory/--hide-memory", help="Show memory ops inline.")
    ] = True,
    model_path: ModelPath = None,
    model_url: ModelUrl = None,
    model_name: ModelName = None,
    served_adapter: ServedAdapter = False,
    server_kind: ServerKind = "auto",
    api_key: ApiKey = None,
    timeout: Timeout = None,
    me: Me = None,
    max_tokens: MaxTokens = 256,
    threads: Threads = None,
    gpu_layers: GpuLayers = None,
    history_chars: Annotated[
        int,
        typer.Option(
            "--history", min=0, max=1 << 30, help="Characters of earlier turns kept in context."
        ),
    ] = 2000,
) -> None:
    """Talk with your memory: questions read it, statements write to it (undoable).

    Ctrl-C cancels the current answer; Ctrl-D leaves. Type /help for commands. At a
    terminal, lines can be edited and earlier ones recalled (arrow keys, Ctrl-R; Tab
    completes commands); they are kept in MEMLLM_HOME/chat_history, readable by you
    alone, except those typed with a leading space.

    Example: memllm chat --me "Ingrid Solberg"
    """
    from rich.console import Console

    from memllm_cli.cli.lineedit import HISTORY_FILE, line_reader
    from memllm_cli.config import home_dir

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    server = server_options(
        model_url, api_key, server_kind, served_adapter, timeout, ctx, model_path
    )
    session, _ = open_session(
        ctx,
        model_path,
        model_url,
        model_name,
        show_memory=False,
        me=me,
        max_tokens=max_tokens,
        server=server,
        threads=threads,
        gpu_layers=gpu_layers,
    )
    if show_memory:
        session.on_event = lambda kind, text: err.print(
            f"[dim]  ⟨{kind}⟩ {text}[/dim]", markup=True, highlight=False
        )
    session.on_text = lambda text: console.print(text, end="", markup=False, highlight=False)
    err.print(
        f"[dim]memllm chat · {session.model.name} · /help for commands · Ctrl-D to leave[/dim]"
    )
    with line_reader(console, home_dir() / HISTORY_FILE, SLASH_COMMANDS) as reader:
        _converse(session, reader, console, err, history_chars)


def _converse(
    session: Session, reader: LineReader, console: Console, err: Console, history_chars: int
) -> None:
    """The chat loop: a line in, memory written or read, a reply out; until /quit or EOF."""
    import uuid

    session_id = uuid.uuid4().hex[:12]
    history: list[tuple[str, str]] = []
    while True:
        try:
            line = reader.read().strip()
        except EOFError:
            err.print()
            return
        except KeyboardInterrupt:
            err.print()
            continue
        if not line:
            continue
        if line.startswith("/"):
            if _slash(line, session) == "quit":
                return
            continue
        try:
            stored: list[WriteResult] = []
            if session.memory and not line.endswith("?"):
                earlier = " ".join(user for user, _ in history[-3:])
                stored = session.remember(line, session_id=session_id, context=earlier)
            console.print("[bold]memllm›[/bold] ", end="")
            if stored:  # a statement that wrote memory gets what was stored, not a read
                reply = _noted(stored)
                console.print(reply, markup=False, highlight=False, soft_wrap=True)
                history.append((line, reply))
                continue
            # A statement gets a reply, not the evidence fallback's "I do not know".
            answer = session.ask(line, _recent(history, history_chars), fallback=line.endswith("?"))
            console.print()
        except KeyboardInterrupt:
            console.print("\n[dim](cancelled)[/dim]")
            continue
        if answer.facts_used:
            err.print("[dim]  facts: " + ", ".join(str(i) for i in answer.facts_used) + "[/dim]")
        if answer.citations:
            cites = ", ".join(c.cite for c in answer.citations)
            err.print(f"  notes: {cites}", style="dim", markup=False, highlight=False)
        history.append((line, answer.text))


def _noted(results: list[WriteResult]) -> str:
    """The acknowledgement of a statement: each fact stored, with its id for /forget, and
    each one the user had deleted or corrected before, which stays so."""
    stored = [f"{r.fact.label} ({r.fact.id})" for r in results if r.action != "overruled"]
    kept = [f"{r.fact.label} ({r.fact.id})" for r in results if r.action == "overruled"]
    parts = (["Noted: " + "; ".join(stored)] if stored else []) + (
        ["not stored, as you corrected it before: " + "; ".join(kept)] if kept else []
    )
    return ". ".join(parts) + "."


def _recent(history: list[tuple[str, str]], budget: int) -> list[tuple[str, str]]:
    """The latest turns that fit in ``budget`` characters, oldest first."""
    kept: list[tuple[str, str]] = []
    for turn in reversed(history):
        budget -= len(turn[0]) + len(turn[1])
        if budget < 0:
            break
        kept.insert(0, turn)
    return kept


def _slash(line: str, session: Session) -> str | None:
    """Run a slash command; returns "quit" to leave."""
    from memllm_cli.errors import MemllmError
    from memllm_cli.store.models import FactFilter

    command, _, arg = line.partition(" ")
    arg = arg.strip()
    store = session.store
    try:
        if command in ("/quit", "/exit"):
            return "quit"
        if command == "/help":
            emit(CHAT_HELP)
        elif command == "/facts":
            count = int(arg) if arg else 10
            facts = list(store.facts(FactFilter(limit=count, newest_first=True)))[::-1]
            for fact in facts:
                emit(f"  {fact.id}: {fact.label}")
            if not facts:
                emit("  (no facts yet)")
        elif command == "/undo":
            result = store.undo()
            emit(f"  {result.description}: {result.undone_ops} change(s) reverted")
        elif command == "/forget":
            with store.batch("rm", f"chat /forget {arg}"):
                fact = store.remove_fact(int(arg))
            emit(f"  forgot fact {fact.id}: {fact.label}")
        elif command == "/memory":
            if arg not in ("on", "off"):
                emit("  usage: /memory on|off")
            else:
                session.memory = arg == "on"
                emit(f"  memory {arg}")
        else:
            emit(f"  unknown command {command}; /help lists them")
    except ValueError:
        emit(f"  {command} needs a number")
    except MemllmError as exc:
        emit(f"  error: {exc}")
    return None
