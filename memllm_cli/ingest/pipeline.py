"""``memllm ingest``: documents into memory, sentence by sentence, in write mode.

Each document is one transaction and one undo batch. A document whose content
(sha256) was ingested before is skipped. An edited document is compared with its
last ingested version sentence by sentence: unchanged sentences keep their facts
without running the model, new sentences go through it, and facts that only the
vanished sentences stated are retracted (kept in history).

The model runs outside any transaction: a document is read whole first, its
sentences and the model's writes held in memory, and only then stored in one
short write transaction. So other writers (``facts add``, an import) wait for
that moment, not for the model, and a crash or a Ctrl-C before it leaves memory
as it was. Writes are applied in sentence order, so name resolution sees what
earlier sentences stored, as before; while reading, the grounding check counts
names earlier sentences wrote as known (:meth:`Ingestor._known`).

A sentence too long for the model is skipped with a warning naming the file and
line; the run goes on. A renamed document (``ingest --watch`` sees one) reuses its
old name's facts, and the old name is removed in the same batch.

The model sees, for each focus sentence, the preceding sentences of the same
document. That context grows sentence by sentence and, past its budget, restarts
from the previous sentence: so consecutive prompts share a long prefix, and
llama.cpp's KV cache evaluates only the tokens that are new.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memllm_cli.errors import InvalidInputError
from memllm_cli.hashing import file_sha256
from memllm_cli.ingest.dates import DocumentDates
from memllm_cli.ingest.discovery import Document
from memllm_cli.ingest.notemeta import FRONT_MATTER, note_title, property_facts, record_note
from memllm_cli.ingest.reports import DocumentReport, Progress
from memllm_cli.ingest.spool import ReadSpool, SentenceRead, Triples
from memllm_cli.ingest.text import Counted, Sentence, invalid_utf8, is_binary, sentences
from memllm_cli.ingest.vault import Note, Property
from memllm_cli.protocol import PROTOCOL_VERSION, ProtocolError
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.model import PromptTooLongError
from memllm_cli.runtime.prompts import next_context
from memllm_cli.store import Evidence, NameScope, Store
from memllm_cli.store.text import norm

# Longer is no sentence (a minified line, a base64 blob) and would not fit a small model's
# context (4096 tokens) beside its prompt: skipped without asking the model.
MAX_SENTENCE_CHARS = 8000


@dataclass
class Ingestor:
    """Runs write mode over documents into one store.

    ``session`` may be a function that opens one: it is called when the first sentence
    is read (its evidence names the model), so documents that are unchanged, empty or
    unreadable never load the model. ``stop`` is asked before each sentence: once it
    says yes, the document being read is dropped (nothing of it is stored) and its
    report says "interrupted".
    """

    store: Store
    session: Session | Callable[[], Session]
    dry_run: bool = False
    code: bool = False
    on_proposal: Callable[[dict[str, Any]], None] | None = None
    on_progress: Callable[[Progress], None] | None = None
    stop: Callable[[], bool] | None = None
    progress: Progress = field(default_factory=Progress)
    _written: set[str] = field(default_factory=set)  # norms of names this document wrote

    def ingest(self, doc: Document) -> DocumentReport:
        try:
            return self._ingest(doc)
        finally:
            if doc.temporary:
                doc.path.unlink(missing_ok=True)

    def _ingest(self, doc: Document) -> DocumentReport:
        started = time.perf_counter()
        report = DocumentReport(doc.name, "ingested")
        try:
            if is_binary(doc.path):
                report.status, report.message = "skipped", "binary file"
                return report
            sha = file_sha256(doc.path)
        except OSError as exc:
            report.status, report.message = "skipped", f"cannot read: {exc.strerror}"
            return report
        previous = self.store.ingested_version(doc.uri)
        if previous is not None and previous[1] == sha:
            report.status, report.message = "unchanged", "already ingested"
            return report
        if self.dry_run:
            report.status = "dry-run"
        moved = doc.renamed_from and self.store.ingested_version(doc.renamed_from.uri)
        with ReadSpool() as read:
            note = self._read(doc, sha, report, [v[0] for v in (previous, moved) if v], read)
            if report.status == "interrupted":
                report.message = "stopped before its end; nothing from it was stored"
                return report
            report.warnings += [f"{doc.name}:{w}" for w in note.warnings]
            if not self.dry_run:
                self._apply(doc, sha, read, report, note)
        if report.sentences == report.facts == 0 and not note.front_matter and not note.tags:
            report.status, report.message = "empty", "no text"
        if replaced := invalid_utf8(doc.path):
            report.message = f"invalid UTF-8: {replaced} byte sequence(s) replaced"
        report.seconds = time.perf_counter() - started
        return report

    def _apply(
        self, doc: Document, sha: str, read: ReadSpool, report: DocumentReport, note: Note
    ) -> None:
        """Store a document read whole: its sentences and facts, in one short transaction.

        The note's aliases and metadata first, then its front matter's facts, then
        sentence by sentence in order, as the model read them, so short names resolve
        against what earlier sentences stored. A rename's old name goes last, once the
        new one states what it carried over.
        """
        old = doc.renamed_from
        renamed = f"renamed from {old.name}" if old is not None else ""
        with self.store.batch("ingest", f"ingest {doc.name}" + (f" ({renamed})" if old else "")):
            latest = self.store.ingested_version(doc.uri)  # another run may have stored it
            if latest is not None and latest[1] == sha:
                report.status, report.message = "unchanged", "ingested meanwhile by another run"
                return
            source_id = self.store.begin_document(doc.uri, sha)
            title = note_title(doc.path, doc.temporary)
            stored = record_note(self.store, source_id, note, title, latest[0] if latest else None)
            report.aliases = len(stored.aliases)
            report.warnings += [f"{doc.name}: {w}" for w in stored.warnings]
            scope = NameScope(
                keep=frozenset({self._session().me} if read.count else ()),
                links=note.names(title),
            )
            kept: set[int] = set()
            self._front_matter(doc, sha, note, report, kept, scope)
            for item in read:
                sentence = item.sentence
                digest = hashlib.sha256(sentence.text.encode()).hexdigest()
                self.store.add_segment(
                    source_id,
                    item.position,
                    digest,
                    sentence.line_start,
                    sentence.line_end,
                    sentence.text,
                )
                scope.read(sentence.text)
                evidence = self._evidence(doc, sha, sentence)
                for subject, relation, obj in item.triples:
                    self._store(
                        subject, relation, obj, evidence, report, kept, scope, item.valid_from
                    )
            if latest is not None:
                report.retracted = len(self.store.retract_unstated(doc.uri, kept))
            if old is not None:
                report.retracted += len(self.store.remove_document(old.uri))
                report.message = renamed

    def _read(
        self,
        doc: Document,
        sha: str,
        report: DocumentReport,
        carry: list[int],
        read: ReadSpool,
    ) -> Note:
        """Extract (or carry over) the facts of every sentence into ``read``; store nothing.

        ``carry``: earlier versions (source ids; the last version, and a renamed file's)
        whose sentences keep the facts they stated then (or their having stated none)
        without the model. A dry run proposes each sentence's facts as it goes. Returns
        what the parse found besides sentences.
        """
        carried: dict[str, Triples] = {}
        for source_id in carry:
            for sentence, fact in self.store.stated_by(source_id):
                carried.setdefault(sentence, []).append((fact.subject, fact.relation, fact.object))
            for sentence in self.store.segment_texts(source_id):
                carried.setdefault(sentence, [])
        note = Note()
        title = note_title(doc.path, doc.temporary)
        self._written = set()
        context: list[str] = []
        scope: NameScope | None = None  # a dry run's names; see store.resolution
        dates = DocumentDates("" if doc.temporary else doc.path.name)  # facts' valid_from
        size = max(doc.path.stat().st_size, 1)
        self.progress.document = doc.name
        with doc.path.open("rb") as raw:
            stream = Counted(raw, encoding="utf-8", errors="replace", newline=None)
            for position, sentence in enumerate(
                sentences(stream, markdown=doc.markdown, code=self.code, note=note)
            ):
                if self.stop is not None and self.stop():
                    report.status = "interrupted"
                    return note
                report.sentences += 1
                if report.sentences == 1:  # evidence names the model: load it before storing
                    self._session()
                if sentence.heading:
                    dates.heading(sentence.heading, sentence.text)
                triples = self._triples(doc, sentence, carried, context, report)
                if triples is not None:
                    if self.dry_run:
                        if scope is None:  # the user's own entity is never resolved
                            scope = NameScope(keep=frozenset({self._session().me}))
                        scope.links = note.names(title)  # those read so far
                        scope.read(sentence.text)
                        evidence = self._evidence(doc, sha, sentence)
                        for subject, relation, obj in triples:
                            self._store(subject, relation, obj, evidence, report, set(), scope)
                    else:
                        read.add(SentenceRead(position, sentence, triples, dates.date))
                    self._written.update(norm(t[i]) for t in triples for i in (0, 2))
                    context = next_context(context, sentence.text)
                self.progress.sentences += 1
                self.progress.fraction = min(stream.chars / size, 1.0)
                if self.on_progress is not None:
                    self.on_progress(self.progress)
        if self.dry_run:
            self._front_matter(doc, sha, note, report, set(), NameScope(links=note.names(title)))
        return note

    def _front_matter(
        self,
        doc: Document,
        sha: str,
        note: Note,
        report: DocumentReport,
        kept: set[int],
        scope: NameScope,
    ) -> None:
        """Store (or, in a dry run, propose) the facts the front matter's properties state."""
        title = note_title(doc.path, doc.temporary)
        valid_from = DocumentDates("" if doc.temporary else doc.path.name).date
        for prop, relation in property_facts(self.store, note, title):
            evidence = self._evidence(doc, sha, prop, extractor=FRONT_MATTER)
            for value in prop.values:
                self._store(str(title), relation, value, evidence, report, kept, scope, valid_from)

    def _evidence(
        self, doc: Document, sha: str, said: Sentence | Property, extractor: str | None = None
    ) -> Evidence:
        """Where a fact of ``doc`` was stated: by the model's write, under the protocol, or
        by front matter (``extractor``), which is no memory call."""
        return Evidence(
            origin="document",
            source_kind="document",
            uri=doc.uri,
            sha256=sha,
            sentence=said.text,
            line_start=said.line_start,
            line_end=said.line_end,
            extractor=extractor or self._session().model.name,
            protocol_version=None if extractor else PROTOCOL_VERSION,
        )

    def _triples(
        self,
        doc: Document,
        sentence: Sentence,
        carried: dict[str, Triples],
        context: list[str],
        report: DocumentReport,
    ) -> Triples | None:
        """The sentence's facts: carried over, or from the model; None when it was skipped."""
        if sentence.text in carried:
            report.reused += 1
            return carried[sentence.text]
        where = f"{doc.name}:{sentence.line_start}"
        if len(sentence.text) > MAX_SENTENCE_CHARS:
            report.warnings.append(
                f"{where}: a sentence of {len(sentence.text)} characters is too long "
                "for the model; skipped"
            )
            return None
        try:
            return self._extract(sentence.text, " ".join(context), report)
        except PromptTooLongError as exc:
            report.warnings.append(f"{where}: {exc}; sentence skipped")
            return None

    def _session(self) -> Session:
        """The session, opened now if it was given as a function."""
        if not isinstance(self.session, Session):
            self.session = self.session()
        return self.session

    def _extract(
        self, sentence: str, context: str, report: DocumentReport
    ) -> list[tuple[str, str, str]]:
        session = self._session()
        before = session.dictated
        try:
            triples = session.extract(sentence, context, known=self._known)
            return [(t.subject, t.relation, t.object) for t in triples]
        except ProtocolError:
            report.parse_failures += 1
            return []
        finally:
            report.dictated += session.dictated - before

    def _known(self, name: str) -> list[int]:
        """Entities memory knows by ``name``; [-1] for a name an earlier sentence wrote.

        Those writes are not stored yet (see the module's docstring), but a later
        sentence may name what they named, as when each sentence was stored at once.
        """
        found = self.store.entity_ids(name)
        return found or ([-1] if norm(name) in self._written else [])

    def _store(
        self,
        subject: str,
        relation: str,
        obj: str,
        evidence: Evidence,
        report: DocumentReport,
        kept: set[int],
        scope: NameScope,
        valid_from: str | None = None,
    ) -> None:
        """Store one triple, its short names resolved in the document's ``scope``.

        ``valid_from`` is the sentence's date (:mod:`~memllm_cli.ingest.dates`), if any.
        """
        report.facts += 1
        self.progress.facts += 1
        if self.dry_run:
            subject, obj = (self._resolved(name, scope) for name in (subject, obj))
            if self.on_proposal is not None:
                self.on_proposal(
                    {
                        "subject": subject,
                        "relation": relation,
                        "object": obj,
                        "evidence": [evidence.to_dict()],
                    }
                )
            return
        try:
            result = self.store.add_fact(
                subject, relation, obj, evidence, valid_from=valid_from, scope=scope
            )
        except InvalidInputError:
            report.facts -= 1
            self.progress.facts -= 1
            return
        if result.action == "overruled":
            report.overruled += 1
            return
        kept.add(result.fact.id)
        report.added += result.action in ("added", "revived")
        report.superseded += len(result.superseded)

    def _resolved(self, name: str, scope: NameScope) -> str:
        """The name a real run would store ``name`` under (a dry run shows it, writes nothing)."""
        try:
            return self.store.resolve_name(name, scope)
        except InvalidInputError:
            return name
