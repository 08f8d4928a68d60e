"""Relations: their labels, Wikidata P-ids, cardinalities and aliases.

Facts point at relations by id; everything that turns a label into that id (exactly,
after normalisation, by P-id, by alias such as "lives in" for residence, or by
keyword) lives here. This module owns the ``relations`` and ``relation_aliases``
tables and their keyword index.
"""

from __future__ import annotations

import json
import re

from memllm_cli.errors import InvalidInputError, NotFoundError
from memllm_cli.store import db
from memllm_cli.store.models import Relation
from memllm_cli.store.oplog import OpLog
from memllm_cli.store.seeds import seed_relation_aliases, seed_relations
from memllm_cli.store.text import clean, norm, now

PID = re.compile(r"^P\d+$")


class Relations:
    """Relations, their labels, Wikidata P-ids, cardinalities and aliases."""

    def __init__(self, conn: db.Connection, oplog: OpLog) -> None:
        self._conn = conn
        self._oplog = oplog

    def relation_ids(self, label: str) -> list[int]:
        """The relation with this label (after normalisation), Wikidata P-id or alias.

        A label wins over an alias; the two cannot coincide (see :meth:`add_relation_alias`).
        """
        label = label.strip()
        if PID.match(label):
            rows = self._conn.execute("SELECT id FROM relations WHERE pid = ?", (label,))
            return [row[0] for row in rows]
        key = norm(label)
        rows = self._conn.execute("SELECT id FROM relations WHERE norm = ?", (key,)).fetchall()
        if not rows:
            rows = self._conn.execute(
                "SELECT relation_id FROM relation_aliases WHERE norm = ?", (key,)
            ).fetchall()
        return [row[0] for row in rows]

    def relation(self, label: str) -> tuple[int, str]:
        """(id, cardinality) of the relation ``label``, created (many-valued) if none is."""
        label = clean(label, "relation")
        found = self.relation_ids(label)
        if found:
            row = self._conn.execute(
                "SELECT id, cardinality FROM relations WHERE id = ?", (found[0],)
            ).fetchone()
            return row[0], row[1]
        relation_id = self._conn.execute(
            "INSERT INTO relations (label, norm, created_at) VALUES (?, ?, ?)",
            (label, norm(label), now()),
        ).lastrowid
        return relation_id, "many"

    def label(self, relation_id: int) -> str:
        """The label of relation ``relation_id``."""
        row = self._conn.execute("SELECT label FROM relations WHERE id = ?", (relation_id,))
        return row.fetchone()[0]

    def labels_starting(self, prefix: str, limit: int) -> list[str]:
        """Labels that start with ``prefix`` (case and spacing folded), for shell completion."""
        key = norm(prefix)
        rows = self._conn.execute(
            "SELECT label FROM relations WHERE norm >= ? AND norm < ? ORDER BY norm LIMIT ?",
            (key, key + "\U0010ffff", limit),
        )
        return [row[0] for row in rows]

    def relations(self) -> list[Relation]:
        """Every relation by label, with its number of current facts and its aliases."""
        rows = self._conn.execute(
            "SELECT r.id, r.label, r.pid, r.cardinality, "
            "(SELECT count(*) FROM facts f WHERE f.relation_id = r.id AND f.status = 'current') "
            "FROM relations r ORDER BY r.label"
        ).fetchall()
        aliases = self.relation_aliases()
        return [Relation(*row, aliases=aliases.get(row[0], [])) for row in rows]

    def set_relation(
        self, label: str, *, cardinality: str | None = None, pid: str | None = None
    ) -> Relation:
        """Create the relation ``label`` or change its cardinality or P-id."""
        with self._oplog.batch("relation", f"relation {label}"):
            relation_id = self._set(label, cardinality, pid)
        return next(r for r in self.relations() if r.id == relation_id)

    def _set(self, label: str, cardinality: str | None, pid: str | None) -> int:
        """Create the relation or change its settings, in the current batch; return its id."""
        if cardinality not in (None, "one", "many"):
            raise InvalidInputError(f"cardinality is 'one' or 'many', not {cardinality!r}")
        if pid is not None and not (isinstance(pid, str) and PID.match(pid)):
            raise InvalidInputError(f"a Wikidata property id looks like P551, not {pid!r}")
        relation_id, _ = self.relation(label)
        if cardinality is not None:
            self._conn.execute(
                "UPDATE relations SET cardinality = ? WHERE id = ?", (cardinality, relation_id)
            )
        if pid is not None:
            try:
                self._conn.execute("UPDATE relations SET pid = ? WHERE id = ?", (pid, relation_id))
            except db.IntegrityError:
                raise InvalidInputError(f"{pid} already belongs to another relation") from None
        return relation_id

    def customised(self) -> list[Relation]:
        """Relations as a new memory would not have them: made, re-set or aliased by the user.

        What ``facts export`` writes so that a restore loses nothing; ``aliases`` holds
        the user's aliases only (a new memory has the seeded ones).
        """
        seeded = {
            norm(r["label"]): (r["pid"], r["cardinality"])
            for r in [*seed_relations(), *seed_relation_aliases()["relations"]]
        }
        user: dict[int, list[str]] = {}
        for relation_id, alias in self._conn.execute(
            "SELECT relation_id, alias FROM relation_aliases WHERE origin = 'user' ORDER BY id"
        ):
            user.setdefault(relation_id, []).append(alias)
        rows = self._conn.execute(
            "SELECT id, label, pid, cardinality, norm FROM relations ORDER BY norm, id"
        ).fetchall()
        return [
            Relation(relation_id, label, pid, cardinality, aliases=user.get(relation_id, []))
            for relation_id, label, pid, cardinality, key in rows
            if relation_id in user or seeded.get(key, (None, "many")) != (pid, cardinality)
        ]

    def restore(self, label: str, cardinality: str, pid: str | None, aliases: list[str]) -> None:
        """Give the relation ``label`` these settings and aliases, in the current batch (import)."""
        relation_id = self._set(label, cardinality, pid)
        for alias in aliases:
            self._alias(clean(alias, "alias"), relation_id)

    def relation_aliases(self, relation_ids: list[int] | None = None) -> dict[int, list[str]]:
        """Relation id -> its aliases in the order they were added (of ``relation_ids`` only)."""
        sql = "SELECT relation_id, alias FROM relation_aliases"
        params: tuple[str, ...] = ()
        if relation_ids is not None:
            sql += " WHERE relation_id IN (SELECT value FROM json_each(?))"
            params = (json.dumps(relation_ids),)
        found: dict[int, list[str]] = {}
        for relation_id, alias in self._conn.execute(sql + " ORDER BY id", params):
            found.setdefault(relation_id, []).append(alias)
        return found

    def relation_wordings(self, relation_ids: list[int]) -> dict[int, list[str]]:
        """Relation id -> its label, then its aliases: every wording that means it."""
        rows = self._conn.execute(
            "SELECT id, label FROM relations WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(relation_ids),),
        ).fetchall()
        aliases = self.relation_aliases(relation_ids)
        return {r: [label, *aliases.get(r, [])] for r, label in rows}

    def add_relation_alias(self, alias: str, label: str) -> Relation:
        """Make ``alias`` another wording of the relation ``label`` (a label, P-id or alias).

        An alias cannot be a relation's label, nor another relation's alias.
        """
        alias = clean(alias, "alias")
        targets = self.relation_ids(label)
        if not targets:
            raise NotFoundError(f"no relation {label!r} (see 'memllm relations list')")
        with self._oplog.batch("relation", f"relation alias {alias}"):
            self._alias(alias, targets[0])
        return next(r for r in self.relations() if r.id == targets[0])

    def _alias(self, alias: str, relation_id: int) -> None:
        """Add the user's ``alias`` of the relation, in the current batch, unless it is one."""
        taken = self._conn.execute(
            "SELECT label FROM relations WHERE norm = ?", (norm(alias),)
        ).fetchone()
        if taken is not None:
            raise InvalidInputError(f"{alias!r} is the label of the relation {taken[0]!r}")
        owner = self._conn.execute(
            "SELECT relation_id FROM relation_aliases WHERE norm = ?", (norm(alias),)
        ).fetchone()
        if owner is not None and owner[0] != relation_id:
            raise InvalidInputError(f"{alias!r} is already an alias of another relation")
        if owner is None:
            self._conn.execute(
                "INSERT INTO relation_aliases (relation_id, alias, norm, origin, created_at) "
                "VALUES (?, ?, ?, 'user', ?)",
                (relation_id, alias, norm(alias), now()),
            )

    def remove_relation_alias(self, alias: str, label: str) -> Relation:
        """Stop ``alias`` meaning the relation ``label``; return that relation."""
        owner = self._conn.execute(
            "SELECT relation_id FROM relation_aliases WHERE norm = ?", (norm(alias),)
        ).fetchone()
        if owner is None:
            raise NotFoundError(f"{alias!r} is not a relation alias")
        if owner[0] not in self.relation_ids(label):
            raise InvalidInputError(f"{alias!r} is not an alias of {label!r}")
        with self._oplog.batch("relation", f"relation alias --remove {alias}"):
            self._conn.execute("DELETE FROM relation_aliases WHERE norm = ?", (norm(alias),))
        return next(r for r in self.relations() if r.id == owner[0])

    def one_valued_conflicts(self) -> list[tuple[str, str, int]]:
        """(subject, relation, count) where a one-valued relation has several current objects."""
        return self._conn.execute(
            "SELECT s.name, r.label, count(*) FROM facts f "
            "JOIN relations r ON r.id = f.relation_id "
            "JOIN entities s ON s.id = f.subject_id WHERE f.status = 'current' "
            "AND r.cardinality = 'one' GROUP BY f.subject_id, f.relation_id HAVING count(*) > 1"
        ).fetchall()

    def keyword_relations(self, match: str) -> list[int]:
        """The 25 relations whose labels best match the FTS5 query ``match``, best first."""
        rows = self._conn.execute(
            "SELECT rowid FROM relations_fts WHERE relations_fts MATCH ? "
            "ORDER BY bm25(relations_fts) LIMIT 25",
            (match,),
        ).fetchall()
        return [row[0] for row in rows]
