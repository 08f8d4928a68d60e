"""``memllm ingest``: documents into memory, sentence by sentence, in write mode.

Each document is one transaction and one undo batch. A document whose content
(sha256) was ingested before is skipped. An edited document is compared with its
last ingested version sentence by sentence: unchanged sentences keep their facts
without running the model, new sentences go through it, and facts that only the
vanished sentences stated are retracted (kept in history).

The model sees, for each focus sentence, the preceding sentences of the same
document. That context grows sentence by sentence and, past its budget, restarts
from the previous sentence: so consecutive prompts share a long prefix, and
llama.cpp's KV cache evaluates only the tokens that are new.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, Any

from memllm_cli.errors import InvalidInputError
from memllm_cli.hashing import file_sha256
from memllm_cli.ingest.dates import DocumentDates
from memllm_cli.ingest.text import sentences
from memllm_cli.protocol import PROTOCOL_VERSION, ProtocolError
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.prompts import next_context
from memllm_cli.store import Evidence, NameScope, Store

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")
DEFAULT_INCLUDE = ("*.md", "*.markdown", "*.txt", "*.text")
REPLACEMENT = "\ufffd"  # what the "replace" decode error handler puts for a bad sequence


@dataclass
class Document:
    """One input: a file, or stdin spooled to a temporary file."""

    uri: str
    name: str
    path: Path
    markdown: bool
    temporary: bool = False  # stdin's spool file, removed once read


@dataclass
class DocumentReport:
    name: str
    status: str  # ingested | unchanged | empty | skipped | dry-run
    sentences: int = 0
    reused: int = 0
    facts: int = 0
    added: int = 0
    superseded: int = 0
    retracted: int = 0
    parse_failures: int = 0
    seconds: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    """What a progress display needs, updated after every sentence."""

    document: str = ""
    fraction: float = 0.0  # of the current document, by characters read
    sentences: int = 0
    facts: int = 0


def discover(
    paths: Sequence[str],
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = (),
) -> Iterator[Document | DocumentReport]:
    """Documents named by ``paths`` (folders recursively); unreadable ones as skipped reports."""
    for raw in paths:
        if raw == "-":
            yield _spool_stdin(sys.stdin.buffer)
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and any(fnmatch(p.name, g) for g in include)
                and not any(
                    fnmatch(str(p.relative_to(path)), g) or fnmatch(p.name, g) for g in exclude
                )
            )
            for file in found:
                yield _document(file)
        elif path.is_file():
            yield _document(path)
        elif path.exists():
            yield DocumentReport(raw, "skipped", message="not a regular file")
        else:
            yield DocumentReport(raw, "skipped", message="no such file or folder")


def _document(path: Path) -> Document:
    resolved = path.resolve()
    return Document(str(resolved), str(path), resolved, path.suffix.lower() in MARKDOWN_SUFFIXES)


def _spool_stdin(stream: IO[bytes]) -> Document:
    """Copy stdin to a temporary file: it is hashed first and read again as text."""
    spool = tempfile.NamedTemporaryFile(prefix="memllm-stdin-", delete=False)  # noqa: SIM115
    try:
        with spool:
            while block := stream.read(1 << 20):
                spool.write(block)
    except BaseException:  # Ctrl-C or SIGTERM while reading: leave nothing in /tmp
        Path(spool.name).unlink(missing_ok=True)
        raise
    return Document("stdin", "stdin", Path(spool.name), markdown=True, temporary=True)


def remove_spools(found: Sequence[Document | DocumentReport]) -> None:
    """Delete the spool files of documents a stopped or failed run did not reach."""
    for item in found:
        if isinstance(item, Document) and item.temporary:
            item.path.unlink(missing_ok=True)


def is_binary(path: Path) -> bool:
    """A NUL byte in the first 8 KiB: not text we can read."""
    with path.open("rb") as handle:
        return b"\x00" in handle.read(8192)


def invalid_utf8(path: Path) -> int:
    """How many invalid UTF-8 sequences reading ``path`` with ``errors="replace"`` replaces.

    Each one becomes one U+FFFD; a U+FFFD the file itself holds is its three bytes
    EF BF BD, which always decode as one (EF is never a continuation byte), so the
    difference of the two counts is the number of replacements.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    encoded = REPLACEMENT.encode()
    decoded = present = 0
    tail = b""
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            decoded += decoder.decode(block).count(REPLACEMENT)
            window = tail + block
            present += window.count(encoded)
            tail = window[-(len(encoded) - 1) :]
    decoded += decoder.decode(b"", final=True).count(REPLACEMENT)
    return decoded - present


class _Counted(io.TextIOWrapper):
    """A text reader whose position in characters read is known, for progress."""

    chars = 0

    def __next__(self) -> str:
        line = super().__next__()
        self.chars += len(line)
        return line


@dataclass
class Ingestor:
    """Runs write mode over documents into one store.

    ``session`` may be a function that opens one: it is called when the first sentence
    is read (its evidence names the model), so documents that are unchanged, empty or
    unreadable never load the model.
    """

    store: Store
    session: Session | Callable[[], Session]
    dry_run: bool = False
    code: bool = False
    on_proposal: Callable[[dict[str, Any]], None] | None = None
    on_progress: Callable[[Progress], None] | None = None
    progress: Progress = field(default_factory=Progress)

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
            self._read(doc, sha, report, previous=None, source_id=None)
        else:
            with self.store.batch("ingest", f"ingest {doc.name}"):
                source_id = self.store.begin_document(doc.uri, sha)
                kept = self._read(doc, sha, report, previous, source_id)
                if previous is not None:
                    report.retracted = len(self.store.retract_unstated(doc.uri, kept))
        if report.sentences == 0 and report.status != "skipped":
            report.status, report.message = "empty", "no text"
        if replaced := invalid_utf8(doc.path):
            report.message = f"invalid UTF-8: {replaced} byte sequence(s) replaced"
        report.seconds = time.perf_counter() - started
        return report

    def _read(
        self,
        doc: Document,
        sha: str,
        report: DocumentReport,
        previous: tuple[int, str] | None,
        source_id: int | None,
    ) -> set[int]:
        """Extract (or carry over) the facts of every sentence; return the fact ids stated."""
        carried: dict[str, list[tuple[str, str, str]]] = {}
        if previous is not None:
            for sentence, fact in self.store.stated_by(previous[0]):
                carried.setdefault(sentence, []).append((fact.subject, fact.relation, fact.object))
        kept: set[int] = set()
        context: list[str] = []
        scope: NameScope | None = None  # the names this document named; see store.resolution
        dates = DocumentDates("" if doc.temporary else doc.path.name)  # facts' valid_from
        size = max(doc.path.stat().st_size, 1)
        self.progress.document = doc.name
        with doc.path.open("rb") as raw:
            stream = _Counted(raw, encoding="utf-8", errors="replace", newline=None)
            for position, sentence in enumerate(
                sentences(stream, markdown=doc.markdown, code=self.code)
            ):
                report.sentences += 1
                if sentence.heading:
                    dates.heading(sentence.heading, sentence.text)
                digest = hashlib.sha256(sentence.text.encode()).hexdigest()
                if source_id is not None:
                    self.store.add_segment(
                        source_id,
                        position,
                        digest,
                        sentence.line_start,
                        sentence.line_end,
                        sentence.text,
                    )
                evidence = Evidence(
                    origin="document",
                    source_kind="document",
                    uri=doc.uri,
                    sha256=sha,
                    sentence=sentence.text,
                    line_start=sentence.line_start,
                    line_end=sentence.line_end,
                    extractor=self._session().model.name,
                    protocol_version=PROTOCOL_VERSION,
                )
                if scope is None:  # the user's own entity is never resolved
                    scope = NameScope(keep=frozenset({self._session().me}))
                scope.read(sentence.text)
                if sentence.text in carried:
                    report.reused += 1
                    triples = carried[sentence.text]
                else:
                    triples = self._extract(sentence.text, " ".join(context), report)
                for subject, relation, obj in triples:
                    self._store(subject, relation, obj, evidence, report, kept, scope, dates.date)
                context = next_context(context, sentence.text)
                self.progress.sentences += 1
                self.progress.fraction = min(stream.chars / size, 1.0)
                if self.on_progress is not None:
                    self.on_progress(self.progress)
        return kept

    def _session(self) -> Session:
        """The session, opened now if it was given as a function."""
        if not isinstance(self.session, Session):
            self.session = self.session()
        return self.session

    def _extract(
        self, sentence: str, context: str, report: DocumentReport
    ) -> list[tuple[str, str, str]]:
        try:
            return [
                (t.subject, t.relation, t.object)
                for t in self._session().extract(sentence, context)
            ]
        except ProtocolError:
            report.parse_failures += 1
            return []

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
        kept.add(result.fact.id)
        report.added += result.action in ("added", "revived")
        report.superseded += len(result.superseded)

    def _resolved(self, name: str, scope: NameScope) -> str:
        """The name a real run would store ``name`` under (a dry run shows it, writes nothing)."""
        try:
            return self.store.resolve_name(name, scope)
        except InvalidInputError:
            return name
