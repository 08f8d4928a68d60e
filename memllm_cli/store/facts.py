"""Facts: (subject, relation, object) rows and their lifecycle.

Facts are never destroyed by edits or supersession; they change status and gain
``valid_to``, so history and ``--as-of`` stay answerable. Every change is logged
in the op log with the row before and after. This module owns the ``facts``
table: writing, listing (with :mod:`~memllm_cli.store.filters`) and detail; the
queries that reads and searches rank facts by are in :mod:`~memllm_cli.store.ranking`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from memllm_cli.errors import InvalidInputError, NotFoundError
from memllm_cli.protocol import has_markers
from memllm_cli.store import db
from memllm_cli.store.changes import change_role
from memllm_cli.store.documents import Documents
from memllm_cli.store.filters import where
from memllm_cli.store.models import (
    ORIGINS,
    STATUSES,
    Evidence,
    Fact,
    FactDetail,
    FactFilter,
    WriteResult,
)
from memllm_cli.store.names import Names
from memllm_cli.store.oplog import OpLog
from memllm_cli.store.relations import Relations
from memllm_cli.store.resolution import NameScope
from memllm_cli.store.succession import Succession
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


class FactTable:
    """The facts: read, filtered, written, superseded, ended and restored."""

    def __init__(
        self,
        conn: db.Connection,
        oplog: OpLog,
        names: Names,
        relations: Relations,
        documents: Documents,
    ) -> None:
        self._conn = conn
        self._oplog = oplog
        self._names = names
        self._relations = relations
        self._documents = documents
        self._succession = Succession(conn)

    # -- reading --------------------------------------------------------------------------------

    def get(self, fact_id: int) -> Fact:
        row = self._conn.execute(FACT_SELECT + " WHERE f.id = ?", (fact_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no fact with id {fact_id}")
        return Fact(*row)

    def matching(self, flt: FactFilter | None = None) -> Iterator[Fact]:
        """Facts matching ``flt``, oldest first, streamed."""
        flt = flt or FactFilter()
        clause, params = where(flt, self._names.entity_ids)
        sql = (
            FACT_SELECT + clause + (" ORDER BY f.id DESC" if flt.newest_first else " ORDER BY f.id")
        )
        if flt.limit is not None:
            sql += " LIMIT ?"
            params.append(flt.limit)
        for row in self._conn.execute(sql, params):
            yield Fact(*row)

    def with_id_prefix(self, prefix: str, limit: int) -> list[Fact]:
        """Facts whose id starts with the digits ``prefix``, newest first, at most ``limit``
        (shell completion). Each id range the prefix covers (12: 12, 120-129, 1200-1299, ...)
        is one primary-key range, so a large memory costs no scan."""
        if prefix and not (prefix.isascii() and prefix.isdigit() and prefix[0] != "0"):
            return []
        last = self._conn.execute("SELECT max(id) FROM facts").fetchone()[0] or 0
        ranges = [(1, last)]
        if prefix:
            ranges, low, high = [], int(prefix), int(prefix)
            while low <= last:
                ranges.append((low, high))
                low, high = low * 10, high * 10 + 9
        found: list[Fact] = []
        for low, high in reversed(ranges):
            rows = self._conn.execute(
                FACT_SELECT + " WHERE f.id BETWEEN ? AND ? ORDER BY f.id DESC LIMIT ?",
                (low, high, limit - len(found)),
            )
            found.extend(Fact(*row) for row in rows)
            if len(found) >= limit:
                break
        return found

    def tally(self) -> dict[tuple[str, str], int]:
        """The number of facts of each (status, origin)."""
        rows = self._conn.execute("SELECT status, origin, count(*) FROM facts GROUP BY 1, 2")
        return {(status, origin): n for status, origin, n in rows}

    def count(self, flt: FactFilter | None = None) -> int:
        clause, params = where(flt or FactFilter(), self._names.entity_ids)
        return self._conn.execute("SELECT count(*) FROM facts f" + clause, params).fetchone()[0]

    def detail(self, fact_id: int) -> FactDetail:
        """The fact, its evidence, every version before and after it, and its ops."""
        fact = self.get(fact_id)
        earlier = self._conn.execute(
            "WITH RECURSIVE chain(id) AS (SELECT id FROM facts WHERE superseded_by = ? "
            "UNION SELECT f.id FROM facts f JOIN chain c ON f.superseded_by = c.id) "
            "SELECT id FROM chain",
            (fact_id,),
        ).fetchall()
        later, cursor = [], fact.superseded_by
        while cursor is not None and cursor not in later and cursor != fact_id:
            later.append(cursor)
            cursor = self.get(cursor).superseded_by
        ids = sorted({row[0] for row in earlier} | set(later) | {fact_id})
        history = [self.get(i) for i in ids]
        ops = self._oplog.history(fact_id=fact_id, limit=None)
        evidence = self._documents.evidence(fact_id)
        return FactDetail(fact=fact, evidence=evidence, history=history, ops=ops)

    def id_of(self, subject: str, relation: str, obj: str) -> int | None:
        """The id of the fact (any status) relating these names, or None."""
        flt = FactFilter(
            subject=clean(subject, "subject"),
            relation=clean(relation, "relation"),
            object=clean(obj, "object"),
            include_all=True,
        )
        clause, params = where(flt, self._names.entity_ids)
        row = self._conn.execute("SELECT f.id FROM facts f" + clause, params).fetchone()
        return None if row is None else row[0]

    # -- writing --------------------------------------------------------------------------------

    def snapshot(self, fact_id: int) -> dict[str, Any] | None:
        """The fact's row as ops record it, or None when there is no such fact."""
        row = self._conn.execute(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM facts WHERE id = ?", (fact_id,)
        ).fetchone()
        return dict(zip(FACT_COLUMNS, row, strict=True)) if row else None

    def log(self, op: str, fact_id: int, before: dict[str, Any] | None) -> None:
        """Log ``op`` in the current batch, with the fact's row now as its after."""
        self._oplog.log(op, fact_id, before, self.snapshot(fact_id))

    def add(
        self,
        subject: str,
        relation: str,
        obj: str,
        evidence: Evidence | None = None,
        *,
        valid_from: str | None = None,
        scope: NameScope | None = None,
    ) -> WriteResult:
        """Store (subject, relation, object), or add evidence to it if it is already known.

        For a one-valued relation the new object supersedes the current one, except
        that an automatic write (document, chat, mcp) never supersedes a manual fact: it
        is kept, already superseded by the user's word. Nor does an automatic write
        bring back a fact the user deleted or corrected: it changes nothing and is
        ``"overruled"``. With a ``scope``, short names are resolved to the full names
        they mean (:meth:`Names.resolve`).
        """
        evidence = evidence or Evidence()
        if evidence.origin not in ORIGINS:
            raise InvalidInputError(f"origin is one of {', '.join(ORIGINS)}")
        warnings = [
            f"{what} {value!r} contained memory-call markers; they were neutralised"
            for what, value in (("subject", subject), ("relation", relation), ("object", obj))
            if has_markers(value)
        ]
        subject_id = self._names.entity(subject, "subject", scope)
        relation_id, cardinality = self._relations.relation(relation)
        object_id = self._names.entity(obj, "object", scope)
        row = self._conn.execute(
            "SELECT id, status FROM facts WHERE subject_id = ? AND relation_id = ? "
            "AND object_id = ?",
            (subject_id, relation_id, object_id),
        ).fetchone()
        if row is not None and evidence.origin != "manual" and self._succession.overruled(row[0]):
            return WriteResult(self.get(row[0]), "overruled", [], warnings)
        stamp = now()
        ended = valid_from or stamp  # when what this fact replaces stopped holding
        role = change_role(evidence, self._relations.label(relation_id), obj)
        rivals = []
        if role != "past" and (cardinality == "one" or role == "replace"):
            rivals = self._conn.execute(
                "SELECT id, origin FROM facts WHERE subject_id = ? AND relation_id = ? "
                "AND object_id != ? AND status = 'current' ORDER BY id",
                (subject_id, relation_id, object_id),
            ).fetchall()
            if cardinality != "one":  # a change never supersedes what the user said
                rivals = [row for row in rivals if row[1] != "manual"]
            if role == "replace":  # nor a value the same sentence states ("Prada and Gucci")
                said = evidence.sentence or ""
                rivals = [row for row in rivals if not self._succession.stated(row[0], said)]
        manual_rival = next(
            (row[0] for row in rivals if row[1] == "manual" and evidence.origin != "manual"), None
        )
        if row is None:
            before = None
            fact_id = self._conn.execute(
                "INSERT INTO facts (subject_id, relation_id, object_id, origin, created_at, "
                "valid_from) VALUES (?, ?, ?, ?, ?, ?)",
                # A fact the sentence says was left began at an unknown earlier time.
                (subject_id, relation_id, object_id, evidence.origin, stamp, None)
                if role == "past"
                else (subject_id, relation_id, object_id, evidence.origin, stamp, ended),
            ).lastrowid
            action = "added"
        elif row[1] == "current" or role == "past":
            fact_id, before, action = row[0], self.snapshot(row[0]), "restated"
        else:
            fact_id, before, action = row[0], self.snapshot(row[0]), "revived"
            self._conn.execute(
                "UPDATE facts SET status = 'current', origin = ?, valid_from = ?, "
                "valid_to = NULL, superseded_by = NULL WHERE id = ?",
                (evidence.origin, ended, fact_id),
            )
        if manual_rival is not None and action != "restated":
            self._conn.execute(
                "UPDATE facts SET status = 'superseded', valid_to = ?, superseded_by = ? "
                "WHERE id = ?",
                (self._succession.until(manual_rival, stamp), manual_rival, fact_id),
            )
        self._documents.add_evidence(fact_id, evidence)
        self.log("restate" if action == "restated" else "add", fact_id, before)
        superseded = []
        if role == "past" and self.get(fact_id).status == "current":
            successor = self._succession.successor(fact_id, evidence.sentence or "")
            self._supersede(fact_id, successor, ended, "supersede")
            superseded.append(self.get(fact_id))
        if manual_rival is None and action != "restated":
            for rival_id, _ in rivals:
                self._supersede(rival_id, fact_id, ended, "supersede")
                superseded.append(self.get(rival_id))
        if role == "replace":
            for past_id in self._succession.left_behind(fact_id, evidence.sentence or ""):
                before = self.snapshot(past_id)
                self._succession.link(past_id, fact_id)
                self.log("supersede", past_id, before)
        return WriteResult(self.get(fact_id), action, superseded, warnings)

    def _supersede(self, fact_id: int, by: int | None, stamp: str, op: str) -> None:
        """Mark the fact superseded by ``by``; it ended when ``by`` began, else at ``stamp``."""
        before = self.snapshot(fact_id)
        self._conn.execute(
            "UPDATE facts SET status = 'superseded', valid_to = ?, superseded_by = ? WHERE id = ?",
            (self._succession.until(by, stamp), by, fact_id),
        )
        self.log(op, fact_id, before)

    def edit(
        self,
        fact_id: int,
        *,
        subject: str | None = None,
        relation: str | None = None,
        obj: str | None = None,
        evidence: Evidence | None = None,
    ) -> WriteResult:
        """Replace a fact with a corrected one; the old one is kept, superseded.

        The correction is the user's (manual) unless ``evidence`` says who made it.
        """
        old = self.get(fact_id)
        new = (subject or old.subject, relation or old.relation, obj or old.object)
        keys = [norm(x) for x in (old.subject, old.relation, old.object)]
        if [norm(clean(x, "name")) for x in new] == keys:
            raise InvalidInputError(f"the edit leaves fact {fact_id} unchanged")
        evidence = evidence or Evidence(origin="manual", sentence=f"edited from fact {fact_id}")
        result = self.add(*new, evidence)
        if result.fact.id == fact_id:
            raise InvalidInputError(f"the edit leaves fact {fact_id} unchanged")
        if self.get(fact_id).status == "current":
            self._supersede(fact_id, result.fact.id, now(), "edit")
        superseded = [f for f in result.superseded if f.id != fact_id] + [self.get(fact_id)]
        return WriteResult(self.get(result.fact.id), result.action, superseded, result.warnings)

    def _end(self, fact_id: int, status: str, op: str) -> Fact:
        fact = self.get(fact_id)
        if fact.status == status:
            raise InvalidInputError(f"fact {fact_id} is already {status}")
        before = self.snapshot(fact_id)
        self._conn.execute(
            "UPDATE facts SET status = ?, valid_to = coalesce(valid_to, ?) WHERE id = ?",
            (status, now(), fact_id),
        )
        self.log(op, fact_id, before)
        return self.get(fact_id)

    def remove(self, fact_id: int) -> Fact:
        """Mark a fact deleted (undoable; ``--all`` still lists it)."""
        return self._end(fact_id, "deleted", "delete")

    def retract(self, fact_id: int) -> Fact:
        """Mark a fact retracted: its source no longer states it."""
        return self._end(fact_id, "retracted", "retract")

    def restore(self, record: dict[str, Any]) -> Fact:
        """Write a fact exactly as exported (status, times, evidence), for ``facts import``.

        ``superseded_by`` in ``record`` is resolved by the caller to a fact id.
        """
        if record.get("status", "current") not in STATUSES:
            raise InvalidInputError(f"status is one of {', '.join(STATUSES)}")
        if record.get("origin", "manual") not in ORIGINS:
            raise InvalidInputError(f"origin is one of {', '.join(ORIGINS)}")
        subject_id = self._names.entity(record["subject"], "subject")
        relation_id, _ = self._relations.relation(record["relation"])
        object_id = self._names.entity(record["object"], "object")
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
        row = self._conn.execute(
            "SELECT id FROM facts WHERE subject_id = :subject_id AND relation_id = :relation_id "
            "AND object_id = :object_id",
            keys,
        ).fetchone()
        if row is None:
            before = None
            fact_id = self._conn.execute(
                f"INSERT INTO facts ({', '.join(FACT_COLUMNS)}) "
                f"VALUES ({', '.join(':' + c for c in FACT_COLUMNS)})",
                {**keys, **values},
            ).lastrowid
        else:
            fact_id, before = row[0], self.snapshot(row[0])
            assignments = ", ".join(f"{c} = :{c}" for c in values)
            self._conn.execute(
                f"UPDATE facts SET {assignments} WHERE id = :id", {**values, "id": fact_id}
            )
        for item in record.get("evidence") or [Evidence(origin=values["origin"]).to_dict()]:
            self._documents.add_evidence(fact_id, Evidence.from_dict(item))
        self.log("import", fact_id, before)
        return self.get(fact_id)

    def set_superseded_by(self, fact_id: int, by: int | None) -> None:
        """Link a restored fact to its successor once both exist (import's second pass)."""
        self._conn.execute("UPDATE facts SET superseded_by = ? WHERE id = ?", (by, fact_id))
        self._oplog.amend_latest(fact_id, self.snapshot(fact_id))

    def put_back(self, fact_id: int, before: dict[str, Any] | None) -> None:
        """Set the fact's row to ``before``; None means it did not exist (undo).

        A row a merge dropped (a duplicate) is inserted again under its id.
        """
        if before is None:
            self._conn.execute("DELETE FROM facts WHERE id = ?", (fact_id,))
        elif self.snapshot(fact_id) is None:
            self._conn.execute(
                f"INSERT INTO facts (id, {', '.join(FACT_COLUMNS)}) "
                f"VALUES (:id, {', '.join(':' + c for c in FACT_COLUMNS)})",
                {**before, "id": fact_id},
            )
        else:
            assignments = ", ".join(f"{c} = :{c}" for c in FACT_COLUMNS)
            self._conn.execute(
                f"UPDATE facts SET {assignments} WHERE id = :id", {**before, "id": fact_id}
            )
