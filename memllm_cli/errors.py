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
