"""The sentences of a document read so far, and their facts, kept on disk until stored.

Ingest reads a whole document before it stores any of it (see the pipeline). A
document may be 100 MB: its sentences wait in an anonymous temporary file (gone
with the process, however it ends), so memory stays flat whatever the size.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from memllm_cli.ingest.text import Sentence

Triples = list[tuple[str, str, str]]


@dataclass
class SentenceRead:
    """A sentence read and the facts it states, stored later with its whole document."""

    position: int
    sentence: Sentence
    triples: Triples
    valid_from: str | None


class ReadSpool:
    """Sentences read, in order: :meth:`add` each, then iterate them back. A context manager."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(  # noqa: SIM115 - closed by __exit__
            "w+", encoding="utf-8", prefix="memllm-read-"
        )
        self.count = 0

    def add(self, item: SentenceRead) -> None:
        s = item.sentence
        row = [item.position, s.text, s.line_start, s.line_end, item.triples, item.valid_from]
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1

    def __iter__(self) -> Iterator[SentenceRead]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            position, text, start, end, triples, valid_from = json.loads(line)
            yield SentenceRead(
                position, Sentence(text, start, end), [tuple(t) for t in triples], valid_from
            )

    def __enter__(self) -> ReadSpool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._file.close()
