"""``facts search``: semantic and keyword search over facts, fused by reciprocal rank.

Each signal ranks facts: keyword hits (FTS5) in entity names, relation labels
and evidence sentences, and nearest names and labels by embedding. Reciprocal
rank fusion (score = sum of 1 / (60 + rank)) merges them, so a fact found by
several signals rises without any score needing calibration against another.
Each signal's query lives with the component that owns its index.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from memllm_cli.embed import Embedder
from memllm_cli.store.models import SearchHit
from memllm_cli.store.ranking import FactRanking
from memllm_cli.store.store import Store

RRF_K = 60
PER_SIGNAL = 200
WORD = re.compile(r"\w+", re.UNICODE)


def _fts_query(text: str) -> str | None:
    """Words of ``text`` as an FTS5 OR-query with every token quoted (no syntax leaks through)."""
    words = WORD.findall(text)
    return " OR ".join(f'"{word}"' for word in words) if words else None


def _entity_signal(facts: FactRanking, entity_ids: Sequence[int], include_all: bool) -> list[int]:
    """Facts mentioning these entities as subject or object, best entity first."""
    by_subject = facts.ids_by("subject_id", entity_ids, include_all, PER_SIGNAL)
    by_object = facts.ids_by("object_id", entity_ids, include_all, PER_SIGNAL)
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
    names, facts = store.names, store.ranking
    signals: dict[str, list[int]] = {}
    match = _fts_query(text)
    if match is not None:
        entities = names.keyword_entities(match, PER_SIGNAL)
        signals["name"] = _entity_signal(facts, entities, include_all)
        labels = store.relation_table.keyword_relations(match)
        signals["relation"] = facts.ids_by("relation_id", labels, include_all, PER_SIGNAL)
        signals["sentence"] = store.documents.keyword_facts(match, include_all, PER_SIGNAL)
    if embedder is not None and text.strip():
        store.vectors.index_pending(embedder)
        (vector,) = store.vectors.embed(embedder, [text.strip()])
        near_names = store.vectors.similar_names(vector, k=50, max_distance=0.6)
        signals["similar name"] = _entity_signal(facts, [e for e, _ in near_names], include_all)
        near_labels = store.vectors.similar_relations(vector, k=5, max_distance=0.6)
        signals["similar relation"] = facts.ids_by(
            "relation_id", [r for r, _ in near_labels], include_all, PER_SIGNAL
        )
    scores: dict[int, float] = defaultdict(float)
    matched: dict[int, list[str]] = defaultdict(list)
    for signal, ranked in signals.items():
        for rank, fact_id in enumerate(ranked, start=1):
            scores[fact_id] += 1.0 / (RRF_K + rank)
            matched[fact_id].append(signal)
    best = sorted(scores, key=lambda f: (-scores[f], f))[:limit]
    return [SearchHit(store.fact_table.get(f), round(scores[f], 6), matched[f]) for f in best]
