"""How long a writer waits while an ingest runs, and what ``kill -9`` trials leave.

1. Writer wait: ``memllm ingest`` of ``--docs`` documents of ``--sentences`` sentences
   runs in a subprocess with the rule model of tests/scripted_memllm.py, each
   generation taking ``--delay`` seconds (a stand-in for the model's time). Meanwhile
   this process writes one fact every ``--every`` seconds through its own connection
   (one batch each, as ``facts add`` does) and records how long each write took; a
   write that fails counts as failed. ``facts add`` itself, a whole CLI process, is
   also timed a few times during the ingest. The ingest holds the write lock only to
   store a document it has read whole, so writes wait for that, not for the model.
2. Kill trials: ``--kill-trials`` ingests and as many ``facts import`` runs (3000
   facts) killed with SIGKILL at seeded random moments, each resuming what the last
   left; after each, PRAGMA integrity_check, and whether a document is half there or
   an import partly there; then a run to the end, and the facts lost (expected facts
   missing) counted.

    python bench/bench_lock.py
    python bench/bench_lock.py --docs 5 --sentences 60 --delay 0.05 --kill-trials 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from scripted_memllm import run, start, triples  # noqa: E402

from memllm_cli.errors import MemllmError  # noqa: E402
from memllm_cli.store import FactFilter, Store  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
Fact = tuple[str, str, str]


def write_documents(folder: Path, docs: int, sentences: int) -> dict[Path, set[Fact]]:
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for d in range(docs):
        lines = [f"Person{d}x{i} Hansen works at Firm{i}." for i in range(sentences)]
        path = folder / f"doc{d}.md"
        path.write_text("\n\n".join(lines) + "\n")
        expected[path] = {t for line in lines for t in triples(line)}
    return expected


def facts(store: Store) -> set[Fact]:
    return {(f.subject, f.relation, f.object) for f in store.facts(FactFilter())}


def writer_wait(home: Path, args: argparse.Namespace) -> dict:
    """Write while an ingest runs; the seconds each write took."""
    paths = [str(p) for p in write_documents(home.parent / "notes", args.docs, args.sentences)]
    assert run(home, "facts", "add", "Ola Nordmann", "residence", "Bergen").returncode == 0
    waits: list[float] = []
    failures: list[str] = []
    cli_waits: list[float] = []
    started = time.perf_counter()
    ingest = start(home, "ingest", *paths, delay=args.delay)
    done = threading.Event()

    def write() -> None:
        with Store.open(home / "memory.db") as store:
            n = 0
            while not done.is_set():
                began = time.perf_counter()
                try:
                    with store.batch("bench", "bench write"):
                        store.add_fact(f"Writer{n} Olsen", "employer", "Equinor")
                    waits.append(time.perf_counter() - began)
                except MemllmError as exc:
                    failures.append(str(exc))
                n += 1
                time.sleep(args.every)

    thread = threading.Thread(target=write)
    thread.start()
    while ingest.poll() is None and len(cli_waits) < args.cli_writes:
        time.sleep(0.5)
        began = time.perf_counter()
        added = run(home, "facts", "add", f"Cli{len(cli_waits)} Olsen", "employer", "NIVA")
        if added.returncode == 0:
            cli_waits.append(time.perf_counter() - began)
        else:
            failures.append(added.stderr.strip())
    ingest.communicate(timeout=3600)
    ingest_s = time.perf_counter() - started
    done.set()
    thread.join()
    return {
        "ingest_s": round(ingest_s, 2),
        "ingest_exit": ingest.returncode,
        "model_s_per_document": round(args.sentences * args.delay, 2),
        "writes": len(waits),
        "failed": len(failures),
        "failures": failures[:5],
        "wait_median_s": round(statistics.median(waits), 4) if waits else None,
        "wait_p95_s": round(sorted(waits)[int(0.95 * (len(waits) - 1))], 4) if waits else None,
        "wait_max_s": round(max(waits), 4) if waits else None,
        "cli_facts_add_s": [round(w, 3) for w in cli_waits],
    }


def kill_trials(home: Path, trials: int, seed: int) -> dict:
    """Killed ingests and imports; what each left, and what a run to the end stores."""
    rng = random.Random(seed)
    expected = write_documents(home.parent / "kill-notes", 4, 12)
    paths = [str(p) for p in expected]
    result = {"ingest_trials": 0, "import_trials": 0, "unsound": 0, "half_documents": 0}
    for _ in range(trials):
        proc = start(home, "ingest", *paths, delay=0.03)
        time.sleep(rng.uniform(0.2, 2.5))
        proc.kill()
        proc.communicate()
        result["ingest_trials"] += 1
        if not (home / "memory.db").exists():
            continue
        with Store.open(home / "memory.db") as store:
            result["unsound"] += store.integrity_check() != ["ok"]
            stored = facts(store)
            for path, stated in expected.items():
                if store.ingested_version(str(path.resolve())) is None:
                    result["half_documents"] += bool(stated & stored)
                else:
                    result["half_documents"] += not stated <= stored
    run(home, "ingest", *paths)
    records = [
        {"subject": f"Person{i} Olsen", "relation": "employer", "object": f"Firm{i % 50}"}
        for i in range(3000)
    ]
    jsonl = home.parent / "facts.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    imported = {(r["subject"], r["relation"], r["object"]) for r in records}
    partial = 0
    for _ in range(trials):
        proc = start(home, "facts", "import", str(jsonl))
        time.sleep(rng.uniform(0.2, 2.0))
        proc.kill()
        proc.communicate()
        result["import_trials"] += 1
        with Store.open(home / "memory.db") as store:
            result["unsound"] += store.integrity_check() != ["ok"]
            partial += 0 < len(imported & facts(store)) < len(imported)
    run(home, "facts", "import", str(jsonl))
    with Store.open(home / "memory.db") as store:
        wanted = set().union(*expected.values()) | imported
        result["partial_imports"] = partial
        result["facts_expected"] = len(wanted)
        result["facts_lost"] = len(wanted - facts(store))
        result["unsound"] += store.integrity_check() != ["ok"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per generation")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between writes")
    parser.add_argument("--cli-writes", type=int, default=5)
    parser.add_argument("--kill-trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    result: dict = {"loadavg_start": os.getloadavg(), "args": vars(args)}
    with tempfile.TemporaryDirectory() as scratch:
        result["writer"] = writer_wait(Path(scratch) / "wait" / "home", args)
        result["kill"] = kill_trials(Path(scratch) / "kill" / "home", args.kill_trials, args.seed)
    result["loadavg_end"] = os.getloadavg()
    w, k = result["writer"], result["kill"]
    print(f"writer during ingest ({args.docs} docs x {args.sentences} sentences, {args.delay} s)")
    print(f"  {'model s/document':28} {w['model_s_per_document']:>8}")
    print(f"  {'writes (failed)':28} {w['writes']:>5} ({w['failed']})")
    print(f"  {'wait median / p95 / max s':28} {w['wait_median_s']} / {w['wait_p95_s']} / ", end="")
    print(w["wait_max_s"])
    print(f"  {'facts add (CLI) s':28} {w['cli_facts_add_s']}")
    print("kill -9 trials")
    print(f"  {'ingest / import trials':28} {k['ingest_trials']} / {k['import_trials']}")
    print(f"  {'unsound (integrity_check)':28} {k['unsound']:>5}")
    print(f"  {'half documents':28} {k['half_documents']:>5}")
    print(f"  {'partial imports':28} {k['partial_imports']:>5}")
    print(f"  {'facts lost':28} {k['facts_lost']:>5} of {k['facts_expected']}")
    print("load average start/end:", result["loadavg_start"], result["loadavg_end"])
    (OUT / "bench_lock.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
