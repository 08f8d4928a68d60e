"""``memllm ingest`` and ``memllm apply``: documents into memory, with a look first if you like."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from memllm_cli.cli.common import open_input, open_store
from memllm_cli.cli.options import (
    GpuLayers,
    MaxTokens,
    Me,
    ModelName,
    ModelPath,
    ModelUrl,
    Threads,
    open_session,
)
from memllm_cli.cli.output import JsonFlag, message, render, report_import
from memllm_cli.cli.progress import DocumentProgress
from memllm_cli.llamacpp import audible_stderr

if TYPE_CHECKING:
    from memllm_cli.ingest.pipeline import DocumentReport
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
    model_path: ModelPath = None,
    model_url: ModelUrl = None,
    model_name: ModelName = None,
    me: Me = "me",
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

    Example: memllm ingest notes.md

    Example: memllm ingest ~/notes --include "*.md" --exclude "drafts/*"

    Example: memllm ingest notes.md --dry-run > proposed.jsonl
    """
    from memllm_cli.ingest.pipeline import (
        DEFAULT_INCLUDE,
        DocumentReport,
        Ingestor,
        discover,
        remove_spools,
    )

    store = open_store(ctx)
    found = list(discover(paths, include or DEFAULT_INCLUDE, exclude or ()))
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
    stop = _StopAfterSentence()
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
                show(None)
    finally:
        stop.restore()
        remove_spools(found)
    # The rate counts reading, not loading the model (when a first sentence needed it).
    elapsed = time.perf_counter() - started - sum(load_seconds)
    if json_:
        render(
            [{"documents": [r.to_dict() for r in reports], "seconds": round(elapsed, 3)}],
            "jsonl",
            [],
        )
    _summary(reports, elapsed, interrupted=stop.requested)
    if stop.requested:
        raise typer.Exit(130)
    if any(r.status == "skipped" for r in reports):
        raise typer.Exit(1)


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


def _summary(reports: list[DocumentReport], seconds: float, *, interrupted: bool) -> None:
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
        + f"; {skipped} document(s) skipped; "
        f"{rate:.1f} sentences/s"
        + (f"; {total['dictated']} copied write(s) dropped" if total["dictated"] else "")
        + ("; interrupted" if interrupted else "")
    )


class _StopAfterSentence:
    """First Ctrl-C: stop after the current sentence; the document being read is not stored.

    Second: stop at once (``KeyboardInterrupt``; a transaction under way rolls back).
    The first one's message passes even while llama.cpp has stderr silenced.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        with audible_stderr():
            message(
                "stopping after this sentence; the document being read is not stored "
                "(Ctrl-C again to stop at once)"
            )

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
