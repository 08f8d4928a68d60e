"""Ranking: the queries over current facts that MemLLM reads and ``facts search`` rank by.

Reads score facts by the distances of their known side and relation to the query's
(:meth:`FactRanking.scored`); searches collect fact ids by entity or relation. Both
run over the ``facts`` table that :mod:`~memllm_cli.store.facts` writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from memllm_cli.store import db
from memllm_cli.store.when import When

# (fact id, mean distance, answer name, subject, relation, object): one scored read answer.
ScoredRow = tuple[int, float, str, str, str, str]
MIDNIGHT = "T00:00:00.000000+00:00"  # what a bare date's time is (store.text.parse_time)


def _instant(column: str) -> str:
    """SQL for ``column``'s time in the store's full form: a bare date means its midnight UTC."""
    return f"(CASE WHEN length({column}) = 10 THEN {column} || '{MIDNIGHT}' ELSE {column} END)"


class FactRanking:
    """Fact queries for reads and searches, by candidate entities and relations."""

    def __init__(self, conn: db.Connection) -> None:
        self._conn = conn

    def scored(
        self,
        asks_for: str,
        entities: list[tuple[int, float]],
        relations: list[tuple[int, float]],
        *,
        max_mean: float,
        limit: int,
        when: When | None = None,
        successors: Sequence[int] = (),
    ) -> list[ScoredRow]:
        """Current facts whose known side and relation are candidates, by mean distance.

        ``entities`` and ``relations`` are (id, distance) pairs; the known side is the
        subject when the query ``asks_for`` the object, else the object. A read about a
        time (``when``) sees superseded facts too, those valid in ``when``'s window, or
        those superseded by a fact whose object is one of ``successors``, superseded
        ones first (the most recently ended first).
        """
        status, order, params = "f.status = 'current'", "", []
        if when is not None:
            status = "f.status IN ('current', 'superseded')"
            order = "f.status = 'current', coalesce(f.valid_to, '') DESC, "
            if when.window:
                # By day: the window is dates, validity dates or times ("2023-01-01T00:00...").
                # A fact that ended as it began never held (see Succession.until).
                status += (
                    " AND (f.valid_from IS NULL OR substr(f.valid_from, 1, 10) < ?) "
                    "AND (f.valid_to IS NULL OR substr(f.valid_to, 1, 10) > ?) "
                    f"AND (f.valid_from IS NULL OR f.valid_to IS NULL "
                    f"OR {_instant('f.valid_to')} > {_instant('f.valid_from')})"
                )
                params = [when.window[1], when.window[0]]
            if successors:
                status += (
                    " AND f.superseded_by IN (SELECT id FROM facts WHERE object_id IN "
                    "(SELECT value FROM json_each(?)))"
                )
                params.append(json.dumps(list(successors)))
        known, answer = (
            ("subject_id", "object_id") if asks_for == "object" else ("object_id", "subject_id")
        )
        # Score, filter, order and cut in SQL: a common object can have thousands of facts.
        return self._conn.execute(
            "WITH e(id, d) AS (SELECT CAST(key AS INTEGER), value FROM json_each(?)), "
            "r(id, d) AS (SELECT CAST(key AS INTEGER), value FROM json_each(?)) "
            f"SELECT f.id, (e.d + r.d) / 2.0 AS score, a.name, s.name, rel.label, o.name "
            f"FROM facts f JOIN e ON e.id = f.{known} JOIN r ON r.id = f.relation_id "
            f"JOIN entities a ON a.id = f.{answer} "
            "JOIN entities s ON s.id = f.subject_id "
            "JOIN relations rel ON rel.id = f.relation_id "
            "JOIN entities o ON o.id = f.object_id "
            f"WHERE {status} AND score <= ? ORDER BY score, {order}f.id LIMIT ?",
            (json.dumps(dict(entities)), json.dumps(dict(relations)), *params, max_mean, limit),
        ).fetchall()

    def relations_of(self, asks_for: str, entities: list[int]) -> list[int]:
        """Relations of the current facts whose known side is one of ``entities``.

        The known side is the subject when the query ``asks_for`` the object, else the object.
        """
        known = "subject_id" if asks_for == "object" else "object_id"
        rows = self._conn.execute(
            f"SELECT DISTINCT relation_id FROM facts WHERE {known} IN "
            "(SELECT value FROM json_each(?)) AND status = 'current' ORDER BY relation_id",
            (json.dumps(entities),),
        )
        return [row[0] for row in rows]

    def ids_by(
        self,
        column: Literal["subject_id", "object_id", "relation_id"],
        ranked_ids: Sequence[int],
        include_all: bool,
        limit: int,
    ) -> list[int]:
        """Fact ids whose ``column`` is one of ``ranked_ids``, in the order of those ids.

        One indexed query per id, each cut at what ``limit`` leaves, so a relation with
        20,000 facts costs what its first few do (one query over all ids sorted them all:
        30 ms at 100k facts). Within an entity, oldest first; within a relation, in its
        index's order (by object), which needs no sort.
        """
        status = "" if include_all else " AND status = 'current'"
        order = "" if column == "relation_id" else " ORDER BY id"
        sql = f"SELECT id FROM facts WHERE {column} = ?{status}{order} LIMIT ?"
        found: list[int] = []
        for key in ranked_ids:
            if len(found) >= limit:
                break
            found += [row[0] for row in self._conn.execute(sql, (key, limit - len(found)))]
        return found
