"""The scripted test model: given outputs, played back exactly, so the loops are tested exactly.

Tests and the CLI tests' fixture use it instead of weights (no llama.cpp, no server).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from memllm_cli.runtime.model import Generation, stream


@dataclass
class ScriptedModel:
    """A deterministic stand-in: each call returns the next scripted output.

    It honours ``stop`` like a real model (the text is cut at the first stop string)
    and records every prompt and grammar, so tests can check exactly what the loop did.
    """

    outputs: list[str]
    name: str = "scripted"
    prompted: bool = False
    adapter: str | None = None
    prompts: list[str] = field(default_factory=list)
    grammars: list[str | None] = field(default_factory=list)

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        self.prompts.append(prompt)
        self.grammars.append(grammar)
        if not self.outputs:
            raise AssertionError("the scripted model ran out of outputs")
        output = self.outputs.pop(0)
        text, stopped_by, ended = stream(list(output), stop, on_text)
        return Generation(
            text, stopped_by, "end" if ended else "stop", len(prompt) // 4, len(text) // 4
        )
