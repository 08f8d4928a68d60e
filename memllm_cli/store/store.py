"""The fact memory's one entry point: a facade over one connection and its components.

:class:`Store` opens and migrates the memory file and hands out its components,
each a small class over the same connection that owns the SQL of one concept:

- :mod:`~memllm_cli.store.names` (``store.names``): entities, names and aliases
  (with :mod:`~memllm_cli.store.resolution`: which full name a short name written
  in a document or a read means).
- :mod:`~memllm_cli.store.relations` (``store.relation_table``): relations, their
  labels, P-ids, cardinalities and aliases ("lives in" for residence).
- :mod:`~memllm_cli.store.facts` (``store.fact_table``): facts and their lifecycle
  (add, edit, supersede, end, restore), listing with
  :mod:`~memllm_cli.store.filters`, detail; :mod:`~memllm_cli.store.ranking`
  (``store.ranking``): the fact queries that reads and searches rank by.
- :mod:`~memllm_cli.store.oplog` (``store.oplog``): batches (transactions and undo
  units), the ops logged in them, history; :mod:`~memllm_cli.store.undo` reverses them.
- :mod:`~memllm_cli.store.documents` (``store.documents``): sources, evidence,
  ingested document versions and their sentences.
- :mod:`~memllm_cli.store.vectors` (``store.vectors``): the embedding cache, the
  sqlite-vec index and nearest names and labels.

The facade's methods are the store's API for the rest of memllm, which never
touches the connection. MemLLM reads, searches, the doctor's checks and
import/export (``read``, ``search``, ``doctor``, ``transfer``) and entity merges
(``merge``) call the components.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from memllm_cli.embed import Embedder
from memllm_cli.errors import StoreError
from memllm_cli.hashing import EMPTY_SHA256
from memllm_cli.store import db, migrations
from memllm_cli.store.documents import Documents
from memllm_cli.store.facts import FactTable
from memllm_cli.store.merge import merge
from memllm_cli.store.models import (
    ORIGINS,
    STATUSES,
    AliasResult,
    DocumentMeta,
    Evidence,
    Fact,
    FactDetail,
    FactFilter,
    MemoryStats,
    MergeResult,
    Op,
    Passage,
    Relation,
    UndoResult,
    WriteResult,
)
from memllm_cli.store.names import Names
from memllm_cli.store.oplog import OpLog
from memllm_cli.store.ranking import FactRanking
from memllm_cli.store.relations import Relations
from memllm_cli.store.resolution import NameScope
from memllm_cli.store.undo import undo
from memllm_cli.store.vectors import Vectors
from memllm_cli.words import content_words

MAX_QUERY_WORDS = 32


class Store:
    """A memory file, opened and migrated. Use as a context manager or call :meth:`close`."""

    def __init__(self, conn: db.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.oplog = OpLog(conn, path)
        self.vectors = Vectors(conn, self.oplog)
        self.names = Names(conn, self.oplog, self.vectors)
        self.relation_table = Relations(conn, self.oplog)
        self.ranking = FactRanking(conn)
        self.documents = Documents(conn, self.oplog)
        self.fact_table = FactTable(
            conn, self.oplog, self.names, self.relation_table, self.documents
        )

    @classmethod
    def open(cls, path: Path | str) -> Store:
        path = Path(path)
        conn = db.connect(path)
        try:
            found = migrations.version(conn)
            if found > migrations.LATEST:
                raise StoreError(
                    f"memory {path} has schema version {found}, newer than this memllm "
                    f"understands ({migrations.LATEST}); upgrade memllm"
                )
            if found < migrations.LATEST:
                migrations.migrate(conn)
        except db.DatabaseError as exc:
            conn.close()
            raise StoreError(f"cannot open memory {path}: {db.describe(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the connection as a whole ----------------------------------------------------------------

    def batch(self, kind: str, description: str) -> AbstractContextManager[int]:
        """One transaction and one undo unit. Yields the batch id; rolls back on any error.

        A batch that changed nothing leaves no trace in the history.
        """
        return self.oplog.batch(kind, description)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of a batch that an error undoes alone; the error still propagates."""
        self.conn.execute("SAVEPOINT record")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO record")
            self.conn.execute("RELEASE record")
            raise
        self.conn.execute("RELEASE record")

    def integrity_check(self) -> list[str]:
        """SQLite's integrity check: ``["ok"]``, or the problems it found."""
        return [row[0] for row in self.conn.execute("PRAGMA integrity_check")]

    def foreign_key_check(self) -> list[tuple[Any, ...]]:
        """Rows that point at missing rows."""
        return [tuple(row) for row in self.conn.execute("PRAGMA foreign_key_check")]

    def grammar_vocabulary(self, max_names: int) -> tuple[list[str], list[str] | None]:
        """Labels of relations with current facts, and every name (None when over ``max_names``).

        What a prompted model may write in a read call.
        """
        relations = [r.label for r in self.relation_table.relations() if r.facts]
        names = self.names.first_names(max_names + 1)
        return relations, (names if len(names) <= max_names else None)

    # -- names ----------------------------------------------------------------------------------

    def entity_ids(self, name: str) -> list[int]:
        return self.names.entity_ids(name)

    def relation_ids(self, label: str) -> list[int]:
        return self.relation_table.relation_ids(label)

    def add_alias(self, name: str, alias: str) -> AliasResult:
        return self.names.add_alias(name, alias)

    def declare_aliases(self, name: str, aliases: list[str]) -> tuple[list[str], list[str]]:
        """Aliases a note declares for its entity: (added, refused as another's name)."""
        return self.names.declare_aliases(name, aliases)

    def remove_alias(self, name: str, alias: str) -> bool:
        return self.names.remove_alias(name, alias)

    def resolve_name(self, name: str, scope: NameScope) -> str:
        """The name a write in ``scope`` stores ``name`` under; reads only (``--dry-run``)."""
        return self.names.resolved_name(name, scope)

    def full_name(self, name: str) -> str:
        """The name of the one entity ``name`` means, as a read resolves it: an alias or a short
        name ("Farah" -> Farah Qureshi); ``name`` itself when it means none or several."""
        found = self.names.meant(name)
        return self.names.canonical(found[0]) if len(found) == 1 else name

    def merge(self, name: str, other: str) -> MergeResult:
        """Merge the entity ``other`` names into the one ``name`` names (see store.merge)."""
        return merge(self.conn, self.fact_table, self.documents, self.names, name, other)

    def relations(self) -> list[Relation]:
        return self.relation_table.relations()

    def relation_labels(self, prefix: str = "", limit: int = 50) -> list[str]:
        """Relation labels starting with ``prefix``, in order (shell completion)."""
        return self.relation_table.labels_starting(prefix, limit)

    def set_relation(
        self, label: str, *, cardinality: str | None = None, pid: str | None = None
    ) -> Relation:
        return self.relation_table.set_relation(label, cardinality=cardinality, pid=pid)

    def add_relation_alias(self, alias: str, label: str) -> Relation:
        return self.relation_table.add_relation_alias(alias, label)

    def remove_relation_alias(self, alias: str, label: str) -> Relation:
        return self.relation_table.remove_relation_alias(alias, label)

    # -- facts ----------------------------------------------------------------------------------

    def fact(self, fact_id: int) -> Fact:
        return self.fact_table.get(fact_id)

    def facts(self, flt: FactFilter | None = None) -> Iterator[Fact]:
        """Facts matching ``flt``, oldest first, streamed."""
        return self.fact_table.matching(flt)

    def facts_with_id_prefix(self, prefix: str = "", limit: int = 50) -> list[Fact]:
        """Facts whose id starts with ``prefix``, newest first (shell completion)."""
        return self.fact_table.with_id_prefix(prefix, limit)

    def count_facts(self, flt: FactFilter | None = None) -> int:
        return self.fact_table.count(flt)

    def fact_id_of(self, subject: str, relation: str, obj: str) -> int | None:
        return self.fact_table.id_of(subject, relation, obj)

    def detail(self, fact_id: int) -> FactDetail:
        return self.fact_table.detail(fact_id)

    def evidence(self, fact_id: int) -> list[Evidence]:
        return self.documents.evidence(fact_id)

    def add_fact(
        self,
        subject: str,
        relation: str,
        obj: str,
        evidence: Evidence | None = None,
        *,
        valid_from: str | None = None,
        scope: NameScope | None = None,
    ) -> WriteResult:
        """Store a fact; with a ``scope`` (a document), short names resolve to full names."""
        return self.fact_table.add(
            subject, relation, obj, evidence, valid_from=valid_from, scope=scope
        )

    def edit_fact(
        self,
        fact_id: int,
        *,
        subject: str | None = None,
        relation: str | None = None,
        obj: str | None = None,
        evidence: Evidence | None = None,
    ) -> WriteResult:
        """Correct a fact: by hand, unless ``evidence`` says who corrects it."""
        return self.fact_table.edit(
            fact_id, subject=subject, relation=relation, obj=obj, evidence=evidence
        )

    def remove_fact(self, fact_id: int) -> Fact:
        return self.fact_table.remove(fact_id)

    # -- history and undo -----------------------------------------------------------------------

    def stats(self) -> MemoryStats:
        """What the memory holds, in counts (``memllm mcp``'s stats resource)."""
        tally = self.fact_table.tally()
        facts = {status: 0 for status in STATUSES}
        origins = {origin: 0 for origin in ORIGINS}
        for (status, origin), count in tally.items():
            facts[status] = facts.get(status, 0) + count
            if status == "current":
                origins[origin] = origins.get(origin, 0) + count
        return MemoryStats(
            facts=facts,
            origins=origins,
            entities=self.names.count_entities(),
            relations_used=sum(1 for r in self.relation_table.relations() if r.facts),
            documents=self.documents.count_documents(),
            pending_vectors=self.vectors.pending(),
            last_change=self.oplog.last_change(),
        )

    def history(
        self, *, limit: int | None = 50, batch_id: int | None = None, fact_id: int | None = None
    ) -> list[Op]:
        return self.oplog.history(limit=limit, batch_id=batch_id, fact_id=fact_id)

    def undo(
        self, *, op_id: int | None = None, batch_id: int | None = None, kind: str | None = None
    ) -> UndoResult:
        """Undo an op, a batch, or the latest batch; with ``kind``, only a batch of that kind."""
        return undo(
            self.oplog,
            self.fact_table,
            self.documents,
            self.names,
            op_id=op_id,
            batch_id=batch_id,
            kind=kind,
        )

    # -- documents ------------------------------------------------------------------------------

    def ingested_version(self, uri: str) -> tuple[int, str] | None:
        return self.documents.ingested_version(uri)

    def begin_document(self, uri: str, sha256: str) -> int:
        return self.documents.begin(uri, sha256)

    def add_segment(
        self,
        source_id: int,
        position: int,
        sentence_sha256: str,
        line_start: int,
        line_end: int,
        text: str,
    ) -> None:
        self.documents.add_segment(source_id, position, sentence_sha256, line_start, line_end, text)

    def segment_texts(self, source_id: int) -> set[str]:
        return self.documents.segment_texts(source_id)

    def add_document_meta(self, source_id: int, items: list[DocumentMeta]) -> None:
        self.documents.add_meta(source_id, items)

    def document_meta(self, source_id: int) -> list[DocumentMeta]:
        """Tags, dates, links and aliases of a document version (a note's, beside its text)."""
        return self.documents.meta(source_id)

    def relevant_sentences(self, question: str, k: int = 3) -> list[Passage]:
        """The ``k`` stored sentences (current document versions) that best match ``question``.

        Ranked by BM25 over the question's content words; best first.
        """
        return self.documents.sentences_matching(content_words(question)[:MAX_QUERY_WORDS], k)

    def stated_by(self, source_id: int) -> list[tuple[str, Fact]]:
        """(sentence, fact) for every current fact this document version states."""
        stated = self.documents.stated_by(source_id)
        return [(sentence, self.fact_table.get(fact_id)) for sentence, fact_id in stated]

    def retract_unstated(self, uri: str, kept: set[int]) -> list[Fact]:
        """Retract current facts that only the document at ``uri`` stated and ``kept`` lacks."""
        return [self.fact_table.retract(f) for f in self.documents.only_stated_by(uri, kept)]

    def remove_document(self, uri: str) -> list[Fact]:
        """The document at ``uri`` is gone: it becomes an empty version (its sentences answer
        nothing) and the facts only it stated are retracted. Undo brings both back."""
        self.documents.begin(uri, EMPTY_SHA256)
        return self.retract_unstated(uri, set())

    # -- vectors --------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        return self.vectors.meta(key)

    def reembed(self, embedder: Embedder) -> None:
        self.vectors.reembed(embedder)

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> list[bytes]:
        return self.vectors.embed(embedder, texts)

    def pending_vectors(self) -> int:
        return self.vectors.pending()

    def index_pending(
        self,
        embedder: Embedder,
        progress: Callable[[int, int], object] | None = None,
        chunk: int = 256,
    ) -> int:
        return self.vectors.index_pending(embedder, progress, chunk)

    def similar_names(
        self, vector: bytes, *, k: int, max_distance: float, oversample: int = 4
    ) -> list[tuple[int, float]]:
        return self.vectors.similar_names(
            vector, k=k, max_distance=max_distance, oversample=oversample
        )

    def similar_relations(
        self, vector: bytes, *, k: int, max_distance: float
    ) -> list[tuple[int, float]]:
        return self.vectors.similar_relations(vector, k=k, max_distance=max_distance)
