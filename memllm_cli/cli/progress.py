"""Progress on stderr for long work; silent when stderr is not a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memllm_cli.embed import Embedder
    from memllm_cli.store import Store


def index_pending(store: Store, embedder: Embedder) -> int:
    """Embed the names written since the last read, with a progress bar when there are many."""
    pending = store.pending_vectors()
    if pending < 200:
        return store.index_pending(embedder)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("embedding names", total=pending)
        return store.index_pending(
            embedder,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
