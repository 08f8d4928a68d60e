"""Write mode: how well a model turns sentences into (subject, relation, object) facts.

Re-DocRED-format documents are read sentence by sentence with the ingest pipeline's
context (``runtime.prompts.next_context``), through ``Session.extract``, the code
path ``memllm ingest`` runs. Scores are micro precision, recall and F1 over each
document's gold facts: a predicted triple matches a gold one when its relation label
is the gold label and its subject and object each name any mention of the gold
entities (case and spacing folded). FewRel is scored the same way per sentence,
though it labels only one fact per sentence, so its precision is a lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memllm_cli.datasets.redocred import Document
from memllm_cli.eval.common import PRF, Metered, Progress, System, no_progress, scratch_store
from memllm_cli.protocol import ProtocolError, Triple
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.prompts import next_context
from memllm_cli.store.text import norm


@dataclass(frozen=True)
class Gold:
    """A document's gold facts over entity ids, and every name each entity goes by."""

    facts: frozenset[tuple[int, str, int]]
    names: dict[str, frozenset[int]]  # normalised mention -> entity ids


def gold_of(doc: Document, label_for: Any) -> Gold:
    names: dict[str, set[int]] = {}
    for i, mentions in enumerate(doc.entities):
        for m in mentions:
            names.setdefault(norm(m.name), set()).add(i)
    facts = frozenset((lab.head, label_for(lab.relation), lab.tail) for lab in doc.labels)
    return Gold(facts, {k: frozenset(v) for k, v in names.items()})


def score(predicted: Sequence[Triple], gold: Gold) -> PRF:
    """Micro counts for one document: each gold fact found once; unmatched predictions are fp."""
    found: set[tuple[int, str, int]] = set()
    fp = 0
    for triple in {(norm(t.subject), t.relation, norm(t.object)) for t in predicted}:
        subject, relation, obj = triple
        hits = {
            (h, relation, t)
            for h in gold.names.get(subject, ())
            for t in gold.names.get(obj, ())
            if (h, relation, t) in gold.facts
        }
        if hits:
            found |= hits
        else:
            fp += 1
    return PRF(len(found), fp, len(gold.facts - found))


def _extract(session: Session, sentence: str, context: str = "") -> list[Triple] | None:
    """The sentence's facts, or None for a write that did not parse (counted, not fatal)."""
    try:
        return session.extract(sentence, context)
    except ProtocolError:
        return None


def evaluate_documents(
    system: System, docs: Sequence[Document], label_for: Any, progress: Progress = no_progress
) -> dict[str, Any]:
    """Write-mode P/R/F1 of ``system`` over ``docs``, with cost and parse failures."""
    metered = Metered(system.model)
    total, failures, sentences = PRF(), 0, 0
    examples: list[dict[str, Any]] = []
    with scratch_store() as store:
        session = Session(store, metered)
        for n, doc in enumerate(docs):
            predicted: list[Triple] = []
            context: list[str] = []
            for sentence in doc.sentences:
                sentences += 1
                triples = _extract(session, sentence, " ".join(context))
                failures += triples is None
                triples = triples or []
                predicted += triples
                if len(examples) < 5 and triples:
                    examples.append(
                        {
                            "sentence": sentence,
                            "facts": [[t.subject, t.relation, t.object] for t in triples],
                        }
                    )
                context = next_context(context, sentence)
            total.add(score(predicted, gold_of(doc, label_for)))
            progress(f"write {system.name}", n + 1, len(docs))
    return {
        "documents": len(docs),
        "sentences": sentences,
        **total.to_dict(),
        "parse_failures": failures,
        **metered.cost(sentences),
        "examples": examples,
    }


def evaluate_fewrel(
    system: System, items: Sequence[Any], progress: Progress = no_progress
) -> dict[str, Any]:
    """Per-sentence P/R/F1 on FewRel items (one gold fact each; the head and tail as spelt)."""
    metered = Metered(system.model)
    total, failures = PRF(), 0
    with scratch_store() as store:
        session = Session(store, metered)
        for n, item in enumerate(items):
            triples = _extract(session, item.sentence)
            failures += triples is None
            triples = triples or []
            gold = Gold(
                frozenset({(0, item.relation, 1)}),
                {norm(item.head): frozenset({0}), norm(item.tail): frozenset({1})},
            )
            total.add(score(triples, gold))
            progress(f"fewrel {system.name}", n + 1, len(items))
    return {
        "sentences": len(items),
        **total.to_dict(),
        "parse_failures": failures,
        **metered.cost(len(items)),
    }
