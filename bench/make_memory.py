"""Build a synthetic fact memory of N facts, cached under bench/out/ by its parameters.

The memory is meant to look like one built from real documents:

* about N/4 entities (``--entities-per-fact``), with invented multi-word names of
  several kinds (people, places, organisations, works, events) that share common
  tokens ("University", "Port", first names), so dropped-token lookups are hard;
* a Zipf-like spread of facts over entities (a few entities in thousands of facts,
  most in one or two), with objects more concentrated than subjects;
* relations drawn from the 96 seeded DocRED relations (``store.relations()``),
  also Zipf-weighted; a one-valued relation gets at most one object per subject,
  so no fact is superseded and both build methods give the same memory;
* a fixed seed: the same parameters give the same facts.

Two build methods:

``api``  every fact goes through ``Store.add_fact`` inside one batch, exactly as
         the product writes (about 4k facts/s on 2 cores: fine for 100k).
``sql``  FOR BUILDING FIXTURES ONLY: entities, names, facts, provenance and ops
         rows are bulk-inserted with ``executemany`` inside one ``store.batch``,
         mirroring what ``add_fact`` writes for a new fact (FTS triggers still
         fire). It exists because 1M facts through ``add_fact`` takes minutes.
         The rest of the benchmarks only ever read such a memory through the
         public API.

Either way the vectors are built by ``store.index_pending(embedder)``, in a
copy of the base memory named after the embedder, so one base serves both
embedders. Run ``python bench/make_memory.py --facts 100000 --embedder hash``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from memllm_cli.embed import get_embedder
from memllm_cli.store.facts import FACT_COLUMNS
from memllm_cli.store.store import Store
from memllm_cli.store.text import norm, now

OUT = Path(__file__).resolve().parent / "out"
# Bump when the generator changes, so cached memories are rebuilt.
GENERATOR_VERSION = 1

ONSETS = [
    "b",
    "br",
    "c",
    "ch",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "kh",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "sh",
    "st",
    "t",
    "th",
    "tr",
    "v",
    "w",
    "z",
]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ai", "ea", "ie", "io", "ou", "y"]
CODAS = ["_", "_", "_", "n", "r", "l", "s", "th", "m", "nd", "rn", "ck", "x", "st", "rd"]
FIRST = [
    "Alden",
    "Mira",
    "Tobias",
    "Lena",
    "Oskar",
    "Yara",
    "Idris",
    "Sofia",
    "Emil",
    "Nadia",
    "Caspar",
    "Ilse",
    "Rowan",
    "Tamsin",
    "Felix",
    "Annika",
    "Jonas",
    "Maren",
    "Levin",
    "Odile",
    "Piet",
    "Greta",
    "Anselm",
    "Liora",
    "Matteo",
    "Ines",
    "Kasimir",
    "Selma",
    "Teodor",
    "Zora",
]
WORDS = [
    "silent",
    "amber",
    "northern",
    "broken",
    "golden",
    "hollow",
    "distant",
    "crimson",
    "iron",
    "winter",
    "river",
    "garden",
    "harbour",
    "mirror",
    "lantern",
    "orchard",
    "empire",
    "tide",
    "letters",
    "shadow",
    "voyage",
    "kingdom",
    "echo",
    "meridian",
    "crown",
    "forest",
    "salt",
]
ORG_SUFFIX = [
    "University",
    "Institute of Technology",
    "Records",
    "FC",
    "Party",
    "Company",
    "Museum",
    "Orchestra",
    "Observatory",
    "Press",
    "Airlines",
    "Foundation",
    "Academy",
    "United",
]
PLACE_FORMS = ["{}", "Port {}", "New {}", "{} City", "Lake {}", "{} Valley", "Saint {}", "{}burg"]
EVENT_FORMS = ["{} Prize", "Battle of {}", "{} Festival", "{} Treaty", "{} Cup", "{} Award"]


def _word(rnd: random.Random, syllables: int) -> str:
    parts = []
    for _ in range(syllables):
        coda = rnd.choice(CODAS)
        parts.append(rnd.choice(ONSETS) + rnd.choice(VOWELS) + ("" if coda == "_" else coda))
    return "".join(parts).capitalize()


def invent_name(rnd: random.Random) -> str:
    """One plausible invented name; the kinds share tokens on purpose."""
    kind = rnd.random()
    if kind < 0.40:  # person
        first = rnd.choice(FIRST) if rnd.random() < 0.5 else _word(rnd, 2)
        middle = f" {rnd.choice('ABCDEFGHJKLMNPRSTW')}." if rnd.random() < 0.15 else ""
        return f"{first}{middle} {_word(rnd, rnd.choice((2, 3)))}"
    if kind < 0.60:  # place
        return rnd.choice(PLACE_FORMS).format(_word(rnd, rnd.choice((2, 3))))
    if kind < 0.80:  # organisation
        return f"{_word(rnd, 2)} {rnd.choice(ORG_SUFFIX)}"
    if kind < 0.95:  # work (book, film, album)
        a, b = rnd.sample(WORDS, 2)
        form = rnd.choice(("The {} {}", "{} of the {}", "{} {}"))
        return form.format(a.capitalize(), b.capitalize()) + f" {_word(rnd, 2)}"
    return rnd.choice(EVENT_FORMS).format(_word(rnd, 2))


def invent_names(count: int, rnd: random.Random) -> list[str]:
    """``count`` names, distinct after the store's normalisation."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = invent_name(rnd)
        key = norm(name)
        if key not in seen:
            seen.add(key)
            names.append(name)
    return names


def _zipf_cum_weights(count: int, exponent: float) -> list[float]:
    total, cum = 0.0, []
    for rank in range(1, count + 1):
        total += rank**-exponent
        cum.append(total)
    return cum


def generate_facts(
    n_facts: int,
    relations: list[tuple[str, str]],
    *,
    seed: int = 1,
    entities_per_fact: float = 0.25,
    subject_exponent: float = 0.6,
    object_exponent: float = 0.9,
    relation_exponent: float = 1.0,
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """(entity names, distinct facts): ``relations`` is [(label, cardinality)]."""
    rnd = random.Random(seed)
    names = invent_names(max(2, int(n_facts * entities_per_fact)), rnd)
    # Popularity ranks differ between subject and object roles.
    subject_order = names[:]
    rnd.shuffle(subject_order)
    object_order = names[:]
    rnd.shuffle(object_order)
    labels = [label for label, _ in relations]
    rnd.shuffle(labels)
    one_valued = {label for label, cardinality in relations if cardinality == "one"}
    subject_cum = _zipf_cum_weights(len(names), subject_exponent)
    object_cum = _zipf_cum_weights(len(names), object_exponent)
    relation_cum = _zipf_cum_weights(len(labels), relation_exponent)
    facts: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    filled: set[tuple[str, str]] = set()
    while len(facts) < n_facts:
        want = min(200_000, 2 * (n_facts - len(facts)))
        subjects = rnd.choices(subject_order, cum_weights=subject_cum, k=want)
        objects = rnd.choices(object_order, cum_weights=object_cum, k=want)
        rels = rnd.choices(labels, cum_weights=relation_cum, k=want)
        for fact in zip(subjects, rels, objects, strict=True):
            s, r, o = fact
            if s == o or fact in seen or (r in one_valued and (s, r) in filled):
                continue
            seen.add(fact)
            if r in one_valued:
                filled.add((s, r))
            facts.append(fact)
            if len(facts) == n_facts:
                break
    return names, facts


def fact_records(facts: list[tuple[str, str, str]]) -> Iterator[tuple[int, dict[str, str]]]:
    """The facts as ``import_records`` input: (line number, NDJSON-style record)."""
    for number, (s, r, o) in enumerate(facts, start=1):
        yield number, {"subject": s, "relation": r, "object": o}


def seeded_relations(store: Store) -> list[tuple[str, str]]:
    return [(r.label, r.cardinality) for r in store.relations()]


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def insert_api(store: Store, facts: list[tuple[str, str, str]]) -> None:
    """Every fact through ``Store.add_fact``, in one batch."""
    with store.batch("import", f"synthetic {len(facts)} facts"):
        for s, r, o in facts:
            store.add_fact(s, r, o)


def insert_sql(store: Store, facts: list[tuple[str, str, str]], chunk: int = 50_000) -> None:
    """FIXTURES ONLY: the rows ``add_fact`` would write for new facts, bulk-inserted."""
    conn = store.conn
    relation_id = {label: rid for rid, label in conn.execute("SELECT id, label FROM relations")}
    entity_id: dict[str, int] = {}
    next_fact = (conn.execute("SELECT max(id) FROM facts").fetchone()[0] or 0) + 1
    next_entity = (conn.execute("SELECT max(id) FROM entities").fetchone()[0] or 0) + 1
    with store.batch("import", f"synthetic {len(facts)} facts (bulk SQL)") as batch_id:
        for start in range(0, len(facts), chunk):
            stamp = now()
            new_entities, fact_rows, prov_rows, op_rows = [], [], [], []
            for s, r, o in facts[start : start + chunk]:
                ids = []
                for name in (s, o):
                    if name not in entity_id:
                        entity_id[name] = next_entity
                        new_entities.append((next_entity, name))
                        next_entity += 1
                    ids.append(entity_id[name])
                row = (
                    ids[0],
                    relation_id[r],
                    ids[1],
                    "manual",
                    "current",
                    stamp,
                    stamp,
                    None,
                    None,
                )
                fact_rows.append((next_fact, *row))
                prov_rows.append((next_fact, batch_id, "manual", stamp))
                after = json.dumps(dict(zip(FACT_COLUMNS, row, strict=True)))
                op_rows.append((batch_id, "add", next_fact, None, after, stamp))
                next_fact += 1
            conn.executemany(
                "INSERT INTO entities (id, name, created_at) VALUES (?, ?, ?)",
                [(i, name, stamp) for i, name in new_entities],
            )
            conn.executemany(
                "INSERT INTO names (id, entity_id, name, norm) VALUES (?, ?, ?, ?)",
                [(i, i, name, norm(name)) for i, name in new_entities],
            )
            conn.executemany(
                f"INSERT INTO facts (id, {', '.join(FACT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * (len(FACT_COLUMNS) + 1))})",
                fact_rows,
            )
            conn.executemany(
                "INSERT INTO provenance (fact_id, batch_id, origin, created_at) "
                "VALUES (?, ?, ?, ?)",
                prov_rows,
            )
            conn.executemany(
                "INSERT INTO ops (batch_id, op, fact_id, before, after, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                op_rows,
            )


def _checkpoint(path: Path) -> None:
    with Store.open(path) as store:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def base_path(n_facts: int, seed: int, method: str) -> Path:
    return OUT / f"memory-n{n_facts}-seed{seed}-g{GENERATOR_VERSION}-{method}.db"


def build_base(n_facts: int, seed: int, method: str, *, force: bool = False) -> dict:
    """The memory without vectors; returns build stats (cached ones when it exists)."""
    path = base_path(n_facts, seed, method)
    stats_path = path.with_suffix(".json")
    if path.exists() and stats_path.exists() and not force:
        return json.loads(stats_path.read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    _remove(path)
    stats_path.unlink(missing_ok=True)
    started = time.perf_counter()
    store = Store.open(path)
    try:
        names, facts = generate_facts(n_facts, seeded_relations(store), seed=seed)
        generated = time.perf_counter()
        (insert_api if method == "api" else insert_sql)(store, facts)
        inserted = time.perf_counter()
        counts = {
            table: store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("facts", "entities", "names", "relations")
        }
        per_entity = store.conn.execute(
            "SELECT max(c), avg(c) FROM (SELECT subject_id AS e, count(*) AS c FROM facts "
            "GROUP BY subject_id)"
        ).fetchone()
    finally:
        store.close()
    _checkpoint(path)
    stats = {
        "path": str(path),
        "facts_requested": n_facts,
        "seed": seed,
        "method": method,
        "generate_s": round(generated - started, 2),
        "insert_s": round(inserted - generated, 2),
        "insert_facts_per_s": round(len(facts) / (inserted - generated)),
        "counts": counts,
        "max_facts_per_subject": per_entity[0],
        "mean_facts_per_subject": round(per_entity[1], 2),
        "size_mb": round(path.stat().st_size / 2**20, 1),
    }
    stats_path.write_text(json.dumps(stats, indent=2))
    return stats


def vectors_key(embedder: str) -> str:
    """The cache key of a memory's vectors: both MiniLM back ends give the same vectors."""
    return "minilm" if embedder.startswith("minilm") else embedder


def indexed_path(n_facts: int, seed: int, method: str, embedder: str) -> Path:
    base = base_path(n_facts, seed, method)
    return base.with_name(base.stem + f"-{vectors_key(embedder)}.db")


def build_indexed(
    n_facts: int, seed: int, method: str, embedder_name: str, *, force: bool = False
) -> dict:
    """A copy of the base memory with every name and label embedded by ``embedder_name``."""
    base = build_base(n_facts, seed, method, force=force)
    path = indexed_path(n_facts, seed, method, embedder_name)
    stats_path = path.with_suffix(".json")
    if path.exists() and stats_path.exists() and not force:
        return json.loads(stats_path.read_text())
    _remove(path)
    shutil.copyfile(base["path"], path)
    embedder = get_embedder(embedder_name)
    loaded = time.perf_counter()
    embedder.embed(["warm up"])  # loads MiniLM; not counted as indexing
    load_s = time.perf_counter() - loaded
    started = time.perf_counter()
    with Store.open(path) as store:
        done = store.index_pending(embedder, chunk=512)
    index_s = time.perf_counter() - started
    _checkpoint(path)
    stats = {
        **base,
        "path": str(path),
        "embedder": embedder.model_id,
        "model_load_s": round(load_s, 2),
        "indexed": done,
        "index_s": round(index_s, 2),
        "index_per_s": round(done / index_s),
        "size_mb": round(path.stat().st_size / 2**20, 1),
    }
    stats_path.write_text(json.dumps(stats, indent=2))
    return stats


def ensure_memory(
    n_facts: int, seed: int = 1, method: str | None = None, embedder: str | None = None
) -> dict:
    """Build (or reuse) a memory; ``method`` defaults to api up to 200k facts, else sql."""
    method = method or ("api" if n_facts <= 200_000 else "sql")
    if embedder is None:
        return build_base(n_facts, seed, method)
    return build_indexed(n_facts, seed, method, embedder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--method", choices=("api", "sql"), help="default: api <=200k, else sql")
    parser.add_argument("--embedder", choices=("hash", "minilm", "minilm-st"), action="append")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args()
    rows = []
    for n in args.facts:
        method = args.method or ("api" if n <= 200_000 else "sql")
        base = build_base(n, args.seed, method, force=args.force)
        rows.append(base)
        for name in args.embedder or []:
            rows.append(build_indexed(n, args.seed, method, name, force=args.force))
    print(f"{'memory':58} {'facts':>8} {'names':>7} {'insert f/s':>10} {'index n/s':>9} {'MB':>6}")
    for row in rows:
        print(
            f"{Path(row['path']).name:58} {row['counts']['facts']:>8} "
            f"{row['counts']['names']:>7} {row['insert_facts_per_s']:>10} "
            f"{row.get('index_per_s', ''):>9} {row['size_mb']:>6}"
        )
    (OUT / "make_memory.json").write_text(json.dumps(rows, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
