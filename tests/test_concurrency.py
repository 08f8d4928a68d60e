"""An ingest and other commands at once: reads never fail, writers wait their turn.

The ingest runs in a subprocess with a slow rule model (tests/scripted_memllm.py), so
it is caught in the middle of a document, where it used to hold the write lock.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from scripted_memllm import run, start, traced, triples, wait_for

from memllm_cli.store import FactFilter, Store, db

SENTENCES = 30
DELAY = 0.1  # seconds a generation takes: a document of 3 s


def write_document(path: Path) -> set[tuple[str, str, str]]:
    lines = [f"Person{i} Hansen works at Firm{i}." for i in range(SENTENCES)]
    path.write_text("\n\n".join(lines) + "\n")
    return {t for line in lines for t in triples(line)}


def current(home: Path) -> set[tuple[str, str, str]]:
    with Store.open(home / "memory.db") as store:
        return {(f.subject, f.relation, f.object) for f in store.facts(FactFilter())}


def test_a_writer_a_search_and_an_import_succeed_while_an_ingest_runs(tmp_path, memllm_home):
    notes = tmp_path / "notes.md"
    expected = write_document(notes)
    other = tmp_path / "other.jsonl"
    other.write_text(
        json.dumps({"subject": "Kari Nordmann", "relation": "residence", "object": "Bodø"}) + "\n"
    )
    assert run(memllm_home, "facts", "add", "Ola Nordmann", "residence", "Bergen").returncode == 0
    trace = tmp_path / "trace"
    ingest = start(memllm_home, "ingest", str(notes), delay=DELAY, trace=trace)
    try:
        wait_for(lambda: traced(trace) >= 3)  # the model is in the middle of the document
        started = time.monotonic()
        added = run(memllm_home, "facts", "add", "Per Olsen", "employer", "Equinor")
        found = run(memllm_home, "facts", "search", "Nordmann", "--json")
        imported = run(memllm_home, "facts", "import", str(other))
        waited = time.monotonic() - started
        still_reading = ingest.poll() is None
    finally:
        out, err = ingest.communicate(timeout=60)
    assert added.returncode == 0, added.stderr
    assert found.returncode == 0, found.stderr
    assert "Ola Nordmann" in found.stdout
    assert imported.returncode == 0, imported.stderr
    # They did not wait for the model to finish the document.
    assert still_reading, f"the writers waited {waited:.1f} s, for the whole document"
    assert ingest.returncode == 0, err
    assert current(memllm_home) == expected | {
        ("Ola Nordmann", "residence", "Bergen"),
        ("Per Olsen", "employer", "Equinor"),
        ("Kari Nordmann", "residence", "Bodø"),
    }
    with Store.open(memllm_home / "memory.db") as store:
        assert store.integrity_check() == ["ok"]


def test_memory_is_in_wal_mode_and_writers_wait_a_minute(tmp_path):
    with Store.open(tmp_path / "memory.db") as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == db.BUSY_TIMEOUT_MS
    assert db.BUSY_TIMEOUT_MS >= 60_000


def test_a_second_writer_waits_for_the_first_instead_of_failing(tmp_path):
    """Two connections: one holds a write transaction, the other's write waits, then lands."""
    import threading

    path = tmp_path / "memory.db"
    with Store.open(path) as first, Store.open(path) as second:
        holding = threading.Event()

        def hold() -> None:
            with first.batch("test", "hold the lock"):
                first.add_fact("Ola Nordmann", "residence", "Bergen")
                holding.set()
                time.sleep(1.0)

        thread = threading.Thread(target=hold)
        thread.start()
        holding.wait(10)
        with second.batch("test", "wait for it"):
            second.add_fact("Per Olsen", "employer", "Equinor")
        thread.join()
        assert {f.object for f in second.facts(FactFilter())} == {"Bergen", "Equinor"}
