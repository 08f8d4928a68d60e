"""HTTP to a model server (``--model-url``): direct connections, an API key, timeouts, retries.

Prompts carry memory contents, so the URL must be http(s) and requests go to it
directly: ``HTTP_PROXY`` and friends apply only when ``MEMLLM_MODEL_PROXY=1`` says
so, and a redirect is never followed (it is an error that names the new URL). httpx
is imported only here, when a server model is made: a local model never loads it.
Every failure is a one-line :class:`MemllmError` that names the server, never the key.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from memllm_cli.errors import InvalidInputError, MemllmError
from memllm_cli.runtime.model import PromptTooLongError

PROXY_ENV = "MEMLLM_MODEL_PROXY"
CONNECT_SECONDS = 10.0  # to open a connection; ``timeout`` bounds every wait for data
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
BACKOFF_SECONDS = 0.5  # before the first retry, doubled for each one after
LONGEST_RETRY_AFTER = 30.0  # a server's Retry-After is honoured up to this
DETAIL_CHARS = 300  # of an error body, quoted in the message


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


def shown(url: str) -> str:
    """``url`` as messages and reports show it: without a user or password in it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class Transport:
    """One server's HTTP client: JSON probes, and streamed POSTs retried while nothing was read.

    A connection error, a timeout, 429 and 5xx are retried ``retries`` times with a
    doubling backoff (or the server's Retry-After); nothing is retried once a
    response has begun to stream, since its text may already be on the screen.
    """

    def __init__(self, base: str, *, api_key: str | None, timeout: float, retries: int = 3) -> None:
        import httpx

        self._httpx = httpx
        self.base = base
        self.where = f"the model server at {shown(base)}"
        self.timeout = timeout
        self.retries = retries
        self.sleep: Callable[[float], None] = time.sleep
        self.has_key = bool(api_key)
        self.client = httpx.Client(
            trust_env=os.environ.get(PROXY_ENV) == "1",
            verify=_verify(),
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_SECONDS)),
            follow_redirects=False,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
        )

    def get_json(self, path: str) -> Any | None:
        """The JSON a GET of ``path`` returns, or None for any other answer (a probe).

        A server that cannot be reached is an error here already.
        """
        response = self._send("GET", path, None)
        try:
            if response.status_code != 200:
                return None
            return json.loads(response.read())
        except (ValueError, self._httpx.HTTPError):
            return None
        finally:
            response.close()

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST ``body`` and yield each JSON object the answer holds, as it arrives.

        Server-sent events (``data: {...}`` up to ``data: [DONE]``), JSON lines, or
        one JSON body from a server that does not stream. Closing the iterator
        closes the connection, which is how generation stops at a stop string.
        """
        response = self._send("POST", path, body)
        if response.status_code >= 300:
            raise self._refusal(path, response)
        kind = response.headers.get("content-type", "")
        try:
            if "text/event-stream" in kind:
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue  # comments, event names, blank separators
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        return
                    yield self._object(data)
            elif "ndjson" in kind:
                for line in response.iter_lines():
                    if line.strip():
                        yield self._object(line)
            else:
                yield self._object(response.read())
        except self._httpx.TimeoutException:
            raise MemllmError(self._too_slow()) from None
        except self._httpx.HTTPError as exc:
            raise MemllmError(f"{self.where} broke off its answer: {_reason(exc)}") from None
        finally:
            response.close()

    # -- inside --------------------------------------------------------------------------------

    def _object(self, data: str | bytes) -> dict[str, Any]:
        try:
            obj = json.loads(data)
        except ValueError:
            raise MemllmError(f"{self.where} sent no completion (not JSON)") from None
        if not isinstance(obj, dict):
            raise MemllmError(f"{self.where} sent no completion")
        if obj.get("error"):
            raise MemllmError(f"{self.where} failed: {_error_text(obj)}")
        return obj

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """The response to a request, retried as the class says; its status is the caller's."""
        httpx = self._httpx
        url = self.base + path
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                request = self.client.build_request(method, url, json=body)
                response = self.client.send(request, stream=True)
            except httpx.TimeoutException:
                if last:
                    raise MemllmError(self._too_slow()) from None
                self.sleep(BACKOFF_SECONDS * 2**attempt)
                continue
            except httpx.HTTPError as exc:
                if last:
                    raise MemllmError(f"{self.where} did not answer: {_reason(exc)}") from None
                self.sleep(BACKOFF_SECONDS * 2**attempt)
                continue
            if response.status_code in RETRY_STATUS and not last:
                wait = _retry_after(response.headers.get("retry-after"))
                response.close()
                self.sleep(BACKOFF_SECONDS * 2**attempt if wait is None else wait)
                continue
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _refusal(self, path: str, response: Any) -> MemllmError:
        """The error for a status that will not change by asking again."""
        status = response.status_code
        try:
            detail = _detail(response.read())
        except self._httpx.HTTPError:
            detail = ""
        finally:
            response.close()
        if 300 <= status < 400:
            target = shown(response.headers.get("location", "")) or "elsewhere"
            return MemllmError(f"{self.where} redirects to {target}: give that URL to --model-url")
        if status in (401, 403):
            fix = (
                "the API key was not accepted"
                if self.has_key
                else "give its API key with --api-key or MEMLLM_API_KEY"
            )
            return MemllmError(f"{self.where} refused the request (HTTP {status}): {fix}")
        if status == 404:
            return MemllmError(
                f"{self.where} has no {path} (HTTP 404{': ' + detail if detail else ''}); "
                "is --server-kind right?"
            )
        if status == 400 and "context" in detail.casefold():
            return PromptTooLongError(f"the prompt does not fit the server's context: {detail}")
        return MemllmError(f"{self.where} answered HTTP {status}: {detail or 'no detail'}")

    def _too_slow(self) -> str:
        return f"{self.where} did not answer within {self.timeout:g} s (--timeout sets the wait)"


def _verify() -> Any:
    """TLS verification: the default, or ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set.

    httpx reads those only with ``trust_env``, which also brings the proxy variables in.
    """
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if not (cafile or capath):
        return True
    import ssl

    return ssl.create_default_context(cafile=cafile or None, capath=capath or None)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header in seconds (a date is not worth parsing here)."""
    try:
        return min(max(float(value or ""), 0.0), LONGEST_RETRY_AFTER)
    except ValueError:
        return None


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _error_text(obj: dict[str, Any]) -> str:
    """The message of an OpenAI-style ``{"error": {"message": ...}}`` or a plain one."""
    error = obj.get("error")
    if isinstance(error, dict):
        error = error.get("message") or error
    return str(error)[:DETAIL_CHARS]


def _detail(body: bytes) -> str:
    """What an error body says: its ``error``, ``detail`` or ``message``, else its text."""
    text = body.decode("utf-8", "replace")
    try:
        obj = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:DETAIL_CHARS]
    if isinstance(obj, dict):
        if obj.get("error"):
            return _error_text(obj)
        for key in ("detail", "message"):
            if obj.get(key):
                return str(obj[key])[:DETAIL_CHARS]
    return " ".join(text.split())[:DETAIL_CHARS]
