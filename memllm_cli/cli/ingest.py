"""``memllm ingest`` and ``memllm apply``: documents into memory, with a look first if you like."""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from memllm_cli.cli.common import open_input, open_store
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
    Threads,
    Timeout,
    open_session,
    server_options,
)
from memllm_cli.cli.output import JsonFlag, message, render, report_import
from memllm_cli.cli.progress import DocumentProgress
from memllm_cli.llamacpp import audible_stderr

if TYPE_CHECKING:
    from memllm_cli.ingest.discovery import Document, Skipped
    from memllm_cli.ingest.pipeline import DocumentReport, Ingestor
    from memllm_cli.runtime.loop import Session


def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[str], typer.Argument(metavar="PATH...", help="Files or folders; - reads stdin.")
    ],
    include: Annotated[
        list[str] | None,
        typer.Option("--include", "-i", help="Glob for files in folders (repeatable)."),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", "-x", help="Glob to leave out (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print proposed facts as NDJSON; store nothing.")
    ] = False,
    code: Annotated[bool, typer.Option("--code", help="Read code blocks too.")] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="After reading, stay running and read files again as they change, "
            "retract the facts of deleted ones; Ctrl-C stops.",
        ),
    ] = False,
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
    """Read documents sentence by sentence and store the facts they state, with their source.

    Unchanged files are skipped; an edited file is re-read where it changed, and facts
    whose sentences are gone are retracted. Each document is one undoable batch, stored
    once it has been read whole. Ctrl-C stops after the current sentence (the document
    it was reading is not stored); a second Ctrl-C stops at once.

    Notes vaults (Obsidian, Logseq): folders skip hidden files and folders (.obsidian/,
    .trash/, .git/) and what a .memllmignore names (gitignore syntax). Front matter is
    read as data (aliases name the note's entity, tags and dates are kept, a key that
    names a relation states a fact), [[Target|shown]] reads as "shown" and means Target,
    #tags are kept aside, and a daily note (2025-03-14.md) dates its facts.

    Example: memllm ingest notes.md

    Example: memllm ingest ~/vault --json

    Example: memllm ingest ~/notes --include "*.md" --exclude "drafts/*"

    Example: memllm ingest notes.md --dry-run > proposed.jsonl

    With --watch, a saved file is read again (one line each), a deleted one's facts are
    retracted (undo brings them back), and a renamed one keeps its facts; --json then
    prints one JSON line per document.

    Example: memllm ingest ~/notes --watch

    Example: memllm ingest notes.md --model-url http://127.0.0.1:8080 --served-adapter
    """
    from memllm_cli.ingest.discovery import DEFAULT_INCLUDE, Skipped, discover, remove_spools
    from memllm_cli.ingest.pipeline import DocumentReport, Ingestor

    include, exclude = include or DEFAULT_INCLUDE, exclude or ()
    if watch:
        _check_watchable(paths, dry_run)
    server = server_options(
        model_url, api_key, server_kind, served_adapter, timeout, ctx, model_path
    )
    store = open_store(ctx)
    skipped = Skipped()
    found = list(discover(paths, include, exclude, skipped))
    load_seconds: list[float] = []

    def load() -> Session:
        """The model is loaded here, when a first sentence needs it: never for unchanged files."""
        session, seconds = open_session(
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
        load_seconds.append(seconds)
        return session

    ingestor = Ingestor(
        store,
        load,
        dry_run=dry_run,
        code=code,
        on_proposal=lambda record: render([record], "jsonl", []),
    )
    stop = _StopAfterSentence(watching=watch)
    ingestor.stop = lambda: stop.requested
    reports: list[DocumentReport] = []
    started = time.perf_counter()
    try:
        with DocumentProgress(len(found)) as show:
            ingestor.on_progress = show
            for item in found:
                if stop.requested:
                    continue  # a spool file left unread goes in the finally below
                report = item if isinstance(item, DocumentReport) else ingestor.ingest(item)
                reports.append(report)
                _say(report)
                if watch and json_:
                    _json_line(report)
                show(None)
        # The rate counts reading, not loading the model (when a first sentence needed it).
        elapsed = time.perf_counter() - started - sum(load_seconds)
        if json_ and not watch:
            render(
                [
                    {
                        "documents": [r.to_dict() for r in reports],
                        "skipped": skipped.to_dict(),
                        "seconds": round(elapsed, 3),
                    }
                ],
                "jsonl",
                [],
            )
        _summary(reports, elapsed, skipped, interrupted=stop.requested)
        if watch and not stop.requested:
            ingestor.on_progress = None
            if not load_seconds:  # loaded now, the first edit does not wait for the model
                ingestor.session = load()
            documents = [item for item in found if not isinstance(item, DocumentReport)]
            _watch(ingestor, paths, include, exclude, documents, stop, json_=json_)
    finally:
        stop.restore()
        remove_spools(found)
    if stop.requested:
        raise typer.Exit(130)
    if not watch and any(r.status == "skipped" for r in reports):
        raise typer.Exit(1)


def _check_watchable(paths: Sequence[str], dry_run: bool) -> None:
    """--watch reads files and folders that exist, and stores what it reads."""
    if dry_run:
        raise typer.BadParameter("--watch stores what it reads; it cannot be a --dry-run")
    for raw in paths:
        if raw == "-":
            raise typer.BadParameter("--watch reads files and folders, not stdin (-)")
        if not Path(raw).expanduser().exists():
            raise typer.BadParameter(f"--watch needs existing files or folders: no {raw}")


def _watch(
    ingestor: Ingestor,
    paths: Sequence[str],
    include: Sequence[str],
    exclude: Sequence[str],
    documents: list[Document],
    stop: _StopAfterSentence,
    *,
    json_: bool,
) -> None:
    """Read documents again as they change, one line each, until Ctrl-C."""
    from memllm_cli.ingest.discovery import Document, discover
    from memllm_cli.ingest.watch import Watcher, changes

    def scan() -> list[Document]:
        """The walker ingest itself uses: the same documents count."""
        return [d for d in discover(paths, include, exclude) if isinstance(d, Document)]

    seen: list[DocumentReport] = []

    def show(report: DocumentReport) -> None:
        seen.append(report)
        for warning in report.warnings:
            message(f"warning: {warning}")
        message(_line(report))
        if json_:
            _json_line(report)

    roots = [Path(p).expanduser() for p in paths]
    watcher = Watcher(ingestor, roots, scan, show, stop=lambda: stop.requested, documents=documents)
    message(f"watching {', '.join(paths)} for changes (Ctrl-C stops)")
    watcher.run(changes(watcher.roots, stop))
    read = sum(r.status == "ingested" for r in seen)
    removed = sum(r.status == "removed" for r in seen)
    message(f"stopped watching: {read} document(s) read again, {removed} removed")


def _line(report: DocumentReport) -> str:
    """One line for a document the watch handled."""
    if report.status == "ingested":
        text = (
            f"{report.name}: ingested, {report.sentences} sentences ({report.reused} reused), "
            f"{report.facts} facts: {report.added} new, {report.superseded} superseded, "
            f"{report.retracted} retracted"
        )
        if report.overruled:
            text += f", {report.overruled} overruled by your corrections"
        if report.dictated:
            text += f", {report.dictated} copied write(s) dropped"
    elif report.status == "removed":
        text = f"{report.name}: removed, {report.retracted} facts retracted"
    else:
        text = f"{report.name}: {report.status}"
    return text + (f" ({report.message})" if report.message else "")


def _json_line(report: DocumentReport) -> None:
    """One JSON line per document, stamped with the time it was handled (watch mode)."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    render([{**report.to_dict(), "at": at}], "jsonl", [])


def _say(report: DocumentReport) -> None:
    for warning in report.warnings:
        message(f"warning: {warning}")
    if report.status in ("unchanged", "empty", "skipped", "interrupted"):
        message(
            f"{report.name}: {report.status}" + (f" ({report.message})" if report.message else "")
        )
    elif report.message:
        message(f"{report.name}: {report.message}")
    if report.dictated:
        message(
            f"{report.name}: {report.dictated} write(s) copied from memory-call syntax "
            "in the text dropped"
        )


def _summary(
    reports: list[DocumentReport], seconds: float, left_out: Skipped, *, interrupted: bool
) -> None:
    done = [r for r in reports if r.status in ("ingested", "dry-run")]
    keys = (
        "sentences",
        "reused",
        "facts",
        "added",
        "superseded",
        "retracted",
        "overruled",
        "dictated",
        "aliases",
    )
    total = {k: sum(getattr(r, k) for r in done) for k in keys}
    skipped = sum(r.status in ("unchanged", "empty", "skipped") for r in reports)
    rate = total["sentences"] / seconds if seconds else 0.0
    verb = "proposed" if any(r.status == "dry-run" for r in done) else "added"
    message(
        f"{len(done)} document(s), {total['sentences']} sentences "
        f"({total['reused']} reused from the last version), "
        f"{total['facts']} facts {verb}: {total['added']} new, {total['superseded']} superseded, "
        f"{total['retracted']} retracted"
        + (f", {total['overruled']} overruled by your corrections" if total["overruled"] else "")
        + (f"; {total['aliases']} alias(es) from front matter" if total["aliases"] else "")
        + f"; {skipped} document(s) skipped; "
        + (
            f"{left_out.hidden} hidden and {left_out.ignored} .memllmignore'd file(s) "
            "or folder(s) left out; "
            if left_out.hidden or left_out.ignored
            else ""
        )
        + f"{rate:.1f} sentences/s"
        + (f"; {total['dictated']} copied write(s) dropped" if total["dictated"] else "")
        + ("; interrupted" if interrupted else "")
    )


class _StopAfterSentence:
    """First Ctrl-C: stop after the current sentence; the document being read is not stored.

    Second: stop at once (``KeyboardInterrupt``; a transaction under way rolls back).
    The first one's message passes even while llama.cpp has stderr silenced. While
    watching, the first also ends the wait for changes (the watcher asks ``is_set``).
    """

    def __init__(self, *, watching: bool = False) -> None:
        self.requested = False
        self._watching = watching
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        with audible_stderr():
            message(
                "stopping; a document being read is not stored (Ctrl-C again to stop at once)"
                if self._watching
                else "stopping after this sentence; the document being read is not stored "
                "(Ctrl-C again to stop at once)"
            )

    def is_set(self) -> bool:
        return self.requested

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous)


def apply(
    ctx: typer.Context,
    path: Annotated[
        str, typer.Argument(metavar="FILE", help="NDJSON from ingest --dry-run, or -.")
    ],
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Store the good lines and report the bad ones.")
    ] = False,
) -> None:
    """Store facts proposed by 'ingest --dry-run' (after you filtered or edited them).

    The documents they name count as ingested: ingesting them again unchanged does nothing.

    Example: memllm ingest notes.md --dry-run | grep -v Bergen | memllm apply -
    """
    from memllm_cli.store.transfer import import_text

    store = open_store(ctx)
    with open_input(path) as (stream, name):
        report = import_text(
            store, stream, name=name, fmt="jsonl", skip_bad=skip_bad, documents=True
        )
    report_import(report, name)
