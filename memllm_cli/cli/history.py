"""``memllm history`` and ``memllm undo``: the operation log and its reversal."""

from __future__ import annotations

from typing import Annotated

import typer

from memllm_cli.cli.common import MAX_INT, open_store
from memllm_cli.cli.complete import fact_ids
from memllm_cli.cli.output import JsonFlag, listing, message, render

COLUMNS = [
    ("id", "op"),
    ("batch_id", "batch"),
    ("op", "action"),
    ("fact_id", "fact"),
    ("fact", "subject >> relation >> object"),
    ("created_at", "when"),
    ("undone_by", "undone by"),
]


@listing
def history(
    ctx: typer.Context,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=0, max=MAX_INT, help="At most this many ops (0: all)."),
    ] = 50,
    batch: Annotated[
        int | None, typer.Option("--batch", "-b", min=1, max=MAX_INT, help="Only this batch.")
    ] = None,
    fact: Annotated[
        int | None,
        typer.Option(
            "--fact", min=1, max=MAX_INT, help="Only ops on this fact.", autocompletion=fact_ids
        ),
    ] = None,
    *,
    fmt: str,
) -> None:
    """Show the operation log, newest first: every add, edit, supersede, delete and undo.

    Example: memllm history -n 20

    Example: memllm history --batch 7 --jsonl
    """
    ops = open_store(ctx).history(limit=limit or None, batch_id=batch, fact_id=fact)
    render((op.to_dict() for op in ops), fmt, COLUMNS, empty="no operations yet")


def undo(
    ctx: typer.Context,
    op: Annotated[
        int | None, typer.Argument(metavar="[OP]", min=1, max=MAX_INT, help="Undo this one op.")
    ] = None,
    batch: Annotated[
        int | None, typer.Option("--batch", "-b", min=1, max=MAX_INT, help="Undo this whole batch.")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Undo the last command (a whole batch), a given batch, or a single op.

    Undo refuses when a later change to the same facts would be lost: undo that first.

    Example: memllm undo

    Example: memllm undo --batch 7
    """
    if op is not None and batch is not None:
        raise typer.BadParameter("give an OP or --batch, not both")
    result = open_store(ctx).undo(op_id=op, batch_id=batch)
    message(
        f"{result.description}: {result.undone_ops} change(s) reverted (batch {result.batch_id})"
    )
    if json_:
        render(
            [
                {
                    "batch_id": result.batch_id,
                    "undone_ops": result.undone_ops,
                    "description": result.description,
                }
            ],
            "jsonl",
            [],
        )
