"""Calibrate the fuzzy-read thresholds (tau_entity, tau_relation, tau_mean) for all-MiniLM-L6-v2.

MemLLM's reads fall back to vector candidates when a name or relation label has no exact
(normalised) match: entity names within cosine distance ``tau_entity`` of the query name,
relation labels within ``tau_relation`` of the query relation, and a fact qualifies when the
mean of its two distances is <= ``tau_mean``. This script measures those distances on
development data and picks the thresholds; ``scripts/calibration.md`` explains the method.

    python scripts/calibrate_thresholds.py --data ../shared/data --out bench/out/calibration.json

Steps, top to bottom:
  1. Entities (Re-DocRED dev ``vertexSet``): positive pairs are two surface forms of the same
     entity whose normalised forms differ, plus a stored name against a noisy query for it
     (typo, title added, word dropped, case changed). For every query, the hard negative is
     the nearest name of a *different* entity in the whole pool; a random negative is a
     random other entity's name. tau_entity = the largest distance at which precision on
     positives versus hard negatives is still >= the target.
  2. Relations: a query wording of a Wikidata property (its label in FewRel's pid2name or
     MemLLM's property list where that differs from the DocRED label, or a small hand-made
     paraphrase) against the DocRED label it means (positive) and against the nearest other
     DocRED label (hard negative). tau_relation is chosen the same way.
  3. tau_mean: combined (entity, relation) distances for a fact, drawn from the samples above
     (an exactly matched side has distance 0); among the combinations both of whose sides
     pass their own thresholds, tau_mean maximises F1 of "mean distance <= tau_mean" (the
     largest such value up to (tau_entity + tau_relation) / 2, where the mean stops binding).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memllm_cli.embed.sentence import SentenceTransformerEmbedder  # noqa: E402
from memllm_cli.store.text import norm  # noqa: E402

SEED = 20240601
PRECISION_TARGET = 0.95
GRID = np.round(np.arange(0.0, 1.0001, 0.005), 3)
PERCENTILES = (5, 10, 25, 50, 75, 90, 95)
# Entity types whose "mentions" are partial values rather than aliases ("1969" vs
# "December 10, 1969"): kept in the pool as possible negatives, never used as queries.
NON_NAME_TYPES = {"TIME", "NUM"}
MAX_PAIRS_PER_ENTITY = 3
SMALL_POOL = 1000  # sensitivity check: hard negatives from a memory of this many names
BOOTSTRAP = 200
NOISY_QUERIES = 800
PER_TITLES = ["Mr.", "Mrs.", "Dr.", "Sir", "Professor", "President", "General"]

# HAND-MADE paraphrases: wordings a small write/read model might emit for a DocRED relation.
# Written for this script, small on purpose, and only where the meaning is unambiguous
# (e.g. "written by" is left out: it could be P50 author or P58 screenwriter; "founded" could be
# P571 inception or P112 founded by; "type of" could be P31 or P279).
HAND_MADE_PARAPHRASES: dict[str, list[str]] = {
    "P6": ["prime minister", "mayor"],
    "P17": ["located in country"],
    "P19": ["born in", "birthplace", "birth place"],
    "P20": ["died in", "death place"],
    "P22": ["dad", "has father"],
    "P25": ["mom", "has mother"],
    "P26": ["wife", "husband", "married to"],
    "P27": ["citizenship", "nationality", "citizen of"],
    "P30": ["located on continent"],
    "P35": ["monarch", "king"],
    "P36": ["capital city", "has capital"],
    "P37": ["official languages"],
    "P39": ["office held", "position"],
    "P40": ["son", "daughter", "children"],
    "P50": ["writer of the book"],
    "P54": ["plays for", "sports team"],
    "P57": ["directed by", "film director"],
    "P58": ["screenplay by"],
    "P69": ["studied at", "alma mater", "education"],
    "P86": ["music by", "composed by"],
    "P102": ["political party", "party membership"],
    "P108": ["works for", "works at", "employed by"],
    "P112": ["established by"],
    "P118": ["plays in league"],
    "P123": ["published by"],
    "P127": ["owner"],
    "P131": ["located in", "administrative region"],
    "P136": ["music genre"],
    "P137": ["operated by"],
    "P140": ["religious affiliation", "faith"],
    "P155": ["preceded by"],
    "P159": ["headquarters", "headquartered in", "based in"],
    "P161": ["starring", "actor", "cast"],
    "P162": ["produced by"],
    "P166": ["award", "awards won"],
    "P170": ["created by"],
    "P172": ["ethnicity"],
    "P175": ["performed by", "artist"],
    "P176": ["manufactured by", "made by"],
    "P178": ["developed by"],
    "P190": ["twin town", "twinned with"],
    "P194": ["legislature", "parliament"],
    "P206": ["next to body of water"],
    "P241": ["branch of military", "served in"],
    "P264": ["label", "signed to"],
    "P272": ["film studio"],
    "P355": ["subsidiaries", "daughter company"],
    "P361": ["component of"],
    "P364": ["original language"],
    "P400": ["runs on", "available on"],
    "P403": ["flows into", "river mouth"],
    "P449": ["aired on", "broadcast by", "tv network"],
    "P463": ["membership"],
    "P488": ["chairman", "chair"],
    "P495": ["origin country"],
    "P527": ["consists of", "includes"],
    "P551": ["lives in", "resides in", "home town"],
    "P569": ["born on", "birth date", "birthday"],
    "P570": ["died on", "death date"],
    "P571": ["founding date"],
    "P576": ["dissolved", "abolished"],
    "P577": ["release date", "released", "published on"],
    "P580": ["start date", "began"],
    "P582": ["end date", "ended"],
    "P607": ["fought in", "war"],
    "P674": ["features character"],
    "P676": ["lyricist", "words by"],
    "P706": ["mountain range"],
    "P710": ["participants"],
    "P737": ["inspired by"],
    "P740": ["formed in", "place of formation"],
    "P749": ["parent company"],
    "P800": ["known for", "famous work", "notable works"],
    "P807": ["split from", "broke away from"],
    "P840": ["set in", "setting"],
    "P937": ["worked in", "place of work"],
    "P1001": ["jurisdiction"],
    "P1056": ["produces", "products"],
    "P1336": ["claimed by"],
    "P1344": ["took part in", "participated in"],
    "P1365": ["predecessor"],
    "P1366": ["successor"],
    "P1376": ["seat of government of"],
    "P1412": ["speaks", "language spoken"],
    "P1441": ["appears in", "featured in"],
    "P3373": ["brother", "sister", "siblings"],
}


# ---------------------------------------------------------------------------------------------
# Small helpers


def embed_all(embedder: SentenceTransformerEmbedder, texts: list[str]) -> dict[str, np.ndarray]:
    unique = list(dict.fromkeys(texts))
    vectors = embedder.embed(unique)
    return {t: np.frombuffer(v, dtype="<f4") for t, v in zip(unique, vectors, strict=True)}


def distance(vecs: dict[str, np.ndarray], a: str, b: str) -> float:
    return float(1.0 - np.dot(vecs[a], vecs[b]))


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {f"p{p}": round(float(np.percentile(values, p)), 3) for p in PERCENTILES}


def precision_recall(pos: np.ndarray, neg: np.ndarray, t: float) -> tuple[float, float]:
    tp = int((pos <= t).sum())
    fp = int((neg <= t).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    return precision, tp / len(pos)


def largest_precise_tau(pos: np.ndarray, neg: np.ndarray, target: float) -> float:
    """Largest grid distance whose precision (positives vs hard negatives) is >= target."""
    chosen = 0.0
    for t in GRID:
        if (pos <= t).any() and precision_recall(pos, neg, t)[0] >= target:
            chosen = float(t)
    return chosen


def pick_threshold(pos: list[float], neg: list[float], target: float, rng: random.Random) -> dict:
    """The threshold at the precision target, with a bootstrap range over the queries."""
    pos_a, neg_a = np.asarray(pos), np.asarray(neg)
    chosen = largest_precise_tau(pos_a, neg_a, target)
    resampled = []
    for _ in range(BOOTSTRAP):
        idx = np.array([rng.randrange(len(pos_a)) for _ in range(len(pos_a))])
        resampled.append(largest_precise_tau(pos_a[idx], neg_a[idx], target))
    best_f1 = (0.0, 0.0)
    for t in GRID:
        precision, recall = precision_recall(pos_a, neg_a, t)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if f1 > best_f1[0]:
            best_f1 = (f1, float(t))
    precision, recall = precision_recall(pos_a, neg_a, chosen)
    return {
        "tau": chosen,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "bootstrap_tau_p5_p95": [
            round(float(np.percentile(resampled, 5)), 3),
            round(float(np.percentile(resampled, 95)), 3),
        ],
        "best_f1": round(best_f1[0], 3),
        "best_f1_tau": best_f1[1],
        "curve": [point(pos_a, neg_a, t) for t in GRID[::10]],
    }


def point(pos: np.ndarray, neg: np.ndarray, t: float) -> dict[str, float]:
    precision, recall = precision_recall(pos, neg, t)
    return {"tau": float(t), "precision": round(precision, 3), "recall": round(recall, 3)}


# ---------------------------------------------------------------------------------------------
# 1. Entities


def detokenise(name: str) -> str:
    """Undo DocRED's token spacing: "Cassin 's finch" -> "Cassin's finch", "Asia - Pacific"."""
    text = " ".join(name.split())
    text = re.sub(r" (['’]s|n't|[.,;:!?%)\]])", r"\1", text)
    text = re.sub(r"([(\[$]) ", r"\1", text)
    return re.sub(r" ([-–/]) ", r"\1", text)


def same_entity_key(name: str) -> str:
    """A looser key than ``norm``, used only to merge one entity's copies across documents
    ("The New York Times" / "New York Times", "U.S. Navy" / "US Navy")."""
    key = re.sub(r"[^\w ]", " ", re.sub(r"[.'’]", "", norm(name)))
    key = re.sub(r"^the ", "", " ".join(key.split()))
    return key or norm(name)


def load_entities(path: Path) -> tuple[list[list[str]], list[str]]:
    """Entities as lists of distinct surface forms, and their types; entities in different
    documents that share a name (by ``same_entity_key``) are merged, so "United States" in two
    documents is one entity and never a negative for itself."""
    docs = json.loads(path.read_text())
    raw: list[tuple[list[str], str]] = []
    for doc in docs:
        for vertex in doc["vertexSet"]:
            names = list(dict.fromkeys(detokenise(m["name"]) for m in vertex))
            raw.append((names, vertex[0]["type"]))
    parent = list(range(len(raw)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, (names, _) in enumerate(raw):
        for name in names:
            j = owner.setdefault(same_entity_key(name), i)
            parent[find(i)] = find(j)
    merged: dict[int, list[str]] = {}
    types: dict[int, str] = {}
    for i, (names, kind) in enumerate(raw):
        root = find(i)
        bucket = merged.setdefault(root, [])
        bucket.extend(n for n in names if n not in bucket)
        types.setdefault(root, kind)
    return list(merged.values()), [types[r] for r in merged]


def typo(name: str, rng: random.Random) -> str | None:
    """One-character typo (delete, swap, substitute or insert) in a word of 4+ letters."""
    words = name.split()
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not spots:
        return None
    i = rng.choice(spots)
    w = words[i]
    k = rng.randrange(1, len(w) - 1)
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    edit = rng.choice(["delete", "swap", "substitute", "insert"])
    if edit == "delete":
        w = w[:k] + w[k + 1 :]
    elif edit == "swap":
        w = w[:k] + w[k + 1] + w[k] + w[k + 2 :]
    elif edit == "substitute":
        w = w[:k] + letter + w[k + 1 :]
    else:
        w = w[:k] + letter + w[k:]
    words[i] = w
    return " ".join(words)


def noisy_query(name: str, kind: str, rng: random.Random) -> tuple[str, str] | None:
    """A realistic noisy query for a stored name, and the kind of noise applied."""
    words = name.split()
    # Dropping a word only from 3+-word personal names ("John F. Kennedy" -> "John Kennedy"):
    # elsewhere it often names a different thing ("Heathrow Airport Holdings").
    options = ["typo", "add_word"] + (["drop_word"] if kind == "PER" and len(words) >= 3 else [])
    noise = rng.choice(options)
    if noise == "typo":
        query = typo(name, rng)
    elif noise == "add_word":
        query = f"{rng.choice(PER_TITLES)} {name}" if kind == "PER" else f"the {name}"
    else:
        drop = rng.randrange(1, len(words) - 1)  # a middle word
        query = " ".join(words[:drop] + words[drop + 1 :])
    if query is None:
        return None
    if rng.random() < 0.3:  # sometimes also typed in another case
        query = rng.choice([query.lower(), query.upper()])
        noise += "+case"
    return (query, noise) if norm(query) != norm(name) else None


def entity_samples(data: Path, embedder, rng: random.Random) -> dict:
    entities, types = load_entities(data / "re-docred" / "dev_revised.json")
    pool = [(name, e) for e, names in enumerate(entities) for name in names]
    taken = {same_entity_key(name): e for name, e in pool}
    # Query/stored pairs. Mention pairs: two surface forms whose normalised forms differ.
    pairs: list[tuple[str, str, int, str]] = []
    for e, names in enumerate(entities):
        if types[e] in NON_NAME_TYPES:
            continue
        distinct = list({norm(n): n for n in names}.values())
        candidates = [(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]]
        rng.shuffle(candidates)
        pairs += [(a, b, e, "mention") for a, b in candidates[:MAX_PAIRS_PER_ENTITY]]
    # Noisy queries for a stored name (the entity's longest surface form).
    named = [e for e in range(len(entities)) if types[e] not in NON_NAME_TYPES]
    noisy = 0
    for e in rng.sample(named, len(named)):
        stored = max(entities[e], key=len)
        made = noisy_query(stored, types[e], rng)
        if made and taken.get(same_entity_key(made[0]), e) == e:  # not another entity's name
            pairs.append((made[0], stored, e, made[1]))
            noisy += 1
        if noisy == NOISY_QUERIES:
            break

    vecs = embed_all(embedder, [n for n, _ in pool] + [p[0] for p in pairs])
    pool_names = [n for n, _ in pool]
    pool_owner = np.array([e for _, e in pool])
    pool_matrix = np.stack([vecs[n] for n in pool_names])
    small = np.zeros(len(pool_names), dtype=bool)
    small[rng.sample(range(len(pool_names)), SMALL_POOL)] = True

    rows = []
    for query, stored, e, kind in pairs:
        dists = 1.0 - pool_matrix @ vecs[query]
        dists[pool_owner == e] = np.inf  # only a *different* entity can be a negative
        hard = int(np.argmin(dists))
        hard_small = float(np.min(dists[small]))
        rand = rng.randrange(len(pool_names))
        while pool_owner[rand] == e:
            rand = rng.randrange(len(pool_names))
        rows.append(
            {
                "query": query,
                "stored": stored,
                "kind": kind,
                "pos": distance(vecs, query, stored),
                "hard_neg": float(dists[hard]),
                "hard_neg_name": pool_names[hard],
                "hard_neg_small_pool": hard_small,
                "random_neg": distance(vecs, query, pool_names[rand]),
            }
        )
    return {"rows": rows, "pool_size": len(pool_names), "entities": len(entities)}


# ---------------------------------------------------------------------------------------------
# 2. Relations


def relation_samples(data: Path, embedder) -> dict:
    docred = json.loads((data / "relations" / "docred_rel_info.json").read_text())
    fewrel = json.loads((data / "fewrel" / "pid2name.json").read_text())
    memllm = json.loads((data / "relations" / "memllm_wikidata_props_en.json").read_text())
    queries: list[tuple[str, str, str]] = []  # (wording, P-id, source)
    for pid, label in docred.items():
        seen = {norm(label)}
        sourced = [
            (fewrel.get(pid, [None])[0], "fewrel_label"),
            (memllm.get(pid), "memllm_label"),
            *((p, "hand_made") for p in HAND_MADE_PARAPHRASES.get(pid, [])),
        ]
        for wording, source in sourced:
            if wording and norm(wording) not in seen:
                seen.add(norm(wording))
                queries.append((wording, pid, source))

    labels = list(docred.values())
    pids = list(docred)
    vecs = embed_all(embedder, labels + [q for q, _, _ in queries])
    label_matrix = np.stack([vecs[label] for label in labels])
    rows = []
    for query, pid, source in queries:
        dists = 1.0 - label_matrix @ vecs[query]
        true = pids.index(pid)
        top1 = pids[int(np.argmin(dists))]
        pos = float(dists[true])
        dists[true] = np.inf
        hard = int(np.argmin(dists))
        rows.append(
            {
                "query": query,
                "pid": pid,
                "label": docred[pid],
                "source": source,
                "pos": pos,
                "hard_neg": float(dists[hard]),
                "hard_neg_label": labels[hard],
                "top1_correct": top1 == pid,
            }
        )
    return {"rows": rows, "labels": len(labels)}


# ---------------------------------------------------------------------------------------------
# 3. tau_mean


def mean_samples(
    ent: list[dict],
    rel: list[dict],
    tau_e: float,
    tau_r: float,
    rng: random.Random,
    per_kind: int = 1500,
) -> dict:
    """Combined (entity, relation) distances of a fact; 0.0 stands for an exact match."""
    e_pos = [r["pos"] for r in ent]
    e_neg = [r["hard_neg"] for r in ent]
    r_pos = [r["pos"] for r in rel]
    r_neg = [r["hard_neg"] for r in rel]
    exact = [0.0]
    kinds = {
        # right fact: both sides right, at least one of them fuzzy
        ("pos", "fuzzy entity + fuzzy relation"): (e_pos, r_pos),
        ("pos", "exact entity + fuzzy relation"): (exact, r_pos),
        ("pos", "fuzzy entity + exact relation"): (e_pos, exact),
        # wrong fact: at least one side is the nearest wrong one
        ("neg", "wrong entity + fuzzy relation"): (e_neg, r_pos),
        ("neg", "wrong entity + exact relation"): (e_neg, exact),
        ("neg", "fuzzy entity + wrong relation"): (e_pos, r_neg),
        ("neg", "exact entity + wrong relation"): (exact, r_neg),
        ("neg", "wrong entity + wrong relation"): (e_neg, r_neg),
    }
    n_pos = sum(1 for label, _ in kinds if label == "pos")
    n_neg = len(kinds) - n_pos
    pos, neg, breakdown = [], [], {}
    for (label, name), (e_side, r_side) in kinds.items():
        draws = per_kind * (n_neg if label == "pos" else n_pos) // max(n_pos, n_neg)
        means = []
        for _ in range(draws):
            de, dr = rng.choice(e_side), rng.choice(r_side)
            if de <= tau_e and dr <= tau_r:  # otherwise it is never a candidate at all
                means.append((de + dr) / 2)
        (pos if label == "pos" else neg).extend(means)
        breakdown[name] = {
            "label": label,
            "drawn": draws,
            "candidates": len(means),
            **percentiles(means),
        }
    pos_a, neg_a = np.asarray(pos), np.asarray(neg)
    # Above (tau_e + tau_r) / 2 the mean can no longer reject anything the two gates let
    # through; below it, take the grid value with the best F1, the largest on a tie.
    ceiling = (tau_e + tau_r) / 2
    best = (-1.0, 0.0)
    for t in (t for t in GRID if t <= ceiling + 1e-9):
        precision, recall = precision_recall(pos_a, neg_a, t)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if f1 >= best[0] - 1e-9:
            best = (f1, float(t))
    precision, recall = precision_recall(pos_a, neg_a, best[1])
    p_ceiling, r_ceiling = precision_recall(pos_a, neg_a, ceiling)
    return {
        "tau": best[1],
        "f1": round(best[0], 3),
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "no_mean_filter": {
            "tau": ceiling,
            "precision": round(p_ceiling, 3),
            "recall": round(r_ceiling, 3),
        },
        "breakdown": breakdown,
    }


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="write a JSON report here")
    parser.add_argument(
        "--target",
        type=float,
        default=PRECISION_TARGET,
        help="precision target for tau_entity and tau_relation",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    rng = random.Random(SEED)
    embedder = SentenceTransformerEmbedder()

    ent = entity_samples(args.data, embedder, rng)
    rel = relation_samples(args.data, embedder)
    ent_rows, rel_rows = ent["rows"], rel["rows"]
    tau_e = pick_threshold(
        [r["pos"] for r in ent_rows], [r["hard_neg"] for r in ent_rows], args.target, rng
    )
    tau_e_small = pick_threshold(
        [r["pos"] for r in ent_rows], [r["hard_neg_small_pool"] for r in ent_rows], args.target, rng
    )
    tau_r = pick_threshold(
        [r["pos"] for r in rel_rows], [r["hard_neg"] for r in rel_rows], args.target, rng
    )
    mean = mean_samples(ent_rows, rel_rows, tau_e["tau"], tau_r["tau"], rng)

    by_kind: dict[str, list[float]] = {}
    for r in ent_rows:
        by_kind.setdefault(r["kind"], []).append(r["pos"])
    by_source: dict[str, list[float]] = {}
    for r in rel_rows:
        by_source.setdefault(r["source"], []).append(r["pos"])
    report = {
        "model": embedder.model_id,
        "seed": SEED,
        "precision_target": args.target,
        "entities": {
            "pool_names": ent["pool_size"],
            "pool_entities": ent["entities"],
            "queries": len(ent_rows),
            "positive": percentiles([r["pos"] for r in ent_rows]),
            "positive_by_kind": {
                k: {
                    "n": len(v),
                    "recall_at_tau": round(float(np.mean(np.asarray(v) <= tau_e["tau"])), 3),
                    **percentiles(v),
                }
                for k, v in by_kind.items()
            },
            "hard_negative": percentiles([r["hard_neg"] for r in ent_rows]),
            "random_negative": percentiles([r["random_neg"] for r in ent_rows]),
            "positive_outranks_hard_negative": round(
                float(np.mean([r["pos"] < r["hard_neg"] for r in ent_rows])), 3
            ),
            "threshold": tau_e,
            "hard_negative_small_pool": percentiles([r["hard_neg_small_pool"] for r in ent_rows]),
            "threshold_small_pool": {k: v for k, v in tau_e_small.items() if k != "curve"},
            "examples_missed": [r for r in ent_rows if r["pos"] > tau_e["tau"]][:15],
            "examples_hard_negative_within_tau": [
                r for r in ent_rows if r["hard_neg"] <= tau_e["tau"]
            ][:15],
        },
        "relations": {
            "labels": rel["labels"],
            "queries": len(rel_rows),
            "top1_accuracy": round(sum(r["top1_correct"] for r in rel_rows) / len(rel_rows), 3),
            "positive": percentiles([r["pos"] for r in rel_rows]),
            "positive_by_source": {
                k: {
                    "n": len(v),
                    "recall_at_tau": round(float(np.mean(np.asarray(v) <= tau_r["tau"])), 3),
                    **percentiles(v),
                }
                for k, v in by_source.items()
            },
            "hard_negative": percentiles([r["hard_neg"] for r in rel_rows]),
            "positive_outranks_hard_negative": round(
                float(np.mean([r["pos"] < r["hard_neg"] for r in rel_rows])), 3
            ),
            "threshold": tau_r,
            "rows": rel_rows,
        },
        "mean": mean,
        "chosen": {
            "tau_entity": tau_e["tau"],
            "tau_relation": tau_r["tau"],
            "tau_mean": mean["tau"],
        },
    }
    report["runtime_s"] = round(time.perf_counter() - started, 1)

    print(f"{'distances':<26}" + "".join(f"{'p' + str(p):>7}" for p in PERCENTILES))
    for title, stats in [
        ("entity positive", report["entities"]["positive"]),
        ("entity hard negative", report["entities"]["hard_negative"]),
        (f"  (pool of {SMALL_POOL} names)", report["entities"]["hard_negative_small_pool"]),
        ("entity random negative", report["entities"]["random_negative"]),
        ("relation positive", report["relations"]["positive"]),
        ("relation hard negative", report["relations"]["hard_negative"]),
    ]:
        print(f"{title:<26}" + "".join(f"{stats[f'p{p}']:>7.3f}" for p in PERCENTILES))
    print()
    print(f"{'threshold':<14}{'value':>7}{'prec':>7}{'recall':>8}  bootstrap   n")
    for title, tau, n in [
        ("tau_entity", tau_e, f"{len(ent_rows)} queries, pool {ent['pool_size']} names"),
        ("  (small pool)", tau_e_small, f"pool {SMALL_POOL} names (not used)"),
        ("tau_relation", tau_r, f"{len(rel_rows)} queries, {rel['labels']} labels"),
    ]:
        low, high = tau["bootstrap_tau_p5_p95"]
        print(
            f"{title:<14}{tau['tau']:>7.3f}{tau['precision']:>7.3f}{tau['recall']:>8.3f}"
            f"  {low:.3f}-{high:.3f}  {n}"
        )
    print(
        f"{'tau_mean':<14}{mean['tau']:>7.3f}{mean['precision']:>7.3f}"
        f"{mean['recall']:>8.3f}   F1 {mean['f1']:.3f}"
    )
    print(f"runtime {report['runtime_s']} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
