"""Where the memory lives and which embedder it uses: environment and defaults in one place."""

from __future__ import annotations

import os
from pathlib import Path

DB_FILENAME = "memory.db"


def home_dir() -> Path:
    """``MEMLLM_HOME`` when set, else the platform's user data directory."""
    env = os.environ.get("MEMLLM_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("memllm", appauthor=False))


def default_db_path() -> Path:
    return home_dir() / DB_FILENAME


def embedder_name() -> str:
    """``MEMLLM_EMBEDDER``: ``minilm`` (the default: llama.cpp when installed), ``minilm-st``
    (the sentence-transformers reference) or ``hash`` (deterministic, for tests)."""
    return os.environ.get("MEMLLM_EMBEDDER", "minilm")
