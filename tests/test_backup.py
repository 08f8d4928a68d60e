"""Backup and restore: relation settings and entity aliases travel with the facts (JSONL)."""

import json

from memllm_cli.store import FactFilter, Store

SETTINGS = [
    {
        "kind": "relation",
        "label": "favourite tea",
        "cardinality": "one",
        "pid": "P9999",
        "aliases": ["drinks mostly"],
    },
    # A seeded relation the user re-set and aliased.
    {
        "kind": "relation",
        "label": "residence",
        "cardinality": "many",
        "pid": "P551",
        "aliases": ["dwells in"],
    },
    {"kind": "entity", "name": "Ingrid Solberg", "aliases": ["Ingrid", "Dr. Solberg"]},
    {"kind": "entity", "name": "Per Hansen", "aliases": ["P. Hansen"]},
]


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def populate(cli):
    ok(cli("facts", "add", "Ingrid Solberg", "favourite tea", "Earl Grey"))
    ok(cli("facts", "add", "Ingrid Solberg", "residence", "Oslo"))
    ok(cli("facts", "add", "P. Hansen", "residence", "Bergen"))
    ok(cli("facts", "add", "Per Hansen", "employer", "NIVA"))
    ok(cli("relations", "set", "favourite tea", "--cardinality", "one", "--pid", "P9999"))
    ok(cli("relations", "alias", "drinks mostly", "favourite tea"))
    ok(cli("relations", "set", "residence", "--cardinality", "many"))
    ok(cli("relations", "alias", "dwells in", "residence"))
    ok(cli("facts", "alias", "Ingrid Solberg", "Ingrid"))
    ok(cli("facts", "alias", "Ingrid Solberg", "Dr. Solberg"))
    ok(cli("facts", "merge", "Per Hansen", "P. Hansen"))  # a merge leaves an alias too


def test_backup_and_restore_lose_nothing(cli, tmp_path):
    populate(cli)
    backup = ok(cli("facts", "export")).stdout
    records = [json.loads(line) for line in backup.splitlines()]
    assert records[: len(SETTINGS)] == SETTINGS
    assert all("kind" not in r for r in records[len(SETTINGS) :])
    copy = str(tmp_path / "copy.db")
    (tmp_path / "backup.jsonl").write_text(backup)
    imported = ok(cli("--db", copy, "facts", "import", str(tmp_path / "backup.jsonl")))
    assert "imported 4 facts and 4 relation or alias record(s)" in imported.stderr
    assert ok(cli("--db", copy, "facts", "export")).stdout == backup
    listed = json.loads(ok(cli("--db", copy, "relations", "list", "--json")).stdout or "[]")
    tea = next(r for r in listed if r["label"] == "favourite tea")
    assert (tea["cardinality"], tea["pid"], tea["aliases"]) == ("one", "P9999", ["drinks mostly"])
    # The restored settings act: the alias names the relation, one value at a time; the
    # entity aliases find their entities; residence stays many-valued.
    ok(cli("--db", copy, "facts", "add", "Ingrid", "drinks mostly", "Darjeeling"))
    ok(cli("--db", copy, "facts", "add", "Dr. Solberg", "dwells in", "Trondheim"))
    with Store.open(copy) as store:
        rows = [(f.subject, f.relation, f.object) for f in store.facts(FactFilter())]
    assert rows == [
        ("Ingrid Solberg", "residence", "Oslo"),
        ("Per Hansen", "residence", "Bergen"),
        ("Per Hansen", "employer", "NIVA"),
        ("Ingrid Solberg", "favourite tea", "Darjeeling"),
        ("Ingrid Solberg", "residence", "Trondheim"),
    ]


def test_a_memory_without_settings_exports_facts_only(cli):
    ok(cli("facts", "add", "Ingrid Solberg", "residence", "Oslo"))
    lines = ok(cli("facts", "export")).stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["subject"] == "Ingrid Solberg"


def test_an_old_export_still_imports(cli, tmp_path):
    old = tmp_path / "old.jsonl"
    old.write_text('{"subject": "A", "relation": "residence", "object": "Oslo"}\n')
    assert "imported 1 facts from" in ok(cli("facts", "import", str(old))).stderr


def test_csv_says_what_it_leaves_out(cli):
    populate(cli)
    result = ok(cli("facts", "export", "--csv"))
    assert result.stdout.splitlines()[0].startswith("subject,relation,object,")
    assert "CSV holds facts only; 4 relation or alias record(s) need JSONL" in result.stderr


def test_bad_settings_records_abort_the_import(cli, tmp_path):
    ok(cli("facts", "add", "Per Hansen", "residence", "Bergen"))
    before = ok(cli("facts", "export")).stdout
    cases = [
        ({"kind": "person", "name": "X"}, "'kind' is relation or entity, not 'person'"),
        ({"kind": "relation", "label": "x", "cardinality": "two"}, "'cardinality' is one or many"),
        ({"kind": "relation", "label": "x", "pid": "551"}, "a Wikidata property id looks like"),
        ({"kind": "relation", "label": "x", "colour": "red"}, "unknown field(s): colour"),
        ({"kind": "entity", "name": "", "aliases": []}, "'name' must be a non-empty string"),
        ({"kind": "entity", "name": "X", "aliases": "Y"}, "'aliases' must be a list of strings"),
        ({"kind": "entity", "name": "X", "aliases": ["Per Hansen"]}, "already names another"),
        ({"kind": "relation", "label": "x", "aliases": ["lives in"]}, "already an alias of"),
    ]
    path = tmp_path / "bad.jsonl"
    for record, reason in cases:
        line = '{"subject": "A", "relation": "residence", "object": "Oslo"}\n' + json.dumps(record)
        path.write_text(line + "\n")
        result = cli("facts", "import", str(path))
        assert result.exit_code == 1, record
        assert result.stderr.startswith("error: line 2: ") and reason in result.stderr, record
        assert len(result.stderr.strip().splitlines()) == 1
        assert ok(cli("facts", "export")).stdout == before
