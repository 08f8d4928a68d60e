"""Calibrate the read fallback's relation threshold (tau_fallback) on Re-DocRED dev entities.

When a read names a known entity but no fact of it matches the asked relation (exactly, by
alias, or within tau_relation), ``store/read.py`` offers the entity's facts whose relation is
nearest the asked one: the least cosine distance to its label or any of its aliases, within
``tau_fallback``, best first. This script replays that decision on real entity profiles.

    python scripts/calibrate_fallback.py --data ../shared/data --out bench/out/fallback.json
    python scripts/calibrate_fallback.py --embedder hash      # the test embedder's value

Steps:
  1. Profiles: for every entity of every Re-DocRED dev document, the set of relations it
     has as a subject (``s>>r>>`` reads) and, apart, as an object (``>>r>>o`` reads). Only
     profiles with two or more relations: with one, the absent case below is trivially
     "I do not know".
  2. Query wordings: for a relation R, a wording a model or user might write that is
     neither a label nor a seeded alias (those answer exactly and never reach the
     fallback): the calibration script's hand-made paraphrases, bench_read's, and the
     HELD_OUT list below, written for this script before measuring anything.
  3. For each profile, each R in it with wordings, and each wording q, two cases:
     - present: the profile as it is. The read is right when the relation it picks is R.
     - absent: the profile without R (the fact was never stored). Any answer is wrong.
     Each case goes through the read's stages: fuzzy (a profile relation whose label is
     within tau_relation: the read answers before the fallback), then the fallback at
     each candidate tau_fallback; otherwise "I do not know". Only the top answer counts:
     the model names the first result.
  4. tau_fallback = the largest grid value at which the fallback's own answers are right
     at least PRECISION_TARGET of the time, present and absent cases counted equally.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_read import PARAPHRASES  # noqa: E402
from calibrate_thresholds import HAND_MADE_PARAPHRASES  # noqa: E402

from memllm_cli.embed import get_embedder  # noqa: E402
from memllm_cli.store.seeds import seed_relation_aliases, seed_relations  # noqa: E402
from memllm_cli.store.text import norm  # noqa: E402

PRECISION_TARGET = 0.95
GRID = np.round(np.arange(0.20, 0.8001, 0.025), 3)

# HAND-MADE, held out: wordings none of which is a label or a seeded alias, written for this
# script before any distance was measured. Common relations of people, organisations and
# works, two to four each; some on purpose loose ("work", "site"), as a small model writes.
HELD_OUT: dict[str, list[str]] = {
    "P6": ["government head", "leader of government"],
    "P17": ["located in nation", "sovereign state"],
    "P19": ["birth city", "native city", "where born"],
    "P20": ["death city", "where died", "deathplace"],
    "P22": ["biological father", "papa"],
    "P25": ["biological mother", "mama"],
    "P26": ["married with", "wedded to", "life partner"],
    "P27": ["nationality country", "passport country", "citizen"],
    "P35": ["state head", "ruler"],
    "P36": ["capital town"],
    "P40": ["offspring", "has son", "has daughter"],
    "P50": ["penned by", "book author"],
    "P54": ["football club", "team played for"],
    "P57": ["directed", "movie director"],
    "P69": ["university attended", "school attended", "graduated at", "studied"],
    "P86": ["music composer", "score by"],
    "P102": ["party affiliation", "political affiliation"],
    "P106": ["work", "line of work", "trade"],
    "P108": ["company worked for", "workplace", "organisation employing"],
    "P112": ["started by", "set up by", "founding person"],
    "P123": ["publishing company", "publishing firm"],
    "P127": ["belongs to", "property of", "ownership"],
    "P131": ["city located in", "lies in", "situated in"],
    "P136": ["type of music", "literary genre"],
    "P140": ["religious belief", "creed"],
    "P159": ["main office", "hq location"],
    "P161": ["acted by", "cast members"],
    "P166": ["honours", "decorations", "awards received"],
    "P170": ["invented by", "designed by"],
    "P172": ["ethnic background", "ethnic origin"],
    "P175": ["performing artist"],
    "P176": ["manufacturing company", "brand"],
    "P178": ["software developer", "programmed by"],
    "P241": ["armed forces branch"],
    "P264": ["recording label", "record deal with"],
    "P272": ["movie studio"],
    "P276": ["where located", "site"],
    "P361": ["belongs to group", "subset of"],
    "P449": ["broadcaster", "first aired on"],
    "P463": ["affiliated with", "member organisation"],
    "P488": ["president of board", "head of board"],
    "P495": ["originating country", "made in country"],
    "P527": ["contains part", "made up of"],
    "P551": ["place of residence", "current city", "living place", "domicile"],
    "P569": ["birth year", "year born", "born when"],
    "P570": ["year of death", "death year"],
    "P571": ["founding year", "creation date", "established"],
    "P576": ["closure date", "shut down"],
    "P577": ["publishing date", "first published"],
    "P580": ["beginning", "starting date"],
    "P582": ["finished on", "ending date"],
    "P585": ["occurred on", "date of event"],
    "P607": ["military conflict", "wars fought"],
    "P710": ["taking part"],
    "P737": ["influences"],
    "P740": ["founded in city", "formation place"],
    "P749": ["parent firm", "holding company"],
    "P800": ["best known work", "masterpiece"],
    "P840": ["story set in", "takes place in"],
    "P937": ["workplace city", "job location"],
    "P1344": ["competed at", "took part"],
    "P1365": ["preceded in office by"],
    "P1366": ["succeeded in office by", "replacement"],
    "P1412": ["native language", "mother tongue"],
    "P3373": ["bro", "sis", "has brother"],
}


def wordings(labels: dict[str, str], aliases: dict[str, list[str]]) -> dict[str, list[str]]:
    """Query wordings per P-id that reach the fallback (no label, no alias), by source."""
    taken = {norm(t) for t in labels.values()} | {norm(a) for al in aliases.values() for a in al}
    by_label = {label: pid for pid, label in labels.items()}
    found: dict[str, list[str]] = {}
    sources = [HAND_MADE_PARAPHRASES, HELD_OUT]
    sources.append({by_label[k]: v for k, v in PARAPHRASES.items() if k in by_label})
    for source in sources:
        for pid, texts in source.items():
            if pid not in labels:
                continue
            for text in texts:
                if norm(text) not in taken and text not in found.get(pid, []):
                    found.setdefault(pid, []).append(text)
    return found


def profiles(path: Path, labels: dict[str, str]) -> dict[str, list[frozenset[str]]]:
    """Relation sets of Re-DocRED dev entities, as subjects and as objects (2+ relations)."""
    docs = json.loads(path.read_text())
    found: dict[str, list[frozenset[str]]] = {"subject": [], "object": []}
    for doc in docs:
        heads: dict[int, set[str]] = {}
        tails: dict[int, set[str]] = {}
        for label in doc["labels"]:
            if label["r"] in labels:
                heads.setdefault(label["h"], set()).add(label["r"])
                tails.setdefault(label["t"], set()).add(label["r"])
        found["subject"] += [frozenset(s) for s in heads.values() if len(s) >= 2]
        found["object"] += [frozenset(s) for s in tails.values() if len(s) >= 2]
    return found


def replay(
    side_profiles: list[frozenset[str]],
    queries: dict[str, list[str]],
    d_label: dict[tuple[str, str], float],
    d_any: dict[tuple[str, str], float],
    tau_relation: float,
) -> dict:
    """Outcomes per tau: fuzzy right/wrong (before the fallback), fallback right/wrong."""
    fuzzy = {"present_right": 0, "present_wrong": 0, "absent_wrong": 0}
    # Per case that reaches the fallback: (wording, distance of the pick, pick is right).
    reached: list[tuple[str, float, bool]] = []
    cases: dict[str, int] = {}
    for profile in side_profiles:
        for wanted in profile:
            for q in queries.get(wanted, []):
                for present in (True, False):
                    have = profile if present else profile - {wanted}
                    cases[q] = cases.get(q, 0) + 1
                    near = min((d_label[q, r], r) for r in have)
                    if near[0] <= tau_relation:
                        key = "present_" if present else "absent_"
                        fuzzy[key + ("right" if near[1] == wanted else "wrong")] += 1
                        continue
                    best = min((d_any[q, r], r) for r in have)
                    reached.append((q, best[0], best[1] == wanted))
    curve = []
    for tau in GRID:
        right = sum(1 for _, d, ok in reached if d <= tau and ok)
        wrong = sum(1 for _, d, ok in reached if d <= tau and not ok)
        # Per wording: each wording weighs the same, however many profiles have its relation.
        right_w = sum(1 / cases[q] for q, d, ok in reached if d <= tau and ok)
        wrong_w = sum(1 / cases[q] for q, d, ok in reached if d <= tau and not ok)
        curve.append(
            {
                "tau": float(tau),
                "right": right,
                "wrong": wrong,
                "precision": round(right / (right + wrong), 3) if right + wrong else 1.0,
                "right_per_wording": round(right_w, 2),
                "wrong_per_wording": round(wrong_w, 2),
            }
        )
    return {"cases": sum(cases.values()), "fuzzy": fuzzy, "reached": len(reached), "curve": curve}


def choose(curve: list[dict], target: float) -> float:
    """The largest tau whose fallback precision is at least ``target``."""
    chosen = float(GRID[0])
    for point in curve:
        if point["right"] and point["precision"] >= target:
            chosen = point["tau"]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--embedder", default="minilm-st", help="minilm-st (default) or hash")
    parser.add_argument("--target", type=float, default=PRECISION_TARGET)
    parser.add_argument("--out", type=Path, default=None, help="write a JSON report here")
    args = parser.parse_args()
    started = time.perf_counter()

    labels = {r["pid"]: r["label"] for r in seed_relations()}
    seed = seed_relation_aliases()
    labels.update({r["pid"]: r["label"] for r in seed["relations"]})
    aliases = {r["pid"]: list(r["aliases"]) for r in seed["aliases"]}
    queries = wordings(labels, aliases)
    found = profiles(args.data / "re-docred" / "dev_revised.json", labels)

    embedder = get_embedder(args.embedder)
    texts = sorted(
        {*labels.values(), *(a for al in aliases.values() for a in al)}
        | {q for qs in queries.values() for q in qs}
    )
    vectors = dict(
        zip(
            texts,
            (np.frombuffer(v, dtype="<f4") for v in embedder.embed(texts)),
            strict=True,
        )
    )

    def distance(a: str, b: str) -> float:
        return float(1.0 - np.dot(vectors[a], vectors[b]))

    d_label, d_any = {}, {}
    for qs in queries.values():
        for q in qs:
            for pid, label in labels.items():
                d_label[q, pid] = distance(q, label)
                d_any[q, pid] = min(
                    [d_label[q, pid]] + [distance(q, a) for a in aliases.get(pid, [])]
                )

    tau_relation = embedder.read_thresholds.tau_relation
    report = {
        "embedder": embedder.model_id,
        "tau_relation": tau_relation,
        "target": args.target,
        "queries": {pid: qs for pid, qs in sorted(queries.items())},
        "query_count": sum(len(qs) for qs in queries.values()),
        "sides": {},
    }
    both: dict[float, list[float]] = {}
    for side, side_profiles in found.items():
        result = replay(side_profiles, queries, d_label, d_any, tau_relation)
        result["profiles"] = len(side_profiles)
        report["sides"][side] = result
        for point in result["curve"]:
            totals = both.setdefault(point["tau"], [0, 0, 0.0, 0.0])
            totals[0] += point["right"]
            totals[1] += point["wrong"]
            totals[2] += point["right_per_wording"]
            totals[3] += point["wrong_per_wording"]
    combined = [
        {
            "tau": tau,
            "right": r,
            "wrong": w,
            "precision": round(r / (r + w), 3) if r + w else 1.0,
            "right_per_wording": round(rw, 1),
            "wrong_per_wording": round(ww, 1),
            "precision_per_wording": round(rw / (rw + ww), 3) if rw + ww else 1.0,
        }
        for tau, (r, w, rw, ww) in sorted(both.items())
    ]
    report["combined"] = combined
    report["tau_fallback"] = choose(combined, args.target)
    report["seconds"] = round(time.perf_counter() - started, 1)

    print(
        f"embedder {report['embedder']}, tau_relation {tau_relation}, {report['query_count']} "
        f"held-out wordings over {len(queries)} relations"
    )
    for side, result in report["sides"].items():
        print(
            f"{side}: {result['profiles']} profiles, {result['cases']} cases, fuzzy "
            f"{result['fuzzy']}, {result['reached']} reach the fallback"
        )
    print("        by case                   by wording (each weighs 1 per side)")
    print("tau     right  wrong  precision   right  wrong  precision")
    for point in combined:
        tau, right, wrong, precision, right_w, wrong_w, precision_w = point.values()
        print(
            f"{tau:.3f}  {right:6d} {wrong:6d}  {precision:.3f}      "
            f"{right_w:6.1f} {wrong_w:6.1f}  {precision_w:.3f}"
        )
    print(f"tau_fallback = {report['tau_fallback']} (precision >= {args.target})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
