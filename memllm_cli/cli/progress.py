"""Progress for long work: rich bars on stderr, shown only when stderr is a terminal.

One builder (``progress_bar``) draws them all: embedding names (facts, doctor),
reading documents (ingest) and the evaluation's tasks (eval).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from memllm_cli.cli.output import message

if TYPE_CHECKING:
    from rich.progress import Progress as Bar

    from memllm_cli.embed import Embedder
    from memllm_cli.ingest.pipeline import Progress
    from memllm_cli.store import Store


def progress_bar(*, stats: bool = False, transient: bool = True) -> Bar:
    """What is being done, the bar, done/total (or each task's ``stats`` field), time left.

    It draws nothing when stderr is not a terminal (``bar.disable``); ``transient`` bars
    vanish when they stop.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.fields[stats]}" if stats else MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=not console.is_terminal,
    )


def index_pending(store: Store, embedder: Embedder) -> int:
    """Embed the names written since the last read, with a progress bar when there are many."""
    pending = store.pending_vectors()
    if pending < 200:
        return store.index_pending(embedder)
    with progress_bar() as bar:
        task = bar.add_task("embedding names", total=pending)
        return store.index_pending(
            embedder, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )


class DocumentProgress:
    """The bar while ``ingest`` reads documents: call with the ingestor's progress after each
    sentence, and with None after each document."""

    def __init__(self, documents: int) -> None:
        self.documents = documents
        self.done = 0
        self.started = time.perf_counter()
        self.bar = progress_bar(stats=True)
        self.task = self.bar.add_task("", total=max(documents, 1), stats="")

    def __enter__(self) -> DocumentProgress:
        self.bar.start()
        return self

    def __call__(self, progress: Progress | None) -> None:
        if progress is None:
            self.done += 1
            self.bar.update(self.task, completed=self.done)
            return
        rate = progress.sentences / max(time.perf_counter() - self.started, 1e-9)
        stats = f"{progress.sentences} sentences, {progress.facts} facts, {rate:.1f}/s"
        where = f"{self.done + 1}/{self.documents} {progress.document}"
        done = self.done + progress.fraction
        self.bar.update(self.task, completed=done, stats=stats, description=where)

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


@contextmanager
def task_progress(name: str) -> Iterator[Callable[[str, int, int], None]]:
    """A bar per task, kept when done; off a terminal, one line ``NAME: TASK done (N)`` as
    each task ends. Yields ``update(task, done, total)``."""
    tasks: dict[str, Any] = {}
    with progress_bar(transient=False) as bar:

        def update(task: str, done: int, total: int) -> None:
            if bar.disable:
                if done == total:
                    message(f"{name}: {task} done ({total})")
                return
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        yield update
