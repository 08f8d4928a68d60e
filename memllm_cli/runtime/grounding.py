"""Grounded writes: a written name is a span of the text, the user, or a name memory knows.

A 135M model invents objects (a country guessed for a town, "Milibrio" for Milan). The
write grammar offers only the spans of the sentence and its context (:func:`spans`), and
:func:`is_grounded` checks every written triple again, whatever backend wrote it, before
anything is stored.

A fact is evidenced by the sentence it came from, so at least one of its names must be
in that sentence itself (the user counts when the sentence speaks in the first person):
a heading such as "Family" after a table does not state ``me >> spouse >> <a company
from the table>``, however well both names are grounded in the context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from memllm_cli.protocol import Triple
from memllm_cli.store.changes import states_change
from memllm_cli.store.text import norm
from memllm_cli.words import first_person, speaks_first_person

# What a model may write for the user besides a first-person word: the prompt's "user".
USER_WORDS = frozenset({"user", "the user"})
# One write giving a date or a place as both a birth and a death has read "born in X" twice.
BIRTH_OF_DEATH = {"date of death": "date of birth", "place of death": "place of birth"}
SPAN_WORDS = 6
MAX_SPANS = 600
_WORD = re.compile(r"[^\W_][\w'’.&-]*")


def names_user(name: str) -> bool:
    """Whether a written name means the user: "I", "me", "we", "user"; never "US" in capitals."""
    return first_person(name.strip()) or " ".join(name.casefold().split()) in USER_WORDS


def spans(text: str) -> list[str]:
    """Word n-grams of ``text`` (up to ``SPAN_WORDS``), as written, trailing punctuation cut.

    The last ``MAX_SPANS`` of them: the names a write may use.
    """
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    found: list[str] = []
    for i in range(len(words)):
        for j in range(i, min(i + SPAN_WORDS, len(words))):
            span = text[words[i][0] : words[j][1]].rstrip(".,;:!?'’-")
            if span and "\n" not in span:
                found.append(span)
    return list(dict.fromkeys(found))[-MAX_SPANS:]


def is_grounded(
    triple: Triple, statement: str, context: str, me: str, known: Callable[[str], list[int]]
) -> bool:
    """Whether both names of ``triple`` are the user, word spans of the statement or its
    context, or names that ``known`` finds in memory and that share a word with that text
    ("Ingrid" -> Ingrid Solberg); and at least one of them is in ``statement`` itself.
    """
    whole, own = _flat(f"{context} {statement}"), _flat(statement)
    first_person = speaks_first_person(statement)
    names = (triple.subject, triple.object)
    return all(_named(n, whole, True, me, known) for n in names) and any(
        _named(n, own, first_person, me, known) for n in names
    )


def overreach(
    triples: Sequence[Triple], statement: str, me: str, known: Callable[[str], list[int]]
) -> dict[Triple, str]:
    """The writes that say more than their sentence, each with why.

    - A death whose subject and object the same write also gives as a birth: "Desmarais
      was born in Sudbury" came back as born *and* died in Sudbury, "(born March 28,
      1973)" as a date of death too. The birth stays; "born and died in X" loses its
      death fact, and a missing fact beats a wrong one.
    - A change the sentence states ("she now works at Prada") to a value it does not
      name: "Pirelli", from the sentence before, would have become Sofia's employer.
    """
    keys = {(norm(t.subject), t.relation, norm(t.object)) for t in triples}
    own, first_person = _flat(statement), speaks_first_person(statement)
    found = {}
    for t in triples:
        if (norm(t.subject), BIRTH_OF_DEATH.get(t.relation), norm(t.object)) in keys:
            found[t] = "a death that repeats the birth"
        elif states_change(statement, t.relation) and not _named(
            t.object, own, first_person, me, known
        ):
            found[t] = "a change to a value the sentence does not name"
    return found


def _flat(text: str) -> str:
    return " ".join(text.casefold().split())


def _said(words: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text) is not None


def _named(name: str, text: str, user: bool, me: str, known: Callable[[str], list[int]]) -> bool:
    """Whether ``text`` (flattened) names ``name``: as written, as the user (when ``user``),
    or as a known name one of whose words it says."""
    key = _flat(name)
    if not key:
        return False
    if _said(key, text):
        return True
    if names_user(name) or key == me.casefold():
        return user
    return bool(known(name)) and any(_said(word, text) for word in key.split() if len(word) > 1)
