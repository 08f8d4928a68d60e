"""FewRel: single sentences, each with one labelled fact between a head and a tail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from memllm_cli.datasets.redocred import detokenize
from memllm_cli.datasets.relations import label_for
from memllm_cli.datasets.splits import in_split

PATH = "fewrel/val_wiki.json"


@dataclass(frozen=True)
class FewRelItem:
    sentence: str
    head: str
    relation: str  # English label
    tail: str


def items(data: Path | None, split: str, path: Path | None = None) -> list[FewRelItem]:
    """FewRel sentences of ``split`` ("train", "val" or "all", by sentence), detokenised,
    with head and tail as the sentence spells them."""
    path = path or data / PATH
    raw = json.loads(path.read_text(encoding="utf-8"))
    names = path.parent / "pid2name.json"  # FewRel ships its own labels beside the data
    fewrel_labels = json.loads(names.read_text(encoding="utf-8")) if names.is_file() else {}
    found = []
    for pid, instances in raw.items():
        label = label_for(pid, data)
        if label == pid and pid in fewrel_labels:
            label = fewrel_labels[pid][0]
        for inst in instances:
            text, spans = detokenize(inst["tokens"])

            def span(indices: list[int], text: str = text, spans: list = spans) -> str:
                return text[spans[indices[0]][0] : spans[indices[-1]][1]]

            if in_split(text, split):
                found.append(FewRelItem(text, span(inst["h"][2][0]), label, span(inst["t"][2][0])))
    return found
