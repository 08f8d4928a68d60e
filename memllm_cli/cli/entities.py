"""``memllm facts alias`` and ``memllm facts merge``: one entity per real thing."""

from __future__ import annotations

from typing import Annotated

import typer

from memllm_cli.cli.common import open_store
from memllm_cli.cli.output import JsonFlag, message, render


def alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name or alias of the entity.")],
    new_alias: Annotated[str, typer.Argument(metavar="ALIAS", help="Another name for it.")],
    json_: JsonFlag = False,
) -> None:
    """Give an entity another name: facts written with it land on that entity.

    Refused when ALIAS already names another entity: merge the two instead.

    Example: memllm facts alias "Tove Lindahl" Tove
    """
    store = open_store(ctx)
    with store.batch("alias", f"facts alias {name} {new_alias}"):
        result = store.add_alias(name, new_alias)
    if result.added:
        message(f"{result.alias!r} is now an alias of {result.entity}")
    else:
        message(f"{result.alias!r} already names {result.entity}")
    if json_:
        render([result.to_dict()], "jsonl", [])


def merge(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The entity that stays.")],
    other: Annotated[str, typer.Argument(help="The entity merged into it.")],
    json_: JsonFlag = False,
) -> None:
    """Merge OTHER into NAME: its facts move to NAME, its names become aliases.

    A fact both had becomes one, with the evidence of both. Where NAME then has
    two current objects for a one-valued relation (two residences), the newer
    stays current and supersedes the older, as a write would; a manual fact is
    never superseded by an automatic one. One undo reverts the whole merge.

    Example: memllm facts merge "Sofia Marchetti" Sofia
    """
    store = open_store(ctx)
    with store.batch("merge", f"facts merge {name} {other}"):
        result = store.merge(name, other)
    message(
        f"merged {result.merged} into {result.entity}: {len(result.moved)} fact(s) moved, "
        f"{len(result.collapsed)} duplicate(s) collapsed, {len(result.superseded)} superseded"
    )
    for old in result.superseded:
        message(f"superseded fact {old.id}: {old.label}")
    for conflict in result.conflicts:
        message(f"warning: {conflict} has several current manual facts; keep one (facts rm)")
    if json_:
        render([result.to_dict()], "jsonl", [])
