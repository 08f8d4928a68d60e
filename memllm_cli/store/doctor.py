"""``memllm doctor``: check a memory's health and repair what is safe to repair.

The checks ask the facade (the file as a whole) and the components (what each
owns); this module only judges the answers.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from memllm_cli.store import db
from memllm_cli.store.store import Store


@dataclass(frozen=True)
class Finding:
    """One check's outcome. ``level`` is ok, info, warning or error; errors fail the run."""

    check: str
    level: str
    count: int
    detail: str
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _loose(name: str) -> str:
    """A key under which spelling variants collide: no case, accents, punctuation or spaces."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def _warning_if(check: str, count: int, detail: str, examples: list[str] | None = None) -> Finding:
    """A check whose findings are warnings: ok when it counted none."""
    return Finding(check, "warning" if count else "ok", count, detail, examples or [])


def check(store: Store, embedder_id: str | None = None) -> list[Finding]:
    """Run every check. ``embedder_id`` is the configured model, compared without loading it.

    A damaged file can fail a check's own query: that check is then an error finding
    saying so, and the other checks still run (doctor is what a user reaches for then).
    """
    checks: list[tuple[str, Callable[[], Finding]]] = [
        ("integrity", lambda: _integrity(store)),
        ("foreign keys", lambda: _foreign_keys(store)),
        ("embedding model", lambda: _embedding_model(store, embedder_id)),
        ("orphan entities", lambda: _orphans(store)),
        ("facts without evidence", lambda: _unsourced(store)),
        ("duplicate entities", lambda: _duplicates(store)),
        ("one-valued conflicts", lambda: _conflicts(store)),
        ("pending vectors", lambda: _pending(store)),
    ]
    findings = []
    for name, run in checks:
        try:
            findings.append(run())
        except db.DatabaseError as exc:
            findings.append(Finding(name, "error", 1, f"could not check: {db.describe(exc)}"))
    return findings


def _integrity(store: Store) -> Finding:
    problems = store.integrity_check()
    ok = problems == ["ok"]
    # SQLite may pack many problems into one row, a line each.
    problems = [line for row in problems for line in row.splitlines() if line.strip()]
    return Finding(
        "integrity",
        "ok" if ok else "error",
        0 if ok else len(problems),
        "SQLite integrity check" + ("" if ok else " (restore from a facts export)"),
        [] if ok else problems[:5],
    )


def _foreign_keys(store: Store) -> Finding:
    broken = store.foreign_key_check()
    return Finding(
        "foreign keys",
        "error" if broken else "ok",
        len(broken),
        "rows that point at missing rows",
        [str(tuple(r)) for r in broken[:5]],
    )


def _embedding_model(store: Store, embedder_id: str | None) -> Finding:
    model = store.vectors.meta("embedding_model")
    if model is None:
        return Finding("embedding model", "info", 0, "no vectors yet")
    if embedder_id is not None and model != embedder_id:
        return Finding(
            "embedding model",
            "error",
            1,
            f"vectors come from {model}, memllm uses {embedder_id}: run doctor --reembed",
        )
    return Finding("embedding model", "ok", 0, model)


def _orphans(store: Store) -> Finding:
    orphans = store.names.orphans()
    return _warning_if(
        "orphan entities",
        len(orphans),
        "entities no fact mentions and no alias names (doctor --fix removes them)",
        [f"{r[0]}: {r[1]}" for r in orphans[:5]],
    )


def _unsourced(store: Store) -> Finding:
    unsourced = store.documents.count_unsourced()
    return _warning_if("facts without evidence", unsourced, "facts with no provenance row")


def _duplicates(store: Store) -> Finding:
    groups: dict[str, list[str]] = defaultdict(list)
    for name in store.names.all_names():
        groups[_loose(name)].append(name)
    dupes = [names for key, names in groups.items() if key and len(names) > 1]
    return _warning_if(
        "duplicate entities",
        len(dupes),
        "names that differ only in case, accents or punctuation (add an alias, or edit)",
        [" | ".join(names) for names in dupes[:5]],
    )


def _conflicts(store: Store) -> Finding:
    conflicts = store.relation_table.one_valued_conflicts()
    return _warning_if(
        "one-valued conflicts",
        len(conflicts),
        "one-valued relations with several current objects",
        [f"{r[0]} >> {r[1]}: {r[2]}" for r in conflicts[:5]],
    )


def _pending(store: Store) -> Finding:
    pending = store.vectors.pending()
    return Finding(
        "pending vectors",
        "info" if pending else "ok",
        pending,
        "names not embedded yet (the next fuzzy read or search embeds them)",
    )


def fix(store: Store) -> int:
    """Remove orphan entities; return how many. Safe: nothing refers to them."""
    with store.batch("doctor", "doctor --fix"):
        orphans = store.names.orphans()
        for entity_id, _ in orphans:
            store.names.delete_entity(entity_id)
    return len(orphans)
