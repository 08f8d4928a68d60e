"""Training examples, built from the public data sets in ``--data``.

Every call in every example comes from the protocol module and every prompt from
``runtime.prompts``, so what the adapter learns is exactly what the runtime sends
and parses. An example is a prompt plus the assistant's reply in segments; the loss
falls only on the segments the model must produce (calls and answers), never on
the prompt or on the results the memory appends.

Sources (read in ``memllm_cli.datasets``, the training side of each split):
- write mode: Re-DocRED documents, one example per sentence with the same growing
  context the ingest pipeline uses (``prompts.next_context``), empty writes kept;
  FewRel single sentences;
- read mode: EntityQuestions questions -> read call -> results -> short answer,
  with several answers, distractors and empty (rolled back) reads;
- personal notes: ``datasets.notes``' first-person notes and questions;
- the evidence fallback: a note among other notes -> read call -> the answer as the
  note writes it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from memllm_cli.datasets.entityquestions import Question
from memllm_cli.datasets.fewrel import FewRelItem
from memllm_cli.datasets.notes import Note
from memllm_cli.datasets.redocred import Document
from memllm_cli.datasets.relations import label_for
from memllm_cli.protocol import (
    CALL_CLOSE,
    MAX_TRIPLES_PER_WRITE,
    ReadQuery,
    Triple,
    format_results,
    format_write,
    read_opening,
)
from memllm_cli.runtime import prompts
from memllm_cli.runtime.grounding import is_grounded


@dataclass(frozen=True)
class Example:
    """A prompt and the reply as (text, trained) segments; ``kind`` names its source."""

    kind: str
    prompt: str
    reply: tuple[tuple[str, bool], ...]

    @property
    def text(self) -> str:
        return self.prompt + "".join(text for text, _ in self.reply)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "prompt": self.prompt, "reply": [list(s) for s in self.reply]}


def write_example(
    kind: str, context: str, sentence: str, triples: Sequence[Triple], me: str = "me"
) -> Example:
    """Write mode: the focus sentence in its context -> one MEM_WRITE call."""
    call = format_write(list(triples)[:MAX_TRIPLES_PER_WRITE])
    prompt = prompts.write_prompt(context, sentence, me=me, prompted=False)
    return Example(kind, prompt, ((call + prompts.IM_END, True),))


def is_empty_write(example: Example) -> bool:
    return example.reply[0][0] == format_write([]) + prompts.IM_END


def read_example(
    kind: str,
    question: str,
    queries: Sequence[ReadQuery],
    results: Sequence[str],
    answer: str,
) -> Example:
    """Read mode: question -> call (trained) -> results (given) -> answer (trained).

    With no results the runtime rolls the call back and forbids another, so the
    example is just the answer the model must then give, with no call at all.
    """
    prompt = prompts.read_prompt(question, prompted=False)
    if not results:
        return Example(kind, prompt, ((answer + prompts.IM_END, True),))
    return Example(
        kind,
        prompt,
        (
            (read_opening(list(queries)), True),
            (format_results(list(results)), False),
            (" " + answer + prompts.IM_END, True),
        ),
    )


# -- Re-DocRED: write mode ------------------------------------------------------------------------


def _name(doc: Document, entity: int, sentence: int) -> str:
    """How a fact written at ``sentence`` should name ``entity``.

    The longest mention in the sentence itself (the model copies what it sees), else
    the longest mention before it, else the longest mention in the document.
    """
    mentions = doc.entities[entity]
    for pool in (
        [m for m in mentions if m.sentence == sentence],
        [m for m in mentions if m.sentence < sentence],
        list(mentions),
    ):
        if pool:
            return max(pool, key=lambda m: len(m.name)).name
    raise ValueError(f"entity {entity} of {doc.title!r} has no mention")


def stated_at(
    doc: Document, head: int, tail: int, evidence: Sequence[int], named: bool = False
) -> int:
    """The sentence that completes a fact: its last evidence sentence, or failing that
    the sentence where the later of its two entities first appears.

    ``named``: the last evidence sentence that names one of its entities, where one does
    (a grounded write needs a name in its sentence).
    """
    if evidence:
        naming = {m.sentence for e in (head, tail) for m in doc.entities[e]} if named else ()
        return max([i for i in evidence if i in naming] or evidence)
    first = [min(m.sentence for m in doc.entities[e]) for e in (head, tail)]
    return max(first)


def document_triples(
    doc: Document, data: Path | None, named: bool = False
) -> dict[int, list[Triple]]:
    """Each sentence's facts, named as ``_name`` chooses (``named``: see ``stated_at``)."""
    by_sentence: dict[int, list[Triple]] = {}
    for label in doc.labels:
        at = stated_at(doc, label.head, label.tail, label.evidence, named)
        triple = Triple(
            _name(doc, label.head, at), label_for(label.relation, data), _name(doc, label.tail, at)
        )
        if triple not in by_sentence.setdefault(at, []):
            by_sentence[at].append(triple)
    return by_sentence


def redocred_write(
    docs: Sequence[Document], data: Path | None, grounded: bool = False
) -> Iterator[Example]:
    """One write example per sentence, with the ingest pipeline's context.

    ``grounded``: a sentence is taught only the facts the runtime would keep from it
    (``runtime.grounding.is_grounded``: both names in the text the model sees, one in the
    sentence). Re-DocRED also labels facts a reader infers from the whole document or
    knows ("Klamath Falls >> country >> U.S." for "The name was changed to Klamath Falls
    in 1892"); taught those, a small model learns to write names the text does not give,
    and the runtime drops them or, worse, keeps a wrong one that happens to be grounded.
    """
    for doc in docs:
        by_sentence = document_triples(doc, data, named=grounded)
        context: list[str] = []
        for i, sentence in enumerate(doc.sentences):
            before = " ".join(context)
            triples = by_sentence.get(i, [])
            if grounded:
                triples = [t for t in triples if is_grounded(t, sentence, before, "me", _unknown)]
            yield write_example("redocred", before, sentence, triples)
            context = prompts.next_context(context, sentence)


def _unknown(name: str) -> list[int]:
    """No memory while writing a training example: every name must come from the text."""
    return []


# -- FewRel: write mode ---------------------------------------------------------------------------


def fewrel_write(items: Sequence[FewRelItem]) -> Iterator[Example]:
    for item in items:
        yield write_example(
            "fewrel", "", item.sentence, [Triple(item.head, item.relation, item.tail)]
        )


# -- EntityQuestions: read mode -------------------------------------------------------------------


def answer_sentence(objects: Sequence[str]) -> str:
    """The answer the adapter is taught: just what was asked for ("Bergen.")."""
    return f"{_join(objects)}."


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


DONT_KNOW = "I do not know: my memory has nothing on that."


def question_reads(
    questions: Sequence[Question], rng: random.Random, empty: float = 0.12, noisy: float = 0.25
) -> Iterator[Example]:
    """Read examples with the noise a real memory gives.

    ``empty``: no result, the runtime rolled the call back, the model says it does not
    know. ``noisy``: the right answer first, then other objects of the relation (a
    fuzzy read's lower-ranked matches); the answer names only the first.
    """
    by_relation: dict[str, list[str]] = {}
    for q in questions:
        by_relation.setdefault(q.relation, []).append(q.answers[0])
    for q in questions:
        query = ReadQuery(q.relation, subject=q.subject)
        roll = rng.random()
        if roll < empty:
            yield read_example("eq", q.question, [query], [], DONT_KNOW)
            continue
        results = [q.answers[0]]
        if roll < empty + noisy:
            pool = by_relation[q.relation]
            results += [o for o in rng.sample(pool, min(3, len(pool))) if o != results[0]][:2]
        answer = answer_sentence(results[:1])
        yield read_example("eq", q.question, [query], results, answer)


# -- personal notes: the evidence fallback --------------------------------------------------------


def evidence_reads(
    notes: Sequence[Note], others: Sequence[str], rng: random.Random, k: int = 3
) -> Iterator[Example]:
    """When memory has nothing, ``runtime.answer.from_sentences`` shows the model the
    ``k`` stored sentences nearest the question and opens a read call whose results the
    model completes from them. These examples teach exactly that: one note that answers,
    ``k - 1`` ``others`` that do not, best last as the runtime orders them (in other
    places a third of the time), the call, then the answer as the note writes it.
    """
    for note in notes:
        question, query, answers = rng.choice(note.questions)
        passages = [s for s in rng.sample(others, k) if s != note.sentence][: k - 1]
        at = len(passages) if rng.random() < 2 / 3 else rng.randrange(len(passages) + 1)
        passages.insert(at, note.sentence)
        prompt = prompts.evidence_prompt(question, passages)
        reply = ((read_opening([query]), True), (_join(answers) + CALL_CLOSE, True))
        yield Example("evidence", prompt, reply)
