"""``memllm doctor``: check the memory, optionally repair it."""

from __future__ import annotations

from typing import Annotated

import typer

from memllm_cli.cli.common import embedder, open_store
from memllm_cli.cli.output import listing, message, render


@listing
def doctor(
    ctx: typer.Context,
    fix: Annotated[bool, typer.Option("--fix", help="Remove orphan entities.")] = False,
    reembed: Annotated[
        bool, typer.Option("--reembed", help="Rebuild every vector with the current embedder.")
    ] = False,
    *,
    fmt: str,
) -> None:
    """Check the memory: integrity, duplicates, orphans, embedding model, conflicts.

    Exits 1 when a check finds an error, so it fits in scripts.

    Example: memllm doctor

    Example: memllm doctor --fix --reembed
    """
    from memllm_cli.cli.progress import index_pending
    from memllm_cli.store import doctor as checks

    store = open_store(ctx)
    model = embedder()
    if fix:
        message(f"removed {checks.fix(store)} orphan entities")
    if reembed:
        store.reembed(model)
        message(f"re-embedded {index_pending(store, model)} names and labels with {model.model_id}")
    findings = checks.check(store, model.model_id)
    columns = [("check", "check"), ("level", "level"), ("count", "count"), ("detail", "detail")]
    render((f.to_dict() for f in findings), fmt, columns)
    if fmt in ("table", "tsv"):
        for finding in findings:
            for example in finding.examples:
                message(f"  {finding.check}: {example}")
    if any(f.level == "error" for f in findings):
        raise typer.Exit(1)
