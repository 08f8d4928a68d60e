"""What ingest reads: the documents that paths name, and a notes vault's hygiene rules.

A path is a file (always read, whatever its name), ``-`` (stdin, spooled to a
temporary file) or a folder. A folder is walked top-down and the walk never enters what it skips:

- hidden files and folders (a name starting with "."): ``.obsidian/``, ``.trash/``,
  ``.git/``, editors' swap files;
- what a ``.memllmignore`` says (gitignore syntax, matched by pathspec): the file at
  the folder given to ingest applies to everything under it, and one in a subfolder to
  what is under that subfolder (paths relative to where the file is);
- what ``--exclude`` globs match (the relative path or the file name);

and of what is left, the files an ``--include`` glob matches. Hidden and ignored
entries are counted (a skipped folder counts once), so ingest can say what it left
out.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import IO, TYPE_CHECKING

from memllm_cli.ingest.reports import DocumentReport

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")
DEFAULT_INCLUDE = ("*.md", "*.markdown", "*.txt", "*.text")
IGNORE_FILE = ".memllmignore"


@dataclass
class Skipped:
    """Entries a walk left out: hidden ones, and those a ``.memllmignore`` names."""

    hidden: int = 0
    ignored: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"hidden": self.hidden, "ignored": self.ignored}


def hidden(name: str) -> bool:
    return name.startswith(".")


def read_ignore(folder: Path) -> GitIgnoreSpec | None:
    """The ``.memllmignore`` of ``folder``, or None when it has none (or it is unreadable)."""
    path = folder / IGNORE_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines(text.splitlines())


def walk(
    root: Path,
    include: Sequence[str],
    exclude: Sequence[str] = (),
    skipped: Skipped | None = None,
) -> Iterator[Path]:
    """The files under ``root`` ingest reads, sorted by path; counts what it skips."""
    counts = skipped if skipped is not None else Skipped()
    specs: list[tuple[Path, GitIgnoreSpec]] = []  # the ignore files of the folders above
    found: list[Path] = []
    for top, dirs, files in os.walk(root):
        folder = Path(top)
        specs = [(base, s) for base, s in specs if folder.is_relative_to(base)]
        spec = read_ignore(folder)
        if spec is not None:
            specs.append((folder, spec))
        dirs[:] = sorted(d for d in dirs if _kept(folder / d, True, specs, counts))
        for name in files:
            path = folder / name
            if name == IGNORE_FILE or not _kept(path, False, specs, counts):
                continue
            relative = str(path.relative_to(root))
            if (
                any(fnmatch(name, g) for g in include)
                and not any(fnmatch(relative, g) or fnmatch(name, g) for g in exclude)
                and path.is_file()
            ):
                found.append(path)
    return iter(sorted(found))


def _kept(
    path: Path, is_dir: bool, specs: list[tuple[Path, GitIgnoreSpec]], counts: Skipped
) -> bool:
    """Whether the walk keeps ``path``: not hidden, and no ignore file above it names it."""
    if hidden(path.name):
        counts.hidden += 1
        return False
    for base, spec in specs:
        if spec.match_file(path.relative_to(base).as_posix() + ("/" if is_dir else "")):
            counts.ignored += 1
            return False
    return True


@dataclass
class Document:
    """One input: a file, or stdin spooled to a temporary file."""

    uri: str
    name: str
    path: Path
    markdown: bool
    temporary: bool = False  # stdin's spool file, removed once read
    renamed_from: Document | None = None  # the file it was before a rename, gone from disk


def discover(
    paths: Sequence[str],
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = (),
    skipped: Skipped | None = None,
) -> Iterator[Document | DocumentReport]:
    """Documents named by ``paths`` (folders walked by :func:`walk`).

    Unreadable paths come as skipped reports; ``skipped`` counts what folder walks left out.
    """
    for raw in paths:
        if raw == "-":
            yield _spool_stdin(sys.stdin.buffer)
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            for file in walk(path, include, exclude, skipped):
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
