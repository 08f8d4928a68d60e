"""How soon ``memllm ingest --watch`` has an edit in memory, and whether any write is lost.

``memllm ingest --watch NOTES`` runs in a subprocess with the rule model of
tests/scripted_memllm.py (no weights: the model's own time is not what this measures;
``--delay`` adds some per sentence). NOTES holds ``--notes`` notes. Each trial adds one
sentence ("PersonN Hansen works at FirmN.") to a note the way an editor saves it, then
polls the memory (its own connection) until that fact is current; the time from the
end of the save to then is the trial's latency. Ways to save, ``--trials`` each:

- ``inplace``: the file rewritten where it is;
- ``atomic``: a temporary file written, then renamed over the note (most editors);
- ``vim``: the note renamed to ``note~``, a new note written, the backup deleted;
- ``half``: the note truncated, written half, then whole 150 ms later (a slow writer);
- ``new``: a new note (the walker is asked again);
- ``rename``: a note renamed (its facts must stay current, the model not asked);
- ``delete``: a note deleted (latency until its fact is retracted; includes the
  1 s grace a vanished file gets to come back).

Then: every fact an edit added is still current and every deleted note's fact retracted
(nothing lost), and the latency beside a one-shot ``memllm ingest NOTE`` of the same
kind of edit run after the save (process start and all), as a ratio. Goal: the edit is
in memory within 2 s of the save (max over trials).

    python bench/bench_watch.py
    python bench/bench_watch.py --notes 2000 --trials 20 --delay 0.05
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from scripted_memllm import run, wait_for  # noqa: E402

from memllm_cli.store import Store  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
SCRIPT = ROOT / "tests" / "scripted_memllm.py"
GOAL_S = 2.0


def status(store: Store, subject: str, obj: str) -> str | None:
    fact_id = store.fact_id_of(subject, "employer", obj)
    return None if fact_id is None else store.fact(fact_id).status


def until(condition: Callable[[], bool], timeout: float = 30.0) -> float:
    """Poll every 5 ms; the time it took (``timeout`` + 1 when it never held)."""
    began = time.perf_counter()
    while not condition():
        if time.perf_counter() - began > timeout:
            return timeout + 1
        time.sleep(0.005)
    return time.perf_counter() - began


class Notes:
    """The watched folder and the edits a trial makes."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (folder / f"note{i:05d}.md").write_text(f"# Note {i}\n\nNothing to see in {i}.\n")
        self.n = 0

    def sentence(self) -> tuple[str, str, str]:
        self.n += 1
        return (
            f"Person{self.n} Hansen",
            f"Firm{self.n}",
            f"Person{self.n} Hansen works at Firm{self.n}.",
        )

    def save(self, path: Path, text: str, how: str) -> None:
        if how == "inplace":
            path.write_text(text)
        elif how == "atomic":
            temp = path.with_name(f".{path.name}.tmp")
            temp.write_text(text)
            os.replace(temp, path)
        elif how == "vim":
            backup = path.with_name(path.name + "~")
            path.rename(backup)
            path.write_text(text)
            backup.unlink()
        elif how == "half":
            with path.open("w") as handle:
                handle.write(text[: len(text) // 2])
                handle.flush()
                time.sleep(0.15)
                handle.write(text[len(text) // 2 :])
        else:
            raise ValueError(how)


def trials(args: argparse.Namespace, home: Path, notes: Notes) -> dict:
    """Latencies per way of saving; what must hold at the end."""
    expected_current: list[tuple[str, str]] = []
    expected_retracted: list[tuple[str, str]] = []
    latencies: dict[str, list[float]] = {}
    with Store.open(home / "memory.db") as store:
        for how in ("inplace", "atomic", "vim", "half", "new", "rename", "delete"):
            for i in range(args.trials):
                subject, obj, line = notes.sentence()
                if how == "new":
                    path = notes.folder / f"new{notes.n:05d}.md"
                    path.write_text(line + "\n")
                elif how in ("rename", "delete"):
                    source = notes.folder / f"victim{notes.n:05d}.md"
                    source.write_text(line + "\n")
                    until(lambda s=subject, o=obj: status(store, s, o) == "current")
                    time.sleep(0.3)
                    if how == "rename":
                        source.rename(source.with_name(f"renamed{notes.n:05d}.md"))
                    else:
                        source.unlink()
                else:
                    path = notes.folder / f"note{i % args.notes:05d}.md"
                    notes.save(path, path.read_text() + line + "\n", how)
                if how == "delete":
                    took = until(lambda s=subject, o=obj: status(store, s, o) == "retracted")
                    expected_retracted.append((subject, obj))
                elif how == "rename":
                    time.sleep(1.5)  # past the grace: a lost fact would be retracted by now
                    took = 0.0 if status(store, subject, obj) == "current" else float("inf")
                    expected_current.append((subject, obj))
                else:
                    took = until(lambda s=subject, o=obj: status(store, s, o) == "current")
                    expected_current.append((subject, obj))
                latencies.setdefault(how, []).append(took)
                time.sleep(0.3)  # trials apart, not one batch
        time.sleep(1.5)  # anything pending settles
        lost = [f for f in expected_current if status(store, *f) != "current"]
        kept = [f for f in expected_retracted if status(store, *f) != "retracted"]
    return {"latencies": latencies, "lost": lost, "not_retracted": kept}


def one_shot(args: argparse.Namespace, home: Path, notes: Notes) -> list[float]:
    """The same in-place edit, ingested by a fresh ``memllm ingest NOTE`` after the save."""
    times = []
    with Store.open(home / "memory.db") as store:
        for i in range(args.one_shot):
            subject, obj, line = notes.sentence()
            path = notes.folder / f"note{(i + 7) % args.notes:05d}.md"
            notes.save(path, path.read_text() + line + "\n", "inplace")
            began = time.perf_counter()
            done = run(home, "ingest", str(path))
            assert done.returncode == 0, done.stderr
            assert status(store, subject, obj) == "current"
            times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--one-shot", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.0, help="model seconds per call")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT) as scratch:
        home = Path(scratch) / "home"
        notes = Notes(Path(scratch) / "notes", args.notes)
        err = Path(scratch) / "watch.err"
        env = {**os.environ, "MEMLLM_HOME": str(home), "MEMLLM_EMBEDDER": "hash"}
        env["MEMLLM_TEST_DELAY"] = str(args.delay)
        command = [sys.executable, str(SCRIPT), "ingest", "--watch", str(notes.folder)]
        load = os.getloadavg()
        with err.open("w") as stderr:
            watch = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                wait_for(lambda: "watching" in err.read_text(), timeout=300)
                result = trials(args, home, notes)
            finally:
                watch.send_signal(signal.SIGINT)
                watch.wait(timeout=60)
        log = err.read_text().splitlines()
        result["renames_seen"] = sum("renamed from" in line for line in log)
        result["log_tail"] = log[-5:]
        result["one_shot"] = one_shot(args, home, notes)
    rows = []
    print(f"notes: {args.notes}, trials: {args.trials}, model delay: {args.delay}s, load {load}")
    print(f"{'save':10} {'median ms':>10} {'max ms':>10}")
    for how, values in result["latencies"].items():
        median, worst = statistics.median(values), max(values)
        rows.append({"how": how, "median_s": median, "max_s": worst, "values": values})
        print(f"{how:10} {median * 1000:10.0f} {worst * 1000:10.0f}")
    shot = statistics.median(result["one_shot"])
    edit = statistics.median(
        v for how in ("inplace", "atomic", "vim") for v in result["latencies"][how]
    )
    print(f"one-shot `memllm ingest NOTE` after a save: median {shot * 1000:.0f} ms")
    print(f"watch / one-shot (median, in-place, atomic and vim saves): {edit / shot:.2f}")
    print(
        f"facts lost: {len(result['lost'])}; deleted notes' facts not retracted: "
        f"{len(result['not_retracted'])}"
    )
    print(
        f"renames seen as renames (facts carried, model not asked): {result['renames_seen']}"
        f" of {args.trials}"
    )
    edits = [r["max_s"] for r in rows if r["how"] not in ("delete", "rename")]
    verdict = "ok" if max(edits) < GOAL_S and not result["lost"] else "MISSED"
    print(f"goal: every edit in memory within {GOAL_S} s of its save: {verdict}")
    (OUT / "bench_watch.json").write_text(
        json.dumps({"args": vars(args), "load": load, "rows": rows, **result}, indent=1)
    )


if __name__ == "__main__":
    main()
