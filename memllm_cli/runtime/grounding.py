"""Grounded writes: a written name is a span of the text, the user, or a name memory knows.

A 135M model invents objects (a country guessed for a town, "Milibrio" for Milan). The
write grammar offers only the spans of the sentence and its context (:func:`spans`), and
:func:`is_grounded` checks every written triple again, whatever backend wrote it, before
anything is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from memllm_cli.protocol import Triple
from memllm_cli.words import FIRST_PERSON

# What a model may write for the user: a first-person word, or the prompt's "user".
USER_WORDS = FIRST_PERSON | {"user", "the user"}
SPAN_WORDS = 6
MAX_SPANS = 600
_WORD = re.compile(r"[^\W_][\w'’.&-]*")


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


def is_grounded(triple: Triple, text: str, me: str, known: Callable[[str], list[int]]) -> bool:
    """Whether both names of ``triple`` are the user, word spans of ``text``, or names that
    ``known`` finds in memory and that share a word with ``text`` ("Ingrid" -> Ingrid Solberg).
    """
    folded = " ".join(text.casefold().split())

    def said(words: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(words)}(?!\w)", folded) is not None

    def named(name: str) -> bool:
        key = " ".join(name.casefold().split())
        if not key or key in USER_WORDS or key == me.casefold() or said(key):
            return bool(key)
        return bool(known(name)) and any(said(word) for word in key.split() if len(word) > 1)

    return named(triple.subject) and named(triple.object)
