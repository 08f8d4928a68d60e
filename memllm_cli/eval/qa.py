"""Memory QA, its baselines, and edits.

Two question sets: EntityQuestions-format questions whose gold facts are loaded
into the memory, and a notes + questions pair (a Markdown file the system ingests
with its own write mode, and a JSONL of ``{"q": ..., "a": [accepted answers]}``).
Accuracy is answer containment. The same questions go to:
- ``memory``: ``Session.ask``, the code path ``memllm ask`` runs;
- ``no-memory``: the model alone;
- ``rag``: the top sentences by embedding similarity pasted into the prompt.

Edits: after a counterfactual correction of a fact (``Store.edit_fact``, what
``memllm facts edit`` does), the answer should follow it (reliability) and answers
to other questions should not move (locality).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memllm_cli.embed import Embedder, unpack
from memllm_cli.eval.common import Metered, Progress, System, Tally, contains_answer, no_progress
from memllm_cli.protocol import Triple
from memllm_cli.runtime import prompts
from memllm_cli.runtime.loop import Session
from memllm_cli.store import Evidence, Store


@dataclass(frozen=True)
class QAItem:
    question: str
    answers: tuple[str, ...]
    fact: Triple | None = None  # the gold fact, when the set has one (EntityQuestions)
    file: str | None = None  # the note file that states the answer (notes questions)


def entity_question_items(questions: Sequence[Any], count: int, seed: int) -> list[QAItem]:
    """``count`` questions spread over relations, one per subject and relation."""
    rng = random.Random(seed)
    by_relation: dict[str, list[Any]] = {}
    for q in questions:
        by_relation.setdefault(q.relation, []).append(q)
    for pool in by_relation.values():
        rng.shuffle(pool)
    picked, seen = [], set()
    while len(picked) < count and any(by_relation.values()):
        for relation in sorted(by_relation):
            pool = by_relation[relation]
            while pool and len(picked) < count:
                q = pool.pop()
                if (q.subject, q.relation) not in seen:
                    seen.add((q.subject, q.relation))
                    picked.append(q)
                    break
    return [
        QAItem(q.question, q.answers, Triple(q.subject, q.relation, q.answers[0])) for q in picked
    ]


def read_qa_file(path: Path) -> list[QAItem]:
    """A JSONL of ``{"q": question, "a": [accepted answers]}``, with an optional ``"file"``
    (the note file that states the answer: the notes-dev format)."""
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        answers = record["a"] if isinstance(record["a"], list) else [record["a"]]
        if not record.get("q") or not answers:
            raise ValueError(f"{path}:{n}: needs a question 'q' and answers 'a'")
        items.append(QAItem(record["q"], tuple(answers), file=record.get("file") or None))
    return items


def load_facts(store: Store, items: Sequence[QAItem]) -> None:
    """The gold facts of ``items``, as one batch, with the question set as their source."""
    evidence = Evidence(origin="manual", sentence="evaluation gold fact")
    with store.batch("import", "evaluation gold facts"):
        for item in items:
            if item.fact is not None:
                store.add_fact(item.fact.subject, item.fact.relation, item.fact.object, evidence)


def ask_all(
    session: Session, items: Sequence[QAItem], label: str, progress: Progress = no_progress
) -> tuple[Tally, int, list[bool]]:
    """Ask every question; (tally, parse failures, which were right)."""
    tally, failures, oks = Tally(), 0, []
    for n, item in enumerate(items):
        answer = session.ask(item.question)
        failures += answer.parse_failures
        ok = contains_answer(answer.text, item.answers)
        reads = [r.query for r in answer.reads]
        tally.add(
            ok, {"q": item.question, "a": list(item.answers), "answer": answer.text, "reads": reads}
        )
        oks.append(ok)
        progress(label, n + 1, len(items))
    return tally, failures, oks


def evaluate_memory(
    system: System,
    store: Store,
    embedder: Embedder | None,
    items: Sequence[QAItem],
    progress: Progress = no_progress,
    memory: bool = True,
) -> dict[str, Any]:
    """Answer through the read loop (or, ``memory=False``, from the model alone)."""
    metered = Metered(system.model)
    session = Session(store, metered, embedder, memory=memory, max_tokens=64)
    tally, failures, _ = ask_all(session, items, f"qa {system.name}", progress)
    return tally.to_dict() | {"parse_failures": failures, **metered.cost(len(items))}


def retrieve(
    embedder: Embedder,
    passages: Sequence[str],
    vectors: Sequence[Sequence[float]],
    question: str,
    k: int,
) -> list[str]:
    """The ``k`` passages closest to ``question`` by cosine (the vectors are unit length)."""
    query = unpack(embedder.embed([question])[0])
    scores = [sum(a * b for a, b in zip(query, v, strict=True)) for v in vectors]
    best = sorted(range(len(passages)), key=lambda i: -scores[i])[:k]
    return [passages[i] for i in best]


def evaluate_rag(
    system: System,
    embedder: Embedder,
    passages: Sequence[str],
    items: Sequence[QAItem],
    k: int = 3,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Retrieval baseline: top-``k`` passages into the prompt, one generation, no calls."""
    metered = Metered(system.model)
    vectors = [unpack(v) for v in embedder.embed(list(passages))]
    tally = Tally()
    for n, item in enumerate(items):
        context = retrieve(embedder, passages, vectors, item.question, k)
        gen = metered.generate(
            prompts.rag_prompt(item.question, context), max_tokens=64, stop=(prompts.IM_END,)
        )
        tally.add(
            contains_answer(gen.text, item.answers),
            {
                "q": item.question,
                "a": list(item.answers),
                "answer": gen.text.strip(),
                "passages": context,
            },
        )
        progress(f"rag {system.name}", n + 1, len(items))
    return tally.to_dict() | {"passages": len(passages), "k": k, **metered.cost(len(items))}


def fact_passages(items: Sequence[QAItem]) -> list[str]:
    """The gold facts as sentences, for the retrieval baseline on EntityQuestions."""
    return [
        f"The {i.fact.relation} of {i.fact.subject} is {i.fact.object}."
        for i in items
        if i.fact is not None
    ]


def evaluate_edits(
    system: System,
    store: Store,
    embedder: Embedder | None,
    items: Sequence[QAItem],
    count: int,
    seed: int,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Edit ``count`` facts the system answers right to a counterfactual object.

    Reliability: the answer now contains the new object. Locality: as many other
    questions, answered right before the edits, are still answered right after.
    """
    rng = random.Random(seed)
    session = Session(store, Metered(system.model), embedder, max_tokens=64)
    with_facts = [i for i in items if i.fact is not None]
    objects: dict[str, list[str]] = {}  # counterfactuals: other objects of the same relation
    for item in with_facts:
        objects.setdefault(item.fact.relation, []).append(item.fact.object)
    asked = with_facts[: 4 * count]
    _, _, oks = ask_all(session, asked, f"edits {system.name} (before)", progress)
    right = [item for item, ok in zip(asked, oks, strict=True) if ok]
    rng.shuffle(right)
    edited, others = right[:count], right[count : 2 * count]
    changes = []
    with store.batch("edit", "evaluation counterfactuals"):
        for item in edited:
            choices = [o for o in objects[item.fact.relation] if o not in item.answers]
            if not choices:
                continue
            new = rng.choice(choices)
            fact_id = store.fact_id_of(item.fact.subject, item.fact.relation, item.fact.object)
            if fact_id is None:
                continue
            store.edit_fact(fact_id, obj=new)
            changes.append(
                QAItem(item.question, (new,), Triple(item.fact.subject, item.fact.relation, new))
            )
    reliability, _, _ = ask_all(session, changes, f"edits {system.name} (edited)", progress)
    locality, _, _ = ask_all(session, others, f"edits {system.name} (unrelated)", progress)
    return {
        "edits": len(changes),
        "reliability": reliability.to_dict(),
        "locality": locality.to_dict(),
    }
