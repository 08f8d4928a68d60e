"""Two-step questions about the user's people: "Where does my brother work?"

The adapter reads one step: ``me>>sibling>>`` answers "Owen", and it answers "Owen." When
a question names one of the user's people by a relation word ("my brother", "my wife's",
"our GP": a relation label or alias memory knows) and asks something more about them, and
memory holds exactly one current such person, the words are replaced by that name before
the model sees the question, so its one read is the second step: "Where does Owen work?".
"Who is my brother?" asks nothing more and is left as it is.
"""

from __future__ import annotations

import re

from memllm_cli.protocol import ReadQuery
from memllm_cli.store import Store
from memllm_cli.store.read import read
from memllm_cli.words import content_words

# "my" or "our", then one or two words (a two-word relation such as "piano teacher" first).
_MY = re.compile(r"\b(?:my|our)\s+([^\W\d_][\w-]*)(?:\s+([^\W\d_][\w-]*))?", re.IGNORECASE)


def two_step(store: Store, question: str, me: str) -> str:
    """``question`` with "my <relation>" replaced by the one person memory has for it."""
    for match in _MY.finditer(question):
        spans = [(match.group(1), match.end(1))]
        if match.group(2):  # the two-word relation first: "my piano teacher"
            spans.insert(0, (f"{match.group(1)} {match.group(2)}", match.end(2)))
        for phrase, end in spans:
            rest = question[: match.start()] + question[end:]
            if not store.relation_ids(phrase) or not content_words(rest):
                continue
            hits = [h for h in read(store, ReadQuery(phrase, subject=me)) if not h.fallback]
            if len({h.answer for h in hits}) == 1:
                return question[: match.start()] + hits[0].answer + question[end:]
    return question
