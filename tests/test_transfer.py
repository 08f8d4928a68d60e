import io

import pytest

from memllm_cli.errors import InvalidInputError
from memllm_cli.store import Evidence, FactFilter, Store
from memllm_cli.store.transfer import dumps, export_records, import_records, read_records


def populate(store: Store) -> None:
    doc = Evidence(
        origin="document",
        source_kind="document",
        uri="/n/notes.md",
        sha256="a" * 64,
        sentence='She said "hi", then left.',
        line_start=3,
        line_end=4,
        extractor="smollm2+memllm",
        protocol_version="1",
    )
    with store.batch("a", "a"):
        store.add_fact("Ingrid Solberg", "residence", "Oslo", doc)
        store.add_fact("Ingrid Solberg", "employer", "NIVA, Oslo")
    with store.batch("b", "b"):
        store.add_fact("Ingrid Solberg", "residence", "Trondheim")
        store.add_fact("Åse Ødegård", "sibling", "Ingrid Solberg")
    with store.batch("c", "c"):
        store.edit_fact(2, obj="NIVA")
    with store.batch("d", "d"):
        store.remove_fact(4)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_import_export_is_byte_identical(tmp_path, store, fmt):
    populate(store)
    first = dumps(export_records(store), fmt)
    with Store.open(tmp_path / f"copy-{fmt}.db") as copy:
        report = import_records(copy, read_records(io.StringIO(first), fmt))
        assert report.imported == 5 and not report.skipped
        assert dumps(export_records(copy), fmt) == first
        statuses = [f.status for f in copy.facts(FactFilter(include_all=True))]
        assert statuses == ["superseded", "superseded", "current", "deleted", "current"]


def test_plain_records_follow_write_rules(store):
    lines = (
        '{"subject": "A", "relation": "residence", "object": "Oslo"}\n'
        '{"subject": "A", "relation": "residence", "object": "Bergen", '
        '"valid_from": "2024-05-01"}\n'
    )
    report = import_records(store, read_records(io.StringIO(lines), "jsonl"))
    assert report.imported == 2
    assert [f.object for f in store.facts()] == ["Bergen"]
    assert next(store.facts()).valid_from.startswith("2024-05-01")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"subject": "A", "relation": "r"}', "'object' must be a non-empty string"),
        ('{"subject": " ", "relation": "r", "object": "B"}', "'subject' must be a non-empty"),
        ('{"subject": "A", "relation": "r", "object": "B", "colour": 1}', "unknown field"),
        ('{"subject": "A", "relation": "r", "object": "B", "status": "maybe"}', "status is one of"),
        ('{"subject": "A", "relation": "r", "object": "B", "valid_from": "soon"}', "not a date"),
    ],
)
def test_a_bad_line_aborts_the_batch_with_its_number(store, line, reason):
    text = '{"subject": "A", "relation": "r", "object": "B"}\n\n' + line + "\n"
    with pytest.raises(InvalidInputError, match=f"line 3: .*{reason}"):
        import_records(store, read_records(io.StringIO(text), "jsonl"))
    assert store.count_facts(FactFilter(include_all=True)) == 0
    assert store.history() == []


def test_skip_bad_imports_the_rest(store):
    text = (
        '{"subject": "A", "relation": "r", "object": "B"}\n{bad\n'
        '{"subject": "C", "relation": "r", "object": "D"}\n'
    )
    report = import_records(store, read_records(io.StringIO(text), "jsonl"), skip_bad=True)
    assert report.imported == 2 and [n for n, _ in report.skipped] == [2]


def test_csv_errors_and_minimal_csv(store):
    bad = "subject,relation\nA,r\n"
    with pytest.raises(InvalidInputError, match="line 1: the CSV header lacks object"):
        import_records(store, read_records(io.StringIO(bad), "csv"))
    ragged = "subject,relation,object\nA,r,B\nC,r,D,extra\n"
    with pytest.raises(InvalidInputError, match="line 3: more cells"):
        import_records(store, read_records(io.StringIO(ragged), "csv"))
    good = "subject,relation,object\nA,employer,B\n"
    assert import_records(store, read_records(io.StringIO(good), "csv")).imported == 1


def test_dangling_superseded_by_is_reported(store):
    line = (
        '{"subject": "A", "relation": "r", "object": "B", "status": "superseded", '
        '"superseded_by": {"subject": "A", "relation": "r", "object": "Z"}}\n'
    )
    with pytest.raises(InvalidInputError, match="line 1: its superseded_by"):
        import_records(store, read_records(io.StringIO(line), "jsonl"))
    assert store.count_facts(FactFilter(include_all=True)) == 0
