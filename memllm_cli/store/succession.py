"""Succession: which fact follows which when a sentence states a change.

The queries :meth:`FactTable.add <memllm_cli.store.facts.FactTable.add>` needs to link
a fact that a sentence says was left ("moved from Naples to Rome") with the fact that
replaced it, whichever of the two the model wrote first; the rules that tell them apart
are :mod:`~memllm_cli.store.changes`; and whether the user's own word ended a fact, which
no automatic write may undo.
"""

from __future__ import annotations

from memllm_cli.store import db
from memllm_cli.store.changes import names, was_left


class Succession:
    """Links between a fact that ended and the one that followed it."""

    def __init__(self, conn: db.Connection) -> None:
        self._conn = conn

    def _siblings(self, fact_id: int, status_clause: str) -> list[tuple[int, str]]:
        """(id, object name) of the facts with ``fact_id``'s subject and relation, not it."""
        return self._conn.execute(
            "SELECT f.id, o.name FROM facts f JOIN facts me ON me.id = ? "
            "JOIN entities o ON o.id = f.object_id WHERE f.subject_id = me.subject_id "
            f"AND f.relation_id = me.relation_id AND f.id != me.id AND {status_clause} "
            "ORDER BY f.id DESC",
            (fact_id,),
        ).fetchall()

    def successor(self, fact_id: int, sentence: str) -> int | None:
        """The current fact that replaced ``fact_id`` in ``sentence``, if already written.

        One whose object ``sentence`` names first, else the newest current one.
        """
        current = [
            (i, name)
            for i, name in self._siblings(fact_id, "f.status = 'current'")
            if not was_left(sentence, name)
        ]
        named = [i for i, name in current if name.casefold() in sentence.casefold()]
        return (named or [i for i, _ in current] or [None])[0]

    def left_behind(self, fact_id: int, sentence: str) -> list[int]:
        """Superseded facts with no successor whose object ``sentence`` says was left."""
        return [
            i
            for i, name in self._siblings(
                fact_id, "f.status = 'superseded' AND f.superseded_by IS NULL"
            )
            if was_left(sentence, name)
        ]

    def stated(self, fact_id: int, sentence: str) -> bool:
        """Whether ``sentence`` names ``fact_id``'s object as a value it states, not one left."""
        row = self._conn.execute(
            "SELECT o.name FROM facts f JOIN entities o ON o.id = f.object_id WHERE f.id = ?",
            (fact_id,),
        ).fetchone()
        return bool(row) and names(sentence, row[0]) and not was_left(sentence, row[0])

    def until(self, successor: int | None, stamp: str) -> str:
        """When a superseded fact stopped holding, as its ``valid_to``: when ``successor`` began.

        ``stamp`` (the write's time) when there is no successor or it has no start. So
        a one-valued relation has one value at any time (``facts list --as-of``), even
        when the successor began before the fact (a manual fact that wins over a later
        document's): that fact's validity is then empty, and no time sees it.
        """
        if successor is None:
            return stamp
        row = self._conn.execute("SELECT valid_from FROM facts WHERE id = ?", (successor,))
        began = row.fetchone()
        return began[0] if began and began[0] else stamp

    def overruled(self, fact_id: int) -> bool:
        """Whether the user rejected the fact: deleted it, or replaced it by a manual fact.

        ``facts rm`` deletes; ``facts edit`` and a manual write of a one-valued relation
        supersede by a manual fact. Both hold until the user undoes them or states the
        fact again by hand; no document or chat brings the fact back.
        """
        row = self._conn.execute(
            "SELECT 1 FROM facts f LEFT JOIN facts by ON by.id = f.superseded_by "
            "WHERE f.id = ? AND (f.status = 'deleted' "
            "OR (f.status = 'superseded' AND by.origin = 'manual'))",
            (fact_id,),
        ).fetchone()
        return row is not None

    def link(self, fact_id: int, successor: int) -> None:
        """Record ``successor`` as the fact that replaced ``fact_id``."""
        self._conn.execute("UPDATE facts SET superseded_by = ? WHERE id = ?", (successor, fact_id))
