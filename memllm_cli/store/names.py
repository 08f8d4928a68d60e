"""Names: entities with their names and aliases, and relations with their labels and aliases.

Facts point at entities and relations by id; everything that turns a name or a
label into those ids (exactly, after normalisation, or by keyword) lives here, so
``Ingrid``, ``ingrid`` and an alias of hers find the same entity everywhere, and
"lives in" finds residence. This module owns the ``entities``, ``names``,
``relations`` and ``relation_aliases`` tables and their keyword indexes.
"""

from __future__ import annotations

import json
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
        taken = self._conn.execute(
            "SELECT label FROM relations WHERE norm = ?", (norm(alias),)
        ).fetchone()
        if taken is not None:
            raise InvalidInputError(f"{alias!r} is the label of the relation {taken[0]!r}")
        owner = self._conn.execute(
            "SELECT relation_id FROM relation_aliases WHERE norm = ?", (norm(alias),)
        ).fetchone()
        if owner is not None and owner[0] != targets[0]:
            raise InvalidInputError(f"{alias!r} is already an alias of another relation")
        if owner is None:
            with self._oplog.batch("relation", f"relation alias {alias}"):
                self._conn.execute(
                    "INSERT INTO relation_aliases (relation_id, alias, norm, origin, created_at) "
                    "VALUES (?, ?, ?, 'user', ?)",
                    (targets[0], alias, norm(alias), now()),
                )
        return next(r for r in self.relations() if r.id == targets[0])

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

    # -- short names at read time ---------------------------------------------------------------
    # (kept apart from write-time entity resolution: reads only, nothing is linked or stored)

    def short_name_entities(self, name: str, scan: int = 200) -> list[int]:
        """The one entity a short or titled name means, if exactly one: ``[]`` otherwise.

        Titles are dropped first: "Dr. Anjali Rao" means the entity named "Anjali Rao". One
        word left ("Tove", "Dr. Rao") means the entity whose name or alias of two or more
        words starts or ends with it ("Tove Lindahl", "Anjali Rao"), when no other entity's
        does. A word found in more than ``scan`` names is too common to mean one entity.
        """
        words = _name_words(name)
        if len(words) > 1:
            untitled = " ".join(words)
            return self.entity_ids(untitled) if norm(untitled) != norm(name) else []
        if not words or not any(c.isalpha() for c in words[0]):
            return []
        word = words[0]
        rows = self._conn.execute(
            "SELECT n.entity_id, n.name FROM names_fts JOIN names n ON n.id = names_fts.rowid "
            "WHERE names_fts MATCH ? LIMIT ?",
            ('"' + word.replace('"', '""') + '"', scan + 1),
        ).fetchall()
        if len(rows) > scan:
            return []
        found = set()
        for entity_id, full in rows:
            full_words = _name_words(full)
            if len(full_words) >= 2 and word in (full_words[0], full_words[-1]):
                found.add(entity_id)
        return list(found) if len(found) == 1 else []


# Titles and the article: words in a name that do not tell two entities apart.
_TITLE = re.compile(r"(dr|mr|mrs|ms|miss|mx|prof|professor|sir|dame|lord|lady|rev|fr|the)")


def _name_words(name: str) -> list[str]:
    """A name's normalised words, without titles ("Dr. Anjali Rao" -> ["anjali", "rao"])."""
    words = [w.strip(".,;:!?\"'()") for w in norm(name).split()]
    return [w for w in words if w and not _TITLE.fullmatch(w)]
