"""Shell completion (``memllm --install-completion``): fact ids, relation labels, settings.

Each completer opens the memory the command line names (``--db``, ``--profile``, the
environment, the settings file), runs one small indexed query, and closes it: no
model, no embedder. A memory that does not exist yet is not created, and any failure
completes nothing rather than print an error into the shell's command line.

No ``from __future__ import annotations`` here: typer reads each completer's signature
when it builds the commands, at every start, and annotations already evaluated cost it
nothing to read.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    from memllm_cli.config import Settings
    from memllm_cli.store import Store

LIMIT = 50
T = TypeVar("T")


def fact_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Fact ids that start with what is typed, newest first, each with its fact as help."""
    return _with_store(
        ctx,
        lambda store: [
            (str(fact.id), f"{fact.label} ({fact.status})")
            for fact in store.facts_with_id_prefix(incomplete, LIMIT)
        ],
    )


def relation_labels(ctx: typer.Context, incomplete: str) -> list[str]:
    """Relation labels that start with what is typed."""
    return _with_store(ctx, lambda store: store.relation_labels(incomplete, LIMIT))


def setting_keys(incomplete: str) -> list[tuple[str, str]]:
    from memllm_cli.config_file import KEYS

    return [(name, key.help) for name, key in KEYS.items() if name.startswith(incomplete)]


def profiles(incomplete: str) -> list[str]:
    """The profiles of the settings file."""
    from memllm_cli.config_file import config_path, read

    try:
        names = read(config_path()).profiles
    except Exception:  # a broken file completes nothing
        return []
    return [name for name in sorted(names) if name.startswith(incomplete)]


def _settings(ctx: typer.Context) -> "Settings":
    """The settings as the root options typed so far say (its callback has not run)."""
    from memllm_cli.config import Settings

    return Settings(ctx.find_root().params.get("profile"))


def _with_store(ctx: typer.Context, query: Callable[["Store"], list[T]]) -> list[T]:
    from pathlib import Path

    from memllm_cli.store import Store

    try:
        path = _settings(ctx).db_path(ctx.find_root().params.get("db"))
        if not Path(path).is_file():
            return []
        with Store.open(path) as store:
            return query(store)
    except Exception:  # completion must never break the shell's command line
        return []
