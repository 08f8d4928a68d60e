"""Dataclasses the store hands across its boundary. Plain values, no connections."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from memllm_cli.errors import InvalidInputError

# Who established a fact or stated it: a document, a chat turn, the user by hand, or an
# MCP client (an agent; like chat, it never outranks what the user did by hand).
ORIGINS: tuple[str, ...] = ("document", "chat", "manual", "mcp")
# What a statement's source row is: a document version, a chat turn, an MCP client's note.
SOURCE_KINDS: tuple[str, ...] = ("document", "chat", "mcp")
STATUSES: tuple[str, ...] = ("current", "superseded", "retracted", "deleted")


@dataclass(frozen=True)
class Fact:
    """One (subject, relation, object) row with its lifecycle."""

    id: int
    subject: str
    relation: str
    object: str
    origin: str
    status: str
    created_at: str
    valid_from: str | None
    valid_to: str | None
    superseded_by: int | None

    @property
    def label(self) -> str:
        """``subject >> relation >> object``: how every message and listing names a fact."""
        return f"{self.subject} >> {self.relation} >> {self.object}"

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy made `facts list` over 100k facts 3x slower.
        return dict(self.__dict__)


@dataclass(frozen=True)
class Evidence:
    """Where a fact was stated. Given when writing; read back by ``facts show``."""

    origin: str = "manual"
    source_kind: str | None = None  # document | chat | mcp
    uri: str | None = None
    sha256: str | None = None
    sentence: str | None = None
    line_start: int | None = None
    line_end: int | None = None
    extractor: str | None = None
    protocol_version: str | None = None
    created_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Evidence:
        """Evidence from its exported form; unknown keys are an error, not ignored."""
        unknown = set(item) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidInputError(f"unknown evidence field(s): {', '.join(sorted(unknown))}")
        return cls(**item)


@dataclass(frozen=True)
class DocumentMeta:
    """One thing a document version says besides its sentences (see migration 7)."""

    kind: str  # tag | date | link | alias
    key: str
    value: str = ""
    owned: bool = False  # an alias this document put in memory

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Relation:
    id: int
    label: str
    pid: str | None
    cardinality: str
    facts: int = 0
    aliases: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Op:
    """One row of the operation log: a change to a fact, or to an entity, name or evidence.

    ``fact_id`` is None for the others; ``fact`` then says what changed ("name Tove").
    """

    id: int
    batch_id: int
    batch: str
    op: str
    fact_id: int | None
    fact: str
    created_at: str
    undone_by: int | None
    target: str = "fact"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WriteResult:
    """What one write did: the fact as stored and the facts it superseded."""

    fact: Fact
    action: Literal["added", "restated", "revived", "overruled"]
    superseded: list[Fact] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AliasResult:
    """``facts alias``: the entity, the alias, whether it is new, and all the entity's names."""

    entity: str
    alias: str
    added: bool
    names: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MergeResult:
    """``facts merge``: what moved to ``entity`` from the entity ``merged`` named.

    ``collapsed`` holds (dropped fact, kept fact) pairs; ``conflicts`` the labels of
    one-valued relations left with several current manual facts (never superseded).
    """

    entity: str
    merged: str
    moved: list[int]
    collapsed: list[tuple[int, int]]
    superseded: list[Fact]
    aliases: list[str]
    conflicts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "superseded"},
            "collapsed": [{"dropped": d, "kept": k} for d, k in self.collapsed],
            "superseded": [f.to_dict() for f in self.superseded],
        }


@dataclass(frozen=True)
class UndoResult:
    """What one undo did: the undo's own batch and how many ops it reversed."""

    batch_id: int
    undone_ops: int
    description: str


@dataclass(frozen=True)
class FactDetail:
    """``facts show``: the fact, every statement of it, and its chain of versions."""

    fact: Fact
    evidence: list[Evidence]
    history: list[Fact]
    ops: list[Op]


@dataclass(frozen=True)
class ReadAnswer:
    """One answer to a MemLLM read query, with the fact it came from and its distance score.

    ``fallback``: the fact's relation is not the one asked but the nearest the entity has
    (store/read.py), so the answer may be off; callers can say so.
    """

    answer: str
    fact_id: int
    score: float
    subject: str
    relation: str
    object: str
    fallback: bool = False

    @property
    def label(self) -> str:
        """``subject >> relation >> object``, as :attr:`Fact.label` names a fact."""
        return f"{self.subject} >> {self.relation} >> {self.object}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchHit:
    fact: Fact
    score: float
    matched: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {**self.fact.to_dict(), "score": self.score, "matched": self.matched}


@dataclass(frozen=True)
class Passage:
    """A stored sentence of a document's current version, found for a question.

    ``context`` is the sentence before it in the document (what a "he" or "it" refers
    to), or "" for the first one; ``score`` is BM25's (lower is better).
    """

    text: str
    uri: str
    line_start: int
    line_end: int
    context: str = ""
    score: float = 0.0

    @property
    def lines(self) -> str:
        """``3``, or ``3-4`` for a sentence over two lines."""
        end = f"-{self.line_end}" if self.line_end != self.line_start else ""
        return f"{self.line_start}{end}"

    @property
    def cite(self) -> str:
        """``uri:lines``."""
        return f"{self.uri}:{self.lines}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "sentence": self.text,
        }


@dataclass(frozen=True)
class FactFilter:
    """``facts list`` filters. A name finds what ``Names.entity_ids`` finds: the name or an
    alias after normalisation, or else its article twin ("Sacramento Bee")."""

    subject: str | None = None
    relation: str | None = None
    object: str | None = None
    source: str | None = None
    origin: str | None = None
    include_all: bool = False
    as_of: str | None = None
    limit: int | None = None
    newest_first: bool = False
    before: int | None = None  # only facts with a lower id: the next page of a newest-first list


@dataclass(frozen=True)
class MemoryStats:
    """How much the memory holds: facts by status and (current ones) by origin, and more."""

    facts: dict[str, int]
    origins: dict[str, int]
    entities: int
    relations_used: int
    documents: int
    pending_vectors: int
    last_change: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
