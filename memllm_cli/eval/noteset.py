"""The notes QA set: note files (a file, or a folder's notes) and their questions.

Questions are JSONL in the notes-dev format, ``{"file", "q", "a": [accepted answers]}``;
``file`` names the note that states the answer, relative to the notes folder. A
folder's notes are its ``.md``/``.txt`` files as ``memllm ingest DIR`` finds them,
less a README (it describes the set; it is not a note).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from memllm_cli.errors import MemllmError
from memllm_cli.eval.qa import QAItem, read_qa_file
from memllm_cli.ingest.discovery import Document, discover
from memllm_cli.ingest.text import sentences


@dataclass(frozen=True)
class NoteFile:
    name: str  # as questions name it: the path relative to the notes folder
    path: Path
    markdown: bool

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace")

    def sentences(self) -> list[str]:
        """Its sentences, split as ingest splits them."""
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            return [s.text for s in sentences(handle, markdown=self.markdown)]


@dataclass
class NotesSet:
    files: list[NoteFile]
    items: list[QAItem]


def note_files(path: Path) -> list[NoteFile]:
    """The note files at ``path``: the file itself, or a folder's notes (a README left out)."""
    root = path if path.is_dir() else path.parent
    files = []
    for doc in discover([str(path)]):
        if isinstance(doc, Document):
            name = Path(doc.name).relative_to(root).as_posix()
            if path.is_file() or Path(name).stem.casefold() != "readme":
                files.append(NoteFile(name, Path(doc.name), doc.markdown))
    if not files:
        raise MemllmError(f"no notes (.md or .txt files) at {path}")
    return files


def with_files(items: Sequence[QAItem], files: Sequence[NoteFile], where: str) -> list[QAItem]:
    """``items`` with each question's note file checked (or, with one file, filled in)."""
    names = [f.name for f in files]
    out = []
    for item in items:
        if item.file is None and len(files) == 1:
            item = replace(item, file=names[0])
        elif item.file is not None and item.file not in names:
            raise MemllmError(
                f"{where}: {item.question!r} is about {item.file!r}, "
                f"which is not among the notes ({', '.join(names)})"
            )
        out.append(item)
    return out


def read_notes(path: Path, questions: Path) -> NotesSet:
    """A notes file or folder and its questions (JSONL, notes-dev format)."""
    files = note_files(path)
    return NotesSet(files, with_files(read_qa_file(questions), files, str(questions)))


def generated_notes(folder: Path, seed: int, count: int) -> tuple[Path, list[QAItem]]:
    """Invented notes (``datasets.notes``, an evaluation seed) and the questions they answer.

    Only questions with one right answer in the whole file are kept (a user who
    "moved to" two cities has no single residence to ask about).
    """
    from memllm_cli.datasets.notes import markdown, notes

    items = notes(random.Random(f"eval-{seed}"), count)
    objects: dict[tuple[str, str], set[str]] = {}
    for note in items:
        for triple in note.triples:
            objects.setdefault((triple.subject, triple.relation), set()).add(triple.object)
    questions = []
    for note in items:
        for question, query, answers in note.questions:
            key = (query.subject or "", query.relation)
            if query.subject is not None and len(objects.get(key, ())) == 1:
                questions.append(QAItem(question, tuple(answers)))
    path = folder / "notes.md"
    path.write_text(markdown("Notes", items), encoding="utf-8")
    return path, questions
