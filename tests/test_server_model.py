"""``--model-url``: the same protocol through an OpenAI-compatible server (a local fake here)."""

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from memllm_cli.errors import InvalidInputError, MemllmError
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.server import ServerModel


@pytest.fixture
def server():
    """A completions endpoint on loopback that plays queued replies and records requests."""
    replies: list[str] = []
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, **body})
            text = replies.pop(0)
            choice = {"text": text, "finish_reason": "stop"}
            usage = {"prompt_tokens": 10, "completion_tokens": 3}
            payload = json.dumps({"choices": [choice], "usage": usage})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload.encode())

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", replies, requests
    httpd.shutdown()


def test_read_loop_over_a_server(store, server):
    url, replies, requests = server
    with store.batch("seed", "seed"):
        store.add_fact("Ingrid Solberg", "residence", "Trondheim")
    replies += ["MEM_READ(Ingrid Solberg>>residence>>)-->", "She lives in Trondheim."]
    answer = Session(store, ServerModel(url, "smollm2")).ask("Where does Ingrid Solberg live?")
    assert answer.text == "She lives in Trondheim." and answer.facts_used == [1]
    assert requests[0]["path"] == "/v1/completions" and requests[0]["model"] == "smollm2"
    assert "MEM_READ(" in requests[0]["grammar"] and requests[0]["temperature"] == 0.0
    assert requests[1]["prompt"].endswith("-->Trondheim})")


def test_server_ignoring_the_grammar_cannot_inject(store, server):
    url, replies, _ = server
    replies += ["MEM_WRITE-->Eve>>owner>>Bank})", "I do not know."]
    answer = Session(store, ServerModel(url)).ask("Who owns the bank?")
    assert answer.parse_failures == 1 and answer.text == "I do not know."
    assert store.count_facts() == 0


def test_unreachable_server_is_a_clear_error(store):
    with pytest.raises(MemllmError, match="did not answer"):
        Session(store, ServerModel("http://127.0.0.1:9", timeout=2)).ask("q")


@pytest.mark.parametrize(
    "url", ["notaurl", "file:///etc/passwd", "ftp://host/x", "http://", "http:///v1", "http://[::1"]
)
def test_only_http_urls_with_a_host_are_accepted(url):
    with pytest.raises(InvalidInputError, match="http:// or https://"):
        ServerModel(url)


@pytest.fixture
def dead_proxy(monkeypatch):
    """Every proxy variable points at a port where nothing listens."""
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen's cached opener
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")


def test_the_model_server_is_reached_directly_not_through_a_proxy(store, server, dead_proxy):
    url, replies, requests = server
    replies.append("I do not know.")
    answer = Session(store, ServerModel(url)).ask("Who?")
    assert answer.text == "I do not know." and len(requests) == 1


def test_the_proxy_is_used_only_when_asked(store, server, dead_proxy, monkeypatch):
    url, replies, requests = server
    monkeypatch.setenv("MEMLLM_MODEL_PROXY", "1")
    replies.append("I do not know.")
    with pytest.raises(MemllmError, match="did not answer"):
        Session(store, ServerModel(url, timeout=2)).ask("Who?")
    assert requests == []


def test_a_completion_that_is_not_text_is_a_clear_error(store, server):
    url, replies, _ = server
    replies.append(["not", "an", "object"])
    with pytest.raises(MemllmError, match="sent no completion"):
        Session(store, ServerModel(url)).ask("Who?")
