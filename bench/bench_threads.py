"""Warm ``ask`` under thread and OpenMP wait policies, on an idle machine and with one core busy.

Each policy runs in a fresh process (OpenMP reads its settings when it loads), with
the default model and its adapter, on a small memory: one warm-up ask, then ``--asks``
timed asks of the same question (as in chat), or fewer once they took ``--budget``
seconds (a policy that stalls would take hours). "busy" runs a pure-Python busy loop in
another process meanwhile: one core taken by other work. Rounds interleave
conditions and policies, so load from other work on the machine hits all alike.

A policy is NAME=SPEC, SPEC a comma list of ``decode=N`` (threads generating one token),
``batch=N`` (threads for prompt batches), and environment variables
(``GOMP_SPINCOUNT=10000``, ``OMP_WAIT_POLICY=PASSIVE``); ``default`` is memllm's own
policy, untouched. Inherited GOMP_SPINCOUNT / OMP_WAIT_POLICY are removed first.

    python bench/bench_threads.py --rounds 2
    python bench/bench_threads.py --policy 'old-idle=decode=2,batch=2,GOMP_SPINCOUNT=10000'
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
OPENMP_VARS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
POLICIES = {
    "memllm": "default",
    "old-idle-pick": "decode=2,batch=2,GOMP_SPINCOUNT=10000",
    "old-busy-pick": "decode=2,batch=2,OMP_WAIT_POLICY=PASSIVE",
    "d1-spin10000": "decode=1,batch=2,GOMP_SPINCOUNT=10000",
    "d1-b2-passive": "decode=1,batch=2,OMP_WAIT_POLICY=PASSIVE",
    "one-thread": "decode=1,batch=1",
}


def parse(spec: str) -> tuple[dict[str, int], dict[str, str]]:
    counts, env = {}, {}
    if spec == "default":
        return counts, env
    for item in spec.split(","):
        key, _, value = item.partition("=")
        if key in ("decode", "batch"):
            counts[key] = int(value)
        else:
            env[key] = value
    return counts, env


def child(spec: str, asks: int, budget: float) -> None:
    """Runs in the measured process: load, warm up, time ``asks`` asks (fewer when they
    take more than ``budget`` seconds in all; at least one); print JSON."""
    import random

    from bench_ask import build_memory

    from memllm_cli.runtime import llama
    from memllm_cli.runtime.loop import Session
    from memllm_cli.runtime.models import load_model
    from memllm_cli.store import Store

    counts, _ = parse(spec)
    if counts:
        llama.thread_counts = lambda *args: (counts["decode"], counts["batch"])
    started = time.perf_counter()
    model = load_model()
    load = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        facts = build_memory(Path(tmp) / "m.db", random.Random(0))
        store = Store.open(Path(tmp) / "m.db")
        subject = next(f[0] for f in facts if f[1] == "residence")
        session = Session(store, model, None)
        question = f"Where does {subject} live?"
        session.ask(question)
        walls, tokens = [], []
        while len(walls) < asks and (not walls or sum(walls) < budget):
            t0 = time.perf_counter()
            answer = session.ask(question)
            walls.append(time.perf_counter() - t0)
            tokens.append(answer.usage.completion_tokens)
        store.close()
    threads = {"decode": model.llm.context_params.n_threads}
    threads["batch"] = model.llm.context_params.n_threads_batch
    result = {"load_s": load, "walls": walls, "tokens": tokens, "answer": answer.text}
    print(json.dumps(result | {"threads": threads, "spin": os.environ.get("GOMP_SPINCOUNT")}))


def measure(spec: str, asks: int, budget: float) -> dict:
    _, env_extra = parse(spec)
    env = {k: v for k, v in os.environ.items() if k not in OPENMP_VARS} | env_extra
    env["MEMLLM_EMBEDDER"] = "hash"
    done = subprocess.run(
        [sys.executable, __file__, "--child", spec, "--asks", str(asks), "--budget", str(budget)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", action="append", help="NAME=SPEC (default: a built-in set)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--asks", type=int, default=7)
    parser.add_argument(
        "--budget", type=float, default=30.0, help="seconds of asks per policy run, at most"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.asks, args.budget)
        return
    policies = dict(p.split("=", 1) for p in args.policy) if args.policy else POLICIES
    walls: dict[tuple[str, str], list[float]] = {}
    loads: dict[str, list[float]] = {"idle": [], "busy": []}
    answers: set[str] = set()
    for _ in range(args.rounds):
        for condition in ("idle", "busy"):
            busy = None
            if condition == "busy":
                busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                time.sleep(0.5)
            try:
                for name, spec in policies.items():
                    loads[condition].append(os.getloadavg()[0])
                    result = measure(spec, args.asks, args.budget)
                    walls.setdefault((name, condition), []).extend(result["walls"])
                    answers.add(result["answer"])
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    print(
        f"warm ask, median s over {args.rounds} rounds x <= {args.asks} asks; busy: one core busy"
    )
    print(f"{'policy':16} {'spec':42} {'idle':>6} {'n':>3} {'busy':>6} {'n':>3} {'busy/idle':>9}")
    summary = {}
    for name, spec in policies.items():
        idle = statistics.median(walls[(name, "idle")])
        busy = statistics.median(walls[(name, "busy")])
        n_idle, n_busy = len(walls[(name, "idle")]), len(walls[(name, "busy")])
        summary[name] = {"spec": spec, "idle_s": round(idle, 3), "busy_s": round(busy, 3)}
        summary[name] |= {"idle_n": n_idle, "busy_n": n_busy}
        print(
            f"{name:16} {spec:42} {idle:>6.3f} {n_idle:>3} {busy:>6.3f} {n_busy:>3} "
            f"{busy / idle:>9.2f}"
        )
    print("load average during idle runs:", [round(x, 2) for x in loads["idle"]])
    print("load average during busy runs:", [round(x, 2) for x in loads["busy"]])
    print(f"distinct answers: {len(answers)} {sorted(answers)!r}")
    OUT.mkdir(exist_ok=True)
    report = {"summary": summary, "walls": {f"{k[0]}/{k[1]}": v for k, v in walls.items()}}
    report |= {"loadavg": loads, "answers": sorted(answers)}
    (OUT / "bench_threads.json").write_text(json.dumps(report, indent=1))
    print("saved bench/out/bench_threads.json")


if __name__ == "__main__":
    main()
