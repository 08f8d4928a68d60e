"""Documents and sentences: where facts were stated, and which version of a file was read.

Every statement of a fact is a provenance row (its evidence): the origin, the
source (a document or chat version, or an MCP client's note, by uri and sha256),
the sentence and its lines. An ingested document version remembers its sentences
(segments), so the next version is read only where it changed and the facts only
the old text stated can be retracted; their text is kept too, for answers that no
fact gives, and so is what a note says besides its sentences (tags, dates, links,
aliases). This module owns the ``sources``, ``provenance``, ``segments`` and
``document_meta`` tables and the sentence keyword indexes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from memllm_cli.errors import InvalidInputError
from memllm_cli.store import db
from memllm_cli.store.models import SOURCE_KINDS, DocumentMeta, Evidence, Passage
from memllm_cli.store.oplog import OpLog
from memllm_cli.store.text import now

# The columns of a provenance row that ops snapshot and undo restores.
EVIDENCE_COLUMNS = (
    "fact_id",
    "batch_id",
    "origin",
    "source_id",
    "sentence",
    "line_start",
    "line_end",
    "extractor",
    "protocol_version",
    "created_at",
)


class Documents:
    """Sources, the evidence that cites them, and the sentences of ingested versions."""

    def __init__(self, conn: db.Connection, oplog: OpLog) -> None:
        self._conn = conn
        self._oplog = oplog

    # -- evidence -------------------------------------------------------------------------------

    def source(
        self, kind: str, uri: str | None, sha256: str | None, created_at: str | None = None
    ) -> int:
        """The id of this version of a document, chat turn or MCP note, recorded if it is new."""
        if kind not in SOURCE_KINDS:
            raise InvalidInputError(f"unknown source kind {kind!r}")
        if not uri or not sha256:
            raise InvalidInputError(f"a {kind} source needs a uri and a sha256")
        row = self._conn.execute(
            "SELECT id FROM sources WHERE uri = ? AND sha256 = ?", (uri, sha256)
        ).fetchone()
        if row is not None:
            return row[0]
        return self._conn.execute(
            "INSERT INTO sources (kind, uri, sha256, created_at) VALUES (?, ?, ?, ?)",
            (kind, uri, sha256, created_at or now()),
        ).lastrowid

    def add_evidence(self, fact_id: int, evidence: Evidence) -> None:
        """Record one statement of the fact, in the current batch."""
        batch_id = self._oplog.current()
        source_id = None
        if evidence.source_kind is not None:
            source_id = self.source(
                evidence.source_kind, evidence.uri, evidence.sha256, evidence.created_at
            )
        self._conn.execute(
            "INSERT INTO provenance (fact_id, batch_id, origin, source_id, sentence, line_start, "
            "line_end, extractor, protocol_version, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fact_id,
                batch_id,
                evidence.origin,
                source_id,
                evidence.sentence,
                evidence.line_start,
                evidence.line_end,
                evidence.extractor,
                evidence.protocol_version,
                evidence.created_at or now(),
            ),
        )

    def evidence(self, fact_id: int) -> list[Evidence]:
        """Every statement of the fact, oldest first."""
        rows = self._conn.execute(
            "SELECT p.origin, src.kind, src.uri, src.sha256, p.sentence, p.line_start, "
            "p.line_end, p.extractor, p.protocol_version, p.created_at "
            "FROM provenance p LEFT JOIN sources src ON src.id = p.source_id "
            "WHERE p.fact_id = ? ORDER BY p.id",
            (fact_id,),
        )
        return [Evidence(*row) for row in rows]

    def drop_evidence(self, batch_id: int, fact_id: int) -> None:
        """Forget what the batch stated about the fact (undo)."""
        self._conn.execute(
            "DELETE FROM provenance WHERE batch_id = ? AND fact_id = ?", (batch_id, fact_id)
        )

    # -- evidence moved by merges ----------------------------------------------------------------

    def _evidence_row(self, row_id: int) -> dict[str, Any] | None:
        row = self._conn.execute(
            f"SELECT {', '.join(EVIDENCE_COLUMNS)} FROM provenance WHERE id = ?", (row_id,)
        ).fetchone()
        return dict(zip(EVIDENCE_COLUMNS, row, strict=True)) if row else None

    def move_evidence(self, from_fact: int, to_fact: int, op: str) -> None:
        """Every statement of ``from_fact`` now states ``to_fact`` (a merge collapsing twins)."""
        rows = self._conn.execute(
            "SELECT id FROM provenance WHERE fact_id = ? ORDER BY id", (from_fact,)
        ).fetchall()
        for (row_id,) in rows:
            before = self._evidence_row(row_id)
            self._conn.execute("UPDATE provenance SET fact_id = ? WHERE id = ?", (to_fact, row_id))
            self._oplog.log(op, row_id, before, self._evidence_row(row_id), "evidence")

    def put_back_evidence(self, row_id: int, before: dict[str, Any] | None, op: str) -> None:
        """Set the evidence row to ``before`` (None: it did not exist), logged as ``op`` (undo)."""
        current = self._evidence_row(row_id)
        if before is None:
            self._conn.execute("DELETE FROM provenance WHERE id = ?", (row_id,))
        elif current is None:
            self._conn.execute(
                f"INSERT INTO provenance (id, {', '.join(EVIDENCE_COLUMNS)}) "
                f"VALUES (:id, {', '.join(':' + c for c in EVIDENCE_COLUMNS)})",
                {**before, "id": row_id},
            )
        else:
            assignments = ", ".join(f"{c} = :{c}" for c in EVIDENCE_COLUMNS)
            self._conn.execute(
                f"UPDATE provenance SET {assignments} WHERE id = :id", {**before, "id": row_id}
            )
        self._oplog.log(op, row_id, current, self._evidence_row(row_id), "evidence")

    def count_documents(self) -> int:
        """Documents (by uri) with an ingested version."""
        return self._conn.execute(
            "SELECT count(DISTINCT uri) FROM sources WHERE ingested_at IS NOT NULL"
        ).fetchone()[0]

    def count_unsourced(self) -> int:
        """Facts with no provenance row."""
        return self._conn.execute(
            "SELECT count(*) FROM facts f WHERE NOT EXISTS "
            "(SELECT 1 FROM provenance p WHERE p.fact_id = f.id)"
        ).fetchone()[0]

    def keyword_facts(self, match: str, include_all: bool, limit: int) -> list[int]:
        """Facts whose evidence sentences match the FTS5 query ``match``, best first."""
        status = "" if include_all else " AND f.status = 'current'"
        rows = self._conn.execute(
            "SELECT DISTINCT p.fact_id FROM sentences_fts JOIN provenance p "
            "ON p.id = sentences_fts.rowid JOIN facts f ON f.id = p.fact_id "
            f"WHERE sentences_fts MATCH ?{status} ORDER BY bm25(sentences_fts) LIMIT ?",
            (match, limit),
        ).fetchall()
        return [row[0] for row in rows]

    # -- document versions ----------------------------------------------------------------------

    def ingested_version(self, uri: str) -> tuple[int, str] | None:
        """(source id, sha256) of the latest ingested version of the document at ``uri``."""
        row = self._conn.execute(
            "SELECT id, sha256 FROM sources WHERE uri = ? AND ingested_at IS NOT NULL "
            "ORDER BY ingested_at DESC, id DESC LIMIT 1",
            (uri,),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def begin(self, uri: str, sha256: str) -> int:
        """Mark this version of ``uri`` ingested by the current batch; return its source id."""
        source_id = self.source("document", uri, sha256)
        self._conn.execute("DELETE FROM segments WHERE source_id = ?", (source_id,))
        self._conn.execute("DELETE FROM document_meta WHERE source_id = ?", (source_id,))
        self._conn.execute(
            "UPDATE sources SET ingested_at = ?, ingest_batch = ? WHERE id = ?",
            (now(), self._oplog.current(), source_id),
        )
        return source_id

    def forget_ingest(self, batch_id: int) -> None:
        """Leave the document versions the batch ingested un-ingested again (undo)."""
        for table in ("segments", "document_meta"):
            self._conn.execute(
                f"DELETE FROM {table} WHERE source_id IN "
                "(SELECT id FROM sources WHERE ingest_batch = ?)",
                (batch_id,),
            )
        self._conn.execute(
            "UPDATE sources SET ingested_at = NULL, ingest_batch = NULL WHERE ingest_batch = ?",
            (batch_id,),
        )

    def add_segment(
        self,
        source_id: int,
        position: int,
        sentence_sha256: str,
        line_start: int,
        line_end: int,
        text: str,
    ) -> None:
        self._conn.execute(
            "INSERT INTO segments (source_id, position, sentence_sha256, line_start, line_end, "
            "text) VALUES (?, ?, ?, ?, ?, ?)",
            (source_id, position, sentence_sha256, line_start, line_end, text),
        )

    def segment_texts(self, source_id: int) -> set[str]:
        """The text of every sentence this document version was read as (NULL ones left out)."""
        rows = self._conn.execute(
            "SELECT text FROM segments WHERE source_id = ? AND text IS NOT NULL", (source_id,)
        )
        return {row[0] for row in rows}

    def add_meta(self, source_id: int, items: Iterable[DocumentMeta]) -> None:
        """Record what this document version says besides its sentences (one row per key)."""
        self._conn.executemany(
            "INSERT OR REPLACE INTO document_meta (source_id, kind, key, value, owned) "
            "VALUES (?, ?, ?, ?, ?)",
            [(source_id, m.kind, m.key, m.value, int(m.owned)) for m in items],
        )

    def meta(self, source_id: int) -> list[DocumentMeta]:
        """The metadata of a document version, in the order it was recorded."""
        rows = self._conn.execute(
            "SELECT kind, key, value, owned FROM document_meta WHERE source_id = ? ORDER BY id",
            (source_id,),
        )
        return [DocumentMeta(kind, key, value, bool(owned)) for kind, key, value, owned in rows]

    def sentences_matching(self, words: Sequence[str], limit: int) -> list[Passage]:
        """Sentences of current document versions with any of ``words``, best BM25 first.

        Each word is one quoted FTS5 string, so no user text is read as query syntax.
        The sentence after a match counts too, at half its score: it is often the one
        that says more about what the match named ("Ingrid moved to Oslo. She works
        at NIVA."). A document's current version is the one ingested last (as
        ``ingested_version``); an older version's sentences are never returned, nor the
        same text twice.
        """
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words if w.strip())
        if not match:
            return []
        rows = self._conn.execute(
            "WITH hits AS (SELECT seg.id, seg.source_id, seg.position, "
            "bm25(segments_fts) AS score FROM segments_fts "
            "JOIN segments seg ON seg.id = segments_fts.rowid "
            "JOIN sources src ON src.id = seg.source_id "
            "WHERE segments_fts MATCH ? AND src.ingested_at IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM sources newer WHERE newer.uri = src.uri "
            "AND newer.ingested_at IS NOT NULL AND (newer.ingested_at > src.ingested_at "
            "OR (newer.ingested_at = src.ingested_at AND newer.id > src.id))) "
            "ORDER BY score, seg.id LIMIT ?), "
            "found AS (SELECT id, score FROM hits UNION ALL "
            "SELECT nxt.id, hits.score / 2 FROM hits JOIN segments nxt "
            "ON nxt.source_id = hits.source_id AND nxt.position = hits.position + 1) "
            "SELECT seg.text, src.uri, seg.line_start, seg.line_end, coalesce(prev.text, ''), "
            "min(found.score) AS best FROM found JOIN segments seg ON seg.id = found.id "
            "JOIN sources src ON src.id = seg.source_id "
            "LEFT JOIN segments prev ON prev.source_id = seg.source_id "
            "AND prev.position = seg.position - 1 WHERE seg.text IS NOT NULL "
            "GROUP BY seg.id ORDER BY best, seg.id",
            (match, limit * 4),
        ).fetchall()
        found: dict[str, Passage] = {}
        for text, uri, start, end, context, score in rows:
            key = " ".join(text.casefold().split())
            found.setdefault(key, Passage(text, uri, start, end, context, score))
        return list(found.values())[:limit]

    def stated_by(self, source_id: int) -> list[tuple[str, int]]:
        """(sentence, fact id) for every current fact this document version states."""
        rows = self._conn.execute(
            "SELECT p.sentence, p.fact_id FROM provenance p JOIN facts f ON f.id = p.fact_id "
            "WHERE p.source_id = ? AND f.status = 'current' ORDER BY p.id",
            (source_id,),
        ).fetchall()
        return [(sentence or "", fact_id) for sentence, fact_id in rows]

    def only_stated_by(self, uri: str, kept: set[int]) -> list[int]:
        """Current facts that only the document at ``uri`` stated and ``kept`` lacks.

        A fact also stated by hand, in chat or by another document is not among them.
        Another document counts only through its latest ingested version: a version
        read again since (or removed, see the ingest pipeline) states what its new
        version states, so a fact two notes stated goes once neither states it.
        """
        rows = self._conn.execute(
            "SELECT DISTINCT p.fact_id FROM provenance p JOIN sources s ON s.id = p.source_id "
            "JOIN facts f ON f.id = p.fact_id WHERE s.uri = ? AND f.status = 'current'",
            (uri,),
        ).fetchall()
        found = []
        for (fact_id,) in rows:
            if fact_id in kept:
                continue
            elsewhere = self._conn.execute(
                "SELECT 1 FROM provenance p LEFT JOIN sources s ON s.id = p.source_id "
                "WHERE p.fact_id = ? AND (s.id IS NULL OR (s.uri != ? AND NOT ("
                "s.ingested_at IS NOT NULL AND EXISTS (SELECT 1 FROM sources newer "
                "WHERE newer.uri = s.uri AND newer.ingested_at IS NOT NULL AND "
                "(newer.ingested_at > s.ingested_at OR "
                "(newer.ingested_at = s.ingested_at AND newer.id > s.id)))))) LIMIT 1",
                (fact_id, uri),
            ).fetchone()
            if elsewhere is None:
                found.append(fact_id)
        return found
