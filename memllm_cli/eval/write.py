"""Write mode: how well a model turns sentences into (subject, relation, object) facts.

Re-DocRED-format documents are read sentence by sentence with the ingest pipeline's
context (``runtime.prompts.next_context``), through ``Session.extract``, the code
path ``memllm ingest`` runs. Scores are micro precision, recall and F1 over each
document's gold facts: a predicted triple matches a gold one when its relation label
is the gold label and its subject and object each name any mention of the gold
entities, case and spacing folded, a capitalised name with or without a leading "the"
as one (the store's rule, ``store.text.article_twin``). FewRel is scored the same way
per sentence, though it labels only one fact per sentence, so its precision is a lower
bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memllm_cli.datasets.redocred import Document
from memllm_cli.eval.common import PRF, Metered, Progress, System, no_progress, scratch_store
from memllm_cli.protocol import ProtocolError, Triple
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.prompts import next_context
from memllm_cli.store.text import article_twin, norm


@dataclass(frozen=True)
class Gold:
    """A document's gold facts over entity ids, and every name each entity goes by."""

    facts: frozenset[tuple[int, str, int]]
    names: dict[str, frozenset[int]]  # normalised mention -> entity ids
    # normalised article twin of a capitalised mention -> its entity ids (store.text.article_twin)
    twins: dict[str, frozenset[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, facts: frozenset[tuple[int, str, int]], mentions: dict[str, set[int]]) -> Gold:
        """Gold facts and the entities each written mention names (``mentions``: as written)."""
        names: dict[str, set[int]] = {}
        twins: dict[str, set[int]] = {}
        for mention, ids in mentions.items():
            names.setdefault(norm(mention), set()).update(ids)
            twin = article_twin(mention)
            if twin is not None:  # the store's rule: "Sacramento Bee" is The Sacramento Bee
                twins.setdefault(norm(twin), set()).update(ids)
        return cls(facts, _frozen(names), _frozen(twins))

    def entities(self, name: str) -> frozenset[int]:
        """The entities ``name`` names: by its own mention, or else as its article twin does,
        as ``Names.entity_ids`` finds them in the store."""
        found = self.names.get(norm(name))
        if found or article_twin(name) is None:
            return found or frozenset()
        return self.twins.get(norm(name), frozenset())


def _frozen(keyed: dict[str, set[int]]) -> dict[str, frozenset[int]]:
    return {k: frozenset(v) for k, v in keyed.items()}


def gold_of(doc: Document, label_for: Any) -> Gold:
    mentions: dict[str, set[int]] = {}
    for i, entity in enumerate(doc.entities):
        for m in entity:
            mentions.setdefault(m.name, set()).add(i)
    facts = frozenset((lab.head, label_for(lab.relation), lab.tail) for lab in doc.labels)
    return Gold.of(facts, mentions)


def score(predicted: Sequence[Triple], gold: Gold) -> PRF:
    """Micro counts for one document: each gold fact found once; unmatched predictions are fp."""
    found: set[tuple[int, str, int]] = set()
    fp = 0
    written = {(norm(t.subject), t.relation, norm(t.object)): t for t in predicted}
    for t in written.values():
        hits = {
            (h, t.relation, o)
            for h in gold.entities(t.subject)
            for o in gold.entities(t.object)
            if (h, t.relation, o) in gold.facts
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
            gold = Gold.of(frozenset({(0, item.relation, 1)}), {item.head: {0}, item.tail: {1}})
            total.add(score(triples, gold))
            progress(f"fewrel {system.name}", n + 1, len(items))
    return {
        "sentences": len(items),
        **total.to_dict(),
        "parse_failures": failures,
        **metered.cost(len(items)),
    }
