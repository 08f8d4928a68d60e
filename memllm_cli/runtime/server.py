"""A model behind a completions server (``--model-url``): llama.cpp, vLLM, Ollama or OpenAI-like.

Each server kind gets the request it understands, the grammar included where it can
take one: llama.cpp's server (and llama-cpp-python's) reads GBNF from ``grammar``,
vLLM from ``structured_outputs.grammar`` (``guided_grammar`` went in 0.12); Ollama's
native ``/api/generate`` is sent the raw prompt, since its ``format`` takes only JSON
schemas, and an OpenAI-like server gets no grammar. Where nothing constrains the
model, the loop still parses every call and drops (and counts) one that does not
parse. ``auto`` probes the server once, on first use.

Decoding is greedy, as in-process: temperature 0 and no repeat penalty. Stop strings
are found here in the streamed text rather than by the server, which would not say
which one fired (the read loop needs to know); the connection is closed at the first.
With ``served_adapter`` the server runs the default model with memllm's adapter, so
prompts are the adapter's (``prompted`` is False), exactly as in-process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from memllm_cli.errors import InvalidInputError, MemllmError
from memllm_cli.runtime.model import CONTEXT_TOKENS, Generation, StopScanner
from memllm_cli.runtime.transport import Transport, check_url, shown

KINDS = ("auto", "llamacpp", "vllm", "ollama", "openai")
DEFAULT_TIMEOUT = 120.0  # seconds to wait for the server's next bytes


@dataclass(frozen=True)
class ServerOptions:
    """How to talk to the server: its kind, key, whether it serves our adapter, patience."""

    kind: str = "auto"
    api_key: str | None = field(default=None, repr=False)  # never in a log or a traceback
    served_adapter: bool = False
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 3


def check_kind(kind: str) -> str:
    """``kind`` when memllm knows it; otherwise a one-line error listing the kinds."""
    if kind not in KINDS:
        raise InvalidInputError(f"--server-kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def base_url(url: str) -> str:
    """The server's root: ``/v1`` and ``/v1/completions`` (or ``/completions``) cut off."""
    base = check_url(url).rstrip("/")
    for suffix in ("/completions", "/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base


@dataclass
class Chunk:
    """What one streamed object says: text, why it ended, and token counts when it has them."""

    text: str = ""
    finish: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ServerModel:
    """A model on a server at ``url``; ``model`` names it where the server serves several."""

    def __init__(self, url: str, model: str | None = None, options: ServerOptions | None = None):
        self.options = options or ServerOptions()
        check_kind(self.options.kind)
        self.url = base_url(url)
        self.transport = Transport(
            self.url,
            api_key=self.options.api_key,
            timeout=self.options.timeout,
            retries=self.options.retries,
        )
        self.model = model
        self.name = f"{model or 'server'}@{shown(self.url)}"
        self.prompted = not self.options.served_adapter
        self.adapter = "served" if self.options.served_adapter else None  # not checked here
        self._kind = None if self.options.kind == "auto" else self.options.kind
        self._model_known = model is not None
        self.grammar_dropped = False  # vLLM refused a grammar once: calls are parsed, not forced

    @property
    def kind(self) -> str:
        """The server's kind: as given, or found by probing it once."""
        if self._kind is None:
            self._kind = detect_kind(self.transport)
        return self._kind

    def describe(self) -> dict[str, Any]:
        """The server as a report records it: no key, no password in the URL."""
        return {
            "url": shown(self.url),
            "kind": self.kind,
            "model": self._model_name(),
            "served_adapter": self.options.served_adapter,
        }

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        started = time.perf_counter()
        path, body = self._request(prompt, max_tokens, grammar)
        try:
            return self._stream(path, body, stop, on_text, started)
        except MemllmError as exc:
            if not (grammar and self.kind == "vllm" and "grammar" in str(exc).casefold()):
                raise
        # vLLM's grammar backend could not take this grammar: go on without one.
        self.grammar_dropped = True
        path, body = self._request(prompt, max_tokens, None)
        return self._stream(path, body, stop, on_text, started)

    # -- inside --------------------------------------------------------------------------------

    def _stream(
        self,
        path: str,
        body: dict[str, Any],
        stop: Sequence[str],
        on_text: Callable[[str], None] | None,
        started: float,
    ) -> Generation:
        read = ollama_chunk if self.kind == "ollama" else openai_chunk
        scanner = StopScanner(stop, on_text)
        pieces, finish = 0, None
        prompt_tokens = completion_tokens = None
        with closing(self.transport.stream(path, body)) as objects:
            for obj in objects:
                chunk = read(obj, self.transport.where)
                finish = chunk.finish or finish
                prompt_tokens = chunk.prompt_tokens or prompt_tokens
                completion_tokens = chunk.completion_tokens or completion_tokens
                if chunk.text:
                    pieces += 1  # about one token each, for a server that gives no counts
                    if scanner.feed(chunk.text):
                        break
        text = scanner.finish()
        outcome = "length" if finish == "length" else "end"
        return Generation(
            text,
            scanner.stopped_by,
            "stop" if scanner.stopped_by else outcome,
            prompt_tokens=prompt_tokens or 0,
            completion_tokens=completion_tokens or pieces,
            seconds=time.perf_counter() - started,
        )

    def _request(self, prompt: str, max_tokens: int, grammar: str | None) -> tuple[str, dict]:
        """(path, body) of a greedy completion in the server's own terms."""
        kind, model = self.kind, self._model_name()
        if self.grammar_dropped:
            grammar = None
        if kind == "ollama":
            options = {
                "temperature": 0.0,
                "num_predict": max_tokens,
                "repeat_penalty": 1.0,
                "seed": 0,
                "num_ctx": CONTEXT_TOKENS,
            }
            body = {"model": model, "prompt": prompt, "raw": True, "stream": True}
            return "/api/generate", body | {"options": options}
        body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "stream": True}
        body["stream_options"] = {"include_usage": True}
        if model:
            body["model"] = model
        if kind == "llamacpp":
            body |= {"repeat_penalty": 1.0, "seed": 0, "cache_prompt": True}
            if grammar:
                body["grammar"] = grammar
        elif kind == "vllm":
            body["repetition_penalty"] = 1.0
            if grammar:
                body["structured_outputs"] = {"grammar": grammar}
        return "/v1/completions", body

    def _model_name(self) -> str | None:
        """``--model-name``, or the one model the server lists (Ollama needs one named)."""
        if not self._model_known:
            self._model_known = True
            kind = self.kind
            if kind == "ollama":
                tags = self.transport.get_json("/api/tags")
                names = _names(tags, "models", "name")
                self.model = _only(names, self.transport.where, required=True)
            elif kind in ("vllm", "openai"):
                listed = self.transport.get_json("/v1/models")
                self.model = _only(_names(listed, "data", "id"), self.transport.where)
        return self.model


def detect_kind(transport: Transport) -> str:
    """What serves at ``transport``: each kind answers a cheap GET the others do not."""
    props = transport.get_json("/props")
    if isinstance(props, dict) and "default_generation_settings" in props:
        return "llamacpp"
    version = transport.get_json("/api/version")
    if isinstance(version, dict) and "version" in version:
        return "ollama"
    version = transport.get_json("/version")
    if isinstance(version, dict) and "version" in version:
        return "vllm"
    spec = transport.get_json("/openapi.json")  # llama-cpp-python's server has no /props
    info = spec.get("info") if isinstance(spec, dict) else None
    if isinstance(info, dict) and "llama.cpp" in str(info.get("title", "")):
        return "llamacpp"
    return "openai"


def openai_chunk(obj: dict[str, Any], where: str) -> Chunk:
    """A completions object, streamed or whole: ``choices[0].text`` and ``usage``."""
    chunk = Chunk()
    usage = obj.get("usage")
    if isinstance(usage, dict):
        chunk.prompt_tokens = _count(usage.get("prompt_tokens"))
        chunk.completion_tokens = _count(usage.get("completion_tokens"))
    choices = obj.get("choices")
    if choices == [] and usage is not None:
        return chunk  # the usage-only object that ends a stream
    try:
        choice = choices[0]
        text = choice["text"]
    except (KeyError, IndexError, TypeError):
        raise MemllmError(f"{where} sent no completion") from None
    if not isinstance(text, str):
        raise MemllmError(f"{where} sent no completion")
    chunk.text, chunk.finish = text, choice.get("finish_reason")
    return chunk


def ollama_chunk(obj: dict[str, Any], where: str) -> Chunk:
    """An ``/api/generate`` object: ``response``, and ``done_reason`` and counts at the end."""
    text = obj.get("response", "")
    if not isinstance(text, str):
        raise MemllmError(f"{where} sent no completion")
    chunk = Chunk(text)
    if obj.get("done"):
        chunk.finish = obj.get("done_reason")
        chunk.prompt_tokens = _count(obj.get("prompt_eval_count"))
        chunk.completion_tokens = _count(obj.get("eval_count"))
    return chunk


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _names(listing: Any, key: str, field: str) -> list[str]:
    """The model names in a listing (``/v1/models`` data ids, ``/api/tags`` model names)."""
    items = listing.get(key) if isinstance(listing, dict) else None
    if not isinstance(items, list):
        return []
    return [str(i[field]) for i in items if isinstance(i, dict) and i.get(field)]


def _only(names: list[str], where: str, *, required: bool = False) -> str | None:
    """The one model a server lists; several (or none, when one is needed) is an error."""
    if len(names) == 1:
        return names[0]
    if len(names) > 1:
        listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise MemllmError(f"{where} serves several models ({listed}): choose with --model-name")
    if required:
        raise MemllmError(f"{where} lists no model: name one with --model-name")
    return None
