"""A notes vault kept in sync: what a second ``memllm ingest`` reads, and how long it takes.

A generated Obsidian-style vault (memllm_cli/datasets/vault.py: ``--notes`` notes with
front matter, wikilinks, tags, nested folders, daily notes, a ``.obsidian/`` folder
and a ``.memllmignore``) is ingested by ``memllm ingest VAULT --json`` in a subprocess,
with the rule model of tests/scripted_memllm.py, which traces every generation (so the
sentences the model read are counted, not inferred from reports):

1. first run: every note is read;
2. second run, nothing changed: sentences read (goal: 0) and wall-clock seconds of the
   whole command, process start included (goal: under 5 s);
3. ``--edit`` notes edited (a new home, one sentence more: two changed sentences each),
   then a third run: sentences read, against the changed sentences counted by diffing
   each edited note's sentences before and after (goal: equal).

    python bench/bench_vault.py
    python bench/bench_vault.py --notes 2000 --edit 10
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from scripted_memllm import start  # noqa: E402

from memllm_cli.datasets.vault import edit_notes, write_vault  # noqa: E402
from memllm_cli.ingest.text import sentences  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def ingest(home: Path, vault: Path, trace: Path) -> dict:
    """One ``memllm ingest VAULT --json``: wall seconds, sentences the model read, report."""
    before = len(trace.read_text().splitlines()) if trace.exists() else 0
    started = time.perf_counter()
    proc = start(home, "ingest", str(vault), "--json", trace=trace)
    out, err = proc.communicate(timeout=7200)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed ({proc.returncode}): {err[-2000:]}")
    report = json.loads(out)
    docs = report["documents"]
    read = (len(trace.read_text().splitlines()) if trace.exists() else 0) - before
    return {
        "wall_s": round(seconds, 3),
        "ingest_s": report["seconds"],
        "sentences_read": read,
        "documents": dict(Counter(d["status"] for d in docs)),
        "sentences": sum(d["sentences"] for d in docs),
        "reused": sum(d["reused"] for d in docs),
        "facts": sum(d["facts"] for d in docs),
        "aliases": sum(d["aliases"] for d in docs),
        "skipped": report["skipped"],
    }


def note_sentences(text: str) -> Counter[str]:
    return Counter(s.text for s in sentences(io.StringIO(text), markdown=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=2000)
    parser.add_argument("--edit", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memllm-vault-") as tmp:
        work = Path(tmp)
        vault = write_vault(work / "vault", args.notes, args.seed)
        home, trace = work / "home", work / "trace.txt"
        home.mkdir()
        first = ingest(home, vault.root, trace)
        second = ingest(home, vault.root, trace)
        texts = {p: p.read_text(encoding="utf-8") for p in vault.notes}
        edited = edit_notes(vault, args.edit, args.seed + 1)
        changed = sum(
            (note_sentences(p.read_text(encoding="utf-8")) - note_sentences(texts[p])).total()
            for p in edited
        )
        third = ingest(home, vault.root, trace)
    result = {
        "notes": len(vault.notes),
        "edited": args.edit,
        "changed_sentences": changed,
        "first": first,
        "second": second,
        "third": third,
        "load_average": os.getloadavg(),
    }
    print(f"vault: {len(vault.notes)} notes; load average {os.getloadavg()[0]:.2f}")
    print(f"{'run':<28}{'wall s':>8}{'read':>8}{'sentences':>11}{'reused':>8}{'facts':>7}")
    for name, run in (
        ("1 first", first),
        ("2 unchanged", second),
        (f"3 after editing {args.edit}", third),
    ):
        print(
            f"{name:<28}{run['wall_s']:>8.2f}{run['sentences_read']:>8}"
            f"{run['sentences']:>11}{run['reused']:>8}{run['facts']:>7}"
        )
    print(
        f"second run: {second['sentences_read']} sentences read (goal 0), "
        f"{second['wall_s']:.2f} s (goal < 5 s, {second['wall_s'] / 5:.2f}x the budget)"
    )
    print(
        f"third run: {third['sentences_read']} sentences read, "
        f"{changed} changed in the edited notes (goal: equal)"
    )
    print(f"left out: {first['skipped']}")
    OUT.mkdir(exist_ok=True)
    (OUT / "vault.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
