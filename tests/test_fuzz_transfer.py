"""Fuzzing ``facts import`` and ``memllm apply``: a clean error or an import that round-trips.

Whatever the JSONL or CSV text, importing it either fails with the project's own
error (and changes nothing) or succeeds; and a memory that import made exports,
imports into an empty memory and exports again to the same bytes. Never another
exception, and the database stays sound.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memllm_cli.errors import MemllmError
from memllm_cli.store import FactFilter, Store
from memllm_cli.store.models import ORIGINS, SOURCE_KINDS, STATUSES
from memllm_cli.store.transfer import FIELDS, dumps, export_records, import_text

FUZZ = settings(
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
NAMES = st.sampled_from(["Ingrid", "Oslo", "Bergen", "NIVA", "Ingrid Solberg", "a>>b", "x;y"])
RELATIONS = st.sampled_from(["residence", "employer", "sibling", "favourite food", "P551"])
TIMES = st.one_of(
    st.none(),
    st.sampled_from(
        ["2020-01-01", "2023-05-01T10:00:00+02:00", "2024-01-01T00:00:00.000000+00:00"]
    ),
)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
EVIDENCE = st.fixed_dictionaries(
    {},
    optional={
        "origin": st.one_of(st.sampled_from(ORIGINS), JUNK),
        "source_kind": st.sampled_from(SOURCE_KINDS),
        "uri": st.sampled_from(["/n/a.md", "/n/b.md", "chat:1", "mcp:Claude"]),
        "sha256": st.sampled_from(["a" * 64, "b" * 64]),
        "sentence": st.text(max_size=20),
        "line_start": st.one_of(st.integers(0, 9), JUNK),
        "line_end": st.integers(0, 9),
        "extractor": st.just("scripted"),
        "protocol_version": st.just("1"),
        "created_at": TIMES,
    },
)
SUCCESSOR = st.fixed_dictionaries({"subject": NAMES, "relation": RELATIONS, "object": NAMES})
RECORD = st.fixed_dictionaries(
    {"subject": st.one_of(NAMES, JUNK), "relation": RELATIONS, "object": NAMES},
    optional={
        "origin": st.one_of(st.sampled_from(ORIGINS), JUNK),
        "status": st.one_of(st.sampled_from(STATUSES), JUNK),
        "created_at": st.one_of(TIMES, JUNK),
        "valid_from": st.one_of(TIMES, JUNK),
        "valid_to": TIMES,
        "superseded_by": st.one_of(st.none(), SUCCESSOR, JUNK),
        "evidence": st.one_of(st.lists(EVIDENCE, max_size=2), JUNK),
        "extra": JUNK,
    },
)


@contextmanager
def fresh_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "memory.db") as store:
        yield store


def as_csv(records: list[dict[str, Any]]) -> str:
    """CSV as ``facts export`` writes it; junk values become their text."""
    lines = [",".join(FIELDS)]
    for record in records:
        cells = []
        for name in FIELDS:
            value = record.get(name)
            if isinstance(value, (dict, list)) or name in ("superseded_by", "evidence"):
                value = "" if value is None else json.dumps(value)
            cells.append("" if value is None else '"' + str(value).replace('"', '""') + '"')
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def state(store: Store) -> tuple[int, int, str]:
    batches = store.conn.execute("SELECT count(*) FROM batches").fetchone()[0]
    return (
        store.count_facts(FactFilter(include_all=True)),
        batches,
        dumps(export_records(store), "jsonl"),
    )


def check_import(text: str, fmt: str, skip_bad: bool, documents: bool) -> None:
    with fresh_store() as store:
        before = state(store)
        try:
            import_text(
                store,
                io.StringIO(text, newline=""),
                name=f"in.{fmt}",
                skip_bad=skip_bad,
                documents=documents,
            )
        except MemllmError as exc:
            assert "\n" not in str(exc).strip()
            assert state(store) == before
            return
        finally:
            assert store.integrity_check() == ["ok"]
            assert store.foreign_key_check() == []
        exported = dumps(export_records(store), "jsonl")
        if not exported:
            return  # nothing imported (all skipped): an empty file is not an import
        for out_fmt in ("jsonl", "csv"):
            with fresh_store() as copy:
                text = dumps(export_records(store), out_fmt)
                import_text(copy, io.StringIO(text), name=f"copy.{out_fmt}")
                assert dumps(export_records(copy), "jsonl") == exported


@FUZZ
@given(st.lists(RECORD, max_size=4), st.booleans(), st.booleans())
@example(
    [
        {
            "subject": "A",
            "relation": "residence",
            "object": "Oslo",
            "status": "superseded",
            "superseded_by": {"subject": "A", "relation": "residence", "object": "Bergen"},
        },
        {"subject": "A", "relation": "residence", "object": "Bergen", "status": "current"},
        {"subject": "A", "relation": "residence", "object": "Oslo"},
    ],
    False,
    False,
)
@example(
    [
        {
            "subject": "A",
            "relation": "employer",
            "object": "B",
            "evidence": [
                {
                    "origin": "document",
                    "source_kind": "document",
                    "uri": "/n/a.md",
                    "sha256": "a" * 64,
                    "sentence": "A works at B.",
                    "line_start": 1,
                }
            ],
        }
    ],
    False,
    True,
)
@example([{"subject": "A", "relation": "employer", "object": "B", "status": "gone"}], True, False)
def test_jsonl_records(records, skip_bad, documents):
    text = "".join(json.dumps(r) + "\n" for r in records)
    check_import(text, "jsonl", skip_bad, documents)


@FUZZ
@given(st.lists(RECORD, max_size=4), st.booleans())
def test_csv_records(records, skip_bad):
    check_import(as_csv(records), "csv", skip_bad, documents=False)


@FUZZ
@given(st.text(max_size=200), st.sampled_from(["jsonl", "csv"]), st.booleans())
@example("", "csv", False)
@example("subject,relation,object\nA,employer,B\rC,employer,D\n", "csv", False)
@example("{", "jsonl", True)
@example("subject,relation,object\nA,employer\n", "csv", False)
@example('subject,relation,object,evidence\nA,employer,B,"[1]"\n', "csv", False)
def test_any_text(text, fmt, skip_bad):
    check_import(text, fmt, skip_bad, documents=False)
