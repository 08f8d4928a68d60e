"""A model behind an OpenAI-compatible completions server (``--model-url``).

Standard library only (urllib), so choosing this backend loads nothing heavy.
Prompts carry memory contents, so the URL must be http(s) and requests go to it
directly: ``HTTP_PROXY`` and friends apply only when ``MEMLLM_MODEL_PROXY=1`` says so.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.request
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from memllm_cli.errors import InvalidInputError, MemllmError
from memllm_cli.runtime.model import Generation, stream


class ServerModel:
    """An OpenAI-compatible completions server (llama-server, Ollama, vLLM) on a URL you give.

    The grammar is sent as ``grammar`` (llama-server) and ``guided_grammar`` (vLLM);
    servers that ignore both still cannot inject calls: the loop parses every call
    and drops one that does not parse.
    """

    def __init__(self, url: str, model: str | None = None, *, timeout: float = 120.0) -> None:
        self.url = check_url(url).rstrip("/")
        self._opener = opener()
        self.model = model
        self.timeout = timeout
        self.name = f"{model or 'server'}@{self.url}"
        self.prompted = True
        self.adapter = None

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
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
            with self._opener.open(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # URLError and timeouts are OSErrors; bad JSON or bytes are ValueErrors.
            raise MemllmError(f"the model server at {self.url} did not answer: {exc}") from None
        try:
            choice = reply["choices"][0]
            raw = choice["text"]
            usage = reply.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens", 0))
            completion_tokens = int(usage.get("completion_tokens", 0))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            raise MemllmError(f"the model server at {self.url} sent no completion") from None
        if not isinstance(raw, str):
            raise MemllmError(f"the model server at {self.url} sent no completion")
        text, stopped_by, _ = stream([raw], stop, on_text)
        return Generation(
            text,
            stopped_by,
            "stop"
            if stopped_by
            else ("length" if choice.get("finish_reason") == "length" else "end"),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            seconds=time.perf_counter() - started,
        )


PROXY_ENV = "MEMLLM_MODEL_PROXY"


def check_url(url: str) -> str:
    """``url`` when it is an http or https URL with a host; otherwise a one-line error."""
    try:
        parts = urlsplit(url.strip())
        has_host = bool(parts.hostname)
    except ValueError:
        parts, has_host = None, False
    if parts is None or parts.scheme not in ("http", "https") or not has_host:
        raise InvalidInputError(
            f"--model-url needs an http:// or https:// URL with a host, not {url!r}"
        )
    return url.strip()


def opener() -> urllib.request.OpenerDirector:
    """Direct connections only, unless ``MEMLLM_MODEL_PROXY=1`` allows the environment's proxy.

    Only http(s) handlers: no ``file:`` or ``ftp:`` even through a redirect.
    """
    proxies = None if os.environ.get(PROXY_ENV) == "1" else {}
    director = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(proxies),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        director.add_handler(handler)
    return director
