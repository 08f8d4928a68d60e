"""The MemLLM memory-call format: the one place that knows the markers.

A write is ``({MEM_WRITE-->s>>r>>o;s>>r>>o})``; a read is
``({MEM_READ(s>>r>>;>>r>>o)-->result;result})``. Anything that builds or cuts
these strings imports this module; nothing else concatenates markers.

Text that reaches the model from documents, facts or the user must never carry
live markers, so that a note containing ``({MEM_WRITE-->...})`` cannot write to
memory and a name containing ``;`` or ``>>`` cannot forge read results.
:func:`neutralise_text` and :func:`neutralise_name` are the gate.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from memllm_cli.errors import MemllmError

PROTOCOL_VERSION = "1"

CALL_OPEN = "({"
CALL_CLOSE = "})"
QUERY_END = "-->"
FIELD_SEP = ">>"
ITEM_SEP = ";"
MEM_WRITE = "MEM_WRITE"
MEM_READ = "MEM_READ"
USER_START = "({USER_ST})"
USER_END = "({USER_END})"

MAX_QUERIES_PER_READ = 3

# Marker sequences that are live anywhere in text, and their inert look-alikes.
# Each replacement contains no marker, so applying the table to a fixed point
# terminates and the result is marker-free.
_TEXT_MARKERS = ((CALL_OPEN, "( {"), (CALL_CLOSE, "} )"), (QUERY_END, "- ->"))
# Inside a name or label, the field and item separators are live too.
_NAME_MARKERS = (*_TEXT_MARKERS, (FIELD_SEP, "> >"), (ITEM_SEP, ","))

_WHITESPACE = re.compile(r"\s+")


class ProtocolError(MemllmError):
    """A memory call or query that does not follow the protocol."""


def _replace_to_fixed_point(text: str, table: tuple[tuple[str, str], ...]) -> str:
    changed = True
    while changed:
        changed = False
        for marker, inert in table:
            if marker in text:
                text = text.replace(marker, inert)
                changed = True
    return text


def neutralise_text(text: str) -> str:
    """Make document or user text safe to show the model: no call can open or close in it."""
    return _replace_to_fixed_point(text, _TEXT_MARKERS)


def neutralise_name(name: str) -> str:
    """Make an entity name or relation label safe inside a call.

    Besides the call markers, ``>>`` and ``;`` are replaced, whitespace (newlines
    included) collapses to single spaces, and the result is NFC-normalised.
    """
    name = unicodedata.normalize("NFC", name)
    name = _WHITESPACE.sub(" ", name).strip()
    return _replace_to_fixed_point(name, _NAME_MARKERS)


def has_markers(text: str) -> bool:
    """True when ``text`` contains a sequence that :func:`neutralise_name` would change."""
    return any(marker in text for marker, _ in _NAME_MARKERS)


@dataclass(frozen=True)
class ReadQuery:
    """One MemLLM read query: ``subject>>relation>>`` or ``>>relation>>object``.

    Exactly one of ``subject`` and ``object`` is set; the other is what is asked for.
    """

    relation: str
    subject: str | None = None
    object: str | None = None

    def __post_init__(self) -> None:
        if (self.subject is None) == (self.object is None):
            raise ProtocolError("a read query names exactly one of subject and object")
        if not self.relation.strip():
            raise ProtocolError("a read query needs a relation")

    @property
    def asks_for(self) -> str:
        """``"object"`` for ``s>>r>>``, ``"subject"`` for ``>>r>>o``."""
        return "object" if self.object is None else "subject"

    def format(self) -> str:
        """The query as it appears inside ``MEM_READ(...)``."""
        subject = neutralise_name(self.subject) if self.subject is not None else ""
        obj = neutralise_name(self.object) if self.object is not None else ""
        return f"{subject}{FIELD_SEP}{neutralise_name(self.relation)}{FIELD_SEP}{obj}"


def parse_query(text: str) -> ReadQuery:
    """Parse ``subject>>relation>>`` or ``>>relation>>object`` into a :class:`ReadQuery`."""
    parts = text.split(FIELD_SEP)
    if len(parts) != 3:
        raise ProtocolError(
            f"a read query has the form 'subject>>relation>>' or '>>relation>>object', not {text!r}"
        )
    subject, relation, obj = (part.strip() for part in parts)
    if subject and obj:
        raise ProtocolError(f"a read query leaves the subject or the object empty: {text!r}")
    if not subject and not obj:
        raise ProtocolError(f"a read query names a subject or an object: {text!r}")
    if not relation:
        raise ProtocolError(f"a read query needs a relation: {text!r}")
    return ReadQuery(relation=relation, subject=subject or None, object=obj or None)
