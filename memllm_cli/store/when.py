"""When a question asks about: now (the default), a year, before something, or the past.

Rules only, no SQL. :func:`when_of` reads a question's cue ("in 2021", "before
Prada", "previously", "used to"); MemLLM reads (:mod:`~memllm_cli.store.read`) then
also see superseded facts, ranked as :class:`When` says. A question without a cue
reads current facts only, as always.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_YEAR = r"((?:1[89]|2\d)\d\d)"
_IN_YEAR = re.compile(rf"\b(?:in|during|back in|as of|around|throughout)\s+{_YEAR}\b", re.I)
_BEFORE = re.compile(
    r"\bbefore\s+(?:(?:joining|moving to|working at|working for|going to|living in|"
    r"starting at|(?:she|he|they|I|you|we)\s+\w+(?:\s+(?:to|at|for|in))?)\s+)?"
    r"(?P<what>[^?!.,;]+)",
    re.I,
)
_PAST = re.compile(
    r"\b(?:previously|used to|formerly|earlier|in the past|until|originally|at first|"
    r"prior to|before|former|first)\b",
    re.I,
)


@dataclass(frozen=True)
class When:
    """The time a question asks about.

    ``start``/``end`` (ISO dates, ``end`` exclusive): facts valid at some time in
    that window. ``before``: the facts that the fact with this object superseded.
    None of them (``When()``): the past in general; superseded facts too, the
    most recently ended first. Every read about a time lists superseded facts
    before current ones: the past value is what the question is after.
    """

    start: str | None = None
    end: str | None = None
    before: str | None = None

    @property
    def window(self) -> tuple[str, str] | None:
        return (self.start, self.end) if self.start and self.end else None


def when_of(question: str) -> When | None:
    """The time ``question`` asks about, or None for the present."""
    if match := _IN_YEAR.search(question):
        year = int(match.group(1))
        return When(start=f"{year:04d}-01-01", end=f"{year + 1:04d}-01-01")
    if match := _BEFORE.search(question):
        what = match.group("what").strip()
        if re.fullmatch(_YEAR, what):  # "before 2022": the end of 2021
            return When(start=f"{int(what) - 1:04d}-12-31", end=f"{what}-01-01")
        if what:
            return When(before=what)
    if _PAST.search(question):
        return When()
    return None
