"""Reads that degrade gracefully: relation aliases, short names, and the subject fallback.

The fallback tests run on the hash embedder (trigram hashing), whose distances make the
wordings below near an alias of the right relation and far from every other relation.
"""

from dataclasses import replace

import pytest

from memllm_cli.errors import InvalidInputError, NotFoundError
from memllm_cli.protocol import parse_query
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.scripted import ScriptedModel
from memllm_cli.store.read import HASH_READ, config_for, read


@pytest.fixture
def tove(store):
    with store.batch("seed", "seed"):
        store.add_fact("Tove Lindahl", "residence", "Oslo")
        store.add_fact("Tove Lindahl", "employer", "NIVA")
        store.add_fact("Per Hansen", "employer", "Equinor")
    return store


def hits(store, text, embedder=None, **config):
    chosen = replace(config_for(embedder), **config)
    return read(store, parse_query(text), embedder, chosen)


def answers(store, text, embedder=None, **config):
    return [(h.answer, h.fallback) for h in hits(store, text, embedder, **config)]


# -- relation aliases -------------------------------------------------------------------------


def test_alias_reads_are_exact_and_need_no_embedder(tove):
    assert answers(tove, "tove lindahl>>lives in>>") == [("Oslo", False)]
    assert answers(tove, "Tove Lindahl>>Home>>") == [("Oslo", False)]
    assert answers(tove, ">>employed by>>NIVA") == [("Tove Lindahl", False)]
    assert answers(tove, ">>works at>>Equinor") == [("Per Hansen", False)]
    assert hits(tove, "Tove Lindahl>>lives in>>")[0].score == 0.0
    assert tove.meta("embedding_model") is None


def test_writes_with_an_alias_store_the_canonical_relation(store):
    with store.batch("add", "add"):
        first = store.add_fact("Tove Lindahl", "lives in", "Oslo")
        moved = store.add_fact("Tove Lindahl", "based in", "Bergen")
        job = store.add_fact("Tove Lindahl", "works as", "geologist")
    assert first.fact.relation == "residence" and job.fact.relation == "occupation"
    # residence is one-valued, whichever wording said it: the move supersedes.
    assert [f.id for f in moved.superseded] == [first.fact.id]
    assert [(f.relation, f.object) for f in store.facts()] == [
        ("residence", "Bergen"),
        ("occupation", "geologist"),
    ]


def test_user_aliases_are_added_listed_and_removed(tove):
    relation = tove.add_relation_alias("dwells in", "P551")
    assert relation.label == "residence" and relation.aliases[-1] == "dwells in"
    assert answers(tove, "Tove Lindahl>>dwells in>>") == [("Oslo", False)]
    listed = {r.label: r for r in tove.relations()}
    assert "dwells in" in listed["residence"].aliases and "lives in" in listed["residence"].aliases
    assert tove.add_relation_alias("dwells in", "residence").aliases.count("dwells in") == 1
    with pytest.raises(InvalidInputError, match="label of the relation"):
        tove.add_relation_alias("Employer", "residence")
    with pytest.raises(InvalidInputError, match="alias of another relation"):
        tove.add_relation_alias("dwells in", "employer")
    with pytest.raises(NotFoundError):
        tove.add_relation_alias("x", "no such relation")
    with pytest.raises(InvalidInputError, match="not an alias of"):
        tove.remove_relation_alias("dwells in", "employer")
    assert "dwells in" not in tove.remove_relation_alias("dwells in", "residence").aliases
    assert answers(tove, "Tove Lindahl>>dwells in>>") == []
    with pytest.raises(NotFoundError):
        tove.remove_relation_alias("dwells in", "residence")


def test_seeded_aliases_are_neither_labels_nor_shared(store):
    relations = store.relations()
    labels = {r.label.casefold() for r in relations}
    aliases = [a.casefold() for r in relations for a in r.aliases]
    assert len(aliases) > 250 and len(aliases) == len(set(aliases))
    assert not labels & set(aliases)
    wanted = {
        "lives in": "residence",
        "lives at": "residence",
        "home": "residence",
        "based in": "residence",
        "works at": "employer",
        "works for": "employer",
        "job at": "employer",
        "employed by": "employer",
        "written by": "author",
        "born in": "place of birth",
        "job": "occupation",
        "works as": "occupation",
    }
    by_alias = {a: r.label for r in relations for a in r.aliases}
    assert {a: by_alias[a] for a in wanted} == wanted


# -- the fallback -----------------------------------------------------------------------------


def test_a_wrong_relation_falls_back_to_the_subjects_right_fact(tove, embedder):
    # "lives near" is no label or alias, and far from every label (no fuzzy answer), but near
    # residence's alias "lives".
    assert answers(tove, "Tove Lindahl>>lives near>>", embedder) == [("Oslo", True)]
    assert answers(tove, "Tove Lindahl>>home address>>", embedder) == [("Oslo", True)]
    found = hits(tove, "Tove Lindahl>>working with>>", embedder)
    assert [(h.answer, h.relation, h.fallback) for h in found] == [("NIVA", "employer", True)]
    assert 0 < found[0].score <= HASH_READ.tau_fallback / 2


def test_the_fallback_works_for_a_known_object_too(tove, embedder):
    assert answers(tove, ">>employed with>>NIVA", embedder) == [("Tove Lindahl", True)]


def test_the_fallback_never_offers_an_unrelated_fact(tove, embedder):
    # Tove has a residence and an employer; neither is near a date of birth or a spouse.
    assert answers(tove, "Tove Lindahl>>date of birth>>", embedder) == []
    assert answers(tove, "Tove Lindahl>>spouse name>>", embedder) == []
    assert answers(tove, ">>date of birth>>NIVA", embedder) == []


def test_the_fallback_threshold_binds(tove, embedder):
    assert answers(tove, "Tove Lindahl>>lives near>>", embedder, tau_fallback=0.3) == []


def test_the_fallback_needs_a_known_name_and_an_embedder(tove, embedder):
    assert answers(tove, "Tove Lindahl>>lives near>>") == []
    assert answers(tove, "Zebulon Quist>>lives near>>", embedder) == []


def test_fallback_answers_are_few_and_ranked(store, embedder):
    with store.batch("seed", "seed"):
        for org in ("Acme", "Bolt", "Cirrus", "Dyno", "Ecto"):
            store.add_fact("Tove Lindahl", "employer", org)
        store.add_fact("Tove Lindahl", "residence", "Oslo")
    found = hits(store, "Tove Lindahl>>working with>>", embedder)
    assert [h.answer for h in found] == ["Acme", "Bolt", "Cirrus"]
    assert all(h.fallback and h.relation == "employer" for h in found)
    wider = hits(store, "Tove Lindahl>>working with>>", embedder, fallback_results=10)
    assert [h.answer for h in wider] == ["Acme", "Bolt", "Cirrus", "Dyno", "Ecto"]
    assert [h.score for h in wider] == sorted(h.score for h in wider)


def test_exact_and_fuzzy_answers_are_unchanged(tove, embedder):
    with tove.batch("more", "more"):
        tove.add_fact("Kari Nordmann", "employer", "NIVA")
    assert answers(tove, "Tove Lindahl>>residence>>", embedder) == [("Oslo", False)]
    assert answers(tove, ">>employer>>NIVA", embedder) == [
        ("Tove Lindahl", False),
        ("Kari Nordmann", False),
    ]
    # A fuzzy relation still answers first, and alone.
    assert answers(tove, "Tove Lindahl>>employers>>", embedder) == [("NIVA", False)]
    assert answers(tove, "Tove Lindahll>>residence>>", embedder) == [("Oslo", False)]


# -- short names ------------------------------------------------------------------------------


def test_a_unique_first_name_or_surname_stands_for_the_entity(tove):
    assert answers(tove, "Tove>>residence>>") == [("Oslo", False)]
    assert answers(tove, "lindahl>>lives in>>") == [("Oslo", False)]
    assert answers(tove, "Dr. Lindahl>>residence>>") == [("Oslo", False)]
    assert answers(tove, "Prof. Tove Lindahl>>residence>>") == [("Oslo", False)]
    assert answers(tove, ">>employer>>Equinor") == [("Per Hansen", False)]
    found = hits(tove, "Tove>>residence>>")[0]
    assert (found.subject, found.relation, found.object) == ("Tove Lindahl", "residence", "Oslo")


def test_an_ambiguous_short_name_does_not_resolve(tove):
    with tove.batch("more", "more"):
        tove.add_fact("Tove Berg", "residence", "Tromsø")
        tove.add_fact("Ola Hansen", "residence", "Bodø")
    assert answers(tove, "Tove>>residence>>") == []
    assert answers(tove, "Hansen>>residence>>") == []
    assert answers(tove, "Berg>>residence>>") == [("Tromsø", False)]
    assert tove.names.short_name_entities("Tove") == []


def test_only_first_and_last_words_count(store):
    with store.batch("seed", "seed"):
        store.add_fact("Mei Lin Chua", "residence", "Singapore")
        store.add_fact("Project Kestrel", "publication date", "2025")
    assert answers(store, "Chua>>residence>>") == [("Singapore", False)]
    assert answers(store, "Lin>>residence>>") == []
    assert answers(store, "Kestrel>>publication date>>") == [("2025", False)]
    assert store.names.short_name_entities("Mei Lin") == []
    assert store.names.short_name_entities("2025") == []


def test_a_short_name_then_falls_back(tove, embedder):
    assert answers(tove, "Tove>>lives near>>", embedder) == [("Oslo", True)]


# -- in the read loop -------------------------------------------------------------------------


def test_the_read_loop_shows_fallback_reads(tove, embedder):
    events = []
    model = ScriptedModel(["({", "MEM_READ(Tove Lindahl>>lives near>>)-->", "Oslo.<|im_end|>"])
    session = Session(tove, model, embedder, on_event=lambda k, t: events.append((k, t)))
    answer = session.ask("Where does Tove Lindahl live?")
    assert answer.text == "Oslo." and answer.facts_used == [1]
    assert answer.reads[0].results[0]["fallback"] is True
    assert (
        "fallback",
        "Tove Lindahl>>lives near>> nearest facts: Tove Lindahl >> residence >> Oslo",
    ) in events
    assert [k for k, _ in events] == ["read", "fallback", "result"]


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_relation_aliases_and_fallback_queries(cli):
    import json

    assert cli("facts", "add", "Tove Lindahl", "lives in", "Oslo").exit_code == 0
    listed = [json.loads(line) for line in cli("relations", "list", "--jsonl").stdout.splitlines()]
    residence = next(r for r in listed if r["label"] == "residence")
    assert residence["facts"] == 1 and residence["aliases"][:3] == [
        "lives in",
        "lives at",
        "live in",
    ]
    assert "lives in, lives at, live in" in cli("relations", "list", "--csv").stdout
    made = json.loads(cli("relations", "alias", "dwells in", "residence", "--json").stdout)
    assert made["label"] == "residence" and made["aliases"][-1] == "dwells in"
    query = cli("facts", "query", "tove>>dwells in>>", "--exact", "--json")
    assert [(a["answer"], a["fallback"]) for a in json.loads(query.stdout)] == [("Oslo", False)]
    assert cli("relations", "alias", "--remove", "dwells in", "residence").exit_code == 0
    gone = cli("facts", "query", "tove>>dwells in>>", "--exact")
    assert gone.exit_code == 0 and gone.stderr == "no answer in memory\n"
    taken = cli("relations", "alias", "employer", "residence")
    assert taken.exit_code == 1 and "label of the relation" in taken.stderr
    near = json.loads(cli("facts", "query", "Tove Lindahl>>lives near>>", "--json").stdout)
    assert [(a["answer"], a["relation"], a["fallback"]) for a in near] == [
        ("Oslo", "residence", True)
    ]
