"""The relations a new memory starts with, and their aliases: read from the package's JSON.

Migrations 1 and 4 seed them; the relation registry and the dataset readers read the
same lists (one copy, in ``relations.json`` and ``relation_aliases.json``).
"""

from __future__ import annotations

import json

from memllm_cli.store.db import Connection


def seed_relations() -> list[dict[str, str]]:
    """The 96 DocRED relations: pid, label, cardinality (scripts/gen_relation_seed.py)."""
    from importlib import resources  # only when a new memory is seeded: not at every start

    relations = resources.files("memllm_cli.store").joinpath("relations.json")
    return json.loads(relations.read_text(encoding="utf-8"))


def add_seed_relations(conn: Connection) -> None:
    """Seed the relations table, with this project's cardinalities."""
    from memllm_cli.store.text import norm, now

    rows = seed_relations()
    created = now()
    conn.executemany(
        "INSERT INTO relations (label, norm, pid, cardinality, created_at) VALUES (?, ?, ?, ?, ?)",
        [(r["label"], norm(r["label"]), r["pid"], r["cardinality"], created) for r in rows],
    )


def seed_relation_aliases() -> dict[str, list[dict[str, object]]]:
    """Migration 4's seed: relations to add, and aliases by P-id (relation_aliases.json)."""
    from importlib import resources

    aliases = resources.files("memllm_cli.store").joinpath("relation_aliases.json")
    text = aliases.read_text(encoding="utf-8")
    return json.loads(text)


def add_seed_relation_aliases(conn: Connection) -> None:
    """Add the personal relations the seed names, then each alias not already a wording.

    A memory made before this migration may hold a relation labelled like an alias
    ("lives in", written by a model): its label keeps winning, and the alias is skipped.
    """
    from memllm_cli.store.text import norm, now

    seed, created = seed_relation_aliases(), now()
    for row in seed["relations"]:
        found = conn.execute(
            "SELECT id, pid FROM relations WHERE norm = ?", (norm(row["label"]),)
        ).fetchone()
        pid_taken = conn.execute("SELECT 1 FROM relations WHERE pid = ?", (row["pid"],)).fetchone()
        if found is None:
            conn.execute(
                "INSERT INTO relations (label, norm, pid, cardinality, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    row["label"],
                    norm(row["label"]),
                    None if pid_taken else row["pid"],
                    row["cardinality"],
                    created,
                ),
            )
        elif found[1] is None and pid_taken is None:
            conn.execute("UPDATE relations SET pid = ? WHERE id = ?", (row["pid"], found[0]))
    for row in seed["aliases"]:
        target = conn.execute("SELECT id FROM relations WHERE pid = ?", (row["pid"],)).fetchone()
        if target is None:
            continue
        for alias in row["aliases"]:
            conn.execute(
                "INSERT INTO relation_aliases (relation_id, alias, norm, origin, created_at) "
                "SELECT :relation, :alias, :norm, 'seed', :created WHERE NOT EXISTS "
                "(SELECT 1 FROM relations WHERE norm = :norm) AND NOT EXISTS "
                "(SELECT 1 FROM relation_aliases WHERE norm = :norm)",
                {"relation": target[0], "alias": alias, "norm": norm(alias), "created": created},
            )
