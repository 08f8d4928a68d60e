"""What every evaluation shares: systems under test, metering, and scores."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memllm_cli.runtime.model import Generation, Model, Usage
from memllm_cli.store import Store
from memllm_cli.store.text import norm


@dataclass
class Metered:
    """A model that meters what it does in a :class:`Usage`: tokens, seconds, runs to the limit."""

    model: Model
    usage: Usage = field(default_factory=Usage)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def prompted(self) -> bool:
        return self.model.prompted

    def generate(self, prompt: str, **options: Any) -> Generation:
        gen = self.model.generate(prompt, **options)
        self.usage.add(gen)
        return gen

    def cost(self, items: int) -> dict[str, float]:
        """Per-item averages, for the report."""
        n, usage = max(items, 1), self.usage
        return {
            "prompt_tokens_per_item": round(usage.prompt_tokens / n, 1),
            "completion_tokens_per_item": round(usage.completion_tokens / n, 1),
            "seconds_per_item": round(usage.seconds / n, 3),
            "generations_at_token_limit": usage.at_limit,
        }


@dataclass
class System:
    """A model as evaluated: ``name`` is how the report calls it."""

    name: str
    model: Model


@dataclass
class PRF:
    """Micro-averaged counts."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: PRF) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def to_dict(self) -> dict[str, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(f, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


EXAMPLES_KEPT = 5  # items a Tally keeps for the report


@dataclass
class Tally:
    """Right answers out of items, with the items kept for inspection."""

    right: int = 0
    total: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, ok: bool, example: dict[str, Any]) -> None:
        self.right += ok
        self.total += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(example | {"ok": ok})

    def to_dict(self) -> dict[str, Any]:
        accuracy = round(self.right / self.total, 4) if self.total else 0.0
        return {
            "accuracy": accuracy,
            "right": self.right,
            "total": self.total,
            "examples": self.examples,
        }


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Answer containment, as EntityQuestions scores it: any accepted answer, normalised."""
    have = norm(text)
    return any(norm(a) and norm(a) in have for a in answers)


# What a model says when it declines: "I do not know", "I don't know", "not sure", ...
ABSTENTION = re.compile(
    r"\b(?:do not know|don't know|dont know|not sure|no idea|no information|"
    r"(?:does|do|did)(?: not|n't) (?:say|mention|state|provide|specify|contain)|"
    r"not (?:mentioned|stated|given|provided|specified)|"
    r"(?:cannot|can't|unable to) (?:answer|say|tell))\b"
)


def abstains(text: str) -> bool:
    """Whether ``text`` declines to answer ("I do not know"-style), or says nothing at all."""
    have = norm(text).replace("\u2019", "'")
    return not have.strip(" .!?") or ABSTENTION.search(have) is not None


VERDICTS = ("right", "wrong", "unanswered")


def verdict(text: str, answers: Sequence[str]) -> str:
    """right (contains an accepted answer), unanswered (an abstention), else wrong.

    An answer that hedges but names an accepted answer is right, as containment scores it.
    """
    if contains_answer(text, answers):
        return "right"
    return "unanswered" if abstains(text) else "wrong"


@contextmanager
def scratch_store() -> Iterator[Store]:
    """A fresh memory in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="memllm-eval-") as tmp:
        store = Store.open(Path(tmp) / "memory.db")
        try:
            yield store
        finally:
            store.close()


Progress = Callable[[str, int, int], None]


def no_progress(task: str, done: int, total: int) -> None:
    """The default progress callback: silent."""
