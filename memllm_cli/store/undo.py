"""Undo: the op log played backwards over facts, their evidence and ingested documents.

Undo is the one change that spans every component: it puts fact rows back as the
op log recorded them, drops the evidence the undone batch added, un-ingests the
document versions it ingested and removes entities nothing mentions or aliases any more.
Entity, name and evidence rows that aliases and merges changed go back the same
way, in reverse order, so a merge's removed entity exists again before its facts
point at it. The SQL stays with each table's owner; this module only sequences it.
"""

from __future__ import annotations

import json

from memllm_cli.errors import UndoConflictError
from memllm_cli.store.documents import Documents
from memllm_cli.store.facts import FactTable
from memllm_cli.store.models import UndoResult
from memllm_cli.store.names import Names
from memllm_cli.store.oplog import OpLog


def undo(
    oplog: OpLog,
    facts: FactTable,
    documents: Documents,
    names: Names,
    *,
    op_id: int | None = None,
    batch_id: int | None = None,
    kind: str | None = None,
) -> UndoResult:
    """Undo one op, one batch, or (with neither) the latest batch not yet undone.

    With ``kind``, only batches of that kind undo (an MCP client's own writes).
    Refuses when a later change to the same facts would be overwritten.
    """
    with oplog.batch("undo", "undo") as undo_batch:
        ops, what = oplog.to_undo(op_id, batch_id, kind)
        undoing = {op[0] for op in ops}
        for op_row_id, _, target, row_id, _ in ops:
            later = oplog.later_change(target, row_id, op_row_id, undoing)
            if later is not None:
                raise UndoConflictError(
                    f"{'fact' if target == 'fact' else target + ' row'} {row_id} was changed "
                    f"later by op {later}; undo that first"
                )
        touched_entities: set[int] = set()
        for op_row_id, op_batch, target, row_id, before_json in reversed(ops):
            before = None if before_json is None else json.loads(before_json)
            if target == "fact":
                current = facts.snapshot(row_id)
                if current is not None:
                    touched_entities |= {current["subject_id"], current["object_id"]}
                documents.drop_evidence(op_batch, row_id)
                facts.put_back(row_id, before)
                facts.log("undo", row_id, current)
            elif target == "evidence":
                documents.put_back_evidence(row_id, before, "undo")
            else:
                if target == "name":  # an entity left with no alias and no fact goes too
                    current = names.snapshot("name", row_id)
                    touched_entities |= {r["entity_id"] for r in (before, current) if r}
                names.put_back(target, row_id, before, "undo")
            oplog.mark_op_undone(op_row_id, undo_batch)
        if batch_id is not None or op_id is None:
            undone = ops[0][1]
            oplog.mark_batch_undone(undone, undo_batch)
            # An undone ingest leaves its document version un-ingested again.
            documents.forget_ingest(undone)
        oplog.describe(undo_batch, f"undo {what}")
        names.prune(touched_entities)
    return UndoResult(batch_id=undo_batch, undone_ops=len(ops), description=f"undo {what}")
