"""MemLLM's read semantics: answer ``subject>>relation>>`` or ``>>relation>>object``.

Exact name and label matches come first and need no embedder. When the name or
the label has no exact match (or the exact one yields no fact), vector
candidates stand in: up to ``k_entity`` entities and ``k_relation`` relations
within the distance thresholds, and a fact qualifies when the mean of its two
distances is within ``tau_mean``. Answers are ranked by that mean, at most
``max_results``. The thresholds are calibrated for all-MiniLM-L6-v2 cosine
distances (not the paper's Contriever values): see ``scripts/calibration.md`` and
``scripts/calibrate_thresholds.py``.

This module holds the semantics only: lookups go one way, to the store's
components (names for exact ids, vectors for near ones, the fact table to score).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from memllm_cli.embed import MINILM_THRESHOLDS, Embedder
from memllm_cli.embed.hashed import HashEmbedder
from memllm_cli.protocol import ProtocolError, ReadQuery
from memllm_cli.store.facts import FactTable
from memllm_cli.store.models import ReadAnswer
from memllm_cli.store.store import Store


@dataclass(frozen=True)
class ReadConfig:
    """Candidate counts and cosine-distance thresholds for fuzzy reads.

    The thresholds belong to the embedding model (``Embedder.read_thresholds``);
    the defaults are all-MiniLM-L6-v2's, which memllm ships.
    """

    # The paper's k is about 300. With the calibrated tau_entity, at 100k facts 0.2 names
    # on average fall within range, and 1-bit search for k*4 candidates costs ~10x more at
    # k=300 than at k=32 (bench/README.md): so 32.
    k_entity: int = 32
    k_relation: int = 25
    tau_entity: float = MINILM_THRESHOLDS.tau_entity
    tau_relation: float = MINILM_THRESHOLDS.tau_relation
    tau_mean: float = MINILM_THRESHOLDS.tau_mean
    max_results: int = 30


DEFAULT_READ = ReadConfig()
HASH_READ = replace(DEFAULT_READ, **asdict(HashEmbedder.read_thresholds))


def config_for(embedder: Embedder | None) -> ReadConfig:
    """The read configuration with the thresholds calibrated for ``embedder``'s model."""
    if embedder is None:
        return DEFAULT_READ
    return replace(DEFAULT_READ, **asdict(embedder.read_thresholds))


def read(
    store: Store,
    query: ReadQuery,
    embedder: Embedder | None = None,
    config: ReadConfig | None = None,
) -> list[ReadAnswer]:
    """Ranked answers to one read query. Without an embedder, only exact matches answer."""
    config = config or config_for(embedder)
    name = query.subject if query.subject is not None else query.object
    if name is None:
        raise ProtocolError("a read query names exactly one of subject and object")
    names, vectors, facts = store.names, store.vectors, store.fact_table
    exact_entities = [(e, 0.0) for e in names.entity_ids(name)]
    exact_relations = [(r, 0.0) for r in names.relation_ids(query.relation)]
    answers = _answers(facts, query, exact_entities, exact_relations, config)
    if answers or embedder is None:
        return answers
    vectors.index_pending(embedder)
    name_vector, relation_vector = vectors.embed(embedder, [name, query.relation])

    def fuzzy_entities() -> list[tuple[int, float]]:
        return vectors.similar_names(name_vector, k=config.k_entity, max_distance=config.tau_entity)

    fuzzy_relations = vectors.similar_relations(
        relation_vector, k=config.k_relation, max_distance=config.tau_relation
    )
    # Keep whichever side matched exactly; widen only the side that did not (the name
    # search is the costly one, so it runs only when needed)...
    if exact_entities:
        answers = _answers(facts, query, exact_entities, exact_relations or fuzzy_relations, config)
        if answers:
            return answers
        near_names = fuzzy_entities()
    else:
        near_names = fuzzy_entities()
        answers = _answers(facts, query, near_names, exact_relations or fuzzy_relations, config)
        if answers:
            return answers
    # ...and when exact matches still give nothing, widen both.
    return _answers(
        facts,
        query,
        _merge(exact_entities, near_names),
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
    facts: FactTable,
    query: ReadQuery,
    entities: list[tuple[int, float]],
    relations: list[tuple[int, float]],
    config: ReadConfig,
) -> list[ReadAnswer]:
    """The best-scored fact for each distinct answer, best first, at most ``max_results``."""
    if not entities or not relations:
        return []
    rows = facts.scored(
        query.asks_for,
        entities,
        relations,
        max_mean=config.tau_mean,
        limit=config.max_results * 4,
    )
    best: dict[str, ReadAnswer] = {}
    for fact_id, score, answer_name, s, r, o in rows:
        best.setdefault(answer_name, ReadAnswer(answer_name, fact_id, round(score, 6), s, r, o))
    return list(best.values())[: config.max_results]
