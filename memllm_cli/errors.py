"""Domain errors: what the user did or what the memory holds, never a bug.

The CLI turns every :class:`MemllmError` into one line on stderr and exit code 1.
"""

from __future__ import annotations


class MemllmError(Exception):
    """Base of every error the user can act on."""


class NotFoundError(MemllmError):
    """An id or name that the memory does not hold."""


class InvalidInputError(MemllmError):
    """Input that cannot be stored: an empty name, a malformed import line."""


class StoreError(MemllmError):
    """The memory file cannot be opened or used (not a database, read-only, missing folder)."""


class EmbeddingMismatchError(MemllmError):
    """The memory's vectors were made by another embedding model."""


class UndoConflictError(MemllmError):
    """An undo that would overwrite later changes."""


def explain(exc: BaseException) -> str | None:
    """One line for an error that bad input or a damaged file causes, or None for a bug.

    These come from the standard library or SQLite rather than from memllm's own
    checks; each has a root-cause check too, and this is the net below them.
    """
    import csv
    import sys

    if isinstance(exc, MemllmError):
        return str(exc)
    db = sys.modules.get("memllm_cli.store.db")  # loaded whenever a SQLite error is possible
    if db is not None and isinstance(exc, db.DatabaseError):
        return (
            f"the memory cannot be read or written: {db.describe(exc)} "
            "(memllm doctor checks it; a damaged memory can be restored from a facts export)"
        )
    if isinstance(exc, OverflowError):
        return f"a number is out of range ({exc})"
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "the input is not UTF-8 text"
    if isinstance(exc, csv.Error):
        return f"malformed CSV ({exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return None
