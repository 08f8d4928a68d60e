"""Content words: what sentence retrieval searches for and answer grounding checks.

A question's content words (not its question words, pronouns or auxiliaries) are
the keyword query for the stored sentences; an answer's content words that the
question does not already hold are what the retrieved sentences must contain
before the answer is given. Both sides compare light stems, so "lives", "lived"
and "live" are one word. Pure functions; nothing here touches the store or the model.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[^\W_]+")  # letters and digits; every FTS5 tokenizer splits on the rest

_STOPWORD_TEXT = """
    a an the and or but nor of in on at to for from by with about as into onto over under
    after before since until during between than then also just still very so too only
    is are was were be been being am do does did done have has had having get got will
    would shall should can could might must what which who whom whose where when why
    how that this these those there here it its he him his she her hers they them their
    theirs we us our ours i me my mine you your yours myself yourself s t d ll ve re m
    now currently today ever again some any all each both either
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# The words by which the user names themself: a write or read naming one means the user.
FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself", "we", "us", "our", "ours"})
# A reply that says the notes do not answer: no answer at all, whatever else it says.
UNKNOWN = re.compile(
    r"\b(do|does|did|can|could)\s*(n['’]?t|not)\s+(know|say|mention|tell|state)|\bunknown\b"
    r"|\bno (information|mention|idea)\b|\bnot (mentioned|stated|given|known)\b",
    re.IGNORECASE,
)


def words(text: str) -> list[str]:
    """The words of ``text`` as written (letters and digits only), in order."""
    return WORD.findall(text)


def first_person(word: str) -> bool:
    """Whether ``word`` (as written) is "I", "my", "we" or another first-person word.

    "US" in capitals is the country ("a hit in the US"), not the user.
    """
    return word.casefold() in FIRST_PERSON and word != "US"


def speaks_first_person(text: str) -> bool:
    """Whether ``text`` says a :func:`first_person` word."""
    return any(first_person(w) for w in words(text))


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry content, casefolded, in order, each once."""
    found = (w.casefold() for w in words(text))
    return list(dict.fromkeys(w for w in found if w not in STOPWORDS))


def stem(word: str) -> str:
    """A light English stem: plural, past and -ing endings and a final e cut; digits as written."""
    w = word.casefold()
    if not w.isalpha() or len(w) <= 3:
        return w
    if w.endswith(("ies", "ied")) and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    return w[:-1] if w.endswith("e") and len(w) > 3 else w


def content_stems(text: str) -> set[str]:
    """The stems of the content words of ``text``."""
    return {stem(w) for w in content_words(text)}


def says_unknown(text: str) -> bool:
    """True when ``text`` says it does not know (or that the notes do not say)."""
    return UNKNOWN.search(text) is not None
