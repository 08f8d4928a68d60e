"""Import checks that accept what they must: big evidence cells, times in other ISO forms."""

from __future__ import annotations

import io
import json

from memllm_cli.store import Store
from memllm_cli.store.transfer import dumps, export_records, import_text


def test_an_evidence_cell_past_csvs_default_limit_round_trips(store, tmp_path):
    sentence = "Nina Lund works at Aker, " + "and so on, " * 20_000  # > 128 KiB in one cell
    record = {
        "subject": "Nina Lund",
        "relation": "employer",
        "object": "Aker",
        "evidence": [{"origin": "document", "sentence": sentence}],
    }
    report = import_text(store, io.StringIO(json.dumps(record) + "\n"), name="x.jsonl")
    assert report.imported == 1
    exported = dumps(export_records(store), "csv")
    assert len(exported) > 200_000
    with Store.open(tmp_path / "other.db") as other:
        assert import_text(other, io.StringIO(exported), name="x.csv").imported == 1
        assert dumps(export_records(other), "csv") == exported


def test_restored_times_are_stored_in_the_stores_form(store):
    record = {
        "subject": "Nina Lund",
        "relation": "residence",
        "object": "Bergen",
        "status": "current",
        "created_at": "2024-03-01T12:00:00+01:00",
        "valid_from": "2020-01-01",
    }
    import_text(store, io.StringIO(json.dumps(record) + "\n"), name="x.jsonl")
    (fact,) = export_records(store)
    assert fact["created_at"] == "2024-03-01T11:00:00.000000+00:00"
    assert fact["valid_from"] == "2020-01-01T00:00:00.000000+00:00"


def test_tabs_and_newlines_in_an_evidence_sentence_are_kept(store):
    record = {
        "subject": "Nina Lund",
        "relation": "employer",
        "object": "Aker",
        "evidence": [{"origin": "document", "sentence": "Nina Lund\tworks\nat Aker."}],
    }
    assert import_text(store, io.StringIO(json.dumps(record) + "\n"), name="x.jsonl").imported
    (fact,) = export_records(store)
    assert fact["evidence"][0]["sentence"] == "Nina Lund\tworks\nat Aker."
