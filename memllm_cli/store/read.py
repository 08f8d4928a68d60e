"""MemLLM's read semantics: answer ``subject>>relation>>`` or ``>>relation>>object``.

Exact name and label matches come first and need no embedder. When the name or
the label has no exact match (or the exact one yields no fact), vector
candidates stand in: up to ``k_entity`` entities and ``k_relation`` relations
within the distance thresholds, and a fact qualifies when the mean of its two
distances is within ``tau_mean``. Answers are ranked by that mean, at most
``max_results``. The thresholds are calibrated for all-MiniLM-L6-v2 cosine
distances (not the paper's Contriever values): see ``scripts/calibration.md`` and
``scripts/calibrate_thresholds.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from memllm_cli.embed import Embedder
from memllm_cli.protocol import ReadQuery
from memllm_cli.store.models import ReadAnswer
from memllm_cli.store.store import Store


@dataclass(frozen=True)
class ReadConfig:
    """Candidate counts and cosine-distance thresholds for fuzzy reads."""

    k_entity: int = 300
    k_relation: int = 25
    tau_entity: float = 0.08
    tau_relation: float = 0.225
    tau_mean: float = 0.15
    max_results: int = 30


DEFAULT_READ = ReadConfig()
# The deterministic test embedder's distances are larger than MiniLM's for the same
# variation ("Ingrid Solbergg" is 0.135 from "Ingrid Solberg" under it, 0.072 under
# MiniLM), so it keeps looser, uncalibrated thresholds of its own.
HASH_READ = ReadConfig(tau_entity=0.35, tau_relation=0.45, tau_mean=0.30)


def config_for(embedder: Embedder | None) -> ReadConfig:
    """The thresholds calibrated for ``embedder``'s model."""
    if embedder is not None and embedder.model_id.startswith("memllm/hash"):
        return HASH_READ
    return DEFAULT_READ


def read(
    store: Store,
    query: ReadQuery,
    embedder: Embedder | None = None,
    config: ReadConfig | None = None,
) -> list[ReadAnswer]:
    """Ranked answers to one read query. Without an embedder, only exact matches answer."""
    config = config or config_for(embedder)
    name = query.subject if query.subject is not None else query.object
    assert name is not None
    exact_entities = [(e, 0.0) for e in store.entity_ids(name)]
    exact_relations = [(r, 0.0) for r in store.relation_ids(query.relation)]
    answers = _answers(store, query, exact_entities, exact_relations, config)
    if answers or embedder is None:
        return answers
    store.index_pending(embedder)
    name_vector, relation_vector = store.embed(embedder, [name, query.relation])
    fuzzy_entities = store.similar_names(
        name_vector, k=config.k_entity, max_distance=config.tau_entity
    )
    fuzzy_relations = store.similar_relations(
        relation_vector, k=config.k_relation, max_distance=config.tau_relation
    )
    # Keep whichever side matched exactly; widen only the side that did not...
    answers = _answers(
        store, query, exact_entities or fuzzy_entities, exact_relations or fuzzy_relations, config
    )
    if answers:
        return answers
    # ...and when exact matches still give nothing, widen both.
    return _answers(
        store,
        query,
        _merge(exact_entities, fuzzy_entities),
        _merge(exact_relations, fuzzy_relations),
        config,
    )


def _merge(
    exact: list[tuple[int, float]], fuzzy: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    """Exact matches (distance 0) first, then the fuzzy ones not already present."""
    seen = {item for item, _ in exact}
    return exact + [(item, d) for item, d in fuzzy if item not in seen]


def _answers(
    store: Store,
    query: ReadQuery,
    entities: list[tuple[int, float]],
    relations: list[tuple[int, float]],
    config: ReadConfig,
) -> list[ReadAnswer]:
    if not entities or not relations:
        return []
    known, answer = (
        ("subject_id", "object_id") if query.asks_for == "object" else ("object_id", "subject_id")
    )
    entity_distance = dict(entities)
    relation_distance = dict(relations)
    rows = store.conn.execute(
        f"SELECT f.id, f.{known}, f.relation_id, a.name, s.name, r.label, o.name "
        "FROM facts f "
        f"JOIN entities a ON a.id = f.{answer} "
        "JOIN entities s ON s.id = f.subject_id "
        "JOIN relations r ON r.id = f.relation_id "
        "JOIN entities o ON o.id = f.object_id "
        f"WHERE f.status = 'current' AND f.{known} IN (SELECT value FROM json_each(?)) "
        "AND f.relation_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(entity_distance)), json.dumps(list(relation_distance))),
    ).fetchall()
    scored = []
    for fact_id, entity_id, relation_id, answer_name, s, r, o in rows:
        score = (entity_distance[entity_id] + relation_distance[relation_id]) / 2
        if score <= config.tau_mean:
            scored.append(ReadAnswer(answer_name, fact_id, round(score, 6), s, r, o))
    scored.sort(key=lambda a: (a.score, a.fact_id))
    best: dict[str, ReadAnswer] = {}
    for item in scored:
        best.setdefault(item.answer, item)
    return list(best.values())[: config.max_results]
