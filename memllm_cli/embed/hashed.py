"""The deterministic test embedder: hashed character trigrams and words, no dependencies.

Tests and the CLI tests run on it (``MEMLLM_EMBEDDER=hash``): same vectors on every
machine, nothing to load.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from memllm_cli.embed.embedder import ReadThresholds, pack


class HashEmbedder:
    """Character-trigram and word hashing into a unit vector: similar strings get close vectors.

    Deterministic across processes and platforms (blake2b, not ``hash()``).
    """

    # Its distances are larger than MiniLM's for the same variation ("Ingrid Solbergg" is
    # 0.135 from "Ingrid Solberg" under it, 0.072 under MiniLM), so it keeps looser,
    # uncalibrated thresholds of its own. Its tau_fallback lies above its tau_relation so that
    # tests reach the fallback; measured, its label distances separate relations poorly
    # (scripts/calibration.md), so it is for tests only.
    read_thresholds = ReadThresholds(
        tau_entity=0.35, tau_relation=0.45, tau_mean=0.30, tau_fallback=0.6
    )

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
