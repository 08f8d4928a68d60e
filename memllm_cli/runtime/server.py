"""A model behind an OpenAI-compatible completions server (``--model-url``).

Standard library only (urllib), so choosing this backend loads nothing heavy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from memllm_cli.errors import MemllmError
from memllm_cli.runtime.model import Generation, stream


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
        text, stopped_by, _ = stream([raw], stop, on_text)
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
