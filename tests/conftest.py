"""Every test gets its own MEMLLM_HOME and the deterministic hash embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memllm_cli.cli import app
from memllm_cli.embed import HashEmbedder
from memllm_cli.runtime import models
from memllm_cli.runtime.models import ScriptedModel
from memllm_cli.store import Store


@pytest.fixture(autouse=True)
def memllm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MEMLLM_HOME", str(home))
    monkeypatch.setenv("MEMLLM_EMBEDDER", "hash")
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

    def load(path=None, url=None, *, model_name=None):
        model = ScriptedModel(outputs)
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
