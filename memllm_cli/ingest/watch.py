"""``memllm ingest --watch``: keep memory in step with a folder as its files change.

The watcher reacts to batches of file changes (watchfiles yields them, debounced;
tests feed their own) and brings each document it is told about to what a re-run
of ``memllm ingest`` would make of it: the same :class:`~memllm_cli.ingest.pipeline.Ingestor`,
so idempotence, carry-over and retraction are the same. An empty batch means only
that time passed (pending work may be due).

What counts as a document is what the ingest walker lists (``scan``), asked again
whenever a change names a path the watcher does not know (a new file, a folder moved
in, an ignore file edited), so the two never disagree. Edits to known documents need
no rescan.

The kind of change an event reports is not trusted: editors save by writing a
temporary file and renaming it over the old one, or by moving the old one aside
first, and the events for that arrive split or merged in any order. The file as it
is on disk when the batch is handled decides:

- it exists: it is ingested (unchanged content costs a hash, nothing else);
- it is gone: it gets ``grace`` seconds to come back (an editor's save in progress),
  then it is removed (its facts retracted, undoably: see
  :meth:`~memllm_cli.ingest.pipeline.Ingestor.remove`). A new document whose bytes
  are those of a document waiting to be removed is that document renamed: its facts
  carry over and the old name goes, in one batch, with no fact retracted and
  re-added;
- it is empty where memory holds text from it: also ``grace`` seconds first (an
  editor truncates before it writes), then it is ingested as it is;
- it changed while it was being read (size or mtime differ after): it is read
  again on the next batch, so the last write always wins.

Editors' temporary and swap files (``.#x``, ``#x#``, ``x~``, ``.x.swp``, vim's
``4913``, ``x.tmp`` ...) are never documents, whatever the include globs say.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from memllm_cli.errors import StoreError
from memllm_cli.hashing import EMPTY_SHA256, file_sha256
from memllm_cli.ingest.discovery import Document
from memllm_cli.ingest.pipeline import Ingestor
from memllm_cli.ingest.reports import DocumentReport

# One batch of changes, as watchfiles yields them: (kind of change, path). The kind is ignored.
Changes = Collection[tuple[Any, str]]

EDITOR_TEMP = re.compile(
    r"^\.#|^#.*#$|~$|\.sw[a-z]$|^4913$|\.(tmp|temp|bak|part|crswap|kate-swp)$"
    r"|___jb_(tmp|old)___$|^\.goutputstream-|^\.~lock\.|^\.syncthing\.",
    re.IGNORECASE,
)
DEBOUNCE_MS = 1000  # the longest a burst of changes is gathered into one batch
QUIET_MS = 200  # a batch is handled once no new change came for this long
TICK_MS = 250  # how often pending work is looked at when nothing changes
GRACE_S = 1.0  # how long a vanished or emptied document gets to come back
RETRY_S = 5.0  # how long after a failed write (memory locked) a document is tried again
CAUGHT_UP_SILENT = (
    "unchanged",
    "skipped",
)  # what catching up does not report (the first ingest did)


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


def editor_temp(name: str) -> bool:
    """Whether a file name is an editor's temporary, backup, lock or swap file."""
    return EDITOR_TEMP.search(name) is not None


@dataclass
class _Pending:
    """A document to look at again once ``due`` (a monotonic time) has passed."""

    due: float
    doc: Document
    why: str  # gone | empty | again


@dataclass
class _Stat:
    size: int
    mtime_ns: int


def _stat(path: Path) -> _Stat | None:
    """The file's size and mtime, or None when it is not a regular file (gone, a folder)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return _Stat(st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


class Watcher:
    """Turns batches of changes under ``roots`` into ingests and removals.

    ``scan`` lists the documents that count now (the ingest walker over the roots);
    ``documents`` are those the initial ingest read. ``on_report`` receives one report
    per document handled; ``stop`` is asked between documents. ``clock`` is monotonic
    seconds (tests pass their own).
    """

    def __init__(
        self,
        ingestor: Ingestor,
        roots: Sequence[Path],
        scan: Callable[[], Iterable[Document]],
        on_report: Callable[[DocumentReport], None],
        *,
        stop: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        grace: float = GRACE_S,
        documents: Iterable[Document] = (),
    ) -> None:
        self.ingestor = ingestor
        self.roots = [Path(os.path.abspath(r)).resolve() for r in roots]
        self.scan = scan
        self.on_report = on_report
        self.stop = stop or (lambda: False)
        self.clock = clock
        self.grace = grace
        self.known: dict[str, Document] = {doc.uri: doc for doc in documents}
        self.pending: dict[str, _Pending] = {}
        self._caught_up = False

    # -- the loop -------------------------------------------------------------------------------

    def run(self, batches: Iterable[Changes]) -> None:
        """Handle each batch until the batches end or ``stop`` says so."""
        for changes in batches:
            self.step(changes)
            if self.stop():
                return

    def step(self, changes: Changes) -> None:
        """Handle one batch of changes (an empty one: time passed).

        The first batch also catches up with whatever changed before watching began:
        every document is looked at, and reported only when it changed meanwhile.
        """
        touched = {uri for uri in (self._uri(path) for _, path in changes) if self._relevant(uri)}
        quiet: set[str] = set()
        first = not self._caught_up
        if first or any(uri not in self.known for uri in touched):
            touched |= self._rescan()
        if first:
            self._caught_up = True
            quiet = set(self.known) - touched
            touched |= quiet
        now = self.clock()
        due = {uri for uri, item in self.pending.items() if item.due <= now}
        # Vanished documents first, so a new one in the same batch can be their rename.
        for uri in sorted(touched | due, key=lambda uri: (self._exists(uri), uri)):
            if self.stop():
                return
            report = self._settle(uri, uri in due)
            if report is not None and not (uri in quiet and report.status in CAUGHT_UP_SILENT):
                self.on_report(report)

    def _rescan(self) -> set[str]:
        """Ask the walker again: documents that appeared, and known ones that vanished.

        A folder moved away reports only itself, never the documents in it. A known
        document the walker no longer lists but still on disk (newly ignored) leaves
        the watch untouched, as a re-run would not read it either.
        """
        current = {doc.uri: doc for doc in self.scan() if not editor_temp(doc.path.name)}
        changed = current.keys() - self.known.keys()
        for uri, doc in self.known.items():
            if uri not in current and not self._exists(uri):
                changed.add(uri)
                current[uri] = doc  # kept until removed
        self.known = current
        return changed

    # -- one document ---------------------------------------------------------------------------

    def _settle(self, uri: str, due: bool) -> DocumentReport | None:
        """Bring one document in line with the file on disk; its report, or None (waiting)."""
        doc = self.known.get(uri) or (self.pending[uri].doc if uri in self.pending else None)
        if doc is None:
            return None
        pending = self.pending.get(uri)
        before = _stat(doc.path)
        if before is None:  # gone
            if pending is None or pending.why != "gone":
                self.pending[uri] = _Pending(self.clock() + self.grace, doc, "gone")
                return None
            if not due:
                return None
            del self.pending[uri]
            self.known.pop(uri, None)
            return self._remove(doc)
        waited = due and pending is not None and pending.why == "empty"
        if before.size == 0 and not waited and self._holds_text(doc):
            # An editor may have emptied it to write it again: give it time.
            if pending is None or pending.why != "empty":
                self.pending[uri] = _Pending(self.clock() + self.grace, doc, "empty")
            return None
        self.pending.pop(uri, None)
        renamed_from = self._renamed_from(doc)
        try:
            report = self.ingestor.ingest(replace(doc, renamed_from=renamed_from))
        except StoreError as exc:  # the memory locked by another writer for long: try later
            self.pending[uri] = _Pending(self.clock() + RETRY_S, doc, "again")
            return DocumentReport(doc.name, "skipped", message=f"{exc}; trying again later")
        if renamed_from is not None and report.status == "ingested":
            self.pending.pop(renamed_from.uri, None)
            self.known.pop(renamed_from.uri, None)
        if report.status != "interrupted" and _stat(doc.path) != before:
            self.pending[uri] = _Pending(self.clock(), doc, "again")
            report.message = "; ".join(
                m for m in (report.message, "changed while being read: reading it again") if m
            )
        return report

    def _remove(self, doc: Document) -> DocumentReport | None:
        """Remove a document gone from disk, in one undoable batch (None: nothing to remove).

        Its facts no other source states are retracted and its sentences answer
        nothing, as ingesting it emptied would (see ``Store.remove_document``).
        """
        if not self._holds_text(doc):
            return None
        report = DocumentReport(doc.name, "removed")
        store = self.ingestor.store
        try:
            with store.batch("ingest", f"remove {doc.name}"):
                report.retracted = len(store.remove_document(doc.uri))
        except StoreError as exc:
            self.pending[doc.uri] = _Pending(self.clock() + RETRY_S, doc, "gone")
            self.known[doc.uri] = doc
            return DocumentReport(doc.name, "skipped", message=f"{exc}; trying again later")
        return report

    def _holds_text(self, doc: Document) -> bool:
        version = self.ingestor.store.ingested_version(doc.uri)
        return version is not None and version[1] != EMPTY_SHA256

    def _renamed_from(self, doc: Document) -> Document | None:
        """The vanished document ``doc`` was renamed from: same bytes, waiting to be removed.

        Only for a document memory holds no text of under this name.
        """
        gone = [p.doc for p in self.pending.values() if p.why == "gone"]
        if not gone or self._holds_text(doc):
            return None
        try:
            sha = file_sha256(doc.path)
        except OSError:
            return None
        for old in gone:
            version = self.ingestor.store.ingested_version(old.uri)
            if version is not None and version[1] == sha and not self._exists(old.uri):
                return old
        return None

    # -- paths ----------------------------------------------------------------------------------

    @staticmethod
    def _uri(path: str) -> str:
        """The key a path has as a document (as the walker's ``Document.uri``)."""
        return str(Path(os.path.abspath(path)).resolve())

    @staticmethod
    def _exists(uri: str) -> bool:
        return os.path.isfile(uri)

    def _relevant(self, uri: str) -> bool:
        """Under a watched folder or a watched file itself, and no editor's temporary file."""
        path = Path(uri)
        if editor_temp(path.name):
            return False
        return any(path == root or root in path.parents for root in self.roots)


def watched_folders(roots: Sequence[Path]) -> tuple[list[Path], bool]:
    """What to hand the file watcher, and whether recursively.

    Folders are watched whole; a file through its folder, because editors replace
    a file by renaming another over it, and a watch on the file itself ends there.
    Recursion is needed only when a folder was named.
    """
    resolved = [Path(os.path.abspath(r)).resolve() for r in roots]
    folders = [r for r in resolved if r.is_dir()]
    for root in resolved:
        if not root.is_dir() and not any(
            f == root.parent or f in root.parent.parents for f in folders
        ):
            folders.append(root.parent)
    return list(dict.fromkeys(folders)), any(r.is_dir() for r in resolved)


def changes(roots: Sequence[Path], stop: StopFlag) -> Iterator[Changes]:
    """Batches of changes under ``roots`` from watchfiles, and an empty batch each tick.

    Each batch waits until no change came for ``QUIET_MS`` (``DEBOUNCE_MS`` at most).
    Ends when ``stop.is_set()``; a KeyboardInterrupt raised by a signal handler passes.
    """
    import watchfiles

    folders, recursive = watched_folders(roots)
    yield from watchfiles.watch(
        *folders,
        watch_filter=lambda _change, path: not editor_temp(os.path.basename(path)),
        debounce=DEBOUNCE_MS,
        step=QUIET_MS,
        stop_event=stop,
        rust_timeout=TICK_MS,
        yield_on_timeout=True,
        recursive=recursive,
        ignore_permission_denied=True,
    )
