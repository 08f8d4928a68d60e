"""What ingest reports: per document, and as it goes (progress).

Dataclasses only, shared by the pipeline, the CLI and the notes evaluation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DocumentReport:
    name: str
    status: str  # ingested | unchanged | empty | skipped | dry-run | interrupted | removed
    sentences: int = 0
    reused: int = 0
    facts: int = 0
    added: int = 0
    superseded: int = 0
    retracted: int = 0
    overruled: int = 0  # facts stated that the user had deleted or corrected: not stored
    aliases: int = 0  # aliases its front matter added to memory
    parse_failures: int = 0
    dictated: int = 0  # writes copied from call syntax in the text, dropped
    seconds: float = 0.0
    message: str = ""
    warnings: list[str] = field(default_factory=list)  # "FILE:LINE: what", sentences skipped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    """What a progress display needs, updated after every sentence."""

    document: str = ""
    fraction: float = 0.0  # of the current document, by characters read
    sentences: int = 0
    facts: int = 0
