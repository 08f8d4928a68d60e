"""Schema edits that SQLite's ALTER TABLE cannot make, made the way SQLite documents them.

SQLite cannot alter a CHECK constraint, and rebuilding a table (create, copy, drop,
rename) would, with foreign keys on, cascade-delete the rows that refer to it (the
evidence of every fact). Loosening a constraint by editing the schema text is the
procedure SQLite gives for that case (lang_altertable.html, "Making Other Kinds Of
Table Schema Changes"). Only loosening edits belong here: every row already stored
satisfies the wider constraint, so nothing needs rewriting.
"""

from __future__ import annotations

from memllm_cli.store.db import Connection


def widen_checks(conn: Connection, checks: dict[str, tuple[str, str]]) -> None:
    """Replace, in each table's CREATE statement, the CHECK text ``old`` by ``new``.

    ``checks`` maps a table to (old, new). Runs inside the caller's transaction (a
    migration's): a table whose schema lacks ``old`` exactly once raises, and the
    transaction rolls back with nothing changed.
    """
    schema = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute("PRAGMA writable_schema = ON")
    try:
        for table, (old, new) in checks.items():
            (sql,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if sql.count(old) != 1:
                raise RuntimeError(f"the schema of table {table} lacks the CHECK {old}")
            conn.execute(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                (sql.replace(old, new), table),
            )
        # Other connections re-read the schema when its version changes.
        conn.execute(f"PRAGMA schema_version = {schema + 1}")
    finally:
        conn.execute("PRAGMA writable_schema = OFF")
