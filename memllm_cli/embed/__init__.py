"""Embedders for entity names and relation labels, chosen by name.

The interface (the :class:`Embedder` protocol, the vector format, read thresholds,
MiniLM's constants) lives in :mod:`memllm_cli.embed.embedder` and is re-exported
here; one module per embedder: ``hashed`` (deterministic, for tests), ``sentence``
(sentence-transformers, the reference) and ``llama`` (the same MiniLM through
llama.cpp). :func:`get_embedder` imports only the one chosen, and none imports
anything heavy until it embeds.
"""

from __future__ import annotations

from memllm_cli.embed.embedder import (
    MINILM_ID,
    MINILM_PACKAGE,
    MINILM_THRESHOLDS,
    Embedder,
    ReadThresholds,
    minilm_model_dir,
    pack,
    unpack,
)
from memllm_cli.errors import MemllmError

__all__ = [
    "MINILM_ID",
    "MINILM_PACKAGE",
    "MINILM_THRESHOLDS",
    "Embedder",
    "ReadThresholds",
    "get_embedder",
    "minilm_model_dir",
    "pack",
    "unpack",
]


def get_embedder(name: str) -> Embedder:
    """The embedder called ``name`` (``minilm``, ``minilm-st`` or ``hash``).

    ``minilm`` is all-MiniLM-L6-v2 through llama.cpp when llama-cpp-python is installed
    (same vectors, fast start), else through sentence-transformers; ``minilm-st`` is
    always the sentence-transformers reference.
    """
    if name == "minilm":
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is not None:
            from memllm_cli.embed.llama import LlamaCppEmbedder

            return LlamaCppEmbedder()
        from memllm_cli.embed.sentence import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    if name == "minilm-st":
        from memllm_cli.embed.sentence import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    if name == "hash":
        from memllm_cli.embed.hashed import HashEmbedder

        return HashEmbedder()
    raise MemllmError(f"unknown embedder {name!r} (choose 'minilm', 'minilm-st' or 'hash')")
