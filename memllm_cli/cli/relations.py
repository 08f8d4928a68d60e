"""``memllm relations ...``: the relation vocabulary, each relation's cardinality and aliases."""

from __future__ import annotations

from typing import Annotated

import typer

from memllm_cli.cli.common import open_store
from memllm_cli.cli.complete import relation_labels
from memllm_cli.cli.output import JsonFlag, listing, render, table_format

app = typer.Typer(
    help="List relations; add your own, change their cardinality, give them aliases.",
    no_args_is_help=True,
)
COLUMNS = [
    ("id", "id"),
    ("label", "label"),
    ("pid", "P-id"),
    ("cardinality", "cardinality"),
    ("facts", "facts"),
    ("aliases", "aliases"),
]


@app.command("list")
@listing
def list_(ctx: typer.Context, *, fmt: str) -> None:
    """List relations with their Wikidata P-id, cardinality, current facts and aliases.

    Example: memllm relations list --csv
    """
    render((relation.to_dict() for relation in open_store(ctx).relations()), fmt, COLUMNS)


@app.command("set")
def set_(
    ctx: typer.Context,
    label: Annotated[
        str, typer.Argument(help="The relation (created if new).", autocompletion=relation_labels)
    ],
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
    render([relation.to_dict()], "jsonl" if json_ else table_format(), COLUMNS)


@app.command("alias")
def alias(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(help="Another wording, e.g. 'lives in'.")],
    label: Annotated[
        str,
        typer.Argument(
            help="The relation it means (label, P-id or alias).", autocompletion=relation_labels
        ),
    ],
    remove: Annotated[
        bool, typer.Option("--remove", help="Stop ALIAS meaning a relation (LABEL is checked).")
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Make ALIAS mean the relation LABEL: reads and writes that say ALIAS use LABEL.

    Like 'relations set', this is not in the operation log; --remove takes it back.

    Example: memllm relations alias "lives with" spouse
    """
    store = open_store(ctx)
    if remove:
        relation = store.remove_relation_alias(alias, label)
    else:
        relation = store.add_relation_alias(alias, label)
    render([relation.to_dict()], "jsonl" if json_ else table_format(), COLUMNS)
