"""``kill -9`` during ingest and import: the memory stays sound, documents all-or-nothing.

Seeded trials kill a subprocess (tests/scripted_memllm.py: a rule model, a little
slow) at random moments. After each: PRAGMA integrity_check and the foreign keys
hold; each document is either ingested with every fact it states or has left none;
an import is all there or not at all. Each trial resumes what the last one left, and
a last run without a kill must finish cleanly with everything stored.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from scripted_memllm import run, start, triples

from memllm_cli.store import FactFilter, Store

Fact = tuple[str, str, str]
DOCUMENTS, SENTENCES = 4, 12
INGEST_TRIALS, IMPORT_TRIALS = 8, 6
IMPORT_FACTS = 3000


def write_documents(folder: Path) -> dict[Path, set[Fact]]:
    """Documents whose facts are told apart by subject (PersonD_I Hansen)."""
    folder.mkdir()
    expected = {}
    for d in range(DOCUMENTS):
        lines = [f"Person{d}x{i} Hansen works at Firm{i}." for i in range(SENTENCES)]
        lines[3] = "It rained all day."
        path = folder / f"doc{d}.md"
        path.write_text("\n\n".join(lines) + "\n")
        expected[path] = {t for line in lines for t in triples(line)}
    return expected


def killed(home: Path, args: list[str], rng: random.Random, latest: float, delay: float) -> None:
    """Start ``memllm ARGS`` and kill -9 it after a random time up to ``latest`` seconds."""
    proc = start(home, *args, delay=delay)
    time.sleep(rng.uniform(0.2, latest))
    proc.kill()
    proc.communicate(timeout=30)


def facts(store: Store) -> set[Fact]:
    return {(f.subject, f.relation, f.object) for f in store.facts(FactFilter())}


def check_sound(store: Store) -> None:
    assert store.integrity_check() == ["ok"]
    assert store.foreign_key_check() == []


def test_killed_ingests_leave_whole_documents_and_a_clean_rerun(tmp_path, memllm_home):
    expected = write_documents(tmp_path / "notes")
    paths = [str(p) for p in expected]
    rng = random.Random(11)
    stored_before_end = 0
    for _ in range(INGEST_TRIALS):
        killed(memllm_home, ["ingest", *paths], rng, latest=2.5, delay=0.03)
        if not (memllm_home / "memory.db").exists():
            continue
        with Store.open(memllm_home / "memory.db") as store:
            check_sound(store)
            stored = facts(store)
            for path, stated in expected.items():
                if store.ingested_version(str(path.resolve())) is None:
                    assert not stated & stored, f"{path.name}: half a document"
                else:
                    assert stated <= stored, f"{path.name}: ingested without all its facts"
                    stored_before_end += 1
    assert stored_before_end > 0  # some kills came after a document was stored
    done = run(memllm_home, "ingest", *paths)
    assert done.returncode == 0, done.stderr
    with Store.open(memllm_home / "memory.db") as store:
        check_sound(store)
        assert facts(store) == set().union(*expected.values())
        assert store.count_facts() == DOCUMENTS * (SENTENCES - 1)  # no duplicates
        assert all(store.ingested_version(str(p.resolve())) for p in expected)


def test_killed_imports_leave_all_or_nothing_and_a_clean_rerun(tmp_path, memllm_home):
    records = [
        {"subject": f"Person{i} Olsen", "relation": "employer", "object": f"Firm{i % 50}"}
        for i in range(IMPORT_FACTS)
    ]
    jsonl = tmp_path / "facts.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    expected = {(r["subject"], r["relation"], r["object"]) for r in records}
    assert run(memllm_home, "facts", "add", "Ola Nordmann", "residence", "Bergen").returncode == 0
    before = {("Ola Nordmann", "residence", "Bergen")}
    rng = random.Random(7)
    for _ in range(IMPORT_TRIALS):
        killed(memllm_home, ["facts", "import", str(jsonl)], rng, latest=2.0, delay=0)
        with Store.open(memllm_home / "memory.db") as store:
            check_sound(store)
            assert facts(store) in (before, before | expected)
    done = run(memllm_home, "facts", "import", str(jsonl))
    assert done.returncode == 0, done.stderr
    with Store.open(memllm_home / "memory.db") as store:
        check_sound(store)
        assert facts(store) == before | expected
        assert store.count_facts() == IMPORT_FACTS + 1
