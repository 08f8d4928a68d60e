"""Keyword retrieval for the notes baselines: Okapi BM25 over short passages (note lines).

Textbook BM25 (Robertson and Zaragoza, 2009) with Lucene's non-negative idf,
``log(1 + (N - n + 0.5) / (n + 0.5))``, ``k1 = 1.2``, ``b = 0.75``. Terms are runs
of letters and digits, case-folded, less stop words (Lucene's English set, the
question words, pronouns and auxiliaries, and single letters), with a final "s"
cut from longer words (an S-stemmer: "lives" finds "live", "works" "work").
Without stop words, a heading like "Who is where" or a table's header row
("| service | who | where |") ranks first for every who/where question.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from memllm_cli.words import WORD

_LUCENE_STOP = "a an and are as at be but by for if in into is it no not of on or such that the \
their then there these they this to was will with"
_QUESTION_STOP = "who whom whose what which where when why how do does did done has have had am \
were been i me my mine we us our ours you your he him his she her its them"
STOP_WORDS = frozenset(f"{_LUCENE_STOP} {_QUESTION_STOP}".split())


def words(text: str) -> list[str]:
    """The terms of ``text``: case-folded runs of letters and digits, stop words left out,
    a final "s" cut from words of 4 letters or more."""
    return [
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
        for w in WORD.findall(text.casefold())
        if w not in STOP_WORDS and (len(w) > 1 or w.isdigit())
    ]


class BM25:
    """An index over ``passages``; ``top(query, k)`` ranks them."""

    def __init__(self, passages: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.passages = list(passages)
        self.k1, self.b = k1, b
        self.counts = [Counter(words(p)) for p in self.passages]
        self.lengths = [sum(c.values()) for c in self.counts]
        self.mean_length = sum(self.lengths) / len(self.lengths) if self.lengths else 0.0
        frequency = Counter(w for c in self.counts for w in c)
        n = len(self.passages)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in frequency.items()}

    def scores(self, query: str) -> list[float]:
        """The BM25 score of every passage for ``query`` (a word asked twice counts twice)."""
        terms = [w for w in words(query) if w in self.idf]
        scores = []
        for counts, length in zip(self.counts, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / (self.mean_length or 1.0))
            scores.append(
                sum(
                    self.idf[w] * counts[w] * (self.k1 + 1) / (counts[w] + norm)
                    for w in terms
                    if w in counts
                )
            )
        return scores

    def top(self, query: str, k: int) -> list[str]:
        """The ``k`` best passages that share a word with ``query``, best first (ties: in order)."""
        scores = self.scores(query)
        ranked = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: -scores[i])
        return [self.passages[i] for i in ranked[:k]]
