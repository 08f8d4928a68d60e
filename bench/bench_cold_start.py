"""Cold-start cost of the CLI against a bare typer + rich start-up.

Interleaved runs (``--runs`` of each, in turn, so load changes hit all alike):

baseline   python -c "import typer, rich.console"
import     python -c "import memllm_cli.cli"
list       memllm --db MEMORY facts list --jsonl > /dev/null   (every fact of the memory)
list-100   memllm --db MEMORY facts list --jsonl --limit 100    (when --limit exists)
help       memllm --help
list-100-settings  the same, the memory named by a settings file (MEMLLM_CONFIG), no --db
                   (when the CLI has settings files: what reading one costs)

With ``--against DIR`` (another checkout, e.g. main), ``list``, ``list-100`` and
``help`` also run with that checkout first on ``PYTHONPATH`` (``NAME@against``),
interleaved with the rest, and the ratio of this tree to it is printed. This tree
runs with its own root first on ``PYTHONPATH``, whatever the editable install.

Reports the median wall time of each and its ratio to the baseline (goal: the
listing within 1.5x), and the median CPU time (user + system) of the process, which
other work on a shared machine disturbs far less than the wall time. Then
``python -X importtime`` on the list command shows
which imported modules cost most, and whether any heavy one (torch, numpy,
transformers, sentence_transformers, llama_cpp, sqlite_vec's Python side) is
imported at all.

Run ``python bench/bench_cold_start.py`` (builds the 100k memory if needed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from make_memory import OUT, ensure_memory

PYTHON = sys.executable
MEMLLM = str(Path(sys.executable).parent / "memllm")
GOAL_RATIO = 1.5
HEAVY = ("torch", "numpy", "transformers", "sentence_transformers", "llama_cpp", "sqlite_vec")
ROOT = Path(__file__).resolve().parent.parent


def tree_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment that makes ``root``'s memllm_cli the one imported."""
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def wall(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) for one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def has_option(cmd: list[str], option: str, env: dict[str, str] | None = None) -> bool:
    done = subprocess.run(cmd + ["--help"], capture_output=True, text=True, check=False, env=env)
    return option in done.stdout


def import_times(cmd: list[str], env: dict[str, str]) -> list[tuple[str, int, int]]:
    """(module, self us, cumulative us) from ``python -X importtime``."""
    done = subprocess.run(
        [PYTHON, "-X", "importtime", *cmd], capture_output=True, text=True, check=False, env=env
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        # one space after the bar, then two more per nesting level
        rows.append((name[1:].rstrip(), int(self_us), int(cumulative_us)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=100_000, help="size of the memory listed")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    if not Path(MEMLLM).exists():
        sys.exit(f"no CLI at {MEMLLM} yet (pip install -e . once memllm_cli.cli exists)")
    memory = ensure_memory(args.facts)["path"]
    here = tree_env(ROOT)
    list_cmd = [MEMLLM, "--db", memory, "facts", "list", "--jsonl"]
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "baseline": ([PYTHON, "-c", "import typer, rich.console"], here),
        "import": ([PYTHON, "-c", "import memllm_cli.cli"], here),
        "list": (list_cmd, here),
        "help": ([MEMLLM, "--help"], here),
    }
    settings = Path(tempfile.mkdtemp()) / "config.toml"
    settings.write_text(f"db = {json.dumps(memory)}\n[profiles.other]\nme = 'x'\n")
    if has_option([MEMLLM, "facts", "list"], "--limit", here):
        commands["list-100"] = (list_cmd + ["--limit", "100"], here)
        if has_option([MEMLLM], "config", here):
            commands["list-100-settings"] = (
                [MEMLLM, "facts", "list", "--jsonl", "--limit", "100"],
                tree_env(ROOT, MEMLLM_CONFIG=str(settings)),
            )
    if args.against:
        there = tree_env(args.against.resolve())
        for name in ("list", "list-100", "help"):
            if name in commands:
                commands[f"{name}@against"] = (commands[name][0], there)
    for cmd, env in commands.values():  # warm the page cache and .pyc files
        wall(cmd, env)
    loadavg_start = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, (cmd, env) in commands.items():
            elapsed, used = wall(cmd, env)
            times[name].append(elapsed)
            cpu[name].append(used)
    loadavg_end = os.getloadavg()
    base = statistics.median(times["baseline"])
    summary = {
        name: {
            "median_s": round(statistics.median(values), 4),
            "min_s": round(min(values), 4),
            "ratio_to_baseline": round(statistics.median(values) / base, 2),
            "cpu_median_s": round(statistics.median(cpu[name]), 4),
        }
        for name, values in times.items()
    }

    list_imports = import_times(["-m", "memllm_cli", *list_cmd[1:]], here)
    top_cumulative = sorted(
        (r for r in list_imports if not r[0].startswith(" ")), key=lambda r: -r[2]
    )[: args.top]
    top_self = sorted(list_imports, key=lambda r: -r[1])[: args.top]
    heavy = sorted({r[0].strip() for r in list_imports if r[0].strip().split(".")[0] in HEAVY})

    print(f"memory: {memory} ({args.facts} facts); {args.runs} interleaved runs each")
    print(f"{'command':18} {'median s':>9} {'min s':>7} {'ratio':>6} {'cpu s':>7}")
    for name, row in summary.items():
        print(
            f"{name:18} {row['median_s']:>9} {row['min_s']:>7} {row['ratio_to_baseline']:>6} "
            f"{row['cpu_median_s']:>7}"
        )
    for name in ("list", "list-100"):
        if name in summary:
            ok = summary[name]["ratio_to_baseline"] <= GOAL_RATIO
            print(f"{name}: {'meets' if ok else 'MISSES'} the {GOAL_RATIO}x goal")
    against = {}
    for name in ("list", "list-100", "help"):
        if f"{name}@against" in summary:
            mine, theirs = summary[name], summary[f"{name}@against"]
            ratio = mine["median_s"] / theirs["median_s"]
            cpu_ratio = mine["cpu_median_s"] / theirs["cpu_median_s"]
            against[name] = {"wall": round(ratio, 3), "cpu": round(cpu_ratio, 3)}
            print(f"{name}: this tree / {args.against}: wall {ratio:.3f}, cpu {cpu_ratio:.3f}")
    print(f"\ntop-level imports of 'facts list' by cumulative time (of {len(list_imports)}):")
    for name, _, cumulative_us in top_cumulative:
        print(f"  {cumulative_us / 1000:8.1f} ms  {name.strip()}")
    print("modules with the most self time:")
    for name, self_us, _ in top_self:
        print(f"  {self_us / 1000:8.1f} ms  {name.strip()}")
    print("heavy modules imported:", ", ".join(heavy) or "none")
    print("load average start/end:", loadavg_start, loadavg_end)
    result = {
        "memory": memory,
        "facts": args.facts,
        "runs": args.runs,
        "commands": {name: " ".join(cmd) for name, (cmd, _) in commands.items()},
        "against": str(args.against) if args.against else None,
        "ratio_to_against": against,
        "summary": summary,
        "times_s": times,
        "cpu_s": cpu,
        "top_cumulative_us": top_cumulative,
        "top_self_us": top_self,
        "heavy_imported": heavy,
        "loadavg_start": loadavg_start,
        "loadavg_end": loadavg_end,
    }
    (OUT / "bench_cold_start.json").write_text(json.dumps(result, indent=2))
    print("saved bench/out/bench_cold_start.json")


if __name__ == "__main__":
    main()
