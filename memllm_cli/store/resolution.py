"""Write-time name resolution: which full name a short name written in a document means.

"Tove Lindahl teaches in Umeå. Tove was born in Luleå." should put both facts on
one entity. A *short name* is one capitalised word ("Tove", "Lindahl") or a title
and a surname ("Dr. Rao"); a *full name* is two to four capitalised words, after
an optional title ("Tove Lindahl", "Dr. Anjali Rao"). A short name may mean a
full name whose first or last word it is (a title and surname: the last word).

This module holds the rules and the :class:`NameScope` of one document (the names
it has named so far); it has no SQL. :meth:`memllm_cli.store.names.Names.resolve`
applies the rules to the memory, in this order:

0. A name the document links to a note (``[[Ingrid Solberg|Ingrid]]``, or an alias
   its front matter declares) means that note's entity, whatever its form.
1. A name that is not short, or is protected (the user's own), stays as written; so
   does one the sentence places after "in" or "near" ("born in Florence": a place,
   whatever "Florence Welch" the document named).
2. A short name this document already stored as written stays so (consistency).
3. A short name that is an entity's canonical name in memory stays that entity
   ("Brighton" stays Brighton once known, whatever "Brighton Juniors" says).
4. The document: the full names it named earlier or in the same sentence (in its
   text or in the facts written from it) that the short name can mean; exactly one
   -> that one; several -> stays as written (ambiguous, and the memory is not asked).
5. An alias in memory: stays (it already names its entity).
6. The memory: entities with a full name the short name can mean; exactly one ->
   that one; otherwise stays as written.

A resolved short name becomes an alias of the entity, unless it already names one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from memllm_cli.store.text import norm

_TITLES = "dr doctor prof professor mr mrs ms miss mx sir dame lady lord rev fr"
# Capitalised words that start sentences or name times, never a part of a person's name: a
# run of capitalised words in text is cut at them ("Yesterday Tove Lindahl" -> "Tove Lindahl").
# Months that are also given names (April, May, June, August) are not among them.
_NOT_NAMES = """a an the this that these those my our your his her their its we i he she they it
    you in on at by for from with to of and but or if when while after before since then so as
    yesterday today tomorrow tonight dear hi hello met called lunch dinner breakfast also
    monday tuesday wednesday thursday friday saturday sunday january february march july
    september october november december"""
TITLES = frozenset(_TITLES.split())
NOT_NAMES = frozenset(_NOT_NAMES.split())
MAX_FULL = 4  # words in a full name, after its title
_CHUNK = re.compile(r"\S+")
_PLACED = re.compile(r"\b(?:in|near)\s+(\S+)", re.IGNORECASE)
_EDGE = "\"'“”‘’()[]{}<>«»*_`,.;:!?"


def _title(word: str) -> bool:
    return word.rstrip(".").casefold() in TITLES


def _capitalised(word: str) -> bool:
    """A word that can be part of a name: a capital, then letters, ' or -; not an acronym."""
    return (
        len(word) >= 2
        and word[0].isupper()
        and not word.isupper()
        and all(c.isalpha() or c in "'’-" for c in word)
    )


@dataclass(frozen=True)
class ShortName:
    """The word a short name is matched by, and whether it must be a surname (after a title)."""

    word: str
    surname: bool = False


def short_name(name: str) -> ShortName | None:
    """``name`` as a short name ("Tove", "Dr. Rao"), or None if it is not one."""
    words = name.split()
    if len(words) == 1 and _capitalised(words[0]) and words[0].casefold() not in NOT_NAMES:
        return ShortName(norm(words[0]))
    if len(words) == 2 and _title(words[0]) and _capitalised(words[1]):
        return ShortName(norm(words[1]), surname=True)
    return None


def read_short_name(name: str) -> ShortName | None:
    """``name`` as a short name in a read query: one word in any case ("tove"), or a title
    and a surname; a word with no letter ("2025") is none."""
    words = name.split()
    titled = len(words) == 2 and _title(words[0])
    word = words[-1].strip(_EDGE) if len(words) == 1 or titled else ""
    if not any(c.isalpha() for c in word):
        return None
    return ShortName(norm(word), surname=titled)


def untitled(name: str) -> str:
    """``name`` without a leading title ("Dr. Anjali Rao" -> "Anjali Rao")."""
    words = name.split()
    return " ".join(words[1:]) if len(words) > 1 and _title(words[0]) else name


def full_words(name: str) -> list[str] | None:
    """The normalised words of a full name (title dropped), or None if it is not one."""
    words = name.split()
    if words and _title(words[0]):
        words = words[1:]
    if not 2 <= len(words) <= MAX_FULL or not all(_capitalised(w) for w in words):
        return None
    return [norm(w) for w in words]


def means(short: ShortName, full: str) -> bool:
    """Whether the short name can mean the full name: its first or last word (a surname: last)."""
    words = full_words(full)
    if words is None:
        return False
    return words[-1] == short.word or (not short.surname and words[0] == short.word)


def text_names(text: str) -> list[str]:
    """Full names in ``text``: runs of capitalised words (after an optional title), as written.

    Punctuation ends a run ("Lindahl, Tove" are two), and so do the words of ``NOT_NAMES``.
    """
    found: list[str] = []
    run: list[str] = []

    def close() -> None:
        if full_words(" ".join(run)) is not None:
            found.append(" ".join(run))
        run.clear()

    for chunk in _CHUNK.findall(text):
        word = chunk.strip(_EDGE)
        if chunk[0] in _EDGE:
            close()
        if _title(word):
            close()
            run.append(word + "." if chunk.rstrip(_EDGE.replace(".", "")).endswith(".") else word)
        elif _capitalised(word) and word.casefold() not in NOT_NAMES:
            run.append(word)
            if chunk[-1] in _EDGE:
                close()
        else:
            close()
    close()
    return found


@dataclass
class NameScope:
    """The names one document (or one conversation) has named so far, for :meth:`Names.resolve`.

    ``keep`` holds names never resolved (the user's own entity); ``links`` the names
    the document itself says the meaning of (norm -> the entity name; see
    :meth:`memllm_cli.ingest.vault.Note.names`). Feed each sentence to :meth:`read`
    before resolving the names written from it.
    """

    keep: frozenset[str] = frozenset()
    links: dict[str, str] = field(default_factory=dict)
    named: dict[str, str] = field(default_factory=dict)  # norm -> full name, in order
    kept: set[str] = field(default_factory=set)  # norms of short names stored as written
    places: set[str] = field(default_factory=set)  # norms of words after "in" in this sentence

    def __post_init__(self) -> None:
        self.keep = frozenset(norm(name) for name in self.keep)

    def read(self, text: str) -> None:
        """Note the full names a sentence of the document names, and what it places."""
        self.places = {norm(word.strip(_EDGE)) for word in _PLACED.findall(text)}
        for name in text_names(text):
            self.named.setdefault(norm(name), name)

    def wrote(self, written: str, stored: str) -> None:
        """Note that the name ``written`` was stored as (the entity named) ``stored``."""
        if full_words(stored) is not None:
            self.named.setdefault(norm(stored), stored)
        if short_name(written) is not None and norm(written) == norm(stored):
            self.kept.add(norm(written))

    def candidates(self, short: ShortName) -> list[str]:
        """The full names named so far that ``short`` can mean, in order."""
        return [name for name in self.named.values() if means(short, name)]
