"""The SQLite binding, compared: the same memllm with different ``store/db.py``, side by side.

Each ``--tree NAME=PATH`` is a folder holding a ``memllm_cli`` package (a checkout or an
export of any revision; edit its ``store/db.py`` to try another binding). For each tree,
with ``PYTHONPATH=PATH`` so that its package wins:

1. Cold start, interleaved with the baseline (``--runs`` rounds; each round runs every
   command once, in turn, so load from other work hits all alike):

       baseline   python -c "import typer, rich.console"
       NAME       python -m memllm_cli --db MEMORY facts list --jsonl --limit 100
       NAME:all   the same without --limit (every fact; with --all-facts)

2. ``bench_read.py --config FACTS:hash`` once per tree and round (``--read-rounds``),
   trees alternating; exact and fuzzy read medians, per query kind.

    python bench/bench_binding.py --tree today=/tmp/v/today --tree apsw=.

Bytecode matters: with PYTHONDONTWRITEBYTECODE set, every run compiles memllm's
modules again (about 40 ms here), so this script unsets it for what it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from make_memory import OUT, ensure_memory

PYTHON = sys.executable
BENCH = Path(__file__).resolve().parent


def environment(tree: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("PYTHONPATH", None)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def run(cmd: list[str], tree: Path | None, **kwargs) -> subprocess.CompletedProcess:
    """``cmd`` with ``tree``'s package first: on PYTHONPATH, and as the working folder
    (``python -c`` and ``-m`` put the working folder first on sys.path)."""
    return subprocess.run(cmd, env=environment(tree), cwd=tree or OUT, check=True, **kwargs)


def wall(cmd: list[str], tree: Path | None) -> float:
    started = time.perf_counter()
    run(cmd, tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def binding_of(tree: Path) -> str:
    """What the tree's store opens with: module name and SQLite version."""
    code = (
        "from memllm_cli.store import db\n"
        "c = db.connect(':memory:')\n"
        "v = c.execute('select sqlite_version()').fetchone()[0]\n"
        "fts = c.execute(\"select sqlite_compileoption_used('ENABLE_FTS5')\").fetchone()[0]\n"
        "vec = c.execute('select vec_version()').fetchone()[0]\n"
        "mods = sorted(n for n in ('pysqlite3', 'sqlean', 'apsw', 'sqlite3') "
        "if n in __import__('sys').modules)\n"
        "print(f'{mods} sqlite {v}, fts5 {bool(fts)}, sqlite-vec {vec}')\n"
    )
    return run([PYTHON, "-c", code], tree, capture_output=True, text=True).stdout.strip()


def cold_start(trees: dict[str, Path], memory: str, runs: int, all_facts: bool) -> dict:
    commands: dict[str, tuple[list[str], Path | None]] = {
        "baseline": ([PYTHON, "-c", "import typer, rich.console"], None)
    }
    for name, tree in trees.items():
        listing = [PYTHON, "-m", "memllm_cli", "--db", memory, "facts", "list", "--jsonl"]
        commands[name] = (listing + ["--limit", "100"], tree)
        if all_facts:
            commands[f"{name}:all"] = (listing, tree)
    for cmd, tree in commands.values():  # bytecode and page cache
        wall(cmd, tree)
        wall(cmd, tree)
    times: dict[str, list[float]] = {name: [] for name in commands}
    load = [os.getloadavg()[0]]
    for _ in range(runs):
        for name, (cmd, tree) in commands.items():
            times[name].append(wall(cmd, tree))
    load.append(os.getloadavg()[0])
    base = statistics.median(times["baseline"])
    return {
        "loadavg": load,
        "summary": {
            name: {
                "median_s": round(statistics.median(v), 4),
                "min_s": round(min(v), 4),
                "ratio_to_baseline": round(statistics.median(v) / base, 2),
            }
            for name, v in times.items()
        },
        "times_s": times,
    }


def reads(trees: dict[str, Path], facts: int, queries: int, rounds: int) -> dict:
    """bench_read.py's per-kind medians, per tree and round."""
    out: dict[str, list[dict]] = {name: [] for name in trees}
    result_file = OUT / f"bench_read-{facts}-hash.json"
    for _ in range(rounds):
        for name, tree in trees.items():
            run(
                [
                    PYTHON,
                    str(BENCH / "bench_read.py"),
                    "--config",
                    f"{facts}:hash",
                    "--queries",
                    str(queries),
                    "--recall-sample",
                    "0",
                ],
                tree,
                stdout=subprocess.DEVNULL,
            )
            result = json.loads(result_file.read_text())
            out[name].append(
                {
                    "loadavg": [result["loadavg_start"][0], result["loadavg_end"][0]],
                    "median_ms": {s["kind"]: s["median_ms"] for s in result["summary"]},
                    "p95_ms": {s["kind"]: s["p95_ms"] for s in result["summary"]},
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH, repeatable")
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--all-facts", action="store_true", help="also list every fact")
    parser.add_argument("--queries", type=int, default=30, help="bench_read queries per kind")
    parser.add_argument("--read-rounds", type=int, default=2, help="0 skips bench_read")
    args = parser.parse_args()
    trees = {}
    for spec in args.tree:
        name, _, path = spec.partition("=")
        trees[name] = Path(path).resolve()
    memory = ensure_memory(args.facts)["path"]
    ensure_memory(args.facts, embedder="hash")
    bindings = {name: binding_of(tree) for name, tree in trees.items()}
    for name, text in bindings.items():
        print(f"{name}: {trees[name]}: {text}")

    cold = cold_start(trees, memory, args.runs, args.all_facts)
    print(f"\ncold start, {args.runs} interleaved runs, load {cold['loadavg']}")
    print(f"{'command':14} {'median s':>9} {'min s':>7} {'ratio':>6}")
    for name, row in cold["summary"].items():
        print(f"{name:14} {row['median_s']:>9} {row['min_s']:>7} {row['ratio_to_baseline']:>6}")

    read_rows = reads(trees, args.facts, args.queries, args.read_rounds)
    if args.read_rounds:
        kinds = list(next(iter(read_rows.values()))[0]["median_ms"])
        print(f"\nbench_read {args.facts}:hash, median ms per kind (each round)")
        print(f"{'tree':10} {'round':>5} " + " ".join(f"{k:>10}" for k in kinds))
        for name, rounds in read_rows.items():
            for i, row in enumerate(rounds):
                cells = " ".join(f"{row['median_ms'][k]:>10}" for k in kinds)
                print(f"{name:10} {i:>5} {cells}")
    result = {"trees": {n: str(p) for n, p in trees.items()}, "bindings": bindings}
    result |= {"cold_start": cold, "reads": read_rows}
    (OUT / "bench_binding.json").write_text(json.dumps(result, indent=1))
    print("saved bench/out/bench_binding.json")


if __name__ == "__main__":
    main()
