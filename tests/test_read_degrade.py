"""Reads that degrade gracefully: relation aliases, short names, and the subject fallback.

The fallback tests run on the hash embedder (trigram hashing), whose distances make the
wordings below near an alias of the right relation and far from every other relation.
"""

from dataclasses import replace

import pytest

from memllm_cli.errors import InvalidInputError, NotFoundError
from memllm_cli.protocol import parse_query
from memllm_cli.store.read import config_for, read


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
    return [(h.answer, False) for h in hits(store, text, embedder, **config)]


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
    query = cli("facts", "query", "tove lindahl>>dwells in>>", "--exact", "--json")
    assert [a["answer"] for a in json.loads(query.stdout)] == ["Oslo"]
    assert cli("relations", "alias", "--remove", "dwells in", "residence").exit_code == 0
    gone = cli("facts", "query", "tove lindahl>>dwells in>>", "--exact")
    assert gone.exit_code == 0 and gone.stderr == "no answer in memory\n"
    taken = cli("relations", "alias", "employer", "residence")
    assert taken.exit_code == 1 and "label of the relation" in taken.stderr
