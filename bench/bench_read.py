"""Read-query latency (median, p95) on synthetic memories, and recall of the vector search.

For each memory (facts, embedder) it samples facts and asks for one side of them:

exact      ``s>>r>>`` and ``>>r>>o`` with the stored name and label
case       the name upper-/lower-/swap-cased (the store folds case: still exact)
typo       one character of the name's longest word changed, relation exact
dropped    one word dropped from a multi-word name, relation exact
paraphrase the exact name with a paraphrased relation ("birthplace" for "place of birth")
typo+para  both

Every query goes through ``memllm_cli.store.read.read`` (the embedder is always
passed; exact queries never call it). Fuzzy queries run twice: first with
neither query text in the embedding cache ("incl. embed": the embedder runs),
then again ("cached": the vector comes from the cache). ``embed`` times the
embedder alone on the two query texts. ``found`` is the share of queries whose
answers include the sampled fact's other side.

Recall: ``similar_names`` (Hamming KNN over 1-bit vectors, k*oversample
candidates, float re-rank) against an exact float brute force over the
embeddings table, on the typo and dropped-word query names.

The query texts a run adds to the embedding cache are deleted again, so cached
memories stay as built. Run ``python bench/bench_read.py --config 100000:hash``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from make_memory import OUT, ensure_memory

from memllm_cli.embed import get_embedder
from memllm_cli.protocol import ReadQuery
from memllm_cli.store.read import ReadConfig, config_for, read
from memllm_cli.store.store import Store

GOALS_MS = {"exact": 5.0, "fuzzy": 50.0}
EXACT_KINDS = ("exact", "case")
FUZZY_KINDS = ("typo", "dropped", "paraphrase", "typo+para")
PARAPHRASES = {
    "place of birth": ["birthplace", "born in"],
    "place of death": ["died in", "place where he died"],
    "spouse": ["married to", "wife"],
    "country of citizenship": ["citizenship", "nationality"],
    "educated at": ["studied at", "alma mater"],
    "employer": ["works for", "employed by"],
    "member of political party": ["political party", "party membership"],
    "headquarters location": ["headquarters", "based in"],
    "located in the administrative territorial entity": ["located in", "administrative region"],
    "country": ["nation", "in which country"],
    "author": ["written by", "writer"],
    "director": ["directed by", "film director"],
    "founded by": ["founder", "established by"],
    "award received": ["awards", "won the award"],
    "record label": ["music label", "signed to label"],
    "publisher": ["published by"],
    "owned by": ["owner"],
    "cast member": ["actors", "starring"],
    "performer": ["performed by", "artist"],
    "composer": ["music by", "composed by"],
    "date of birth": ["birth date", "born on"],
    "date of death": ["death date", "died on"],
    "inception": ["founded on", "date founded"],
    "member of sports team": ["plays for", "sports team"],
    "father": ["dad"],
    "mother": ["mom"],
    "child": ["children", "son or daughter"],
    "sibling": ["siblings", "brother or sister"],
    "parent organization": ["parent company"],
    "residence": ["lives in", "home town"],
    "work location": ["works in", "place of work"],
    "official language": ["language spoken officially", "official languages"],
    "position held": ["job title", "office held"],
    "genre": ["style", "music genre"],
    "developer": ["developed by"],
    "manufacturer": ["made by", "maker"],
    "producer": ["produced by"],
    "publication date": ["published on", "release date"],
    "followed by": ["succeeded by", "next in series"],
    "follows": ["preceded by", "previous in series"],
}
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# --k-entity: an experiment that overrides the read's candidate count (None: memllm's own).
K_ENTITY: int | None = None


def read_config(embedder) -> ReadConfig:
    """The thresholds memllm uses for ``embedder``, with the --k-entity experiment applied."""
    config = config_for(embedder)
    return config if K_ENTITY is None else replace(config, k_entity=K_ENTITY)


@dataclass
class Query:
    kind: str
    text: str  # as the user or model would write it
    name: str  # the name in the query
    relation: str  # the relation in the query
    expected: str  # the other side of the sampled fact
    source_name: str  # the stored name the query's name was made from

    def parsed(self) -> ReadQuery:
        subject, _, rest = self.text.partition(">>")
        relation, _, obj = rest.partition(">>")
        return ReadQuery(relation=relation, subject=subject or None, object=obj or None)


def typo(name: str, rnd: random.Random) -> str:
    """One substitution, deletion, insertion or transposition inside the longest word."""
    words = name.split(" ")
    at = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[at]
    i = rnd.randrange(1, max(2, len(word) - 1))
    op = rnd.choice(("sub", "del", "ins", "swap"))
    if op == "sub":
        word = word[:i] + rnd.choice(LETTERS.replace(word[i : i + 1].lower(), "")) + word[i + 1 :]
    elif op == "del" and len(word) > 3:
        word = word[:i] + word[i + 1 :]
    elif op == "swap" and i + 1 < len(word) and word[i] != word[i + 1]:
        word = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    else:
        word = word[:i] + rnd.choice(LETTERS) + word[i:]
    words[at] = word
    return " ".join(words)


def drop_word(name: str, rnd: random.Random) -> str | None:
    """The name without one of its words (never its longest), or None for one-word names."""
    words = name.split(" ")
    if len(words) < 2:
        return None
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    drop = rnd.choice([i for i in range(len(words)) if i != longest])
    return " ".join(w for i, w in enumerate(words) if i != drop)


def recase(name: str, rnd: random.Random) -> str:
    return rnd.choice((str.lower, str.upper, str.swapcase))(name)


def sample_queries(store: Store, per_kind: int, seed: int) -> list[Query]:
    """``per_kind`` queries of each kind, from facts sampled with ``seed``."""
    rnd = random.Random(seed)
    max_id = store.conn.execute("SELECT max(id) FROM facts").fetchone()[0]
    para_ids = [
        row[0]
        for row in store.conn.execute(
            "SELECT f.id FROM facts f JOIN relations r ON r.id = f.relation_id "
            f"WHERE r.label IN ({','.join('?' * len(PARAPHRASES))})",
            list(PARAPHRASES),
        )
    ]
    queries: list[Query] = []
    for kind in (*EXACT_KINDS, *FUZZY_KINDS):
        made = 0
        while made < per_kind:
            pool = para_ids if "para" in kind else None
            fact_id = rnd.choice(pool) if pool else rnd.randint(1, max_id)
            fact = store.fact(fact_id)
            by_subject = rnd.random() < 0.5
            name, expected = (
                (fact.subject, fact.object) if by_subject else (fact.object, fact.subject)
            )
            source_name = name
            relation = fact.relation
            if kind in ("typo", "typo+para"):
                name = typo(name, rnd)
            elif kind == "dropped":
                name = drop_word(name, rnd)
            elif kind == "case":
                name = recase(name, rnd)
            if "para" in kind:
                relation = rnd.choice(PARAPHRASES[relation])
                if store.relation_ids(relation):
                    continue
            if name is None or (
                kind in FUZZY_KINDS and kind != "paraphrase" and store.entity_ids(name)
            ):
                continue  # a one-word name, or the typo made another stored name
            text = f"{name}>>{relation}>>" if by_subject else f">>{relation}>>{name}"
            queries.append(Query(kind, text, name, relation, expected, source_name))
            made += 1
    return queries


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def uncache(store: Store, texts: list[str]) -> None:
    """Drop query texts from the embedding cache unless a stored name or label is that text."""
    store.conn.executemany(
        "DELETE FROM embeddings WHERE text = ? AND text NOT IN (SELECT name FROM names) "
        "AND text NOT IN (SELECT label FROM relations)",
        [(t,) for t in texts],
    )


def run_queries(store: Store, embedder, queries: list[Query]) -> list[dict]:
    config = read_config(embedder)
    rows = []
    for q in queries:
        row = {"kind": q.kind, "query": q.text, "expected": q.expected}
        if q.kind in FUZZY_KINDS:
            uncache(store, [q.name, q.relation])
            row["embed_s"], _ = timed(embedder.embed, [q.name, q.relation])
            row["read_incl_embed_s"], _ = timed(read, store, q.parsed(), embedder, config)
        row["read_s"], answers = timed(read, store, q.parsed(), embedder, config)
        row["found"] = q.expected in [a.answer for a in answers]
        row["top1"] = bool(answers) and answers[0].answer == q.expected
        row["answers"] = len(answers)
        rows.append(row)
    return rows


def breakdown(store: Store, embedder, queries: list[Query]) -> dict:
    """Median time of the store calls a fuzzy read makes (vectors cached)."""
    cfg = read_config(embedder)
    parts: dict[str, list[float]] = {"index_pending": [], "embed_cached": [], "similar_names": []}
    parts["similar_relations"] = []
    for q in queries:
        parts["index_pending"].append(timed(store.index_pending, embedder)[0])
        t, (name_vec, rel_vec) = timed(store.embed, embedder, [q.name, q.relation])
        parts["embed_cached"].append(t)
        t, _ = timed(store.similar_names, name_vec, k=cfg.k_entity, max_distance=cfg.tau_entity)
        parts["similar_names"].append(t)
        t, _ = timed(
            store.similar_relations, rel_vec, k=cfg.k_relation, max_distance=cfg.tau_relation
        )
        parts["similar_relations"].append(t)
    return {k: ms(statistics.median(v)) for k, v in parts.items()}


def brute_force(store: Store, vector: bytes, k: int) -> list[tuple[int, float]]:
    """(entity id, distance) of the k nearest names by exact float cosine, nearest first."""
    rows = store.conn.execute(
        "SELECT n.entity_id, min(vec_distance_cosine(e.vector, ?)) AS d "
        "FROM names n JOIN embeddings e ON e.text = n.name "
        "GROUP BY n.entity_id ORDER BY d, n.entity_id LIMIT ?",
        (vector, k),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def recall(store: Store, embedder, queries: list[Query], sample: int) -> list[dict]:
    """Recall of similar_names vs brute force, for several k, thresholds and oversampling.

    ``target`` is the share of queries whose approximate candidates include the entity
    the query name was derived from (``target exact``: the same for the brute force).
    """
    picked = [q for q in queries if q.kind in ("typo", "dropped")][:sample]
    vectors = store.embed(embedder, [q.name for q in picked])
    targets = [store.entity_ids(q.source_name)[0] for q in picked]
    brute_times, full = [], []
    for vector in vectors:
        t, nearest = timed(brute_force, store, vector, 300)
        brute_times.append(t)
        full.append(nearest)
    results = []
    tau = read_config(embedder).tau_entity
    for k, max_distance in ((10, 2.0), (10, tau), (300, 2.0), (300, tau)):
        exact_lists = [[e for e, d in nearest if d <= max_distance][:k] for nearest in full]
        for oversample in (1, 4, 8):
            hits = total = target_hits = 0
            times = []
            for vector, exact, target in zip(vectors, exact_lists, targets, strict=True):
                t, approx = timed(
                    store.similar_names,
                    vector,
                    k=k,
                    max_distance=max_distance,
                    oversample=oversample,
                )
                times.append(t)
                found = {e for e, _ in approx}
                hits += len(set(exact) & found)
                total += len(exact)
                target_hits += target in found
            results.append(
                {
                    "k": k,
                    "max_distance": max_distance,
                    "oversample": oversample,
                    "queries": len(vectors),
                    "exact_results_mean": round(total / max(1, len(vectors)), 1),
                    "recall": round(hits / total, 4) if total else None,
                    "target": round(target_hits / max(1, len(vectors)), 3),
                    "target_exact": round(
                        sum(t in ex for t, ex in zip(targets, exact_lists, strict=True))
                        / max(1, len(vectors)),
                        3,
                    ),
                    "knn_median_ms": ms(statistics.median(times)),
                    "brute_force_median_ms": ms(statistics.median(brute_times)),
                }
            )
    uncache(store, [q.name for q in picked])
    return results


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for kind in (*EXACT_KINDS, *FUZZY_KINDS):
        group = [r for r in rows if r["kind"] == kind]
        if not group:
            continue
        times = [r["read_s"] for r in group]
        item = {
            "kind": kind,
            "n": len(group),
            "found": round(sum(r["found"] for r in group) / len(group), 3),
            "top1": round(sum(r["top1"] for r in group) / len(group), 3),
            "median_ms": ms(statistics.median(times)),
            "p95_ms": ms(pct(times, 0.95)),
            "max_ms": ms(max(times)),
        }
        if kind in FUZZY_KINDS:
            embeds = [r["embed_s"] for r in group]
            incl = [r["read_incl_embed_s"] for r in group]
            item |= {
                "embed_median_ms": ms(statistics.median(embeds)),
                "incl_embed_median_ms": ms(statistics.median(incl)),
                "incl_embed_p95_ms": ms(pct(incl, 0.95)),
            }
        item["goal_ms"] = GOALS_MS["exact" if kind in EXACT_KINDS else "fuzzy"]
        item["p95_meets_goal"] = item["p95_ms"] <= item["goal_ms"]
        out.append(item)
    return out


def bench(
    n_facts: int,
    embedder_name: str,
    per_kind: int,
    recall_sample: int,
    seed: int,
    pragmas: list[str],
) -> dict:
    memory = ensure_memory(n_facts, embedder=embedder_name)
    embedder = get_embedder(embedder_name)
    embedder.embed(["warm up"])  # load the model outside the timings
    loadavg_start = os.getloadavg()
    with Store.open(memory["path"]) as store:
        for pragma in pragmas:  # an experiment, not what memllm does
            store.conn.execute(f"PRAGMA {pragma}")
        queries = sample_queries(store, per_kind, seed)
        uncache(store, [t for q in queries for t in (q.name, q.relation)])
        run_queries(store, embedder, queries[:20])  # warm the page cache and statements
        rows = run_queries(store, embedder, queries)
        fuzzy = [q for q in queries if q.kind in FUZZY_KINDS]
        parts = breakdown(store, embedder, fuzzy)
        recall_rows = recall(store, embedder, queries, recall_sample) if recall_sample else []
        uncache(store, [t for q in queries for t in (q.name, q.relation)])
    return {
        "facts": n_facts,
        "embedder": embedder.model_id,
        "pragmas": pragmas,
        "loadavg_start": loadavg_start,
        "loadavg_end": os.getloadavg(),
        "memory": memory,
        "read_config": asdict(read_config(embedder)),
        "summary": summarise(rows),
        "fuzzy_breakdown_median_ms": parts,
        "recall": recall_rows,
        "queries": rows,
    }


def print_result(result: dict) -> None:
    print(
        f"\n== {result['facts']} facts, {result['memory']['counts']['names']} names, "
        f"embedder {result['embedder']}, pragmas {result['pragmas'] or 'none'}, "
        f"load average {result['loadavg_start'][0]:.1f} -> {result['loadavg_end'][0]:.1f}"
    )
    head = (
        f"{'kind':11} {'n':>4} {'found':>6} {'top1':>5} {'med ms':>8} {'p95 ms':>8} {'max ms':>8}"
    )
    print(head + f" {'embed':>7} {'+emb med':>8} {'+emb p95':>8} {'goal':>5}")
    for s in result["summary"]:
        extra = (
            f" {s['embed_median_ms']:>7} {s['incl_embed_median_ms']:>8} {s['incl_embed_p95_ms']:>8}"
            if "embed_median_ms" in s
            else f" {'':>7} {'':>8} {'':>8}"
        )
        print(
            f"{s['kind']:11} {s['n']:>4} {s['found']:>6} {s['top1']:>5} {s['median_ms']:>8} "
            f"{s['p95_ms']:>8} {s['max_ms']:>8}{extra} {'ok' if s['p95_meets_goal'] else 'MISS':>5}"
        )
    print("read config:", result["read_config"])
    print("fuzzy read breakdown (median ms):", result["fuzzy_breakdown_median_ms"])
    print(
        f"{'k':>4} {'max_d':>5} {'over':>4} {'exact n':>7} {'recall':>7} {'target':>6} "
        f"{'t.exact':>7} {'knn ms':>7} {'brute ms':>8}"
    )
    for r in result["recall"]:
        print(
            f"{r['k']:>4} {r['max_distance']:>5} {r['oversample']:>4} {r['exact_results_mean']:>7} "
            f"{r['recall']!s:>7} {r['target']:>6} {r['target_exact']:>7} {r['knn_median_ms']:>7} "
            f"{r['brute_force_median_ms']:>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        action="append",
        help="FACTS:EMBEDDER, repeatable (default: 100000:hash 100000:minilm 1000000:hash)",
    )
    parser.add_argument("--queries", type=int, default=100, help="queries per kind")
    parser.add_argument("--recall-sample", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--pragma",
        action="append",
        default=[],
        help="experiment: run PRAGMA X on the connection first, e.g. mmap_size=1073741824",
    )
    parser.add_argument(
        "--k-entity", type=int, help="experiment: override ReadConfig.k_entity for every read"
    )
    args = parser.parse_args()
    global K_ENTITY
    K_ENTITY = args.k_entity
    configs = args.config or ["100000:hash", "100000:minilm", "1000000:hash"]
    for config in configs:
        facts, embedder_name = config.split(":")
        result = bench(
            int(facts), embedder_name, args.queries, args.recall_sample, args.seed, args.pragma
        )
        print_result(result)
        tag = "".join(f"-{p.split('=')[0]}" for p in args.pragma)
        tag += f"-k{args.k_entity}" if args.k_entity else ""
        out = OUT / f"bench_read-{facts}-{embedder_name}{tag}.json"
        out.write_text(json.dumps(result, indent=2))
        print(f"saved {Path(out).relative_to(OUT.parent.parent)}")


if __name__ == "__main__":
    main()
