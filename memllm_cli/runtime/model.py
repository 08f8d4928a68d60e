"""The model interface every backend implements, and the one meter of what generation costs.

Every backend generates text from a raw prompt, optionally under a GBNF grammar,
stopping at the first of ``stop`` and reporting which stop fired: the read loop
needs to know when the model opened a memory call. The backends (``llama``,
``server``, ``scripted``) import this module and nothing else of the runtime but
their own helpers (``server`` its HTTP ``transport``), so they cannot import each
other; ``models`` chooses one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from memllm_cli.errors import MemllmError

# The context every backend gives the model, prompt and answer together: the prompts'
# budgets (ingest's write context, the evaluation's pasted notes) are sized for it.
CONTEXT_TOKENS = 4096

# The chat template's control tokens (ChatML). Prompts (runtime/prompts.py) put them
# in and keep them out of every untrusted text, so a backend that tokenises only these
# as control tokens never turns a note's "<|im_end|>" or "<file_sep>" into one.
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
TEMPLATE_TOKENS = (IM_START, IM_END)
_TEMPLATE = re.compile("(" + "|".join(re.escape(t) for t in TEMPLATE_TOKENS) + ")")


def template_pieces(prompt: str) -> list[tuple[str, bool]]:
    """``prompt`` cut into (text, is a template token) pieces, in order, none empty."""
    return [(p, p in TEMPLATE_TOKENS) for p in _TEMPLATE.split(prompt) if p]


class PromptTooLongError(MemllmError):
    """A prompt that does not fit the model's context: the caller may skip that input and go on."""


@dataclass
class Generation:
    """One call's output. ``stopped_by`` is the stop string that ended it, if any."""

    text: str
    stopped_by: str | None = None
    finish: str = "stop"  # stop | length | end
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    new_prompt_tokens: int = 0  # prompt tokens evaluated, not reused from the KV cache


@dataclass
class Usage:
    """Totals over many generations: what an answer, a session, an evaluation or a benchmark cost.

    The one meter: whatever adds up tokens and seconds adds each :class:`Generation` here.
    """

    prompt_tokens: int = 0
    new_prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    at_limit: int = 0  # generations that ran to ``max_tokens``

    def add(self, gen: Generation) -> None:
        self.prompt_tokens += gen.prompt_tokens
        self.new_prompt_tokens += gen.new_prompt_tokens
        self.completion_tokens += gen.completion_tokens
        self.seconds += gen.seconds
        self.at_limit += gen.finish == "length"


class Model(Protocol):
    name: str
    prompted: bool
    adapter: str | None  # memllm's adapter file, if one runs over the model

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation: ...


class StopScanner:
    """Finds the first stop string in streamed text and releases only text that is safe to show.

    Text that could still turn into a stop string is held back until it cannot.
    """

    def __init__(self, stop: Sequence[str], on_text: Callable[[str], None] | None) -> None:
        self.stop = [s for s in stop if s]
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.on_text = on_text
        self.text = ""
        self.shown = 0
        self.stopped_by: str | None = None

    def feed(self, chunk: str) -> bool:
        """Add ``chunk``; True once a stop string has been seen (the text is cut before it)."""
        start = max(0, len(self.text) - self.hold)
        self.text += chunk
        hits = [(self.text.find(s, start), s) for s in self.stop]
        hits = [(i, s) for i, s in hits if i != -1]
        if hits:
            index, self.stopped_by = min(hits)
            self.text = self.text[:index]
            self._show(len(self.text))
            return True
        self._show(len(self.text) - self.hold)
        return False

    def finish(self) -> str:
        self._show(len(self.text))
        return self.text

    def _show(self, upto: int) -> None:
        if self.on_text is not None and upto > self.shown:
            self.on_text(self.text[self.shown : upto])
            self.shown = upto


def stream(
    chunks: Iterable[str], stop: Sequence[str], on_text: Callable[[str], None] | None
) -> tuple[str, str | None, bool]:
    """(text, stop that fired, ran to the end) from a stream of text chunks."""
    scanner = StopScanner(stop, on_text)
    for chunk in chunks:
        if scanner.feed(chunk):
            return scanner.finish(), scanner.stopped_by, False
    return scanner.finish(), None, True
