"""File hashing: one sha256 for ingested documents, evaluation data and model files."""

from __future__ import annotations

import hashlib
from pathlib import Path

# The sha256 of no bytes: the version a document removed from disk is stored as.
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of ``path``'s bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
