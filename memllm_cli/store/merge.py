"""Merging two entities that are one real thing (``memllm facts merge NAME OTHER``).

OTHER's facts move to NAME's entity, its names become NAME's aliases and its
entity row goes. Every change is an op of the merge's batch, so one undo puts
back the exact rows (facts, evidence, names, the entity). The facts table's side
of a merge is here, beside facts.py (as listing is in filters.py); names and
evidence move through their owners.

- Duplicates: a moved fact that NAME's entity already has (same subject, relation,
  object) collapses into one row holding the evidence of both. The row that
  survives is the current one when only one is current, else NAME's; it keeps its
  own status and validity. Facts superseded by the dropped row point at the survivor.
- One-valued relations: when NAME's entity ends up with several current objects
  for one (two residences), the newest (by ``valid_from``, then creation) stays
  current and supersedes the others, as a write would; a manual fact is never
  superseded by an automatic one (it wins instead), and two manual facts are both
  left current and reported, since only the user can choose between them.
"""

from __future__ import annotations

from typing import Any

from memllm_cli.errors import InvalidInputError
from memllm_cli.store import db
from memllm_cli.store.documents import Documents
from memllm_cli.store.facts import FactTable
from memllm_cli.store.models import Fact, MergeResult
from memllm_cli.store.names import Names
from memllm_cli.store.text import now

OP = "merge"


def merge(
    conn: db.Connection,
    facts: FactTable,
    documents: Documents,
    names: Names,
    name: str,
    other: str,
) -> MergeResult:
    """Merge the entity ``other`` names into the one ``name`` names, inside the current batch."""
    into, gone = names.entity_id(name), names.entity_id(other)
    if into == gone:
        raise InvalidInputError(f"{name!r} and {other!r} already name the same entity")
    into_name, gone_name = names.canonical(into), names.canonical(gone)
    moved: list[int] = []
    collapsed: list[tuple[int, int]] = []
    touching = conn.execute(
        "SELECT id FROM facts WHERE subject_id = ? OR object_id = ? ORDER BY id", (gone, gone)
    ).fetchall()
    for (fact_id,) in touching:
        row = facts.snapshot(fact_id)
        assert row is not None
        key = {
            "subject_id": into if row["subject_id"] == gone else row["subject_id"],
            "relation_id": row["relation_id"],
            "object_id": into if row["object_id"] == gone else row["object_id"],
        }
        twin = conn.execute(
            "SELECT id, status FROM facts WHERE subject_id = :subject_id "
            "AND relation_id = :relation_id AND object_id = :object_id",
            key,
        ).fetchone()
        if twin is not None:
            keep, drop = (
                (fact_id, twin[0])
                if row["status"] == "current" and twin[1] != "current"
                else (twin[0], fact_id)
            )
            _collapse(conn, facts, documents, drop, keep)
            collapsed.append((drop, keep))
            if keep != fact_id:
                continue
        _change(conn, facts, fact_id, OP, subject_id=key["subject_id"], object_id=key["object_id"])
        moved.append(fact_id)
    aliases = names.move_names(gone, into, OP)
    names.drop_entity(gone, OP)
    superseded, conflicts = _settle_one_valued(conn, facts, into)
    return MergeResult(into_name, gone_name, moved, collapsed, superseded, aliases, conflicts)


def _change(conn: db.Connection, facts: FactTable, fact_id: int, op: str, **values: Any) -> None:
    """Set columns of a fact's row, logged as ``op``."""
    before = facts.snapshot(fact_id)
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    conn.execute(f"UPDATE facts SET {assignments} WHERE id = :id", {**values, "id": fact_id})
    facts.log(op, fact_id, before)


def _collapse(
    conn: db.Connection, facts: FactTable, documents: Documents, drop: int, keep: int
) -> None:
    """Fold the fact ``drop`` into its twin ``keep``: evidence, successors, then the row."""
    documents.move_evidence(drop, keep, OP)
    dropped = facts.snapshot(drop)
    assert dropped is not None
    for (fact_id,) in conn.execute(
        "SELECT id FROM facts WHERE superseded_by = ? ORDER BY id", (drop,)
    ).fetchall():
        # The survivor never supersedes itself: it takes the dropped row's successor.
        successor = dropped["superseded_by"] if fact_id == keep else keep
        _change(conn, facts, fact_id, OP, superseded_by=successor)
    conn.execute("DELETE FROM facts WHERE id = ?", (drop,))
    facts.log(OP, drop, dropped)


def _settle_one_valued(
    conn: db.Connection, facts: FactTable, entity_id: int
) -> tuple[list[Fact], list[str]]:
    """Leave one current object per one-valued relation of the entity; see the module doc."""
    rows = conn.execute(
        "SELECT f.id, f.relation_id, f.origin, f.valid_from FROM facts f "
        "JOIN relations r ON r.id = f.relation_id WHERE f.subject_id = ? "
        "AND f.status = 'current' AND r.cardinality = 'one' "
        "ORDER BY f.relation_id, coalesce(f.valid_from, f.created_at), f.created_at, f.id",
        (entity_id,),
    ).fetchall()
    groups: dict[int, list[tuple[int, str, str | None]]] = {}
    for fact_id, relation_id, origin, valid_from in rows:
        groups.setdefault(relation_id, []).append((fact_id, origin, valid_from))
    superseded, conflicts = [], []
    for group in groups.values():
        if len(group) < 2:
            continue
        manual = [fact for fact in group if fact[1] == "manual"]
        winner = (manual or group)[-1]
        if len(manual) > 1:
            conflicts.append(facts.get(winner[0]).label.rsplit(" >> ", 1)[0])
        for fact_id, origin, valid_from in group:
            if fact_id == winner[0] or origin == "manual":
                continue
            until = max(filter(None, (valid_from, winner[2])), default=now())
            _change(
                conn,
                facts,
                fact_id,
                "supersede",
                status="superseded",
                valid_to=until,
                superseded_by=winner[0],
            )
            superseded.append(facts.get(fact_id))
    return superseded, conflicts
