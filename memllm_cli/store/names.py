"""Names: entities with their names and aliases.

Facts point at entities by id; everything that turns a name into those ids (exactly,
after normalisation, by keyword, or as the short name of one full name) lives here,
so ``Ingrid``, ``ingrid`` and an alias of hers find the same entity everywhere. At
write time a short name ("Ingrid") can resolve to the full name it means, by the
rules of :mod:`~memllm_cli.store.resolution`, which reads use too. This module owns
the ``entities`` and ``names`` tables and their keyword index; relations are in
:mod:`~memllm_cli.store.relations`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any

from memllm_cli.errors import InvalidInputError, NotFoundError, UndoConflictError
from memllm_cli.store import db
from memllm_cli.store.models import AliasResult
from memllm_cli.store.oplog import OpLog
from memllm_cli.store.resolution import (
    NameScope,
    ShortName,
    full_words,
    means,
    read_short_name,
    short_name,
    untitled,
)
from memllm_cli.store.text import article_twin, clean, norm, now
from memllm_cli.store.vectors import Vectors

# The rows of entities and names that ops snapshot and undo restores: (table, columns).
_ROWS = {
    "entity": ("entities", ("name", "created_at")),
    "name": ("names", ("entity_id", "name", "norm", "is_alias")),
}


# An entity no fact mentions and no alias names: nothing refers to it.
_UNUSED = (
    "NOT EXISTS (SELECT 1 FROM facts f WHERE f.subject_id = {entity} OR f.object_id = {entity}) "
    "AND NOT EXISTS (SELECT 1 FROM names a WHERE a.entity_id = {entity} AND a.is_alias = 1)"
)


class Names:
    """Entities, their names and aliases."""

    def __init__(self, conn: db.Connection, oplog: OpLog, vectors: Vectors) -> None:
        self._conn = conn
        self._oplog = oplog
        self._vectors = vectors

    # -- entities -------------------------------------------------------------------------------

    def entity_ids(self, name: str) -> list[int]:
        """Entities with this exact name or alias (after normalisation), or else with its
        :func:`~memllm_cli.store.text.article_twin`: "Sacramento Bee" finds The Sacramento Bee.
        """
        rows = self._conn.execute("SELECT entity_id FROM names WHERE norm = ?", (norm(name),))
        found = [row[0] for row in rows]
        twin = None if found else article_twin(name)
        if twin is None:
            return found
        rows = self._conn.execute("SELECT entity_id, name FROM names WHERE norm = ?", (norm(twin),))
        return [entity_id for entity_id, stored in rows if article_twin(stored) is not None]

    def entity(self, name: str, what: str, scope: NameScope | None = None) -> int:
        """The id of the entity called ``name``, created if none is; ``what`` names it in errors.

        With a ``scope`` (a document being ingested), a short name is resolved first.
        """
        name = clean(name, what)
        if scope is not None:
            return self._resolved_entity(name, scope)
        found = self.entity_ids(name)
        if found:
            return found[0]
        created = now()
        entity_id = self._conn.execute(
            "INSERT INTO entities (name, created_at) VALUES (?, ?)", (name, created)
        ).lastrowid
        self._conn.execute(
            "INSERT INTO names (entity_id, name, norm) VALUES (?, ?, ?)",
            (entity_id, name, norm(name)),
        )
        return entity_id

    def add_alias(self, name: str, alias: str) -> AliasResult:
        """Make ``alias`` another name of the entity called ``name`` (logged, undoable).

        Refused when ``alias`` already names another entity: merge them instead.
        """
        entity_id = self.entity_id(name)
        alias = clean(alias, "alias")
        taken = self.entity_ids(alias)
        if taken and taken[0] != entity_id:
            other = self.canonical(taken[0])
            called = "" if norm(other) == norm(alias) else f" ({other})"
            raise InvalidInputError(
                f"{alias!r} already names another entity{called}; merge the two to make them one"
            )
        if not taken:
            self._insert_alias(entity_id, alias)
        names = [n for _, n in self._names_of(entity_id)]
        return AliasResult(self.canonical(entity_id), alias, not taken, names)

    def declare_aliases(self, name: str, aliases: list[str]) -> tuple[list[str], list[str]]:
        """Make ``aliases`` names of the entity ``name`` (created if new), as a note declares them.

        Returns (those added now, those refused because they name another entity). An
        alias the entity already has is neither. Each addition is logged and undoable.
        """
        entity_id = self.entity(name, "name")
        added, refused = [], []
        for alias in aliases:
            taken = self.entity_ids(clean(alias, "alias"))
            if not taken:
                self._insert_alias(entity_id, alias)
                added.append(alias)
            elif taken[0] != entity_id:
                refused.append(alias)
        return added, refused

    def remove_alias(self, name: str, alias: str) -> bool:
        """Take ``alias`` off the entity ``name`` (logged, undoable); False if it is not one."""
        found = self._conn.execute(
            "SELECT n.id FROM names n JOIN names own ON own.entity_id = n.entity_id "
            "WHERE n.norm = ? AND n.is_alias = 1 AND own.norm = ?",
            (norm(alias), norm(name)),
        ).fetchone()
        if found is None:
            return False
        before = self.snapshot("name", found[0])
        self._vectors.forget_name(found[0])
        self._conn.execute("DELETE FROM names WHERE id = ?", (found[0],))
        self._oplog.log("unalias", found[0], before, None, "name")
        return True

    def aliased(self) -> Iterator[tuple[str, list[str]]]:
        """(name, aliases in the order they came) of every entity with aliases, by name."""
        rows = self._conn.execute(
            "SELECT e.id, e.name, n.name FROM entities e JOIN names n ON n.entity_id = e.id "
            "WHERE n.is_alias = 1 ORDER BY e.name, e.id, n.id"
        )
        for (_, name), group in groupby(rows, key=lambda row: row[:2]):
            yield name, [row[2] for row in group]

    def restore_aliases(self, name: str, aliases: list[str]) -> None:
        """Make ``aliases`` names of the entity ``name`` (created if new), logged (import)."""
        self.entity(name, "name")
        for alias in aliases:
            self.add_alias(name, alias)

    def count_entities(self) -> int:
        return self._conn.execute("SELECT count(*) FROM entities").fetchone()[0]

    def first_names(self, limit: int) -> list[str]:
        """Up to ``limit`` names and aliases, oldest first."""
        rows = self._conn.execute("SELECT name FROM names ORDER BY id LIMIT ?", (limit,))
        return [row[0] for row in rows]

    def all_names(self) -> Iterator[str]:
        """Every name and alias, streamed."""
        for (name,) in self._conn.execute("SELECT name FROM names"):
            yield name

    def orphans(self) -> list[tuple[int, str]]:
        """(id, name) of the entities no fact mentions and no alias names.

        An entity with aliases but no facts is kept: the aliases are what a user or a
        note said about its names (a note's front matter, ``facts alias``).
        """
        return self._conn.execute(
            f"SELECT e.id, e.name FROM entities e WHERE {_UNUSED.format(entity='e.id')}"
        ).fetchall()

    def prune(self, entity_ids: set[int]) -> None:
        """Drop those of ``entity_ids`` that are orphans now (an undone add leaves them so)."""
        for entity_id in entity_ids:
            unused = self._conn.execute(
                f"SELECT {_UNUSED.format(entity='?')}", (entity_id, entity_id, entity_id)
            ).fetchone()[0]
            if unused:
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

    # -- write-time resolution, aliases and merges (rules in resolution.py) ---------------------

    def entity_id(self, name: str) -> int:
        """The id of the entity ``name`` names (a name or an alias); NotFoundError if none."""
        found = self.entity_ids(clean(name, "name"))
        if not found:
            raise NotFoundError(f"no entity named {name!r}")
        return found[0]

    def canonical(self, entity_id: int) -> str:
        row = self._conn.execute("SELECT name FROM entities WHERE id = ?", (entity_id,)).fetchone()
        return row[0]

    def _names_of(self, entity_id: int) -> list[tuple[int, str]]:
        """(row id, name) of the entity's names, its canonical name first."""
        return self._conn.execute(
            "SELECT id, name FROM names WHERE entity_id = ? ORDER BY is_alias, id", (entity_id,)
        ).fetchall()

    def resolve(self, name: str, scope: NameScope) -> str:
        """The name to store ``name`` under: the full name a short name means, or ``name``.

        Reads only; the order of the rules is in :mod:`~memllm_cli.store.resolution`.
        """
        short, key = short_name(name), norm(name)
        if key in scope.links and key not in scope.keep:
            return scope.links[key]
        if short is None or key in scope.keep | scope.kept | scope.places:
            return name
        known = self._conn.execute("SELECT is_alias FROM names WHERE norm = ?", (key,)).fetchone()
        if known is not None and not known[0]:
            return name
        # Distinct things the document named: one entity's names count once.
        in_document: dict[object, str] = {}
        for full in scope.candidates(short):
            ids = self.entity_ids(full)
            in_document.setdefault(ids[0] if ids else tuple(full_words(full) or ()), full)
        if in_document:
            return next(iter(in_document.values())) if len(in_document) == 1 else name
        if known is not None:
            return name
        found = self._meaning(short)
        return self.canonical(found[0]) if found else name

    def resolved_name(self, name: str, scope: NameScope) -> str:
        """The entity name a write in ``scope`` would store ``name`` as; writes nothing."""
        stored = self.resolve(clean(name, "name"), scope)
        ids = self.entity_ids(stored)
        stored = self.canonical(ids[0]) if ids else stored
        scope.wrote(name, stored)
        return stored

    def _resolved_entity(self, name: str, scope: NameScope) -> int:
        """The entity ``name`` means in ``scope``; a resolved short name becomes its alias."""
        stored = self.resolve(name, scope)
        entity_id = self.entity(stored, "name")
        if norm(stored) != norm(name) and not self.entity_ids(name):
            self._insert_alias(entity_id, name)
        scope.wrote(name, self.canonical(entity_id))
        return entity_id

    def _insert_alias(self, entity_id: int, alias: str) -> None:
        row_id = self._conn.execute(
            "INSERT INTO names (entity_id, name, norm, is_alias) VALUES (?, ?, ?, 1)",
            (entity_id, alias, norm(alias)),
        ).lastrowid
        self._oplog.log("alias", row_id, None, self.snapshot("name", row_id), "name")

    def move_names(self, from_id: int, to_id: int, op: str) -> list[str]:
        """Every name of ``from_id`` becomes an alias of ``to_id`` (a merge); returns them."""
        moved = self._names_of(from_id)
        for row_id, _ in moved:
            before = self.snapshot("name", row_id)
            self._conn.execute(
                "UPDATE names SET entity_id = ?, is_alias = 1 WHERE id = ?", (to_id, row_id)
            )
            self._oplog.log(op, row_id, before, self.snapshot("name", row_id), "name")
        return [name for _, name in moved]

    def drop_entity(self, entity_id: int, op: str) -> None:
        """Remove an entity that nothing names or mentions any more (a merge), logged."""
        before = self.snapshot("entity", entity_id)
        self._conn.execute("DELETE FROM entities WHERE id = ?", (entity_id,))
        self._oplog.log(op, entity_id, before, None, "entity")

    def snapshot(self, target: str, row_id: int) -> dict[str, Any] | None:
        """The entity's or name's row as ops record it (``target``: entity or name)."""
        table, columns = _ROWS[target]
        row = self._conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE id = ?", (row_id,)
        ).fetchone()
        return dict(zip(columns, row, strict=True)) if row else None

    def put_back(self, target: str, row_id: int, before: dict[str, Any] | None, op: str) -> None:
        """Set an entity or name row to ``before`` (None: it did not exist), logged (undo)."""
        table, columns = _ROWS[target]
        current = self.snapshot(target, row_id)
        if target == "entity" and before is not None and current not in (None, before):
            raise UndoConflictError(
                f"entity id {row_id} now belongs to {current['name']!r}, made later; "
                "undo that first"
            )
        if before is None:
            if target == "name":
                self._vectors.forget_name(row_id)
            self._conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
        elif current is None:
            self._conn.execute(
                f"INSERT INTO {table} (id, {', '.join(columns)}) "
                f"VALUES (:id, {', '.join(':' + c for c in columns)})",
                {**before, "id": row_id},
            )
        else:
            assignments = ", ".join(f"{c} = :{c}" for c in columns)
            self._conn.execute(
                f"UPDATE {table} SET {assignments} WHERE id = :id", {**before, "id": row_id}
            )
        self._oplog.log(op, row_id, current, self.snapshot(target, row_id), target)

    # -- short names at read time (the same rules as writes, lenient about case) -------------

    def meant(self, name: str) -> list[int]:
        """The entities a name in a read means: by its name or an alias, else as a short name."""
        return self.entity_ids(name) or self.short_name_entities(name)

    def short_name_entities(self, name: str) -> list[int]:
        """The one entity a short or titled name in a read means, if exactly one: ``[]`` otherwise.

        "Dr. Anjali Rao" means the entity named "Anjali Rao"; "Tove", "tove" and "Dr. Rao"
        mean the one entity with a full name they can mean (:func:`resolution.means`).
        """
        bare = untitled(name)
        if bare != name and len(bare.split()) > 1:
            return self.entity_ids(bare)
        short = read_short_name(name)
        return [] if short is None else self._meaning(short)

    def _meaning(self, short: ShortName, scan: int = 200) -> list[int]:
        """The one entity in memory with a full name ``short`` can mean, or ``[]``.

        None, several, or a word in more than ``scan`` names (too common to mean one
        entity) give ``[]``.
        """
        rows = self._conn.execute(
            "SELECT n.entity_id, n.name FROM names_fts JOIN names n ON n.id = names_fts.rowid "
            "WHERE names_fts MATCH ? LIMIT ?",
            ('"' + short.word.replace('"', '""') + '"', scan + 1),
        ).fetchall()
        if len(rows) > scan:
            return []
        found = {entity_id for entity_id, full in rows if means(short, full)}
        return list(found) if len(found) == 1 else []
