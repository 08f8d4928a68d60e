"""Names: entities with their names and aliases, and relations with their labels.

Facts point at entities and relations by id; everything that turns a name or a
label into those ids (exactly, after normalisation, or by keyword) lives here, so
``Ingrid``, ``ingrid`` and an alias of hers find the same entity everywhere. This
module owns the ``entities``, ``names`` and ``relations`` tables and their
keyword indexes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from memllm_cli.errors import InvalidInputError, NotFoundError
from memllm_cli.store import db
from memllm_cli.store.models import Relation
from memllm_cli.store.oplog import OpLog
from memllm_cli.store.text import clean, norm, now
from memllm_cli.store.vectors import Vectors

PID = re.compile(r"^P\d+$")


class Names:
    """Entities, their names and aliases; relations, their labels and Wikidata P-ids."""

    def __init__(self, conn: db.Connection, oplog: OpLog, vectors: Vectors) -> None:
        self._conn = conn
        self._oplog = oplog
        self._vectors = vectors

    # -- entities -------------------------------------------------------------------------------

    def entity_ids(self, name: str) -> list[int]:
        """Entities with this exact name or alias (after normalisation)."""
        rows = self._conn.execute("SELECT entity_id FROM names WHERE norm = ?", (norm(name),))
        return [row[0] for row in rows]

    def entity(self, name: str, what: str) -> int:
        """The id of the entity called ``name``, created if none is; ``what`` names it in errors."""
        name = clean(name, what)
        found = self._conn.execute("SELECT entity_id FROM names WHERE norm = ?", (norm(name),))
        row = found.fetchone()
        if row is not None:
            return row[0]
        created = now()
        entity_id = self._conn.execute(
            "INSERT INTO entities (name, created_at) VALUES (?, ?)", (name, created)
        ).lastrowid
        self._conn.execute(
            "INSERT INTO names (entity_id, name, norm) VALUES (?, ?, ?)",
            (entity_id, name, norm(name)),
        )
        return entity_id

    def add_alias(self, name: str, alias: str) -> None:
        """Make ``alias`` another name of the entity called ``name``."""
        entity_ids = self.entity_ids(name)
        if not entity_ids:
            raise NotFoundError(f"no entity named {name!r}")
        alias = clean(alias, "alias")
        taken = self.entity_ids(alias)
        if taken:
            if taken == entity_ids:
                return
            raise InvalidInputError(f"{alias!r} already names another entity")
        self._conn.execute(
            "INSERT INTO names (entity_id, name, norm, is_alias) VALUES (?, ?, ?, 1)",
            (entity_ids[0], alias, norm(alias)),
        )

    def first_names(self, limit: int) -> list[str]:
        """Up to ``limit`` names and aliases, oldest first."""
        rows = self._conn.execute("SELECT name FROM names ORDER BY id LIMIT ?", (limit,))
        return [row[0] for row in rows]

    def all_names(self) -> Iterator[str]:
        """Every name and alias, streamed."""
        for (name,) in self._conn.execute("SELECT name FROM names"):
            yield name

    def orphans(self) -> list[tuple[int, str]]:
        """(id, name) of the entities no fact mentions."""
        return self._conn.execute(
            "SELECT e.id, e.name FROM entities e WHERE NOT EXISTS (SELECT 1 FROM facts f "
            "WHERE f.subject_id = e.id OR f.object_id = e.id)"
        ).fetchall()

    def prune(self, entity_ids: set[int]) -> None:
        """Drop those of ``entity_ids`` no fact mentions any more (an undone add leaves none)."""
        for entity_id in entity_ids:
            used = self._conn.execute(
                "SELECT 1 FROM facts WHERE subject_id = ? OR object_id = ? LIMIT 1",
                (entity_id, entity_id),
            ).fetchone()
            if used is None:
                self.delete_entity(entity_id)

    def delete_entity(self, entity_id: int) -> None:
        self._vectors.forget_entity(entity_id)
        self._conn.execute("DELETE FROM names WHERE entity_id = ?", (entity_id,))
        self._conn.execute("DELETE FROM entities WHERE id = ?", (entity_id,))

    def keyword_entities(self, match: str, limit: int) -> list[int]:
        """Entities whose names match the FTS5 query ``match``, best first."""
        rows = self._conn.execute(
            "SELECT DISTINCT n.entity_id FROM names_fts JOIN names n ON n.id = names_fts.rowid "
            "WHERE names_fts MATCH ? ORDER BY bm25(names_fts) LIMIT ?",
            (match, limit),
        ).fetchall()
        return [row[0] for row in rows]

    # -- relations ------------------------------------------------------------------------------

    def relation_ids(self, label: str) -> list[int]:
        """The relation with this label (after normalisation) or Wikidata P-id."""
        label = label.strip()
        column = "pid" if PID.match(label) else "norm"
        key = label if column == "pid" else norm(label)
        rows = self._conn.execute(f"SELECT id FROM relations WHERE {column} = ?", (key,))
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

    def relations(self) -> list[Relation]:
        """Every relation by label, with its number of current facts."""
        rows = self._conn.execute(
            "SELECT r.id, r.label, r.pid, r.cardinality, "
            "(SELECT count(*) FROM facts f WHERE f.relation_id = r.id AND f.status = 'current') "
            "FROM relations r ORDER BY r.label"
        )
        return [Relation(*row) for row in rows]

    def set_relation(
        self, label: str, *, cardinality: str | None = None, pid: str | None = None
    ) -> Relation:
        """Create the relation ``label`` or change its cardinality or P-id."""
        if cardinality not in (None, "one", "many"):
            raise InvalidInputError(f"cardinality is 'one' or 'many', not {cardinality!r}")
        if pid is not None and not PID.match(pid):
            raise InvalidInputError(f"a Wikidata property id looks like P551, not {pid!r}")
        with self._oplog.batch("relation", f"relation {label}"):
            relation_id, _ = self.relation(label)
            if cardinality is not None:
                self._conn.execute(
                    "UPDATE relations SET cardinality = ? WHERE id = ?", (cardinality, relation_id)
                )
            if pid is not None:
                try:
                    self._conn.execute(
                        "UPDATE relations SET pid = ? WHERE id = ?", (pid, relation_id)
                    )
                except db.IntegrityError:
                    raise InvalidInputError(f"{pid} already belongs to another relation") from None
        return next(r for r in self.relations() if r.id == relation_id)

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
