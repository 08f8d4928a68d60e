"""``--model-url``: the same protocol through a model server (a scripted fake on loopback here).

The fake speaks each kind's wire format (server-sent events for ``/v1/completions``,
JSON lines for Ollama's ``/api/generate``, or one JSON body), records every request,
and answers the probes a kind answers. tests/test_server_llama.py runs a real
llama.cpp-compatible server with the default model.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from memllm_cli.errors import InvalidInputError, MemllmError
from memllm_cli.runtime import prompts, transport
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.model import PromptTooLongError
from memllm_cli.runtime.server import ServerModel, ServerOptions, base_url

LLAMACPP = {"/props": {"default_generation_settings": {"n_ctx": 4096}}}
VLLM = {"/version": {"version": "0.12.0"}, "/v1/models": {"data": [{"id": "smollm2"}]}}
OLLAMA = {"/api/version": {"version": "0.12.3"}, "/api/tags": {"models": [{"name": "memllm"}]}}


@dataclass
class Reply:
    """An answer other than streamed text: a status, a JSON body, headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fake:
    url: str
    replies: list[Any]  # str: text to stream; Reply; or a callable(handler)
    requests: list[dict[str, Any]]
    gets: list[str]
    routes: dict[str, Any]


def _pieces(text: str, size: int = 3) -> list[str]:
    """Text cut into small pieces, so stop strings fall across them."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@pytest.fixture
def fake(monkeypatch):
    """A model server on loopback that plays queued replies and records requests."""
    for name in ("MEMLLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    state = Fake("", [], [], [], {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state.gets.append(self.path)
            if self.path in state.routes:
                self._json(200, state.routes[self.path])
            else:
                self._json(404, {"detail": "Not Found"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            auth = self.headers.get("Authorization")
            state.requests.append({"path": self.path, "auth": auth, **body})
            reply = state.replies.pop(0)
            if callable(reply):
                reply(self)
            elif isinstance(reply, Reply):
                self._json(reply.status, reply.body, reply.headers)
            elif not body.get("stream"):
                self._json(200, {"choices": [{"text": reply, "finish_reason": "stop"}]})
            elif self.path == "/api/generate":
                lines = [{"response": p, "done": False} for p in _pieces(reply)]
                lines.append({"response": "", "done": True, "done_reason": "stop"})
                lines[-1] |= {"prompt_eval_count": 40, "eval_count": 7}
                self._send(200, "application/x-ndjson", [json.dumps(x) + "\n" for x in lines])
            else:
                events = [{"choices": [{"text": p, "finish_reason": None}]} for p in _pieces(reply)]
                events.append({"choices": [{"text": "", "finish_reason": "stop"}]})
                lines = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
                self._send(200, "text/event-stream", lines)

        def _json(self, status, payload, headers=None):
            self._send(status, "application/json", [json.dumps(payload)], headers)

        def _send(self, status, kind, parts, headers=None):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            try:
                for part in parts:
                    self.wfile.write(part.encode())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading at a stop string

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    yield state
    httpd.shutdown()


def server(fake: Fake, kind: str = "auto", **options: Any) -> ServerModel:
    model = ServerModel(fake.url, options.pop("model", None), ServerOptions(kind=kind, **options))
    model.transport.sleep = lambda seconds: None  # retries, without the waiting
    return model


def seeded(store):
    with store.batch("seed", "seed"):
        store.add_fact("Ingrid Solberg", "residence", "Trondheim")
    return store


# -- each kind's request ------------------------------------------------------------------------


def test_llamacpp_read_loop_streams_and_sends_the_grammar(store, fake):
    fake.routes |= LLAMACPP
    fake.replies += ["({", "MEM_READ(Ingrid Solberg>>residence>>)-->", "She lives in Trondheim."]
    shown: list[str] = []
    session = Session(seeded(store), server(fake, served_adapter=True), on_text=shown.append)
    answer = session.ask("Where does Ingrid Solberg live?")
    assert answer.text == "She lives in Trondheim." and answer.facts_used == [1]
    assert "".join(shown) == "She lives in Trondheim."
    first, call, last = fake.requests
    assert first["path"] == "/v1/completions" and first["stream"] is True
    assert first["temperature"] == 0.0 and first["repeat_penalty"] == 1.0
    assert "stop" not in first  # stop strings are found here: the server would not say which
    assert "grammar" not in first and "MEM_READ(" in call["grammar"]
    assert last["prompt"].endswith("-->Trondheim})")
    assert fake.gets == ["/props"]  # probed once, then known


def test_a_stop_string_across_pieces_ends_the_generation_here(fake):
    fake.routes |= LLAMACPP
    fake.replies.append("Let me look ({MEM_READ(x")
    gen = server(fake).generate("p", max_tokens=50, stop=("({", prompts.IM_END))
    assert (gen.text, gen.stopped_by, gen.finish) == ("Let me look ", "({", "stop")


def test_served_adapter_sends_the_adapters_prompts_and_prompted_the_few_shot_ones(store, fake):
    fake.routes |= LLAMACPP
    fake.replies += ["I do not know.", "I do not know."]
    Session(store, server(fake, served_adapter=True), memory=False).ask("Who?")
    Session(store, server(fake), memory=False).ask("Who?")
    adapter, prompted = (r["prompt"] for r in fake.requests)
    assert adapter == prompts.read_prompt("Who?", prompted=False)
    assert prompted == prompts.read_prompt("Who?", prompted=True)
    assert prompts.ADAPTER_READ_SYSTEM in adapter and "Ola Nordmann" not in adapter
    assert "Ola Nordmann" in prompted  # the few-shot examples


def test_vllm_gets_structured_outputs_and_the_model_it_lists(fake):
    fake.routes |= VLLM
    fake.replies.append("MEM_READ(a>>b>>)-->")
    server(fake).generate("p", max_tokens=20, grammar='root ::= "x"')
    (request,) = fake.requests
    assert request["structured_outputs"] == {"grammar": 'root ::= "x"'}
    assert "grammar" not in request and "guided_grammar" not in request
    assert request["model"] == "smollm2" and request["repetition_penalty"] == 1.0


def test_a_grammar_vllm_refuses_is_dropped_and_calls_are_parsed_instead(store, fake):
    fake.routes |= VLLM
    refusal = Reply(400, {"error": {"message": "Invalid grammar: unexpected token"}})
    fake.replies += [refusal, "MEM_WRITE-->Eve>>owner>>Bank})", "I do not know."]
    model = server(fake, kind="vllm")
    answer = Session(store, model, memory=True).ask("Who owns the bank?", fallback=False)
    assert model.grammar_dropped and answer.parse_failures == 1 and store.count_facts() == 0
    assert "structured_outputs" in fake.requests[0]
    assert "structured_outputs" not in fake.requests[1]


def test_ollama_gets_the_raw_prompt_on_its_native_api(fake):
    fake.routes |= OLLAMA
    fake.replies.append("Trondheim.")
    gen = server(fake).generate("<|im_start|>user\nq", max_tokens=30, stop=(prompts.IM_END,))
    (request,) = fake.requests
    assert request["path"] == "/api/generate" and request["model"] == "memllm"
    assert request["raw"] is True and request["prompt"] == "<|im_start|>user\nq"
    options = request["options"]
    assert options["temperature"] == 0.0 and options["num_predict"] == 30
    assert options["repeat_penalty"] == 1.0 and options["num_ctx"] == 4096
    assert "grammar" not in request and "format" not in request  # it takes JSON schemas only
    assert (gen.text, gen.finish, gen.prompt_tokens, gen.completion_tokens) == (
        "Trondheim.",
        "end",
        40,
        7,
    )


def test_an_ollama_with_several_models_wants_one_named(fake):
    fake.routes |= OLLAMA | {"/api/tags": {"models": [{"name": "a"}, {"name": "b"}]}}
    with pytest.raises(MemllmError, match=r"several models \(a, b\): choose with --model-name"):
        server(fake).generate("p", max_tokens=5)
    fake.replies.append("ok")
    assert server(fake, model="b").generate("p", max_tokens=5).text == "ok"
    assert fake.requests[0]["model"] == "b"


def test_an_openai_like_server_gets_no_grammar_and_cannot_inject(store, fake):
    fake.replies += ["MEM_WRITE-->Eve>>owner>>Bank})", "I do not know."]
    answer = Session(store, server(fake, kind="openai")).ask("Who owns the bank?")
    assert answer.parse_failures == 1 and answer.text == "I do not know."
    assert store.count_facts() == 0
    assert not any("grammar" in r or "structured_outputs" in r for r in fake.requests)


@pytest.mark.parametrize(
    ("routes", "kind"),
    [
        (LLAMACPP, "llamacpp"),
        (OLLAMA, "ollama"),
        (VLLM, "vllm"),
        ({"/openapi.json": {"info": {"title": "🦙 llama.cpp Python API"}}}, "llamacpp"),
        ({"/v1/models": {"data": []}}, "openai"),
    ],
)
def test_auto_finds_the_kind_from_what_the_server_answers(fake, routes, kind):
    fake.routes |= routes
    assert server(fake).kind == kind


def test_a_server_that_does_not_stream_is_read_whole(store, fake):
    def whole(handler):
        choice = {"text": "She lives in Trondheim.", "finish_reason": "length"}
        handler._json(200, {"choices": [choice], "usage": {"prompt_tokens": 9}})

    fake.replies.append(whole)
    gen = server(fake, kind="llamacpp").generate("p", max_tokens=5)
    assert (gen.text, gen.finish, gen.prompt_tokens) == ("She lives in Trondheim.", "length", 9)


@pytest.mark.parametrize(
    "url",
    ["http://h:8080", "http://h:8080/", "http://h:8080/v1", "http://h:8080/v1/completions"],
)
def test_the_url_may_name_the_root_v1_or_the_endpoint(url):
    assert base_url(url) == "http://h:8080"


# -- keys, retries, timeouts, errors ------------------------------------------------------------


def test_the_api_key_is_sent_as_a_bearer_token(fake):
    fake.routes |= LLAMACPP
    fake.replies.append("ok")
    server(fake, api_key="sk-test").generate("p", max_tokens=5)
    assert fake.requests[0]["auth"] == "Bearer sk-test"


def test_a_refused_key_is_a_clear_error_that_does_not_show_it(fake):
    fake.routes |= LLAMACPP
    fake.replies.append(Reply(401, {"error": {"message": "Invalid API key"}}))
    with pytest.raises(MemllmError, match=r"refused the request \(HTTP 401\)") as caught:
        server(fake, api_key="sk-secret").generate("p", max_tokens=5)
    assert "sk-secret" not in str(caught.value) and len(fake.requests) == 1  # not retried


def test_5xx_and_429_are_retried_with_backoff(fake):
    fake.routes |= LLAMACPP
    fake.replies += [Reply(503), Reply(429, {}, {"Retry-After": "7"}), "ok"]
    model = server(fake)
    waits: list[float] = []
    model.transport.sleep = waits.append
    assert model.generate("p", max_tokens=5).text == "ok"
    assert len(fake.requests) == 3 and waits == [0.5, 7.0]


def test_retries_give_up_with_the_servers_last_answer(fake):
    fake.routes |= LLAMACPP
    fake.replies += [Reply(500, {"error": "out of memory"})] * 4
    with pytest.raises(MemllmError, match="answered HTTP 500: out of memory"):
        server(fake).generate("p", max_tokens=5)
    assert len(fake.requests) == 4  # the first try and 3 retries


def test_unreachable_server_is_a_clear_error(store):
    model = ServerModel("http://127.0.0.1:9", options=ServerOptions(kind="llamacpp", retries=1))
    waits: list[float] = []
    model.transport.sleep = waits.append
    with pytest.raises(MemllmError, match="did not answer"):
        Session(store, model).ask("q")
    assert waits == [0.5]


def test_a_slow_server_times_out_with_a_clear_error(fake):
    fake.routes |= LLAMACPP
    release = threading.Event()
    fake.replies.append(lambda handler: release.wait(10))
    try:
        with pytest.raises(MemllmError, match=r"did not answer within 1 s \(--timeout"):
            server(fake, timeout=1.0, retries=0).generate("p", max_tokens=5)
    finally:
        release.set()


def test_a_prompt_longer_than_the_servers_context_can_be_skipped(fake):
    fake.routes |= LLAMACPP
    message = "This model's maximum context length is 4096 tokens. However, you requested 5000"
    fake.replies.append(Reply(400, {"error": {"message": message}}))
    with pytest.raises(PromptTooLongError, match="does not fit the server's context"):
        server(fake).generate("p", max_tokens=5)


def test_an_error_in_the_stream_is_a_clear_error(fake):
    def failing(handler):
        handler._send(200, "text/event-stream", ['data: {"error": {"message": "slot busy"}}\n\n'])

    fake.routes |= LLAMACPP
    fake.replies.append(failing)
    with pytest.raises(MemllmError, match="failed: slot busy"):
        server(fake).generate("p", max_tokens=5)


def test_a_redirect_is_not_followed(fake):
    fake.routes |= LLAMACPP
    fake.replies.append(Reply(307, {}, {"Location": "http://user:pw@elsewhere:1/v1/completions"}))
    with pytest.raises(MemllmError, match=r"redirects to http://elsewhere:1/v1/completions"):
        server(fake).generate("p", max_tokens=5)


def test_a_completion_that_is_not_text_is_a_clear_error(store, fake):
    fake.replies.append(Reply(200, {"choices": [{"text": ["not", "text"]}]}))
    with pytest.raises(MemllmError, match="sent no completion"):
        Session(store, server(fake, kind="llamacpp")).ask("Who?")


@pytest.mark.parametrize(
    "url", ["notaurl", "file:///etc/passwd", "ftp://host/x", "http://", "http:///v1", "http://[::1"]
)
def test_only_http_urls_with_a_host_are_accepted(url):
    with pytest.raises(InvalidInputError, match="http:// or https://"):
        ServerModel(url)


def test_an_unknown_kind_is_refused():
    with pytest.raises(InvalidInputError, match="--server-kind must be one of"):
        ServerModel("http://127.0.0.1:9", options=ServerOptions(kind="tgi"))


# -- proxies ------------------------------------------------------------------------------------


@pytest.fixture
def dead_proxy(monkeypatch):
    """Every proxy variable points at a port where nothing listens."""
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen's cached opener
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")


def test_the_model_server_is_reached_directly_not_through_a_proxy(store, fake, dead_proxy):
    fake.replies.append("I do not know.")
    answer = Session(store, server(fake, kind="llamacpp")).ask("Who?")
    assert answer.text == "I do not know." and len(fake.requests) == 1


def test_the_proxy_is_used_only_when_asked(store, fake, dead_proxy, monkeypatch):
    monkeypatch.setenv("MEMLLM_MODEL_PROXY", "1")
    fake.replies.append("I do not know.")
    with pytest.raises(MemllmError, match="did not answer"):
        Session(store, server(fake, kind="llamacpp", timeout=2)).ask("Who?")
    assert fake.requests == []


# -- the command line ---------------------------------------------------------------------------


def test_ask_through_a_server_with_the_key_from_the_environment(cli, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    fake.routes |= LLAMACPP
    fake.replies.append("I do not know.")
    result = cli("ask", "Who?", "--model-url", fake.url, "--served-adapter", "--no-memory")
    assert result.exit_code == 0 and result.stdout.strip() == "I do not know."
    assert fake.requests[0]["auth"] == "Bearer sk-openai"
    assert fake.requests[0]["prompt"] == prompts.read_prompt("Who?", prompted=False)
    monkeypatch.setenv("MEMLLM_API_KEY", "sk-memllm")  # memllm's own wins
    fake.replies.append("I do not know.")
    assert cli("ask", "Who?", "--model-url", fake.url, "--no-memory").exit_code == 0
    assert fake.requests[1]["auth"] == "Bearer sk-memllm"


def test_an_unreachable_server_is_one_line_and_exit_1(cli, monkeypatch):
    monkeypatch.setattr(transport, "BACKOFF_SECONDS", 0.0)
    result = cli(
        "ask",
        "Who?",
        "--model-url",
        "http://127.0.0.1:9",
        "--server-kind",
        "llamacpp",
        "--timeout",
        "2",
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the model server at http://127.0.0.1:9 did not answer")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--served-adapter"], "--served-adapter goes with --model-url"),
        (["--server-kind", "vllm"], "--server-kind goes with --model-url"),
        (["--model-url", "http://127.0.0.1:9", "--server-kind", "tgi"], "'tgi' is not one of"),
    ],
)
def test_server_options_without_a_server_are_usage_errors(cli, args, message):
    result = cli("ask", "Who?", *args)
    assert result.exit_code == 2 and message in result.stderr
