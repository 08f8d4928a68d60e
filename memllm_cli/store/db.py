"""The SQLite binding: the one module that chooses it and loads sqlite-vec.

Python's built-in ``sqlite3`` is often built without extension loading (macOS's
python.org builds, many distributions), so the memory uses ``apsw``: wheels for
Linux, macOS and Windows, each with its own recent SQLite (FTS5 included) that can
load sqlite-vec. apsw is not a DB-API module; the store uses the small part of
DB-API that apsw shares (``execute`` and ``executemany`` on the connection,
``fetchone``, ``fetchall``, iteration) plus ``lastrowid``, which :class:`Cursor`
adds. Nothing else imports a SQLite binding.
"""

from __future__ import annotations

from pathlib import Path

import apsw

from memllm_cli import system
from memllm_cli.errors import StoreError

Connection = apsw.Connection
DatabaseError = apsw.Error
IntegrityError = apsw.ConstraintError
# How long a write waits for another writer (an ingest storing a document, an import)
# before it fails. Writers hold the lock only to store, never while a model runs, so a
# wait this long means something is wrong; reads never wait (WAL).
BUSY_TIMEOUT_MS = 60_000


def connect(path: Path | str) -> Connection:
    """Open (creating if needed) a memory file, with sqlite-vec loaded, WAL on, FKs enforced.

    A new file is readable by its owner alone (SQLite gives its -wal and -shm files
    the same mode). Raises :class:`StoreError` with one readable line for the usual
    failures: a folder that is missing or read-only, a file that is not a database,
    or an empty file (which SQLite would silently adopt as a new memory).
    """
    path = Path(path)
    if str(path) != ":memory:":
        if not path.parent.is_dir():
            raise StoreError(f"cannot open memory {path}: folder {path.parent} does not exist")
        if path.is_dir():
            raise StoreError(f"cannot open memory {path}: it is a folder")
        if path.exists() and not path.is_file():
            raise StoreError(f"cannot open memory {path}: it is not a regular file")
        _create_private(path)
    try:
        conn = apsw.Connection(str(path))
    except apsw.Error as exc:
        raise StoreError(f"cannot open memory {path}: {exc}") from exc
    conn.cursor_factory = Cursor
    try:
        conn.enable_load_extension(True)
        conn.load_extension(_vec_extension())
        conn.enable_load_extension(False)
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        conn.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Vector re-ranking reads many pages; the default 2 MB page cache keeps few of them
        # (at 1M facts the re-rank fell from 475 to 48 ms with the file memory-mapped).
        conn.execute("PRAGMA mmap_size = 1073741824")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except apsw.Error as exc:
        conn.close()
        raise StoreError(f"cannot open memory {path}: {describe(exc)}") from exc
    return conn


class Cursor(apsw.Cursor):
    """apsw's cursor with DB-API's ``lastrowid``: the row an INSERT just made."""

    @property
    def lastrowid(self) -> int:
        return self.connection.last_insert_rowid()


def _create_private(path: Path) -> None:
    """Create ``path`` readable by its owner alone; refuse an existing empty file."""
    try:
        system.create_private_file(path)
    except FileExistsError:
        if path.is_file() and path.stat().st_size == 0:
            raise StoreError(
                f"cannot open memory {path}: the file is empty, not a memllm database "
                "(remove it to start a new memory there)"
            ) from None
        return
    except OSError:
        return  # SQLite reports why it cannot create the file, in its own words


def _vec_extension() -> str:
    """The sqlite-vec loadable library, located without importing ``sqlite_vec``.

    Importing it would pull in numpy and the stdlib ``sqlite3`` (about 0.2 s), which
    ``memllm facts list`` cannot afford.
    """
    from importlib.util import find_spec

    spec = find_spec("sqlite_vec")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError("sqlite-vec is not installed (pip install sqlite-vec)")
    return str(Path(spec.submodule_search_locations[0]) / "vec0")


def describe(exc: Exception) -> str:
    """SQLite's message, made a little more helpful for the common cases."""
    message = str(exc)
    if "file is not a database" in message:
        return "the file is not a memllm database (file is not a database)"
    if "readonly" in message or "unable to open database file" in message:
        return f"{message} (is the file or its folder read-only?)"
    return message


def run_script(conn: Connection, sql: str) -> None:
    """Run every statement of ``sql`` in order (apsw runs a whole script in one call)."""
    conn.execute(sql)
