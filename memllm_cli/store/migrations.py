"""Numbered schema migrations; ``PRAGMA user_version`` records the last one applied.

Each migration runs in its own transaction, so a failure leaves the file at the
previous version. Append new migrations; never edit one that has shipped.
Vector tables are not created here: their dimension depends on the embedding
model, so the store creates them when it first meets an embedder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from memllm_cli.store import db
from memllm_cli.store.db import Connection
from memllm_cli.store.seeds import add_seed_relation_aliases, add_seed_relations


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str
    seed: Callable[[Connection], None] | None = None


def _fts_triggers(table: str, fts: str, column: str) -> str:
    """Triggers that keep an external-content FTS5 index in step with its table."""
    return f"""
CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN
  INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});
END;
CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN
  INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});
END;
CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {column} ON {table} BEGIN
  INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});
  INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});
END;
"""


_INITIAL = (
    """
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE entities (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  created_at TEXT NOT NULL
);

-- Canonical names and aliases: what reads match against. A normalised name denotes one entity.
CREATE TABLE names (
  id INTEGER PRIMARY KEY,
  entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  norm TEXT NOT NULL UNIQUE,
  is_alias INTEGER NOT NULL DEFAULT 0,
  embedded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX names_entity ON names(entity_id);
CREATE INDEX names_pending ON names(id) WHERE embedded = 0;

CREATE TABLE relations (
  id INTEGER PRIMARY KEY,
  label TEXT NOT NULL,
  norm TEXT NOT NULL UNIQUE,
  pid TEXT UNIQUE,
  cardinality TEXT NOT NULL DEFAULT 'many' CHECK (cardinality IN ('one', 'many')),
  embedded INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL
);

-- Content-addressed documents and chat turns; manual facts have no source row.
CREATE TABLE sources (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('document', 'chat')),
  uri TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (uri, sha256)
);

-- One user-level action (an add, an import, an ingest of one document, an undo).
CREATE TABLE batches (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  description TEXT NOT NULL,
  created_at TEXT NOT NULL,
  undone_by INTEGER REFERENCES batches(id)
);

CREATE TABLE facts (
  id INTEGER PRIMARY KEY,
  subject_id INTEGER NOT NULL REFERENCES entities(id),
  relation_id INTEGER NOT NULL REFERENCES relations(id),
  object_id INTEGER NOT NULL REFERENCES entities(id),
  origin TEXT NOT NULL CHECK (origin IN ('document', 'chat', 'manual')),
  status TEXT NOT NULL DEFAULT 'current'
    CHECK (status IN ('current', 'superseded', 'retracted', 'deleted')),
  created_at TEXT NOT NULL,
  valid_from TEXT,
  valid_to TEXT,
  superseded_by INTEGER REFERENCES facts(id),
  UNIQUE (subject_id, relation_id, object_id)
);
CREATE INDEX facts_relation_object ON facts(relation_id, object_id);
CREATE INDEX facts_object ON facts(object_id);
CREATE INDEX facts_superseded_by ON facts(superseded_by) WHERE superseded_by IS NOT NULL;

-- Every time a fact was stated: by which source, sentence and extractor. Re-stating adds a row.
CREATE TABLE provenance (
  id INTEGER PRIMARY KEY,
  fact_id INTEGER NOT NULL REFERENCES facts(id) ON DELETE CASCADE,
  batch_id INTEGER NOT NULL REFERENCES batches(id),
  origin TEXT NOT NULL CHECK (origin IN ('document', 'chat', 'manual')),
  source_id INTEGER REFERENCES sources(id),
  sentence TEXT,
  line_start INTEGER,
  line_end INTEGER,
  extractor TEXT,
  protocol_version TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX provenance_fact ON provenance(fact_id);
CREATE INDEX provenance_batch ON provenance(batch_id);
CREATE INDEX provenance_source ON provenance(source_id);

-- The operation log: one row per change to a fact, with the row before and after (JSON).
CREATE TABLE ops (
  id INTEGER PRIMARY KEY,
  batch_id INTEGER NOT NULL REFERENCES batches(id),
  op TEXT NOT NULL,
  fact_id INTEGER NOT NULL,
  before TEXT,
  after TEXT,
  created_at TEXT NOT NULL,
  undone_by INTEGER REFERENCES batches(id)
);
CREATE INDEX ops_batch ON ops(batch_id);
CREATE INDEX ops_fact ON ops(fact_id);

-- The embedding cache: a text is embedded once per memory, whatever names it.
CREATE TABLE embeddings (
  text TEXT PRIMARY KEY,
  vector BLOB NOT NULL
) WITHOUT ROWID;

CREATE VIRTUAL TABLE names_fts USING fts5(
  name, content='names', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE relations_fts USING fts5(
  label, content='relations', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE sentences_fts USING fts5(
  sentence, content='provenance', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
"""
    + _fts_triggers("names", "names_fts", "name")
    + _fts_triggers("relations", "relations_fts", "label")
    + _fts_triggers("provenance", "sentences_fts", "sentence")
)


_DOCUMENTS = """
-- A document version counts as ingested once its batch commits; undoing that batch clears it.
ALTER TABLE sources ADD COLUMN ingested_at TEXT;
ALTER TABLE sources ADD COLUMN ingest_batch INTEGER REFERENCES batches(id);
CREATE INDEX sources_uri ON sources(uri);
CREATE INDEX sources_ingest_batch ON sources(ingest_batch) WHERE ingest_batch IS NOT NULL;

-- The sentences of an ingested document version, in order: what the next version is
-- compared against, so that only changed sentences go through the model again.
CREATE TABLE segments (
  id INTEGER PRIMARY KEY,
  source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  sentence_sha256 TEXT NOT NULL,
  line_start INTEGER NOT NULL,
  line_end INTEGER NOT NULL,
  UNIQUE (source_id, position)
);
"""

_EMBEDDINGS_ROWID = """
-- 1.5 KB vectors in a WITHOUT ROWID table spill onto overflow pages: the file was ~3x the
-- vectors' size and lookups ~3x slower than in an ordinary table with a unique text index.
CREATE TABLE embeddings_v3 (
  id INTEGER PRIMARY KEY,
  text TEXT NOT NULL UNIQUE,
  vector BLOB NOT NULL
);
INSERT INTO embeddings_v3 (text, vector) SELECT text, vector FROM embeddings;
DROP TABLE embeddings;
ALTER TABLE embeddings_v3 RENAME TO embeddings;
"""

_RELATION_ALIASES = """
-- Other wordings of a relation ("lives in" for residence): exact reads and writes that use
-- one mean the relation. A wording is either a relation's label or one relation's alias.
CREATE TABLE relation_aliases (
  id INTEGER PRIMARY KEY,
  relation_id INTEGER NOT NULL REFERENCES relations(id) ON DELETE CASCADE,
  alias TEXT NOT NULL,
  norm TEXT NOT NULL UNIQUE,
  origin TEXT NOT NULL CHECK (origin IN ('seed', 'user')),
  created_at TEXT NOT NULL
);
CREATE INDEX relation_aliases_relation ON relation_aliases(relation_id);
"""


_OP_TARGETS = """
-- Aliases and merges change entities, names and which fact a statement belongs to, and undo
-- must put those rows back too: an op now names the table of the row it changed, and
-- ops.fact_id holds that row's id (a fact's, as before, for target 'fact').
ALTER TABLE ops ADD COLUMN target TEXT NOT NULL DEFAULT 'fact'
  CHECK (target IN ('fact', 'entity', 'name', 'evidence'));
"""

_SEGMENT_TEXT = """
-- Every ingested sentence's text: an answer falls back on the notes themselves when no
-- fact answers (DESIGN: answer paths). Its keyword index is made by _index_segment_text.
ALTER TABLE segments ADD COLUMN text TEXT;
"""
_SEGMENT_FTS = """
-- Porter stems, so that "lives" finds "lived".
CREATE VIRTUAL TABLE segments_fts USING fts5(
  text, content='segments', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
""" + _fts_triggers("segments", "segments_fts", "text")


def _index_segment_text(conn: Connection) -> None:
    """Give older segments the text a fact's evidence kept for them, then index them all.

    A sentence that stated no fact was never stored as text: it stays NULL (and is
    never retrieved) until its document changes and is ingested again. The index and
    its triggers come after the backfill (an update trigger on rows the index never
    held would corrupt it), and are then built from the table.
    """
    import hashlib

    rows = conn.execute(
        "SELECT DISTINCT s.id, s.sentence_sha256, p.sentence FROM segments s "
        "JOIN provenance p ON p.source_id = s.source_id AND p.line_start = s.line_start "
        "AND p.line_end = s.line_end WHERE s.text IS NULL AND p.sentence IS NOT NULL"
    ).fetchall()
    found = {
        segment: sentence
        for segment, digest, sentence in rows
        if hashlib.sha256(sentence.encode()).hexdigest() == digest
    }
    conn.executemany(
        "UPDATE segments SET text = ? WHERE id = ?", [(t, i) for i, t in found.items()]
    )
    db.run_script(conn, _SEGMENT_FTS)
    conn.execute("INSERT INTO segments_fts(segments_fts) VALUES ('rebuild')")


_DOCUMENT_META = """
-- What an ingested Markdown version says besides its sentences (front matter, wikilinks,
-- tags): kind 'tag' (key: the tag), 'date' (key: the front matter's key, value: an ISO
-- date), 'link' (key: the shown text, value: the note it links to) and 'alias' (key: the
-- alias, value: the note's entity; owned = 1 when this document put the alias in memory,
-- so a later version that drops it takes it out again).
CREATE TABLE document_meta (
  id INTEGER PRIMARY KEY,
  source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('tag', 'date', 'link', 'alias')),
  key TEXT NOT NULL,
  value TEXT NOT NULL DEFAULT '',
  owned INTEGER NOT NULL DEFAULT 0,
  UNIQUE (source_id, kind, key)
);
CREATE INDEX document_meta_key ON document_meta(kind, key);
"""


def _admit_mcp(conn: Connection) -> None:
    """Facts, their evidence and their sources may come from MCP clients: 'mcp'."""
    from memllm_cli.store.schema_edit import widen_checks

    origins = "origin IN ('document', 'chat', 'manual'"
    widen_checks(
        conn,
        {
            "facts": (origins + ")", origins + ", 'mcp')"),
            "provenance": (origins + ")", origins + ", 'mcp')"),
            "sources": ("kind IN ('document', 'chat')", "kind IN ('document', 'chat', 'mcp')"),
        },
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", _INITIAL, add_seed_relations),
    Migration(2, "documents", _DOCUMENTS),
    Migration(3, "embeddings with rowids", _EMBEDDINGS_ROWID),
    Migration(4, "relation aliases", _RELATION_ALIASES, add_seed_relation_aliases),
    Migration(5, "ops on entities, names and evidence", _OP_TARGETS),
    Migration(6, "sentence text", _SEGMENT_TEXT, _index_segment_text),
    Migration(7, "document metadata", _DOCUMENT_META),
    Migration(8, "facts and notes from MCP clients", "", _admit_mcp),
)

LATEST = MIGRATIONS[-1].number


def version(conn: Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: Connection, target: int = LATEST) -> list[int]:
    """Apply every migration above the file's version up to ``target``; return those applied."""
    applied = []
    current = version(conn)
    for migration in MIGRATIONS:
        if current >= migration.number or migration.number > target:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            db.run_script(conn, migration.sql)
            if migration.seed is not None:
                migration.seed(conn)
            conn.execute(f"PRAGMA user_version = {migration.number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(migration.number)
    return applied
