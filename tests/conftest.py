"""Every test gets its own MEMLLM_HOME, settings file and the deterministic hash embedder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from memllm_cli.cli import app
from memllm_cli.config_file import KEYS
from memllm_cli.datasets.redocred import load
from memllm_cli.embed.hashed import HashEmbedder
from memllm_cli.runtime import models
from memllm_cli.runtime.scripted import ScriptedModel
from memllm_cli.store import Store

# Hypothesis draws the same examples on every run, so a failure is never a fluke of the seed;
# known edge cases are pinned with @example. HYPOTHESIS_PROFILE=explore searches afresh.
settings.register_profile("memllm", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "memllm"))


SETTING_ENV = (
    "MEMLLM_PROFILE",
    "MEMLLM_API_KEY",
    "OPENAI_API_KEY",
    *(key.env for key in KEYS.values() if key.env),
)


@pytest.fixture(autouse=True)
def memllm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MEMLLM_HOME", str(home))
    # The settings a user's shell or settings file holds never reach a test.
    monkeypatch.setenv("MEMLLM_CONFIG", str(tmp_path / "config" / "config.toml"))
    for name in SETTING_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEMLLM_EMBEDDER", "hash")
    monkeypatch.setenv("MEMLLM_DEBUG", "1")  # a bug's traceback fails the test that meets it
    return home


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "memory.db") as opened:
        yield opened


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def scripted_model(monkeypatch):
    """(outputs, loaded): every load_model() in the CLI gets a model that plays ``outputs``."""
    outputs: list[str] = []
    loaded: list[ScriptedModel] = []

    def load(path=None, url=None, *, model_name=None, server=None, threads=None, gpu_layers=None):
        model = ScriptedModel(outputs)
        model.options = {"threads": threads, "gpu_layers": gpu_layers}
        loaded.append(model)
        return model

    monkeypatch.setattr(models, "load_model", load)
    return outputs, loaded


@pytest.fixture
def cli():
    """Run ``memllm ARGS`` in-process; returns the click Result (stdout and stderr apart)."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke


# A one-document Re-DocRED-format split, for the training data and evaluation tests.
DOC = {
    "title": "Ola Nordmann",
    "sents": [
        ["Ola", "Nordmann", "(", "born", "1960", "in", "Tromsø", ")", "is", "a", "geologist", "."],
        ["Nordmann", "works", "for", "Equinor", "."],
        ["He", "likes", "rain", "."],
    ],
    "vertexSet": [
        [
            {"name": "Ola Nordmann", "pos": [0, 2], "sent_id": 0, "type": "PER"},
            {"name": "Nordmann", "pos": [0, 1], "sent_id": 1, "type": "PER"},
        ],
        [{"name": "Tromsø", "pos": [6, 7], "sent_id": 0, "type": "LOC"}],
        [{"name": "Equinor", "pos": [3, 4], "sent_id": 1, "type": "ORG"}],
    ],
    "labels": [
        {"h": 0, "t": 1, "r": "P19", "evidence": [0]},
        {"h": 0, "t": 2, "r": "P108", "evidence": [1]},
    ],
}


@pytest.fixture
def doc(tmp_path):
    """The Re-DocRED-format document above, read through the project's own reader."""
    path = tmp_path / "split.json"
    path.write_text(json.dumps([DOC]))
    return next(load(path))
