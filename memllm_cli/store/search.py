"""``facts search``: semantic and keyword search over facts, fused by reciprocal rank.

Each signal ranks facts: keyword hits (FTS5) in entity names, relation labels
and evidence sentences, and nearest names and labels by embedding. Reciprocal
rank fusion (score = sum of 1 / (60 + rank)) merges them, so a fact found by
several signals rises without any score needing calibration against another.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence

from memllm_cli.embed import Embedder
from memllm_cli.store.models import SearchHit
from memllm_cli.store.store import Store

RRF_K = 60
PER_SIGNAL = 200
WORD = re.compile(r"\w+", re.UNICODE)


def _fts_query(text: str) -> str | None:
    """Words of ``text`` as an FTS5 OR-query with every token quoted (no syntax leaks through)."""
    words = WORD.findall(text)
    return " OR ".join(f'"{word}"' for word in words) if words else None


def _facts_by(store: Store, column: str, ranked_ids: Sequence[int], include_all: bool) -> list[int]:
    """Fact ids whose ``column`` is one of ``ranked_ids``, in the order of those ids."""
    if not ranked_ids:
        return []
    status = "" if include_all else " AND f.status = 'current'"
    rows = store.conn.execute(
        f"SELECT f.id, j.key FROM json_each(?) j JOIN facts f ON f.{column} = j.value "
        f"WHERE 1{status} ORDER BY j.key, f.id LIMIT ?",
        (json.dumps(list(ranked_ids)), PER_SIGNAL),
    ).fetchall()
    return [row[0] for row in rows]


def _entity_signal(store: Store, entity_ids: Sequence[int], include_all: bool) -> list[int]:
    """Facts mentioning these entities as subject or object, best entity first."""
    by_subject = _facts_by(store, "subject_id", entity_ids, include_all)
    by_object = _facts_by(store, "object_id", entity_ids, include_all)
    return list(dict.fromkeys(by_subject + by_object))


def search(
    store: Store,
    text: str,
    embedder: Embedder | None = None,
    *,
    limit: int = 20,
    include_all: bool = False,
) -> list[SearchHit]:
    """Facts matching ``text``, best first. Without an embedder, keyword signals only."""
    signals: dict[str, list[int]] = {}
    match = _fts_query(text)
    if match is not None:
        names = store.conn.execute(
            "SELECT DISTINCT n.entity_id FROM names_fts JOIN names n ON n.id = names_fts.rowid "
            "WHERE names_fts MATCH ? ORDER BY bm25(names_fts) LIMIT ?",
            (match, PER_SIGNAL),
        ).fetchall()
        signals["name"] = _entity_signal(store, [r[0] for r in names], include_all)
        labels = store.conn.execute(
            "SELECT rowid FROM relations_fts WHERE relations_fts MATCH ? "
            "ORDER BY bm25(relations_fts) LIMIT 25",
            (match,),
        ).fetchall()
        signals["relation"] = _facts_by(store, "relation_id", [r[0] for r in labels], include_all)
        status = "" if include_all else " AND f.status = 'current'"
        sentences = store.conn.execute(
            "SELECT DISTINCT p.fact_id FROM sentences_fts JOIN provenance p "
            "ON p.id = sentences_fts.rowid JOIN facts f ON f.id = p.fact_id "
            f"WHERE sentences_fts MATCH ?{status} ORDER BY bm25(sentences_fts) LIMIT ?",
            (match, PER_SIGNAL),
        ).fetchall()
        signals["sentence"] = [r[0] for r in sentences]
    if embedder is not None and text.strip():
        store.index_pending(embedder)
        (vector,) = store.embed(embedder, [text.strip()])
        near_names = store.similar_names(vector, k=50, max_distance=0.6)
        signals["similar name"] = _entity_signal(store, [e for e, _ in near_names], include_all)
        near_labels = store.similar_relations(vector, k=5, max_distance=0.6)
        signals["similar relation"] = _facts_by(
            store, "relation_id", [r for r, _ in near_labels], include_all
        )
    scores: dict[int, float] = defaultdict(float)
    matched: dict[int, list[str]] = defaultdict(list)
    for signal, ranked in signals.items():
        for rank, fact_id in enumerate(ranked, start=1):
            scores[fact_id] += 1.0 / (RRF_K + rank)
            matched[fact_id].append(signal)
    best = sorted(scores, key=lambda f: (-scores[f], f))[:limit]
    return [SearchHit(store.fact(f), round(scores[f], 6), matched[f]) for f in best]
