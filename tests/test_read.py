from dataclasses import replace

import pytest

from memllm_cli.embed.hashed import HashEmbedder
from memllm_cli.errors import EmbeddingMismatchError
from memllm_cli.protocol import parse_query
from memllm_cli.store.read import DEFAULT_READ, HASH_READ, ReadConfig, config_for, read


@pytest.fixture
def people(store):
    with store.batch("seed", "seed"):
        store.add_fact("Ingrid Solberg", "residence", "Trondheim")
        store.add_fact("Ingrid Solberg", "employer", "NIVA")
        store.add_fact("Per Hansen", "employer", "NIVA")
        store.add_fact("Kari Nordmann", "employer", "Equinor")
    return store


def answers(store, text, embedder=None, **config):
    chosen = replace(config_for(embedder), **config)
    return [a.answer for a in read(store, parse_query(text), embedder, chosen)]


def test_exact_read_needs_no_embedder(people):
    assert answers(people, "Ingrid Solberg>>residence>>") == ["Trondheim"]
    assert answers(people, "ingrid solberg>>P551>>") == ["Trondheim"]
    assert answers(people, ">>employer>>NIVA") == ["Ingrid Solberg", "Per Hansen"]
    # No vectors were built for an exact read.
    assert people.meta("embedding_model") is None


def test_unknown_name_without_embedder_gives_nothing(people):
    assert answers(people, "Ingrid Solbergg>>residence>>") == []


def test_fuzzy_name_and_relation(people, embedder):
    assert answers(people, "Ingrid Solbergg>>residence>>", embedder) == ["Trondheim"]
    assert answers(people, "Ingrid Solberg>>employers>>", embedder) == ["NIVA"]
    result = read(people, parse_query("Ingrid Solbergg>>residence>>"), embedder)[0]
    assert 0 < result.score <= HASH_READ.tau_mean
    assert (result.subject, result.relation, result.object) == (
        "Ingrid Solberg",
        "residence",
        "Trondheim",
    )


def test_thresholds_cut_off_unrelated_names(people, embedder):
    assert answers(people, "Zebulon Q>>residence>>", embedder) == []
    tight = dict(tau_entity=0.0001, tau_relation=0.0001, tau_mean=0.0001)
    assert answers(people, "Ingrid Solbergg>>residence>>", embedder, **tight) == []


def test_superseded_facts_are_not_answers(people):
    with people.batch("move", "move"):
        people.add_fact("Ingrid Solberg", "residence", "Bergen")
    assert answers(people, "Ingrid Solberg>>residence>>") == ["Bergen"]


def test_ranked_and_capped(store, embedder):
    with store.batch("seed", "seed"):
        for i in range(40):
            store.add_fact(f"Worker {i:02d}", "employer", "Acme")
    found = answers(store, ">>employer>>Acme")
    assert len(found) == 30 and found == sorted(found)
    assert len(answers(store, ">>employer>>Acme", max_results=5)) == 5


def test_fuzzy_ranks_closer_names_first(store, embedder):
    with store.batch("seed", "seed"):
        store.add_fact("Anna Berg", "employer", "NIVA")
        store.add_fact("Anna Bergström", "employer", "SINTEF")
    found = read(
        store,
        parse_query("Anna Bergg>>employer>>"),
        embedder,
        ReadConfig(tau_entity=0.9, tau_mean=0.9),
    )
    assert [a.answer for a in found][0] == "NIVA"
    assert [a.score for a in found] == sorted(a.score for a in found)


def test_embedding_model_mismatch_is_an_error(people, embedder):
    read(people, parse_query("Ingrid Solbergg>>residence>>"), embedder)
    with pytest.raises(EmbeddingMismatchError, match="doctor --reembed"):
        read(people, parse_query("Ingrid Solbergg>>residence>>"), HashEmbedder(dim=128))


def test_reembed_switches_model(people, embedder):
    read(people, parse_query("Ingrid Solbergg>>residence>>"), embedder)
    other = HashEmbedder(dim=128)
    people.reembed(other)
    assert answers(people, "Ingrid Solbergg>>residence>>", other) == ["Trondheim"]


def test_embedding_cache_runs_each_text_once(people):
    calls: list[str] = []

    class Counting(HashEmbedder):
        def embed(self, texts):
            calls.extend(texts)
            return super().embed(texts)

    counting = Counting()
    read(people, parse_query("Ingrid Solbergg>>residence>>"), counting)
    first = len(calls)
    read(people, parse_query("Ingrid Solbergg>>residence>>"), counting)
    assert first > 0 and len(calls) == first


def test_minilm_thresholds_are_the_calibrated_ones():
    from memllm_cli.embed.sentence import SentenceTransformerEmbedder

    assert config_for(SentenceTransformerEmbedder()) == DEFAULT_READ
    assert config_for(None) == DEFAULT_READ
    assert (DEFAULT_READ.tau_entity, DEFAULT_READ.tau_relation, DEFAULT_READ.tau_mean) == (
        0.08,
        0.225,
        0.15,
    )
