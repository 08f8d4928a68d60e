"""File hashing: one sha256 for ingested documents, evaluation data and model files."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

HASH_CACHE = "sha256.json"  # in <home>/cache: model files' hashes by path, size and mtime
# The sha256 of no bytes: the version a document removed from disk is stored as. Written
# out, not computed: the store imports it, and hashlib would add 3 ms to every start.
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def file_sha256(path: Path) -> str:
    """The sha256 of ``path``'s bytes, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def cached_file_sha256(path: Path, cache: Path | None = None) -> str:
    """``file_sha256(path)``, remembered in ``cache`` (default ``<home>/cache/sha256.json``)
    under the file's resolved path, size and modification time.

    For model files checked on every load: the default base model (98 MB) costs about
    0.07 s to hash here and more on a laptop. A cache that cannot be read or written is
    ignored: the hash is then computed every time.
    """
    if cache is None:
        from memllm_cli.config import home_dir

        cache = home_dir() / "cache" / HASH_CACHE
    resolved = path.resolve()
    stat = resolved.stat()
    key = str(resolved)
    stamp = [stat.st_size, stat.st_mtime_ns]
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp and "sha256" in entry:
        return str(entry["sha256"])
    digest = file_sha256(resolved)
    known[key] = {"stamp": stamp, "sha256": digest}
    with contextlib.suppress(OSError):
        _write_atomically(cache, json.dumps(known, indent=1) + "\n")
    return digest


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
