"""``memllm doctor``: check the memory, optionally repair it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from memllm_cli.cli.common import embedder, open_store
from memllm_cli.cli.output import listing, message, render

if TYPE_CHECKING:
    from memllm_cli.store.doctor import Finding


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
    """Check the memory: integrity, duplicates, orphans, embedding model, conflicts; and the
    default model: which base, adapter and memory protocol, and that they match.

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
    findings = [*checks.check(store, model.model_id), _model_finding()]
    columns = [("check", "check"), ("level", "level"), ("count", "count"), ("detail", "detail")]
    render((f.to_dict() for f in findings), fmt, columns)
    if fmt in ("table", "tsv"):
        for finding in findings:
            for example in finding.examples:
                message(f"  {finding.check}: {example}")
    if any(f.level == "error" for f in findings):
        raise typer.Exit(1)


def _model_finding() -> Finding:
    """The default model and its adapter as a finding: an adapter that is missing or does not
    match its base is an error; no default model installed, only a warning (the memory
    commands need none)."""
    from memllm_cli.runtime.models import describe_default
    from memllm_cli.store.doctor import Finding

    info = describe_default(verify=True)
    if info.name is None:
        return Finding("model", "warning", 1, info.problem or "no default model")
    if info.problem:
        return Finding("model", "error", 1, info.problem)
    detail = f"{info.name} + {info.adapter} (memory protocol {info.protocol_version})"
    return Finding("model", "ok", 0, detail)
