"""The fact memory: the only code that writes SQL against the memory file.

Every change happens inside a batch (:meth:`Store.batch`): one transaction and
one undo unit, logged row by row in ``ops`` with the fact before and after.
Facts are never destroyed by edits or supersession; they change status and
gain ``valid_to``, so history and ``--as-of`` stay answerable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memllm_cli.embed import Embedder
from memllm_cli.errors import (
    EmbeddingMismatchError,
    InvalidInputError,
    NotFoundError,
    StoreError,
    UndoConflictError,
)
from memllm_cli.protocol import has_markers
from memllm_cli.store import db, migrations
from memllm_cli.store.models import (
    ORIGINS,
    STATUSES,
    Evidence,
    Fact,
    FactDetail,
    FactFilter,
    Op,
    Relation,
    WriteResult,
)
from memllm_cli.store.text import clean, norm, now

FACT_SELECT = """
SELECT f.id, s.name, r.label, o.name, f.origin, f.status, f.created_at,
       f.valid_from, f.valid_to, f.superseded_by
FROM facts f
JOIN entities s ON s.id = f.subject_id
JOIN relations r ON r.id = f.relation_id
JOIN entities o ON o.id = f.object_id
"""
# The columns of a facts row that ops snapshot and undo restores.
FACT_COLUMNS = (
    "subject_id",
    "relation_id",
    "object_id",
    "origin",
    "status",
    "created_at",
    "valid_from",
    "valid_to",
    "superseded_by",
)
PID = re.compile(r"^P\d+$")


def _fact(row: Sequence[Any]) -> Fact:
    return Fact(*row)


@dataclass(frozen=True)
class UndoResult:
    batch_id: int
    undone_ops: int
    description: str


class Store:
    """A memory file, opened and migrated. Use as a context manager or call :meth:`close`."""

    def __init__(self, conn: db.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._batch: int | None = None

    @classmethod
    def open(cls, path: Path | str) -> Store:
        path = Path(path)
        conn = db.connect(path)
        try:
            found = migrations.version(conn)
            if found > migrations.LATEST:
                raise StoreError(
                    f"memory {path} has schema version {found}, newer than this memllm "
                    f"understands ({migrations.LATEST}); upgrade memllm"
                )
            if found < migrations.LATEST:
                migrations.migrate(conn)
        except db.DatabaseError as exc:
            conn.close()
            raise StoreError(f"cannot open memory {path}: {db.describe(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def batch(self, kind: str, description: str) -> Iterator[int]:
        """One transaction and one undo unit. Yields the batch id; rolls back on any error.

        A batch that changed nothing leaves no trace in the history.
        """
        if self._batch is not None:
            raise RuntimeError("batches do not nest")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except db.DatabaseError as exc:
            raise StoreError(f"cannot write to memory {self.path}: {db.describe(exc)}") from exc
        try:
            batch_id = self.conn.execute(
                "INSERT INTO batches (kind, description, created_at) VALUES (?, ?, ?)",
                (kind, description, now()),
            ).lastrowid
            self._batch = batch_id
            yield batch_id
            touched = self.conn.execute(
                "SELECT 1 FROM ops WHERE batch_id = ? UNION ALL "
                "SELECT 1 FROM provenance WHERE batch_id = ? UNION ALL "
                "SELECT 1 FROM sources WHERE ingest_batch = ? LIMIT 1",
                (batch_id, batch_id, batch_id),
            ).fetchone()
            if touched is None:
                self.conn.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            self.conn.execute("COMMIT")
        except db.DatabaseError as exc:
            self.conn.execute("ROLLBACK")
            raise StoreError(f"cannot write to memory {self.path}: {db.describe(exc)}") from exc
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        finally:
            self._batch = None

    def _current_batch(self) -> int:
        if self._batch is None:
            raise RuntimeError("writes happen inside Store.batch()")
        return self._batch

    # -- names ----------------------------------------------------------------------------------

    def entity_ids(self, name: str) -> list[int]:
        """Entities with this exact name or alias (after normalisation)."""
        rows = self.conn.execute("SELECT entity_id FROM names WHERE norm = ?", (norm(name),))
        return [row[0] for row in rows]

    def _entity(self, name: str, what: str) -> int:
        name = clean(name, what)
        found = self.conn.execute("SELECT entity_id FROM names WHERE norm = ?", (norm(name),))
        row = found.fetchone()
        if row is not None:
            return row[0]
        created = now()
        entity_id = self.conn.execute(
            "INSERT INTO entities (name, created_at) VALUES (?, ?)", (name, created)
        ).lastrowid
        self.conn.execute(
            "INSERT INTO names (entity_id, name, norm) VALUES (?, ?, ?)",
            (entity_id, name, norm(name)),
        )
        return entity_id

    def relation_ids(self, label: str) -> list[int]:
        """The relation with this label (after normalisation) or Wikidata P-id."""
        label = label.strip()
        column = "pid" if PID.match(label) else "norm"
        key = label if column == "pid" else norm(label)
        rows = self.conn.execute(f"SELECT id FROM relations WHERE {column} = ?", (key,))
        return [row[0] for row in rows]

    def _relation(self, label: str) -> tuple[int, str]:
        label = clean(label, "relation")
        found = self.relation_ids(label)
        if found:
            row = self.conn.execute(
                "SELECT id, cardinality FROM relations WHERE id = ?", (found[0],)
            ).fetchone()
            return row[0], row[1]
        relation_id = self.conn.execute(
            "INSERT INTO relations (label, norm, created_at) VALUES (?, ?, ?)",
            (label, norm(label), now()),
        ).lastrowid
        return relation_id, "many"

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
        self.conn.execute(
            "INSERT INTO names (entity_id, name, norm, is_alias) VALUES (?, ?, ?, 1)",
            (entity_ids[0], alias, norm(alias)),
        )

    # -- relations ------------------------------------------------------------------------------

    def relations(self) -> list[Relation]:
        rows = self.conn.execute(
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
        with self.batch("relation", f"relation {label}"):
            relation_id, _ = self._relation(label)
            if cardinality is not None:
                self.conn.execute(
                    "UPDATE relations SET cardinality = ? WHERE id = ?", (cardinality, relation_id)
                )
            if pid is not None:
                try:
                    self.conn.execute(
                        "UPDATE relations SET pid = ? WHERE id = ?", (pid, relation_id)
                    )
                except db.IntegrityError:
                    raise InvalidInputError(f"{pid} already belongs to another relation") from None
        return next(r for r in self.relations() if r.id == relation_id)

    # -- facts: reading -------------------------------------------------------------------------

    def fact(self, fact_id: int) -> Fact:
        row = self.conn.execute(FACT_SELECT + " WHERE f.id = ?", (fact_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no fact with id {fact_id}")
        return _fact(row)

    def _where(self, flt: FactFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, name in (("f.subject_id", flt.subject), ("f.object_id", flt.object)):
            if name is not None:
                clauses.append(f"{column} IN (SELECT entity_id FROM names WHERE norm = ?)")
                params.append(norm(name))
        if flt.relation is not None:
            clauses.append("f.relation_id IN (SELECT id FROM relations WHERE norm = ? OR pid = ?)")
            params += [norm(flt.relation), flt.relation.strip()]
        if flt.origin is not None:
            if flt.origin not in ORIGINS:
                raise InvalidInputError(
                    f"origin is one of {', '.join(ORIGINS)}, not {flt.origin!r}"
                )
            clauses.append("f.origin = ?")
            params.append(flt.origin)
        if flt.source is not None:
            clauses.append(
                "f.id IN (SELECT p.fact_id FROM provenance p JOIN sources src "
                "ON src.id = p.source_id WHERE src.uri = ? OR src.uri LIKE ? ESCAPE '\\' "
                "OR (length(?) >= 7 AND src.sha256 LIKE ? || '%'))"
            )
            escaped = flt.source.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params += [flt.source, "%/" + escaped, flt.source, flt.source]
        if flt.as_of is not None:
            clauses.append("f.valid_from <= ? AND (f.valid_to IS NULL OR f.valid_to > ?)")
            params += [flt.as_of, flt.as_of]
        elif not flt.include_all:
            clauses.append("f.status = 'current'")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return where, params

    def facts(self, flt: FactFilter | None = None) -> Iterator[Fact]:
        """Facts matching ``flt``, oldest first, streamed."""
        flt = flt or FactFilter()
        where, params = self._where(flt)
        sql = (
            FACT_SELECT + where + (" ORDER BY f.id DESC" if flt.newest_first else " ORDER BY f.id")
        )
        if flt.limit is not None:
            sql += " LIMIT ?"
            params.append(flt.limit)
        for row in self.conn.execute(sql, params):
            yield _fact(row)

    def count_facts(self, flt: FactFilter | None = None) -> int:
        where, params = self._where(flt or FactFilter())
        return self.conn.execute("SELECT count(*) FROM facts f" + where, params).fetchone()[0]

    def evidence(self, fact_id: int) -> list[Evidence]:
        rows = self.conn.execute(
            "SELECT p.origin, src.kind, src.uri, src.sha256, p.sentence, p.line_start, "
            "p.line_end, p.extractor, p.protocol_version, p.created_at "
            "FROM provenance p LEFT JOIN sources src ON src.id = p.source_id "
            "WHERE p.fact_id = ? ORDER BY p.id",
            (fact_id,),
        )
        return [Evidence(*row) for row in rows]

    def detail(self, fact_id: int) -> FactDetail:
        """The fact, its evidence, every version before and after it, and its ops."""
        fact = self.fact(fact_id)
        earlier = self.conn.execute(
            "WITH RECURSIVE chain(id) AS (SELECT id FROM facts WHERE superseded_by = ? "
            "UNION SELECT f.id FROM facts f JOIN chain c ON f.superseded_by = c.id) "
            "SELECT id FROM chain",
            (fact_id,),
        ).fetchall()
        later, cursor = [], fact.superseded_by
        while cursor is not None and cursor not in later and cursor != fact_id:
            later.append(cursor)
            cursor = self.fact(cursor).superseded_by
        ids = sorted({row[0] for row in earlier} | set(later) | {fact_id})
        history = [self.fact(i) for i in ids]
        ops = self.history(fact_id=fact_id, limit=None)
        return FactDetail(fact=fact, evidence=self.evidence(fact_id), history=history, ops=ops)

    # -- facts: writing -------------------------------------------------------------------------

    def _snapshot(self, fact_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM facts WHERE id = ?", (fact_id,)
        ).fetchone()
        return dict(zip(FACT_COLUMNS, row, strict=True)) if row else None

    def _log(self, op: str, fact_id: int, before: dict[str, Any] | None) -> None:
        after = self._snapshot(fact_id)
        self.conn.execute(
            "INSERT INTO ops (batch_id, op, fact_id, before, after, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                self._current_batch(),
                op,
                fact_id,
                None if before is None else json.dumps(before),
                None if after is None else json.dumps(after),
                now(),
            ),
        )

    def _source(self, evidence: Evidence) -> int | None:
        if evidence.source_kind is None:
            return None
        if evidence.source_kind not in ("document", "chat"):
            raise InvalidInputError(f"unknown source kind {evidence.source_kind!r}")
        if not evidence.uri or not evidence.sha256:
            raise InvalidInputError("a document or chat source needs a uri and a sha256")
        row = self.conn.execute(
            "SELECT id FROM sources WHERE uri = ? AND sha256 = ?", (evidence.uri, evidence.sha256)
        ).fetchone()
        if row is not None:
            return row[0]
        return self.conn.execute(
            "INSERT INTO sources (kind, uri, sha256, created_at) VALUES (?, ?, ?, ?)",
            (evidence.source_kind, evidence.uri, evidence.sha256, evidence.created_at or now()),
        ).lastrowid

    def _add_evidence(self, fact_id: int, evidence: Evidence) -> None:
        self.conn.execute(
            "INSERT INTO provenance (fact_id, batch_id, origin, source_id, sentence, line_start, "
            "line_end, extractor, protocol_version, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fact_id,
                self._current_batch(),
                evidence.origin,
                self._source(evidence),
                evidence.sentence,
                evidence.line_start,
                evidence.line_end,
                evidence.extractor,
                evidence.protocol_version,
                evidence.created_at or now(),
            ),
        )

    def add_fact(
        self,
        subject: str,
        relation: str,
        obj: str,
        evidence: Evidence | None = None,
        *,
        valid_from: str | None = None,
    ) -> WriteResult:
        """Store (subject, relation, object), or add evidence to it if it is already known.

        For a one-valued relation the new object supersedes the current one, except
        that an automatic write (document, chat) never supersedes a manual fact: it
        is kept, already superseded by the user's word.
        """
        evidence = evidence or Evidence()
        if evidence.origin not in ORIGINS:
            raise InvalidInputError(f"origin is one of {', '.join(ORIGINS)}")
        warnings = [
            f"{what} {value!r} contained memory-call markers; they were neutralised"
            for what, value in (("subject", subject), ("relation", relation), ("object", obj))
            if has_markers(value)
        ]
        subject_id = self._entity(subject, "subject")
        relation_id, cardinality = self._relation(relation)
        object_id = self._entity(obj, "object")
        stamp = now()
        rivals = []
        if cardinality == "one":
            rivals = self.conn.execute(
                "SELECT id, origin FROM facts WHERE subject_id = ? AND relation_id = ? "
                "AND object_id != ? AND status = 'current' ORDER BY id",
                (subject_id, relation_id, object_id),
            ).fetchall()
        manual_rival = next(
            (row[0] for row in rivals if row[1] == "manual" and evidence.origin != "manual"), None
        )
        row = self.conn.execute(
            "SELECT id, status FROM facts WHERE subject_id = ? AND relation_id = ? "
            "AND object_id = ?",
            (subject_id, relation_id, object_id),
        ).fetchone()
        if row is None:
            before = None
            fact_id = self.conn.execute(
                "INSERT INTO facts (subject_id, relation_id, object_id, origin, created_at, "
                "valid_from) VALUES (?, ?, ?, ?, ?, ?)",
                (subject_id, relation_id, object_id, evidence.origin, stamp, valid_from or stamp),
            ).lastrowid
            action = "added"
        elif row[1] == "current":
            fact_id, before, action = row[0], self._snapshot(row[0]), "restated"
        else:
            fact_id, before, action = row[0], self._snapshot(row[0]), "revived"
            self.conn.execute(
                "UPDATE facts SET status = 'current', origin = ?, valid_from = ?, "
                "valid_to = NULL, superseded_by = NULL WHERE id = ?",
                (evidence.origin, valid_from or stamp, fact_id),
            )
        if manual_rival is not None and action != "restated":
            self.conn.execute(
                "UPDATE facts SET status = 'superseded', valid_to = ?, superseded_by = ? "
                "WHERE id = ?",
                (stamp, manual_rival, fact_id),
            )
        self._add_evidence(fact_id, evidence)
        self._log("restate" if action == "restated" else "add", fact_id, before)
        superseded = []
        if manual_rival is None and action != "restated":
            for rival_id, _ in rivals:
                self._supersede(rival_id, fact_id, stamp, "supersede")
                superseded.append(self.fact(rival_id))
        return WriteResult(self.fact(fact_id), action, superseded, warnings)

    def _supersede(self, fact_id: int, by: int, stamp: str, op: str) -> None:
        before = self._snapshot(fact_id)
        self.conn.execute(
            "UPDATE facts SET status = 'superseded', valid_to = ?, superseded_by = ? WHERE id = ?",
            (stamp, by, fact_id),
        )
        self._log(op, fact_id, before)

    def edit_fact(
        self,
        fact_id: int,
        *,
        subject: str | None = None,
        relation: str | None = None,
        obj: str | None = None,
    ) -> WriteResult:
        """Replace a fact with a corrected one (manual); the old one is kept, superseded."""
        old = self.fact(fact_id)
        new = (subject or old.subject, relation or old.relation, obj or old.object)
        keys = [norm(x) for x in (old.subject, old.relation, old.object)]
        if [norm(clean(x, "name")) for x in new] == keys:
            raise InvalidInputError(f"the edit leaves fact {fact_id} unchanged")
        evidence = Evidence(origin="manual", sentence=f"edited from fact {fact_id}")
        result = self.add_fact(*new, evidence)
        if result.fact.id == fact_id:
            raise InvalidInputError(f"the edit leaves fact {fact_id} unchanged")
        if self.fact(fact_id).status == "current":
            self._supersede(fact_id, result.fact.id, now(), "edit")
        superseded = [f for f in result.superseded if f.id != fact_id] + [self.fact(fact_id)]
        return WriteResult(self.fact(result.fact.id), result.action, superseded, result.warnings)

    def _end(self, fact_id: int, status: str, op: str) -> Fact:
        fact = self.fact(fact_id)
        if fact.status == status:
            raise InvalidInputError(f"fact {fact_id} is already {status}")
        before = self._snapshot(fact_id)
        self.conn.execute(
            "UPDATE facts SET status = ?, valid_to = coalesce(valid_to, ?) WHERE id = ?",
            (status, now(), fact_id),
        )
        self._log(op, fact_id, before)
        return self.fact(fact_id)

    def remove_fact(self, fact_id: int) -> Fact:
        """Mark a fact deleted (undoable; ``--all`` still lists it)."""
        return self._end(fact_id, "deleted", "delete")

    def retract_fact(self, fact_id: int) -> Fact:
        """Mark a fact retracted: its source no longer states it."""
        return self._end(fact_id, "retracted", "retract")

    def restore_fact(self, record: dict[str, Any]) -> Fact:
        """Write a fact exactly as exported (status, times, evidence), for ``facts import``.

        ``superseded_by`` in ``record`` is resolved by the caller to a fact id.
        """
        if record.get("status", "current") not in STATUSES:
            raise InvalidInputError(f"status is one of {', '.join(STATUSES)}")
        if record.get("origin", "manual") not in ORIGINS:
            raise InvalidInputError(f"origin is one of {', '.join(ORIGINS)}")
        subject_id = self._entity(record["subject"], "subject")
        relation_id, _ = self._relation(record["relation"])
        object_id = self._entity(record["object"], "object")
        stamp = now()
        values = {
            "origin": record.get("origin", "manual"),
            "status": record.get("status", "current"),
            "created_at": record.get("created_at") or stamp,
            "valid_from": record.get("valid_from"),
            "valid_to": record.get("valid_to"),
            "superseded_by": record.get("superseded_by"),
        }
        keys = {"subject_id": subject_id, "relation_id": relation_id, "object_id": object_id}
        row = self.conn.execute(
            "SELECT id FROM facts WHERE subject_id = :subject_id AND relation_id = :relation_id "
            "AND object_id = :object_id",
            keys,
        ).fetchone()
        if row is None:
            before = None
            fact_id = self.conn.execute(
                f"INSERT INTO facts ({', '.join(FACT_COLUMNS)}) "
                f"VALUES ({', '.join(':' + c for c in FACT_COLUMNS)})",
                {**keys, **values},
            ).lastrowid
        else:
            fact_id, before = row[0], self._snapshot(row[0])
            assignments = ", ".join(f"{c} = :{c}" for c in values)
            self.conn.execute(
                f"UPDATE facts SET {assignments} WHERE id = :id", {**values, "id": fact_id}
            )
        for item in record.get("evidence") or [Evidence(origin=values["origin"]).to_dict()]:
            self._add_evidence(fact_id, evidence_from_dict(item))
        self._log("import", fact_id, before)
        return self.fact(fact_id)

    def set_superseded_by(self, fact_id: int, by: int | None) -> None:
        """Link a restored fact to its successor once both exist (import's second pass)."""
        self.conn.execute("UPDATE facts SET superseded_by = ? WHERE id = ?", (by, fact_id))
        self.conn.execute(
            "UPDATE ops SET after = ? WHERE id = (SELECT max(id) FROM ops WHERE fact_id = ?)",
            (json.dumps(self._snapshot(fact_id)), fact_id),
        )

    def fact_id_of(self, subject: str, relation: str, obj: str) -> int | None:
        row = self.conn.execute(
            "SELECT f.id FROM facts f WHERE f.subject_id IN (SELECT entity_id FROM names "
            "WHERE norm = ?) AND f.relation_id IN (SELECT id FROM relations WHERE norm = ?) "
            "AND f.object_id IN (SELECT entity_id FROM names WHERE norm = ?)",
            (
                norm(clean(subject, "subject")),
                norm(clean(relation, "relation")),
                norm(clean(obj, "object")),
            ),
        ).fetchone()
        return None if row is None else row[0]

    # -- history and undo -----------------------------------------------------------------------

    def history(
        self, *, limit: int | None = 50, batch_id: int | None = None, fact_id: int | None = None
    ) -> list[Op]:
        """The operation log, newest first."""
        clauses, params = [], []
        if batch_id is not None:
            clauses.append("o.batch_id = ?")
            params.append(batch_id)
        if fact_id is not None:
            clauses.append("o.fact_id = ?")
            params.append(fact_id)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = (
            "SELECT o.id, o.batch_id, b.description, o.op, o.fact_id, "
            "coalesce(s.name || ' >> ' || r.label || ' >> ' || e.name, '(gone)'), "
            "o.created_at, o.undone_by "
            "FROM ops o JOIN batches b ON b.id = o.batch_id "
            "LEFT JOIN facts f ON f.id = o.fact_id "
            "LEFT JOIN entities s ON s.id = f.subject_id "
            "LEFT JOIN relations r ON r.id = f.relation_id "
            "LEFT JOIN entities e ON e.id = f.object_id" + where + " ORDER BY o.id DESC"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [Op(*row) for row in self.conn.execute(sql, params)]

    def undo(self, *, op_id: int | None = None, batch_id: int | None = None) -> UndoResult:
        """Undo one op, one batch, or (with neither) the latest batch not yet undone.

        Refuses when a later change to the same facts would be overwritten.
        """
        with self.batch("undo", "undo") as undo_batch:
            ops, what = self._ops_to_undo(op_id, batch_id)
            op_ids = {op[0] for op in ops}
            for op in ops:
                later = self.conn.execute(
                    "SELECT o.id FROM ops o JOIN batches b ON b.id = o.batch_id "
                    "WHERE o.fact_id = ? AND o.id > ? AND o.undone_by IS NULL "
                    "AND b.kind != 'undo' AND o.id NOT IN (SELECT value FROM json_each(?)) "
                    "ORDER BY o.id LIMIT 1",
                    (op[3], op[0], json.dumps(sorted(op_ids))),
                ).fetchone()
                if later is not None:
                    raise UndoConflictError(
                        f"fact {op[3]} was changed later by op {later[0]}; undo that first"
                    )
            touched_entities: set[int] = set()
            for op_row_id, op_batch, _op, fact_id, before_json in reversed(ops):
                current = self._snapshot(fact_id)
                if current is not None:
                    touched_entities |= {current["subject_id"], current["object_id"]}
                self.conn.execute(
                    "DELETE FROM provenance WHERE batch_id = ? AND fact_id = ?", (op_batch, fact_id)
                )
                if before_json is None:
                    self.conn.execute("DELETE FROM facts WHERE id = ?", (fact_id,))
                else:
                    before = json.loads(before_json)
                    assignments = ", ".join(f"{c} = :{c}" for c in FACT_COLUMNS)
                    self.conn.execute(
                        f"UPDATE facts SET {assignments} WHERE id = :id", {**before, "id": fact_id}
                    )
                self._log("undo", fact_id, current)
                self.conn.execute(
                    "UPDATE ops SET undone_by = ? WHERE id = ?", (undo_batch, op_row_id)
                )
            if batch_id is not None or op_id is None:
                undone = ops[0][1]
                self.conn.execute(
                    "UPDATE batches SET undone_by = ? WHERE id = ?", (undo_batch, undone)
                )
                # An undone ingest leaves its document version un-ingested again.
                self.conn.execute(
                    "DELETE FROM segments WHERE source_id IN "
                    "(SELECT id FROM sources WHERE ingest_batch = ?)",
                    (undone,),
                )
                self.conn.execute(
                    "UPDATE sources SET ingested_at = NULL, ingest_batch = NULL "
                    "WHERE ingest_batch = ?",
                    (undone,),
                )
            self.conn.execute(
                "UPDATE batches SET description = ? WHERE id = ?", (f"undo {what}", undo_batch)
            )
            self._prune_entities(touched_entities)
        return UndoResult(batch_id=undo_batch, undone_ops=len(ops), description=f"undo {what}")

    def _ops_to_undo(self, op_id: int | None, batch_id: int | None) -> tuple[list[Any], str]:
        select = "SELECT o.id, o.batch_id, o.op, o.fact_id, o.before FROM ops o "
        if op_id is not None:
            row = self.conn.execute(
                select + "JOIN batches b ON b.id = o.batch_id WHERE o.id = ? AND b.kind != 'undo'",
                (op_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no undoable op with id {op_id}")
            if self.conn.execute("SELECT undone_by FROM ops WHERE id = ?", (op_id,)).fetchone()[0]:
                raise InvalidInputError(f"op {op_id} is already undone")
            return [row], f"op {op_id}"
        if batch_id is None:
            row = self.conn.execute(
                "SELECT id FROM batches WHERE undone_by IS NULL AND kind != 'undo' "
                "AND id IN (SELECT batch_id FROM ops WHERE undone_by IS NULL) "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise NotFoundError("nothing to undo")
            batch_id = row[0]
        batch = self.conn.execute(
            "SELECT kind, undone_by FROM batches WHERE id = ?", (batch_id,)
        ).fetchone()
        if batch is None:
            raise NotFoundError(f"no batch with id {batch_id}")
        if batch[0] == "undo":
            raise InvalidInputError(f"batch {batch_id} is itself an undo and cannot be undone")
        if batch[1] is not None:
            raise InvalidInputError(f"batch {batch_id} is already undone")
        ops = self.conn.execute(
            select + "WHERE o.batch_id = ? AND o.undone_by IS NULL ORDER BY o.id", (batch_id,)
        ).fetchall()
        if not ops:
            raise NotFoundError(f"batch {batch_id} has nothing left to undo")
        return ops, f"batch {batch_id}"

    def _prune_entities(self, entity_ids: set[int]) -> None:
        """Drop entities no fact mentions any more (an undone add leaves none behind)."""
        for entity_id in entity_ids:
            used = self.conn.execute(
                "SELECT 1 FROM facts WHERE subject_id = ? OR object_id = ? LIMIT 1",
                (entity_id, entity_id),
            ).fetchone()
            if used is None:
                self.delete_entity(entity_id)

    def delete_entity(self, entity_id: int) -> None:
        if self.has_vector_index():
            self.conn.execute(
                "DELETE FROM name_vectors WHERE rowid IN "
                "(SELECT id FROM names WHERE entity_id = ?)",
                (entity_id,),
            )
        self.conn.execute("DELETE FROM names WHERE entity_id = ?", (entity_id,))
        self.conn.execute("DELETE FROM entities WHERE id = ?", (entity_id,))

    # -- documents ----------------------------------------------------------------------------

    def ingested_version(self, uri: str) -> tuple[int, str] | None:
        """(source id, sha256) of the latest ingested version of the document at ``uri``."""
        row = self.conn.execute(
            "SELECT id, sha256 FROM sources WHERE uri = ? AND ingested_at IS NOT NULL "
            "ORDER BY ingested_at DESC, id DESC LIMIT 1",
            (uri,),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def begin_document(self, uri: str, sha256: str) -> int:
        """Mark this version of ``uri`` ingested by the current batch; return its source id."""
        source_id = self._source(Evidence(source_kind="document", uri=uri, sha256=sha256))
        assert source_id is not None
        self.conn.execute("DELETE FROM segments WHERE source_id = ?", (source_id,))
        self.conn.execute(
            "UPDATE sources SET ingested_at = ?, ingest_batch = ? WHERE id = ?",
            (now(), self._current_batch(), source_id),
        )
        return source_id

    def add_segment(
        self, source_id: int, position: int, sentence_sha256: str, line_start: int, line_end: int
    ) -> None:
        self.conn.execute(
            "INSERT INTO segments (source_id, position, sentence_sha256, line_start, line_end) "
            "VALUES (?, ?, ?, ?, ?)",
            (source_id, position, sentence_sha256, line_start, line_end),
        )

    def segment_hashes(self, source_id: int) -> set[str]:
        rows = self.conn.execute(
            "SELECT sentence_sha256 FROM segments WHERE source_id = ?", (source_id,)
        )
        return {row[0] for row in rows}

    def stated_by(self, source_id: int) -> list[tuple[str, Fact]]:
        """(sentence, fact) for every current fact this document version states."""
        rows = self.conn.execute(
            "SELECT p.sentence, p.fact_id FROM provenance p JOIN facts f ON f.id = p.fact_id "
            "WHERE p.source_id = ? AND f.status = 'current' ORDER BY p.id",
            (source_id,),
        ).fetchall()
        return [(sentence or "", self.fact(fact_id)) for sentence, fact_id in rows]

    def retract_unstated(self, uri: str, kept: set[int]) -> list[Fact]:
        """Retract current facts that only the document at ``uri`` stated and ``kept`` lacks.

        A fact also stated by hand, in chat or by another document stays.
        """
        rows = self.conn.execute(
            "SELECT DISTINCT p.fact_id FROM provenance p JOIN sources s ON s.id = p.source_id "
            "JOIN facts f ON f.id = p.fact_id WHERE s.uri = ? AND f.status = 'current'",
            (uri,),
        ).fetchall()
        retracted = []
        for (fact_id,) in rows:
            if fact_id in kept:
                continue
            elsewhere = self.conn.execute(
                "SELECT 1 FROM provenance p LEFT JOIN sources s ON s.id = p.source_id "
                "WHERE p.fact_id = ? AND (s.id IS NULL OR s.uri != ?) LIMIT 1",
                (fact_id, uri),
            ).fetchone()
            if elsewhere is None:
                retracted.append(self.retract_fact(fact_id))
        return retracted

    # -- vectors --------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def has_vector_index(self) -> bool:
        return self.meta("embedding_model") is not None

    def check_embedder(self, embedder: Embedder) -> None:
        """Bind this memory to ``embedder`` on first use; refuse a different one afterwards."""
        model, dim = self.meta("embedding_model"), self.meta("embedding_dim")
        if model is None:
            with self.batch("index", "create vector index"):
                self._create_vector_index(embedder)
            return
        if model != embedder.model_id or int(dim or 0) != embedder.dim:
            raise EmbeddingMismatchError(
                f"this memory's vectors come from {model} ({dim}-d), but memllm is using "
                f"{embedder.model_id} ({embedder.dim}-d); run 'memllm doctor --reembed' to "
                "rebuild them"
            )

    def _create_vector_index(self, embedder: Embedder) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('embedding_model', ?), "
            "('embedding_dim', ?)",
            (embedder.model_id, str(embedder.dim)),
        )
        self.conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS name_vectors "
            f"USING vec0(embedding bit[{embedder.dim}])"
        )

    def reembed(self, embedder: Embedder) -> None:
        """Throw away every vector and bind the memory to ``embedder`` (vectors rebuild lazily)."""
        with self.batch("index", "rebuild vector index"):
            self.conn.execute("DROP TABLE IF EXISTS name_vectors")
            self.conn.execute("DELETE FROM embeddings")
            self.conn.execute("UPDATE names SET embedded = 0")
            self.conn.execute("UPDATE relations SET embedded = 0")
            self._create_vector_index(embedder)

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> list[bytes]:
        """Vectors for ``texts``, from the cache where possible; new ones are cached."""
        unique = list(dict.fromkeys(texts))
        found: dict[str, bytes] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                self.conn.execute(
                    f"SELECT text, vector FROM embeddings WHERE text IN ({marks})", chunk
                ).fetchall()
            )
        missing = [t for t in unique if t not in found]
        if missing:
            vectors = embedder.embed(missing)
            found.update(zip(missing, vectors, strict=True))
            self.conn.executemany(
                "INSERT OR IGNORE INTO embeddings (text, vector) VALUES (?, ?)",
                list(zip(missing, vectors, strict=True)),
            )
        return [found[t] for t in texts]

    def pending_vectors(self) -> int:
        """Names and labels not yet embedded."""
        names = self.conn.execute("SELECT count(*) FROM names WHERE embedded = 0").fetchone()[0]
        labels = self.conn.execute("SELECT count(*) FROM relations WHERE embedded = 0").fetchone()[
            0
        ]
        return names + labels

    def index_pending(self, embedder: Embedder, progress: Any = None, chunk: int = 256) -> int:
        """Embed every name and label written since the last call; return how many.

        Writes stay fast because they never run the embedding model; reads that need
        vectors call this first. Each chunk commits on its own: the work is derived
        and idempotent, so an interruption loses nothing.
        """
        self.check_embedder(embedder)
        done = 0
        while True:
            rows = self.conn.execute(
                "SELECT id, name FROM names WHERE embedded = 0 ORDER BY id LIMIT ?", (chunk,)
            ).fetchall()
            labels = (
                []
                if rows
                else self.conn.execute(
                    "SELECT id, label FROM relations WHERE embedded = 0 ORDER BY id LIMIT ?",
                    (chunk,),
                ).fetchall()
            )
            if not rows and not labels:
                return done
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                vectors = self.embed(embedder, [r[1] for r in rows or labels])
                if rows:
                    self.conn.executemany(
                        "INSERT OR REPLACE INTO name_vectors (rowid, embedding) "
                        "VALUES (?, vec_quantize_binary(?))",
                        [(r[0], v) for r, v in zip(rows, vectors, strict=True)],
                    )
                    self.conn.executemany(
                        "UPDATE names SET embedded = 1 WHERE id = ?", [(r[0],) for r in rows]
                    )
                else:
                    self.conn.executemany(
                        "UPDATE relations SET embedded = 1 WHERE id = ?", [(r[0],) for r in labels]
                    )
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            done += len(rows or labels)
            if progress is not None:
                progress(done, done + self.pending_vectors())

    def similar_names(
        self, vector: bytes, *, k: int, max_distance: float, oversample: int = 4
    ) -> list[tuple[int, float]]:
        """(entity id, cosine distance) of the names nearest ``vector``, nearest first.

        A Hamming KNN over 1-bit vectors finds ``k * oversample`` candidates fast; their
        float vectors, from the embedding cache, re-rank them exactly.
        """
        if not self.has_vector_index():
            return []
        candidates = self.conn.execute(
            "SELECT rowid FROM name_vectors WHERE embedding MATCH vec_quantize_binary(?) AND k = ?",
            (vector, k * oversample),
        ).fetchall()
        if not candidates:
            return []
        rows = self.conn.execute(
            "SELECT n.entity_id, min(vec_distance_cosine(e.vector, ?)) AS d "
            "FROM names n JOIN embeddings e ON e.text = n.name "
            "WHERE n.id IN (SELECT value FROM json_each(?)) "
            "GROUP BY n.entity_id HAVING d <= ? ORDER BY d, n.entity_id LIMIT ?",
            (vector, json.dumps([c[0] for c in candidates]), max_distance, k),
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def similar_relations(
        self, vector: bytes, *, k: int, max_distance: float
    ) -> list[tuple[int, float]]:
        """(relation id, cosine distance) of the labels nearest ``vector``, by brute force.

        Relations number in the hundreds, so an exact scan is cheap.
        """
        rows = self.conn.execute(
            "SELECT r.id, vec_distance_cosine(e.vector, ?) AS d FROM relations r "
            "JOIN embeddings e ON e.text = r.label WHERE d <= ? ORDER BY d, r.id LIMIT ?",
            (vector, max_distance, k),
        ).fetchall()
        return [(row[0], row[1]) for row in rows]


def evidence_from_dict(item: dict[str, Any]) -> Evidence:
    """An :class:`Evidence` from its exported form; unknown keys are an error, not ignored."""
    known = set(Evidence.__dataclass_fields__)
    unknown = set(item) - known
    if unknown:
        raise InvalidInputError(f"unknown evidence field(s): {', '.join(sorted(unknown))}")
    return Evidence(**item)
