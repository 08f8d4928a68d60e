"""Perplexity of target entities with and without a memory read (MemLLM, section 5).

In running Re-DocRED text, each target is the first mention of an entity that is
the object of a gold fact whose subject the text has already named. The model
scores the mention's tokens twice: after the text alone, and after the text plus
``({MEM_READ(subject>>relation>>)-->results})``, the results coming from a memory
that holds the document's gold facts (the read the model would make). The paper's
headline number is how much the read lowers the targets' perplexity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memllm_cli.datasets.redocred import Document
from memllm_cli.eval.common import Progress, System, no_progress, scratch_store
from memllm_cli.protocol import ReadQuery, format_read
from memllm_cli.store import Evidence, Store
from memllm_cli.store.read import read


@dataclass(frozen=True)
class Target:
    prefix: str  # the document's text before the mention
    mention: str
    query: ReadQuery


def _offsets(doc: Document) -> tuple[str, dict[int, list[tuple[int, str]]]]:
    """The document's text and, for every entity, its mentions' (offset, name) in order."""
    text, starts = "", []
    for sentence in doc.sentences:
        text += (" " if text else "") + sentence
        starts.append(len(text) - len(sentence))
    found: dict[int, list[tuple[int, str]]] = {}
    for entity, mentions in enumerate(doc.entities):
        for m in mentions:
            at = doc.sentences[m.sentence].find(m.name)
            if at >= 0:
                found.setdefault(entity, []).append((starts[m.sentence] + at, m.name))
        found.get(entity, []).sort()
    return text, found


def canonical(doc: Document, entity: int) -> str:
    """The name the gold memory uses for an entity: its first mention."""
    return min(doc.entities[entity], key=lambda m: (m.sentence, m.start)).name


def targets(doc: Document, label_for: Any, per_document: int) -> list[Target]:
    """Up to ``per_document`` targets: first object mentions after their subject's."""
    text, mentions = _offsets(doc)
    chosen: dict[int, Target] = {}
    for label in doc.labels:
        heads, tails = mentions.get(label.head), mentions.get(label.tail)
        if not heads or not tails or label.head == label.tail:
            continue
        head_at, head_name = heads[0]
        later = [(at, name) for at, name in tails if at > head_at + len(head_name)]
        if not later or later[0][0] in chosen:
            continue
        at, name = later[0]
        query = ReadQuery(label_for(label.relation), subject=canonical(doc, label.head))
        chosen[at] = Target(text[:at].rstrip(), name, query)
    return [chosen[at] for at in sorted(chosen)][:per_document]


def load_gold(store: Store, doc: Document, label_for: Any) -> None:
    evidence = Evidence(origin="manual", sentence=f"gold fact of {doc.title}")
    with store.batch("import", f"gold facts of {doc.title}"):
        for label in doc.labels:
            store.add_fact(
                canonical(doc, label.head),
                label_for(label.relation),
                canonical(doc, label.tail),
                evidence,
            )


def evaluate(
    system: System,
    docs: Sequence[Document],
    label_for: Any,
    per_document: int = 5,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Target-entity perplexity without and with reads; needs a model that scores tokens."""
    model = system.model
    if not hasattr(model, "logprobs"):
        return {"skipped": f"{system.name} cannot score tokens"}
    without: list[float] = []
    with_read: list[float] = []
    found = targets_scored = 0
    for n, doc in enumerate(docs):
        with scratch_store() as store:
            load_gold(store, doc, label_for)
            for target in targets(doc, label_for, per_document):
                answers = [hit.answer for hit in read(store, target.query)]
                found += bool(answers)
                continuation = " " + target.mention
                without += model.logprobs(target.prefix, continuation)
                block = format_read([target.query], answers) if answers else ""
                with_read += model.logprobs(f"{target.prefix} {block}".rstrip(), continuation)
                targets_scored += 1
        progress(f"perplexity {system.name}", n + 1, len(docs))

    def perplexity(scores: list[float]) -> float:
        return round(math.exp(-sum(scores) / len(scores)), 3) if scores else float("nan")

    return {
        "documents": len(docs),
        "targets": targets_scored,
        "reads_with_results": found,
        "tokens": len(without),
        "perplexity_without_memory": perplexity(without),
        "perplexity_with_memory": perplexity(with_read),
    }
