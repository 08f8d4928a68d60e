"""English labels of Wikidata relations: the words facts are written with.

The store seeds its own relation labels; the data sets name relations by P-id, and
for the ones the store lacks, MemLLM's Wikidata label file in ``--data`` says it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

WIKIDATA_LABELS = "relations/memllm_wikidata_props_en.json"


@cache
def relation_labels() -> dict[str, str]:
    """P-id -> English label, as the store seeds them."""
    from memllm_cli.store.seeds import seed_relations

    return {r["pid"]: r["label"] for r in seed_relations()}


def label_for(pid: str, data: Path | None) -> str:
    """The English label of ``pid``: the store's own, else Wikidata's, else the P-id."""
    labels = relation_labels()
    if pid in labels:
        return labels[pid]
    if data is not None and (Path(data) / WIKIDATA_LABELS).is_file():
        return _wikidata_labels(str(data)).get(pid, pid)
    return pid


@cache
def _wikidata_labels(data: str) -> dict[str, str]:
    return json.loads((Path(data) / WIKIDATA_LABELS).read_text(encoding="utf-8"))
