"""What memllm's MCP tools do, with no protocol in sight: reads, writes and undo over one memory.

Every result is a small dataclass and every listing a page (``limit`` with an
``offset`` or a ``cursor``, and what to pass for the next page), so a client model
never receives the whole memory at once.

Writes: each call is one undoable batch of kind ``mcp``. Facts and their evidence
have origin ``mcp`` and the source ``mcp:<client name>`` (the name the client gave
in its initialize request); ``forget`` names the client in its batch. A client
ranks like chat: its writes never supersede a fact the user entered by hand, nor
bring back one the user deleted or corrected, and it may not edit a manual fact.
``undo`` undoes MCP batches only, never the user's own commands or ingests.

Threads: the SDK runs each call in a worker thread, so one lock serialises the
store's connection. ``remember`` runs the model in write mode on a second
connection under its own lock, the model loaded on its first call: reads stay
fast while it extracts, and a server that only reads never loads a model.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from memllm_cli.embed import Embedder
from memllm_cli.errors import InvalidInputError
from memllm_cli.protocol import parse_query
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.model import Model
from memllm_cli.store import Evidence, Fact, FactFilter, ReadAnswer, Store, WriteResult
from memllm_cli.store.models import MemoryStats, Op, Relation, SearchHit, UndoResult
from memllm_cli.store.read import read
from memllm_cli.store.search import PER_SIGNAL
from memllm_cli.store.search import search as run_search
from memllm_cli.store.text import parse_time

ORIGIN = "mcp"  # facts' and evidence's origin, sources' kind, batches' kind
MAX_LIMIT = 50  # the most items one page holds
MAX_NOTE_CHARS = 2000  # remember takes a note, not a document (memllm ingest reads those)
MAX_CLIENT_CHARS = 80


@dataclass(frozen=True)
class QueryPage:
    """Answers to a read query, best first (at most 30 in all), one page of them."""

    query: str
    answers: list[ReadAnswer]
    total: int
    next_offset: int | None


@dataclass(frozen=True)
class SearchPage:
    """Facts matching a search, best first, one page of them."""

    hits: list[SearchHit]
    next_offset: int | None


@dataclass(frozen=True)
class RecentPage:
    """The latest facts, newest first; ``next_cursor`` fetches the older ones."""

    facts: list[Fact]
    next_cursor: int | None


@dataclass(frozen=True)
class FactShown:
    """One fact with its evidence (oldest first), its versions and its operations (newest first).

    The lists are cut at the call's ``limit``; the totals say how many there are.
    """

    fact: Fact
    evidence: list[Evidence]
    evidence_total: int
    versions: list[Fact]
    operations: list[Op]
    operations_total: int


@dataclass(frozen=True)
class Change:
    """What a write did, in one line, and its batch: what ``undo`` takes to revert it.

    ``batch_id`` is None when nothing changed (the user had overruled the fact, or
    a note stated nothing memllm could store).
    """

    summary: str
    batch_id: int | None
    written: list[WriteResult] = field(default_factory=list)
    removed: list[Fact] = field(default_factory=list)


def client_name(name: str | None) -> str:
    """A client's self-given name, fit to store as a source: one short printable line."""
    text = " ".join("".join(c if c.isprintable() else " " for c in name or "").split())
    return text[:MAX_CLIENT_CHARS] or "unknown client"


def _page(limit: int, offset: int = 0) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit is between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise InvalidInputError(f"offset is 0 or more, not {offset}")


def _next(offset: int, limit: int, total: int) -> int | None:
    return offset + limit if offset + limit < total else None


def _described(result: WriteResult) -> str:
    """One result as a client model should read it."""
    fact = result.fact
    if result.action == "overruled":
        return f"not stored: the user deleted or corrected {fact.label} (fact {fact.id}) by hand"
    text = f"{result.action} fact {fact.id}: {fact.label}"
    if fact.status != "current":
        text += f" (kept superseded by fact {fact.superseded_by}: the user's own fact wins)"
    superseded = ", ".join(str(old.id) for old in result.superseded)
    return text + (f"; it supersedes fact {superseded}" if superseded else "")


def _summary(results: list[WriteResult], batch_id: int | None) -> str:
    undo = f" (undo: batch {batch_id})" if batch_id is not None else ""
    return "; ".join(_described(r) for r in results) + undo


class MemoryTools:
    """The MCP tools over one open store. ``load_model`` is called on the first ``remember``."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder | None,
        load_model: Callable[[], Model] | None = None,
        *,
        me: str = "me",
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.me = me
        self._load_model = load_model
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._session: Session | None = None

    def close(self) -> None:
        """Close the model's connection, if ``remember`` opened one (the store is the caller's)."""
        if self._session is not None:
            self._session.store.close()
            self._session = None

    # -- reading --------------------------------------------------------------------------------

    def query(self, query: str, limit: int = 10, offset: int = 0) -> QueryPage:
        """A MemLLM read, ``subject>>relation>>`` or ``>>relation>>object``, as the model reads."""
        _page(limit, offset)
        parsed = parse_query(query)
        with self._lock:
            answers = read(self.store, parsed, self.embedder)
        return QueryPage(
            parsed.format(),
            answers[offset : offset + limit],
            len(answers),
            _next(offset, limit, len(answers)),
        )

    def search(
        self,
        text: str,
        limit: int = 10,
        offset: int = 0,
        *,
        include_all: bool = False,
        keyword_only: bool = False,
    ) -> SearchPage:
        """Facts by meaning and keyword (names, relations, evidence sentences), fused."""
        _page(limit, offset)
        if not text.strip():
            raise InvalidInputError("give words to search for")
        wanted = min(offset + limit + 1, PER_SIGNAL)
        with self._lock:
            hits = run_search(
                self.store,
                text,
                None if keyword_only else self.embedder,
                limit=wanted,
                include_all=include_all,
            )
        return SearchPage(hits[offset : offset + limit], _next(offset, limit, len(hits)))

    def show(self, fact_id: int, limit: int = 5) -> FactShown:
        """A fact with its evidence, versions and operations, each list cut at ``limit``."""
        _page(limit)
        with self._lock:
            detail = self.store.detail(fact_id)
        return FactShown(
            fact=detail.fact,
            evidence=detail.evidence[:limit],
            evidence_total=len(detail.evidence),
            versions=detail.history[-MAX_LIMIT:],
            operations=detail.ops[:limit],
            operations_total=len(detail.ops),
        )

    def recent(
        self,
        limit: int = 10,
        cursor: int | None = None,
        *,
        subject: str | None = None,
        origin: str | None = None,
        include_all: bool = False,
    ) -> RecentPage:
        """The latest facts, newest first; pass ``next_cursor`` back as ``cursor`` for more."""
        _page(limit)
        flt = FactFilter(
            subject=subject,
            origin=origin,
            include_all=include_all,
            limit=limit + 1,
            newest_first=True,
            before=cursor,
        )
        with self._lock:
            facts = list(self.store.facts(flt))
        return RecentPage(facts[:limit], facts[limit - 1].id if len(facts) > limit else None)

    def relations(self) -> list[Relation]:
        """Every relation, the most used first: the labels ``add_fact`` and ``query`` know."""
        with self._lock:
            relations = self.store.relations()
        return sorted(relations, key=lambda r: (-r.facts, r.label))

    def stats(self) -> MemoryStats:
        with self._lock:
            return self.store.stats()

    # -- writing --------------------------------------------------------------------------------

    def _evidence(self, client: str, text: str, sentence: str | None) -> Evidence:
        """A statement by ``client``: its source is ``mcp:<client>``, versioned by ``text``."""
        return Evidence(
            origin=ORIGIN,
            source_kind=ORIGIN,
            uri=f"{ORIGIN}:{client}",
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            sentence=sentence,
        )

    def add_fact(
        self,
        client: str,
        subject: str,
        relation: str,
        obj: str,
        *,
        valid_from: str | None = None,
        note: str | None = None,
    ) -> Change:
        """Store one fact; ``note``: the words that state it (kept as its evidence)."""
        since = parse_time(valid_from) if valid_from else None
        label = f"{subject} >> {relation} >> {obj}"
        evidence = self._evidence(client, note or label, note or None)
        with self._lock, self.store.batch(ORIGIN, f"mcp {client}: add {label}") as batch_id:
            result = self.store.add_fact(subject, relation, obj, evidence, valid_from=since)
        batch = None if result.action == "overruled" else batch_id
        return Change(_summary([result], batch), batch, [result])

    def edit_fact(
        self,
        client: str,
        fact_id: int,
        *,
        subject: str | None = None,
        relation: str | None = None,
        obj: str | None = None,
    ) -> Change:
        """Correct a fact: the corrected version is a new fact; the old one stays, superseded."""
        if not any((subject, relation, obj)):
            raise InvalidInputError("give at least one of subject, relation, object")
        with self._lock, self.store.batch(ORIGIN, f"mcp {client}: edit fact {fact_id}") as batch_id:
            if self.store.fact(fact_id).origin == "manual":
                raise InvalidInputError(
                    f"fact {fact_id} was entered by hand: only the user changes it "
                    f"(memllm facts edit {fact_id})"
                )
            evidence = self._evidence(client, f"edit {fact_id}", f"edited from fact {fact_id}")
            result = self.store.edit_fact(
                fact_id, subject=subject, relation=relation, obj=obj, evidence=evidence
            )
        return Change(_summary([result], batch_id), batch_id, [result])

    def forget(self, client: str, fact_ids: list[int]) -> Change:
        """Delete facts (kept in history as deleted; ``undo`` brings them back)."""
        if not 1 <= len(fact_ids) <= MAX_LIMIT:
            raise InvalidInputError(f"forget takes 1 to {MAX_LIMIT} fact ids")
        ids = " ".join(map(str, fact_ids))
        with self._lock, self.store.batch(ORIGIN, f"mcp {client}: forget {ids}") as batch_id:
            removed = [self.store.remove_fact(fact_id) for fact_id in fact_ids]
        labels = "; ".join(f"fact {fact.id}: {fact.label}" for fact in removed)
        return Change(f"forgot {labels} (undo: batch {batch_id})", batch_id, removed=removed)

    def undo(self, batch_id: int | None = None) -> UndoResult:
        """Undo an MCP batch: ``batch_id``, or the latest one not yet undone."""
        with self._lock:
            return self.store.undo(batch_id=batch_id, kind=ORIGIN)

    def remember(self, client: str, text: str, context: str = "") -> Change:
        """Let the model read a note in write mode and store the facts it states."""
        text = text.strip()
        if not text:
            raise InvalidInputError("the note is empty")
        if len(text) > MAX_NOTE_CHARS:
            raise InvalidInputError(
                f"a note holds at most {MAX_NOTE_CHARS} characters (this one {len(text)}): "
                "send it a few sentences at a time, or ingest the document with memllm ingest"
            )
        with self._model_lock:
            session = self._model_session()
            results = session.remember(text, session_id=client, context=context, origin=ORIGIN)
            stored = [r for r in results if r.action != "overruled"]
            batch_id = None
            if stored:  # the batch that logged the first stored fact's latest op
                batch_id = session.store.history(limit=1, fact_id=stored[0].fact.id)[0].batch_id
        if not results:
            return Change("nothing stored: the note states no fact memllm could extract", None)
        return Change(_summary(results, batch_id), batch_id, results)

    def _model_session(self) -> Session:
        """The write-mode session: the model loaded and a connection opened, on first use."""
        if self._session is None:
            if self._load_model is None:
                raise InvalidInputError("this server was started without a model")
            model = self._load_model()
            self._session = Session(Store.open(self.store.path), model, None, me=self.me)
        return self._session
