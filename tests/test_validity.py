"""Validity: a superseded fact ends when its successor begins, so the past has one value."""

import json

from memllm_cli.protocol import ReadQuery
from memllm_cli.store import Evidence, FactFilter
from memllm_cli.store.read import read
from memllm_cli.store.text import parse_time
from memllm_cli.store.when import when_of

Y2020, Y2023 = parse_time("2020-01-01"), parse_time("2023-01-01")


def listed(cli, *args):
    result = cli("facts", "list", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return [
        (f["object"], f["status"], f["valid_from"], f["valid_to"])
        for f in json.loads(result.stdout)
    ]


def test_as_of_shows_one_residence(cli):
    cli("facts", "add", "X", "residence", "Oslo", "--valid-from", "2020-01-01")
    cli("facts", "add", "X", "residence", "Bergen", "--valid-from", "2023-01-01")
    assert listed(cli, "--as-of", "2024-01-01") == [("Bergen", "current", Y2023, None)]
    assert listed(cli, "--as-of", "2021-01-01") == [("Oslo", "superseded", Y2020, Y2023)]


def test_a_document_value_the_user_overrules_never_held(cli, tmp_path):
    """The user's Oslo (2020) wins over a later note's Bergen (2023): one value at every time."""
    cli("facts", "add", "X", "residence", "Oslo", "--valid-from", "2020-01-01")
    record = {
        "subject": "X",
        "relation": "residence",
        "object": "Bergen",
        "origin": "document",
        "valid_from": "2023-01-01",
    }
    (tmp_path / "notes.jsonl").write_text(json.dumps(record) + "\n")
    assert cli("facts", "import", str(tmp_path / "notes.jsonl")).exit_code == 0
    everything = listed(cli, "--all")
    assert everything == [("Oslo", "current", Y2020, None), ("Bergen", "superseded", Y2023, Y2020)]
    for moment in ("2021-01-01", "2023-01-01", "2024-01-01", "2999-01-01"):
        assert listed(cli, "--as-of", moment) == [("Oslo", "current", Y2020, None)]


def answers(store, question):
    found = read(store, ReadQuery("residence", subject="X"), when=when_of(question))
    return [a.answer for a in found]


def test_a_year_sees_the_value_of_that_year(store):
    for obj, since in (("Oslo", Y2020), ("Bergen", Y2023)):
        with store.batch("add", obj):
            store.add_fact("X", "residence", obj, valid_from=since)
    assert answers(store, "Where did X live in 2021?") == ["Oslo"]
    # Oslo ended at the first instant of 2023: that year is Bergen's alone.
    assert answers(store, "Where did X live in 2023?") == ["Bergen"]
    assert answers(store, "Where did X live in 2022?") == ["Oslo"]


def test_a_year_never_sees_an_overruled_value(store):
    with store.batch("add", "Oslo"):
        store.add_fact("X", "residence", "Oslo", valid_from=Y2020)
    with store.batch("ingest", "notes"):
        note = Evidence("document", "document", "notes.md", "0" * 64, "X lives in Bergen.")
        store.add_fact("X", "residence", "Bergen", note, valid_from="2023-01-01")
    assert [f.object for f in store.facts(FactFilter(include_all=True))] == ["Oslo", "Bergen"]
    assert answers(store, "Where did X live in 2023?") == ["Oslo"]
    assert answers(store, "Where did X live in 2021?") == ["Oslo"]
