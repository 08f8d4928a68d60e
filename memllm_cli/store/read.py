"""MemLLM's read semantics: answer ``subject>>relation>>`` or ``>>relation>>object``.

Exact matches of a name (or an entity alias) and of a label (or a P-id or relation
alias: "lives in" for residence) come first and need no embedder. When the name or
the label has no exact match (or the exact one yields no fact), vector
candidates stand in: up to ``k_entity`` entities and ``k_relation`` relations
within the distance thresholds, and a fact qualifies when the mean of its two
distances is within ``tau_mean``. Answers are ranked by that mean, at most
``max_results``. The thresholds are calibrated for all-MiniLM-L6-v2 cosine
distances (not the paper's Contriever values): see ``scripts/calibration.md`` and
``scripts/calibrate_thresholds.py``.

When exact and fuzzy matches give nothing, the read degrades gracefully rather than
answering nothing at once:

- a name that is the first name or surname of exactly one entity's full name ("Tove"
  for "Tove Lindahl", "Dr. Rao" for "Anjali Rao") stands for that entity, and a full
  name with a title ("Dr. Anjali Rao") for the entity named without it;
- when the name is known (exactly, or as such a short name) but no fact of it has the
  asked relation, the entity's own facts answer, ranked by how close their relation
  (its label or any alias) is to the asked one, at most ``fallback_results`` of them and
  only within ``tau_fallback``. Such answers carry ``fallback=True``. This needs an
  embedder; without one a read stays exact (label similarity without meaning would
  offer "place of death" for "place of birth").

This module holds the semantics only: lookups go one way, to the store's
components (names for exact ids, vectors for near ones, the fact table to score).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from memllm_cli.embed import MINILM_THRESHOLDS, Embedder
from memllm_cli.embed.hashed import HashEmbedder
from memllm_cli.protocol import ProtocolError, ReadQuery
from memllm_cli.store.models import ReadAnswer
from memllm_cli.store.ranking import FactRanking
from memllm_cli.store.store import Store
from memllm_cli.store.when import When


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
    # The subject (or object) fallback: relation distance limit and how many answers.
    tau_fallback: float = MINILM_THRESHOLDS.tau_fallback
    fallback_results: int = 3
    # The time the read is about (store/when.py); None: the present, current facts only.
    # ``successors``: the entity ids a "before X" read's X means.
    when: When | None = None
    successors: tuple[int, ...] = ()


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
    when: When | None = None,
) -> list[ReadAnswer]:
    """Ranked answers to one read query about the present, or about the time ``when`` names.

    A read about a time sees superseded facts too (:meth:`FactRanking.scored`): for "before
    X" those X's fact superseded, for a year those valid in it. When that finds nothing it
    widens to the past in general: every current and superseded fact, superseded first.
    What came before X is never X itself: "Where did Tobias work before Halyard?" is not
    answered by his only fact, Halyard Systems.
    """
    config = config or config_for(embedder)
    if when is None:
        return _read(store, query, embedder, config)
    attempts = [replace(config, when=When())]
    names, later = store.names, set[int]()
    if when.window:
        attempts.insert(0, replace(config, when=when))
    elif when.before:
        later = set(names.meant(when.before))
        if later:
            attempts.insert(0, replace(config, when=when, successors=tuple(later)))
    for attempt in attempts:
        answers = _read(store, query, embedder, attempt)
        if later:  # one name lookup per answer, only when there is an X to leave out
            answers = [a for a in answers if not later & set(names.entity_ids(a.answer))]
        if answers:
            return answers
    return []


def _read(
    store: Store, query: ReadQuery, embedder: Embedder | None, config: ReadConfig
) -> list[ReadAnswer]:
    """Ranked answers to one read query. Without an embedder, only exact matches answer.

    Exact matches first, then fuzzy ones (with an embedder), then a short name, then the
    known entity's facts by relation similarity (with an embedder; marked ``fallback``).
    """
    name = query.subject if query.subject is not None else query.object
    if name is None:
        raise ProtocolError("a read query names exactly one of subject and object")
    names, vectors, facts = store.names, store.vectors, store.ranking
    exact_entities = [(e, 0.0) for e in names.entity_ids(name)]
    exact_relations = [(r, 0.0) for r in store.relation_table.relation_ids(query.relation)]
    answers = _answers(facts, query, exact_entities, exact_relations, config)
    if answers:
        return answers
    relation_vector, fuzzy_relations = None, []
    if embedder is not None:
        vectors.index_pending(embedder)
        name_vector, relation_vector = vectors.embed(embedder, [name, query.relation])
        fuzzy_relations = vectors.similar_relations(
            relation_vector, k=config.k_relation, max_distance=config.tau_relation
        )
        answers = _fuzzy(
            store, query, name_vector, exact_entities, exact_relations, fuzzy_relations, config
        )
        if answers:
            return answers
    # Nothing matched: degrade gracefully, from the entity the name surely means.
    known = exact_entities
    if not known:
        known = [(e, 0.0) for e in names.short_name_entities(name)]
        answers = _answers(facts, query, known, _merge(exact_relations, fuzzy_relations), config)
        if answers:
            return answers
    if not known or embedder is None or relation_vector is None:
        return []
    return _fallback(store, query, known, embedder, relation_vector, config)


def _fuzzy(
    store: Store,
    query: ReadQuery,
    name_vector: bytes,
    exact_entities: list[tuple[int, float]],
    exact_relations: list[tuple[int, float]],
    fuzzy_relations: list[tuple[int, float]],
    config: ReadConfig,
) -> list[ReadAnswer]:
    """Vector candidates for whichever side did not match exactly, then for both."""
    facts = store.ranking

    def fuzzy_entities() -> list[tuple[int, float]]:
        return store.vectors.similar_names(
            name_vector, k=config.k_entity, max_distance=config.tau_entity
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


def _fallback(
    store: Store,
    query: ReadQuery,
    known: list[tuple[int, float]],
    embedder: Embedder,
    relation_vector: bytes,
    config: ReadConfig,
) -> list[ReadAnswer]:
    """The known entity's facts whose relation is nearest the asked one, marked ``fallback``.

    A relation's distance is the least of its label's and its aliases' (all embedded once
    and cached); only relations within ``tau_fallback`` qualify, so an unrelated fact is
    never offered as the answer.
    """
    relation_ids = store.ranking.relations_of(query.asks_for, [e for e, _ in known])
    if not relation_ids:
        return []
    wordings = store.relation_table.relation_wordings(relation_ids)
    texts = [text for words in wordings.values() for text in words]
    distances = store.vectors.distances(embedder, relation_vector, texts)
    near = sorted(
        (min(distances[text] for text in words), relation_id)
        for relation_id, words in wordings.items()
    )
    relations = [(r, d) for d, r in near if d <= config.tau_fallback]
    loose = replace(config, tau_mean=config.tau_fallback, max_results=config.fallback_results)
    return [
        replace(a, fallback=True) for a in _answers(store.ranking, query, known, relations, loose)
    ]


def _merge(
    exact: list[tuple[int, float]], fuzzy: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    """Exact matches (distance 0) first, then the fuzzy ones not already present."""
    seen = {item for item, _ in exact}
    return exact + [(item, d) for item, d in fuzzy if item not in seen]


def _answers(
    facts: FactRanking,
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
        when=config.when,
        successors=config.successors,
    )
    best: dict[str, ReadAnswer] = {}
    for fact_id, score, answer_name, s, r, o in rows:
        best.setdefault(answer_name, ReadAnswer(answer_name, fact_id, round(score, 6), s, r, o))
    return list(best.values())[: config.max_results]
