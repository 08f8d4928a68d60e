"""``memllm relations ...``: the relation vocabulary and each relation's cardinality."""

from __future__ import annotations

from typing import Annotated

import typer

from memllm_cli.cli.common import open_store
from memllm_cli.cli.output import JsonFlag, listing, render

app = typer.Typer(
    help="List relations; add your own or change their cardinality.", no_args_is_help=True
)
COLUMNS = [
    ("id", "id"),
    ("label", "label"),
    ("pid", "P-id"),
    ("cardinality", "cardinality"),
    ("facts", "facts"),
]


@app.command("list")
@listing
def list_(ctx: typer.Context, *, fmt: str) -> None:
    """List relations with their Wikidata P-id, cardinality and number of current facts.

    Example: memllm relations list --csv
    """
    render((r.to_dict() for r in open_store(ctx).relations()), fmt, COLUMNS)


@app.command("set")
def set_(
    ctx: typer.Context,
    label: Annotated[str, typer.Argument(help="The relation (created if new).")],
    cardinality: Annotated[
        str | None, typer.Option(help="one: a new object supersedes the old; many: they add up.")
    ] = None,
    pid: Annotated[
        str | None, typer.Option("--pid", help="Wikidata property id, e.g. P551.")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Add a relation, or set its cardinality or Wikidata id.

    Example: memllm relations set "favourite food" --cardinality one
    """
    relation = open_store(ctx).set_relation(label, cardinality=cardinality, pid=pid)
    render([relation.to_dict()], "jsonl" if json_ else "table", COLUMNS)
