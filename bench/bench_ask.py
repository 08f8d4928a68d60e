"""``memllm ask`` on the default model: latency, generation speed, read overhead, parse failures.

1. Cold: ``memllm ask QUESTION --json`` as a fresh process, ``--runs`` times, on a memory
   holding the answer. Wall time, split into model load, read, generation (from the
   command's own JSON timings) and the rest (interpreter, imports, prompt set-up).
   The question names the entity exactly, so the read must not load the embedder: the
   memory's ``embedding_model`` stays unset (checked).
2. Warm (as in chat): the same question in one process, ``--runs`` times.
3. Generation speed: completion tokens per second of the answer text with memory
   (one read, then the answer) and without (``memory=False``), and the read overhead:
   the time the store spent on each read call.
4. Parse failures over ``--answers`` generated answers (templated questions over a small
   memory, some about facts that are absent): every call must parse. Also reported: how
   often the read found the fact and how often the answer contains the gold object
   (the default model's accuracy: the base with memllm's adapter).

    python bench/bench_ask.py --runs 5 --answers 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.models import load_model
from memllm_cli.store import Store

OUT = Path(__file__).resolve().parent / "out"
FIRST = ["Ingrid", "Per", "Kari", "Ola", "Astrid", "Lars", "Sigrid", "Nils", "Marit", "Jonas"]
LAST = ["Solberg", "Hansen", "Nordmann", "Berg", "Dahl", "Lie", "Strand", "Moen", "Bakke"]
CITIES = ["Trondheim", "Bergen", "Oslo", "Tromsø", "Stavanger", "Bodø", "Ålesund"]
EMPLOYERS = ["NIVA", "Equinor", "SINTEF", "NTNU", "Telenor", "Statkraft", "DNB"]
TEMPLATES = {
    "residence": ["Where does {s} live?", "Which city is {s} living in?"],
    "employer": ["Where does {s} work?", "Who is {s}'s employer?"],
}
REVERSE = {"employer": "Who works at {o}?"}


def build_memory(path: Path, rng: random.Random) -> list[tuple[str, str, str]]:
    people = [f"{f} {last}" for f in FIRST for last in LAST]
    rng.shuffle(people)
    facts = []
    with Store.open(path) as store, store.batch("bench", "bench"):
        for person in people[:40]:
            for relation, pool in (("residence", CITIES), ("employer", EMPLOYERS)):
                obj = rng.choice(pool)
                store.add_fact(person, relation, obj)
                facts.append((person, relation, obj))
    return facts


def cold(db: Path, question: str, runs: int) -> dict:
    env = {**os.environ, "MEMLLM_EMBEDDER": "minilm"}
    rows = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "memllm_cli", "--db", str(db), "ask", question, "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        wall = time.perf_counter() - started
        timings = json.loads(done.stdout)["timings"]
        rest = wall - sum(timings.values())
        rows.append({"wall": wall, **timings, "rest": rest})
    with Store.open(db) as store:
        embedder_loaded = store.meta("embedding_model") is not None
    return {
        "median": {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]},
        "runs": rows,
        "embedder_loaded": embedder_loaded,
    }


def warm(session: Session, question: str, runs: int) -> dict:
    walls, reads = [], []
    for _ in range(runs):
        started = time.perf_counter()
        answer = session.ask(question)
        walls.append(time.perf_counter() - started)
        reads.append(answer.timings.get("read", 0.0))
    return {
        "median_wall": round(statistics.median(walls), 3),
        "median_read_ms": round(1000 * statistics.median(reads), 3),
    }


def speed(session: Session, question: str, runs: int) -> dict:
    out = {}
    for label, memory in (("with_read", True), ("without_memory", False)):
        session.memory = memory
        rates = []
        for _ in range(runs):
            answer = session.ask(question)
            rates.append(answer.usage.completion_tokens / answer.usage.seconds)
        out[label] = round(statistics.median(rates), 1)
    session.memory = True
    return out


def parse_failures(session: Session, facts: list, count: int, rng: random.Random) -> dict:
    failures = read_hits = gold_hits = reads = 0
    started = time.perf_counter()
    for i in range(count):
        subject, relation, obj = rng.choice(facts)
        if i % 5 == 4:  # about someone the memory does not know
            question = rng.choice(TEMPLATES[relation]).format(s="Gunnhild Aas")
            obj = None
        elif i % 7 == 6 and relation in REVERSE:
            question = REVERSE[relation].format(o=obj)
            obj = subject
        else:
            question = rng.choice(TEMPLATES[relation]).format(s=subject)
        answer = session.ask(question)
        failures += answer.parse_failures
        reads += len(answer.reads)
        if obj is not None:
            found = {r["answer"] for read in answer.reads for r in read.results}
            read_hits += obj in found
            gold_hits += obj.casefold() in answer.text.casefold()
    answerable = count - count // 5
    return {
        "answers": count,
        "parse_failures": failures,
        "read_calls": reads,
        "read_found_gold": f"{read_hits}/{answerable}",
        "answer_contains_gold": f"{gold_hits}/{answerable}",
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--answers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "memory.db"
        facts = build_memory(db, rng)
        subject, _, _ = next(f for f in facts if f[1] == "residence")
        question = f"Where does {subject} live?"
        report: dict = {"question": question}
        report["cold"] = cold(db, question, args.runs)
        model = load_model()  # the default: the base with memllm's adapter
        report["model"] = model.name
        with Store.open(db) as store:
            session = Session(store, model, None)
            report["warm"] = warm(session, question, args.runs)
            report["tokens_per_second"] = speed(session, question, args.runs)
            report["parse"] = parse_failures(session, facts, args.answers, rng)
    (OUT / "bench_ask.json").write_text(json.dumps(report, indent=1))
    cold_median = report["cold"]["median"]
    print(
        f"cold ask ({args.runs} runs, median s): "
        + ", ".join(f"{k} {v}" for k, v in cold_median.items())
    )
    print(f"embedder loaded by the exact read: {report['cold']['embedder_loaded']}")
    print(f"warm ask: {report['warm']}")
    print(f"generation tokens/s: {report['tokens_per_second']}")
    print(f"parse: {report['parse']}")


if __name__ == "__main__":
    main()
