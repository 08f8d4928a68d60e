"""The operation log: batches and ops, the history they make and what undo reads of them.

Every change happens inside a batch (:meth:`OpLog.batch`): one transaction and one
undo unit. Each change to a fact is logged as an op holding the fact's row before
and after, so ``history`` can show it and :mod:`memllm_cli.store.undo` can reverse
it. Aliases and merges also change entities, names and evidence rows: those ops
name their ``target`` table (``ops.fact_id`` is then that row's id). This module
owns the ``batches`` and ``ops`` tables, and the transaction a batch is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memllm_cli.errors import InvalidInputError, NotFoundError, StoreError
from memllm_cli.store import db
from memllm_cli.store.models import Op
from memllm_cli.store.text import now

# One op to undo: (op id, batch id, target, row id, the row before it as JSON or None).
UndoOp = tuple[int, int, str, int, str | None]


class OpLog:
    """Batches (transactions and undo units) and the ops logged in them."""

    def __init__(self, conn: db.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._batch: int | None = None

    @contextmanager
    def batch(self, kind: str, description: str) -> Iterator[int]:
        """One transaction and one undo unit. Yields the batch id; rolls back on any error.

        A batch that changed nothing leaves no trace in the history.
        """
        if self._batch is not None:
            raise RuntimeError("batches do not nest")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except db.DatabaseError as exc:
            raise StoreError(f"cannot write to memory {self._path}: {db.describe(exc)}") from exc
        try:
            batch_id = self._conn.execute(
                "INSERT INTO batches (kind, description, created_at) VALUES (?, ?, ?)",
                (kind, description, now()),
            ).lastrowid
            self._batch = batch_id
            yield batch_id
            touched = self._conn.execute(
                "SELECT 1 FROM ops WHERE batch_id = ? UNION ALL "
                "SELECT 1 FROM provenance WHERE batch_id = ? UNION ALL "
                "SELECT 1 FROM sources WHERE ingest_batch = ? LIMIT 1",
                (batch_id, batch_id, batch_id),
            ).fetchone()
            if touched is None:
                self._conn.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            self._conn.execute("COMMIT")
        except db.DatabaseError as exc:
            self._conn.execute("ROLLBACK")
            raise StoreError(f"cannot write to memory {self._path}: {db.describe(exc)}") from exc
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        finally:
            self._batch = None

    def current(self) -> int:
        """The id of the batch in progress; writes outside a batch are a bug."""
        if self._batch is None:
            raise RuntimeError("writes happen inside Store.batch()")
        return self._batch

    def log(
        self,
        op: str,
        fact_id: int,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        target: str = "fact",
    ) -> None:
        """Record that ``op`` changed the row from ``before`` to ``after``.

        The row is a fact, or with ``target`` an entity, name or evidence row.
        """
        self._conn.execute(
            "INSERT INTO ops (batch_id, op, fact_id, before, after, created_at, target) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.current(),
                op,
                fact_id,
                None if before is None else json.dumps(before),
                None if after is None else json.dumps(after),
                now(),
                target,
            ),
        )

    def amend_latest(self, fact_id: int, after: dict[str, Any] | None) -> None:
        """Replace the row after the fact's latest op (import links successors afterwards)."""
        self._conn.execute(
            "UPDATE ops SET after = ? WHERE id = "
            "(SELECT max(id) FROM ops WHERE fact_id = ? AND target = 'fact')",
            (json.dumps(after), fact_id),
        )

    def history(
        self, *, limit: int | None = 50, batch_id: int | None = None, fact_id: int | None = None
    ) -> list[Op]:
        """The operation log, newest first."""
        clauses, params = [], []
        if batch_id is not None:
            clauses.append("o.batch_id = ?")
            params.append(batch_id)
        if fact_id is not None:
            clauses.append("o.fact_id = ? AND o.target = 'fact'")
            params.append(fact_id)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        # A name or entity op shows the name; an evidence op, the fact the evidence went to.
        sql = (
            "SELECT o.id, o.batch_id, b.description, o.op, "
            "CASE WHEN o.target = 'fact' THEN o.fact_id END, "
            "CASE o.target "
            "WHEN 'fact' THEN coalesce(s.name || ' >> ' || r.label || ' >> ' || e.name, '(gone)') "
            "WHEN 'evidence' THEN 'evidence of fact ' "
            "|| json_extract(coalesce(o.after, o.before), '$.fact_id') "
            "ELSE o.target || ' ' || json_extract(coalesce(o.after, o.before), '$.name') END, "
            "o.created_at, o.undone_by, o.target "
            "FROM ops o JOIN batches b ON b.id = o.batch_id "
            "LEFT JOIN facts f ON f.id = o.fact_id AND o.target = 'fact' "
            "LEFT JOIN entities s ON s.id = f.subject_id "
            "LEFT JOIN relations r ON r.id = f.relation_id "
            "LEFT JOIN entities e ON e.id = f.object_id" + where + " ORDER BY o.id DESC"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [Op(*row) for row in self._conn.execute(sql, params)]

    # -- what undo reads and marks ----------------------------------------------------------

    def to_undo(
        self, op_id: int | None, batch_id: int | None, kind: str | None = None
    ) -> tuple[list[UndoOp], str]:
        """The ops one undo reverses, oldest first, and how to describe them ("batch 3").

        A single op is a change to a fact outside a merge: a merge's changes hold
        together (its facts point at the entity it removed), so only its batch undoes.
        With ``kind``, only a batch of that kind: the latest one, or ``batch_id`` if it is.
        """
        if kind is not None and op_id is not None:
            raise InvalidInputError("undo of a single op does not choose batches by kind")
        select = "SELECT o.id, o.batch_id, o.target, o.fact_id, o.before FROM ops o "
        if op_id is not None:
            row = self._conn.execute(
                select + "JOIN batches b ON b.id = o.batch_id WHERE o.id = ? AND b.kind != 'undo'",
                (op_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no undoable op with id {op_id}")
            if self._conn.execute("SELECT undone_by FROM ops WHERE id = ?", (op_id,)).fetchone()[0]:
                raise InvalidInputError(f"op {op_id} is already undone")
            kind = self._conn.execute(
                "SELECT kind FROM batches WHERE id = ?", (row[1],)
            ).fetchone()[0]
            if row[2] != "fact" or kind == "merge":
                raise InvalidInputError(
                    f"op {op_id} is part of {'a merge' if kind == 'merge' else 'a name change'}; "
                    f"undo its whole batch: memllm undo --batch {row[1]}"
                )
            return [row], f"op {op_id}"
        if batch_id is None:
            row = self._conn.execute(
                "SELECT id FROM batches WHERE undone_by IS NULL AND kind != 'undo' "
                "AND kind = coalesce(?, kind) "
                "AND id IN (SELECT batch_id FROM ops WHERE undone_by IS NULL) "
                "ORDER BY id DESC LIMIT 1",
                (kind,),
            ).fetchone()
            if row is None:
                raise NotFoundError("nothing to undo" + (f" made by {kind}" if kind else ""))
            batch_id = row[0]
        batch = self._conn.execute(
            "SELECT kind, undone_by FROM batches WHERE id = ?", (batch_id,)
        ).fetchone()
        if batch is None:
            raise NotFoundError(f"no batch with id {batch_id}")
        if kind is not None and batch[0] != kind:
            raise InvalidInputError(
                f"batch {batch_id} is a {batch[0]}, not made by {kind}: only "
                f"'memllm undo --batch {batch_id}' undoes it"
            )
        if batch[0] == "undo":
            raise InvalidInputError(f"batch {batch_id} is itself an undo and cannot be undone")
        if batch[1] is not None:
            raise InvalidInputError(f"batch {batch_id} is already undone")
        ops = self._conn.execute(
            select + "WHERE o.batch_id = ? AND o.undone_by IS NULL ORDER BY o.id", (batch_id,)
        ).fetchall()
        if not ops:
            raise NotFoundError(f"batch {batch_id} has nothing left to undo")
        return ops, f"batch {batch_id}"

    def later_change(self, target: str, row_id: int, op_id: int, undoing: set[int]) -> int | None:
        """The first op after ``op_id`` still in effect on the row, other than ``undoing``."""
        row = self._conn.execute(
            "SELECT o.id FROM ops o JOIN batches b ON b.id = o.batch_id "
            "WHERE o.target = ? AND o.fact_id = ? AND o.id > ? AND o.undone_by IS NULL "
            "AND b.kind != 'undo' AND o.id NOT IN (SELECT value FROM json_each(?)) "
            "ORDER BY o.id LIMIT 1",
            (target, row_id, op_id, json.dumps(sorted(undoing))),
        ).fetchone()
        return None if row is None else row[0]

    def last_change(self) -> str | None:
        """When the latest batch that changed something was made."""
        return self._conn.execute("SELECT max(created_at) FROM batches").fetchone()[0]

    def mark_op_undone(self, op_id: int, undo_batch: int) -> None:
        self._conn.execute("UPDATE ops SET undone_by = ? WHERE id = ?", (undo_batch, op_id))

    def mark_batch_undone(self, batch_id: int, undo_batch: int) -> None:
        self._conn.execute("UPDATE batches SET undone_by = ? WHERE id = ?", (undo_batch, batch_id))

    def describe(self, batch_id: int, description: str) -> None:
        self._conn.execute(
            "UPDATE batches SET description = ? WHERE id = ?", (description, batch_id)
        )
