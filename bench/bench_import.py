"""Bulk import throughput (facts/s) and vector indexing throughput (names/s).

Import: synthetic facts (see make_memory.py) are written as NDJSON, then each
size is imported into a fresh memory with ``read_records`` + ``import_records``
(one batch, every record through the normal write rules). The clock covers
parsing and importing, not creating the empty memory. ``parse`` times
``read_records`` alone.

Indexing: a fresh memory of about ``--index-names`` names is imported, copied
once per embedder, and ``store.index_pending`` embeds every name and label.
``embed only`` times the embedder alone on the same texts, so the store's share
(cache lookups, 1-bit vectors, vec0 inserts) shows. MiniLM's load time is
excluded and reported apart.

Run ``python bench/bench_import.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from make_memory import OUT, generate_facts, seeded_relations

from memllm_cli.embed import get_embedder
from memllm_cli.store.store import Store
from memllm_cli.store.transfer import import_records, read_records


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def relations() -> list[tuple[str, str]]:
    scratch = OUT / "scratch-relations.db"
    _remove(scratch)
    with Store.open(scratch) as store:
        found = seeded_relations(store)
    _remove(scratch)
    return found


def write_ndjson(n_facts: int, seed: int) -> Path:
    path = OUT / f"import-n{n_facts}-seed{seed}.jsonl"
    if not path.exists():
        _, facts = generate_facts(n_facts, relations(), seed=seed)
        with path.open("w", encoding="utf-8") as out:
            for s, r, o in facts:
                out.write(json.dumps({"subject": s, "relation": r, "object": o}) + "\n")
    return path


def import_file(source: Path, db_path: Path) -> dict:
    _remove(db_path)
    with source.open(encoding="utf-8") as text:
        started = time.perf_counter()
        parsed = sum(1 for _ in read_records(text, "jsonl"))
        parse_s = time.perf_counter() - started
    with Store.open(db_path) as store, source.open(encoding="utf-8") as text:
        started = time.perf_counter()
        report = import_records(store, read_records(text, "jsonl"))
        import_s = time.perf_counter() - started
        names = store.conn.execute("SELECT count(*) FROM names").fetchone()[0]
    return {
        "facts": report.imported,
        "parsed": parsed,
        "names": names,
        "parse_s": round(parse_s, 3),
        "import_s": round(import_s, 2),
        "facts_per_s": round(report.imported / import_s),
        "size_mb": round(db_path.stat().st_size / 2**20, 1),
    }


def index_throughput(db_path: Path, embedder_name: str) -> dict:
    copy = db_path.with_name(db_path.stem + f"-{embedder_name}.db")
    _remove(copy)
    with Store.open(db_path) as store:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        texts = [row[0] for row in store.conn.execute("SELECT name FROM names")]
        texts += [row[0] for row in store.conn.execute("SELECT label FROM relations")]
    shutil.copyfile(db_path, copy)
    embedder = get_embedder(embedder_name)
    started = time.perf_counter()
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    embedder.embed(texts)
    embed_s = time.perf_counter() - started
    with Store.open(copy) as store:
        started = time.perf_counter()
        done = store.index_pending(embedder)
        index_s = time.perf_counter() - started
    _remove(copy)
    return {
        "name": embedder_name,
        "embedder": f"{embedder.model_id} ({type(embedder).__name__})",
        "texts": done,
        "model_load_s": round(load_s, 2),
        "embed_only_s": round(embed_s, 2),
        "embed_only_per_s": round(len(texts) / embed_s),
        "index_pending_s": round(index_s, 2),
        "index_pending_per_s": round(done / index_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--index-names", type=int, default=2000, help="about this many names")
    parser.add_argument("--embedders", nargs="+", default=["hash", "minilm-st", "minilm"])
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    result: dict = {"loadavg_start": os.getloadavg(), "import": [], "index": []}

    for n in args.facts:
        source = write_ndjson(n, args.seed)
        row = import_file(source, OUT / f"bench-import-{n}.db")
        _remove(OUT / f"bench-import-{n}.db")
        result["import"].append(row)

    # ~4 facts per entity, so names ~= facts / 4 (a little less: not every entity is drawn)
    source = write_ndjson(int(args.index_names * 4.2), args.seed)
    db_path = OUT / "bench-index.db"
    import_file(source, db_path)
    for name in args.embedders:
        result["index"].append(index_throughput(db_path, name))
    _remove(db_path)
    result["loadavg_end"] = os.getloadavg()

    print(f"{'import':>8} {'facts':>7} {'names':>6} {'parse s':>8} {'import s':>9} {'facts/s':>8}")
    for row in result["import"]:
        print(
            f"{'':>8} {row['facts']:>7} {row['names']:>6} {row['parse_s']:>8} "
            f"{row['import_s']:>9} {row['facts_per_s']:>8}"
        )
    print(f"\n{'embedder':72} {'texts':>6} {'load s':>7} {'embed/s':>8} {'index/s':>8}")
    for row in result["index"]:
        print(
            f"{row['embedder']:72} {row['texts']:>6} {row['model_load_s']:>7} "
            f"{row['embed_only_per_s']:>8} {row['index_pending_per_s']:>8}"
        )
    print("load average start/end:", result["loadavg_start"], result["loadavg_end"])
    (OUT / "bench_import.json").write_text(json.dumps(result, indent=2))
    print("saved bench/out/bench_import.json")


if __name__ == "__main__":
    main()
