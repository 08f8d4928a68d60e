"""``memllm mcp`` read tools at 100k facts: latency through the SDK's client, beside the core.

Each read tool (query exact, query fuzzy, search, show, recent) is called
``--calls`` times on sampled facts, alternately through an in-process MCP client
session (``mcp.Client`` on the server ``memllm mcp`` builds: JSON-RPC framing,
argument validation and result serialisation included, no pipe) and on the core
(:class:`memllm_cli.mcp_server.tools.MemoryTools`) directly. Reports median and
p95 ms of each and the ratio of the client's median to the core's. Goal: every
read tool answered in under 50 ms at 100k facts.

query exact   ``subject>>relation>>`` with the stored name and label
query fuzzy   the same with one letter of the name's longest word changed (vectors)
search        the fact's object name (keyword and meaning, fused)
show          the fact with its evidence, versions and operations
recent        a page of 10 facts older than the sampled one

Then cold start: ``python -m memllm_cli --db M facts list --jsonl --limit 100``
against ``python -c "import typer, rich.console"``, interleaved, for this checkout
and, with ``--compare-to DIR``, another (the main branch), and which modules of the
MCP SDK the listing imported (none, or the [mcp] extra costs every command).

The cached memory (bench/make_memory.py) is copied to temporary files first, so
it stays as built. Run ``python bench/bench_mcp.py --compare-to ../main``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from bench_cold_start import import_times, wall
from make_memory import OUT, ensure_memory
from mcp import Client
from mcp_types import Implementation

from memllm_cli.embed import get_embedder
from memllm_cli.mcp_server.server import build
from memllm_cli.mcp_server.tools import MemoryTools
from memllm_cli.store import Fact, Store

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 50.0
MCP_SDK = ("mcp", "mcp_types", "pydantic", "uvicorn", "starlette", "anyio")


def typo(name: str, rnd: random.Random) -> str:
    """``name`` with one letter of its longest word changed."""
    words = name.split()
    i = max(range(len(words)), key=lambda k: len(words[k]))
    word = words[i]
    at = rnd.randrange(1, len(word)) if len(word) > 1 else 0
    words[i] = word[:at] + ("x" if word[at] != "x" else "z") + word[at + 1 :]
    return " ".join(words)


def calls_for(fact: Fact, rnd: random.Random) -> dict[str, tuple[str, dict[str, Any]]]:
    """kind -> (tool, arguments) for one sampled fact."""
    return {
        "query exact": ("query", {"query": f"{fact.subject}>>{fact.relation}>>"}),
        "query fuzzy": ("query", {"query": f"{typo(fact.subject, rnd)}>>{fact.relation}>>"}),
        "search": ("search", {"text": fact.object}),
        "show": ("show", {"fact_id": fact.id}),
        "recent": ("recent", {"cursor": fact.id}),
    }


def direct(tools: MemoryTools, tool: str, arguments: dict[str, Any]) -> Any:
    """The same call on the core, without the protocol."""
    return getattr(tools, tool)(**arguments)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 2),
        "p95_ms": round(percentile(values, 0.95) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


async def measure(tools: MemoryTools, facts: list[Fact], seed: int) -> dict[str, Any]:
    rnd = random.Random(seed)
    plans = [calls_for(fact, rnd) for fact in facts]
    times: dict[str, dict[str, list[float]]] = {
        kind: {"client": [], "core": []} for kind in plans[0]
    }
    failures: list[str] = []
    client_info = Implementation(name="bench", version="1")
    async with Client(build(tools), client_info=client_info) as client:
        for tool, arguments in plans[0].values():  # warm up: embedder, caches
            await client.call_tool(tool, arguments)
        for plan in plans:
            for kind, (tool, arguments) in plan.items():
                seconds, result = await timed(lambda t=tool, a=arguments: client.call_tool(t, a))
                if result.is_error:
                    failures.append(f"{kind} {arguments}: {result.content[0].text}")
                times[kind]["client"].append(seconds)
                started = time.perf_counter()
                direct(tools, tool, arguments)
                times[kind]["core"].append(time.perf_counter() - started)
    return {"times": times, "failures": failures}


def cold_start(memory: Path, runs: int, compare_to: Path | None) -> dict[str, Any]:
    """Interleaved wall times of the listing for each checkout, and the baseline."""
    listing = ["-m", "memllm_cli", "--db", "{db}", "facts", "list", "--jsonl", "--limit", "100"]
    checkouts = {"this": ROOT} | ({"compare": compare_to.resolve()} if compare_to else {})
    copies = {}
    for name in checkouts:  # each its own copy: this checkout migrates its copy
        copies[name] = memory.with_name(f"list-{name}.db")
        shutil.copyfile(memory, copies[name])
    commands = {"baseline": ([sys.executable, "-c", "import typer, rich.console"], None)}
    for name, root in checkouts.items():
        cmd = [sys.executable, *(a.replace("{db}", str(copies[name])) for a in listing)]
        commands[f"list ({name})"] = (cmd, str(root))
    times: dict[str, list[float]] = {name: [] for name in commands}
    saved = os.environ.get("PYTHONPATH")
    try:
        for round_ in range(runs + 1):  # the first round warms caches and migrates
            for name, (cmd, path) in commands.items():
                if path is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = path
                seconds = wall(cmd)
                if round_:
                    times[name].append(seconds)
        os.environ["PYTHONPATH"] = str(ROOT)
        imported = import_times(listing[:3] + [str(copies["this"])] + listing[4:])
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    base = statistics.median(times["baseline"])
    sdk = sorted({r[0].strip() for r in imported if r[0].strip().split(".")[0] in MCP_SDK})
    return {
        "runs": runs,
        "checkouts": {name: str(root) for name, root in checkouts.items()},
        "summary": {
            name: {
                "median_s": round(statistics.median(values), 4),
                "ratio_to_baseline": round(statistics.median(values) / base, 2),
            }
            for name, values in times.items()
        },
        "times_s": times,
        "mcp_sdk_imported": sdk,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--embedder", default="hash", choices=("hash", "minilm", "minilm-st"))
    parser.add_argument("--calls", type=int, default=60, help="sampled facts per tool")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=10, help="cold-start runs (0: skip)")
    parser.add_argument("--compare-to", type=Path, help="another checkout to list with")
    args = parser.parse_args()
    built = ensure_memory(args.facts, embedder=args.embedder)
    loadavg_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        memory = Path(tmp) / "memory.db"
        shutil.copyfile(built["path"], memory)
        with Store.open(memory) as store:
            total = store.count_facts()
            ids = random.Random(args.seed).sample(range(1, total + 1), args.calls)
            facts = [store.fact(i) for i in ids]
            tools = MemoryTools(store, get_embedder(args.embedder))
            measured = anyio.run(measure, tools, facts, args.seed)
        started = None
        if args.runs:
            base = Path(tmp) / "base.db"
            shutil.copyfile(built["path"], base)
            started = cold_start(base, args.runs, args.compare_to)
    loadavg_end = os.getloadavg()

    rows = {
        kind: {side: summary(values) for side, values in sides.items()}
        for kind, sides in measured["times"].items()
    }
    print(f"memory: {args.facts} facts, embedder {args.embedder}; {args.calls} calls per tool")
    print(f"{'tool':12} {'client med':>10} {'p95':>7} {'core med':>9} {'p95':>7} {'ratio':>6}")
    for kind, row in rows.items():
        client, core = row["client"], row["core"]
        ratio = client["median_ms"] / core["median_ms"] if core["median_ms"] else float("nan")
        row["ratio"] = round(ratio, 2)
        ok = client["p95_ms"] < GOAL_MS
        print(
            f"{kind:12} {client['median_ms']:>10} {client['p95_ms']:>7} "
            f"{core['median_ms']:>9} {core['p95_ms']:>7} {ratio:>6.2f}"
            + ("" if ok else f"  MISSES {GOAL_MS:.0f} ms at p95")
        )
    for failure in measured["failures"][:5]:
        print("tool error:", failure)
    if started:
        print(f"\ncold start, {started['runs']} interleaved runs (facts list --jsonl --limit 100):")
        for name, row in started["summary"].items():
            print(f"  {name:16} {row['median_s']:>7} s  {row['ratio_to_baseline']:>5}x baseline")
        print(
            "MCP SDK modules the listing imported:",
            ", ".join(started["mcp_sdk_imported"]) or "none",
        )
    print("load average start/end:", loadavg_start, loadavg_end)
    OUT.mkdir(parents=True, exist_ok=True)
    result = {
        "facts": args.facts,
        "embedder": args.embedder,
        "calls": args.calls,
        "tools": rows,
        "failures": measured["failures"],
        "cold_start": started,
        "loadavg_start": loadavg_start,
        "loadavg_end": loadavg_end,
    }
    (OUT / "bench_mcp.json").write_text(json.dumps(result, indent=2))
    print("saved bench/out/bench_mcp.json")


if __name__ == "__main__":
    main()
