"""The MemLLM memory-call format: the one place that knows the markers.

A write is ``({MEM_WRITE-->s>>r>>o;s>>r>>o})``; a read is
``({MEM_READ(s>>r>>;>>r>>o)-->result;result})``. Anything that builds or cuts
these strings imports this module; nothing else concatenates markers. It also
holds the GBNF grammars that constrain a model to valid calls.

Inside a call, fields are escaped so that format-then-parse is the identity for
any name: a backslash precedes each backslash, semicolon, ``>`` and ``}``, and a
field's final ``-``. So no field holds ``>>``, ``;``, ``})`` or ``-->`` unescaped.
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
MAX_TRIPLES_PER_WRITE = 8
MAX_FIELD_CHARS = 80
_ESCAPED = frozenset("\\;>}")

# Marker sequences that are live anywhere in text, and their inert look-alikes.
# Each replacement contains no marker, so applying the table to a fixed point
# terminates and the result is marker-free. Inside a name or label, the field and
# item separators are live too (untrusted.py neutralises running text).
_TEXT_MARKERS = ((CALL_OPEN, "( {"), (CALL_CLOSE, "} )"), (QUERY_END, "- ->"))
_NAME_MARKERS = (*_TEXT_MARKERS, (FIELD_SEP, "> >"), (ITEM_SEP, ","))

# Text that a tokenizer or a server's template may take for a control token: ChatML
# and Llama 3 ``<|...|>``, tag-like ``<s>``, ``</s>``, ``<file_sep>``, ``<start_of_turn>``,
# and Mistral's ``[INST]``. A space after the opening bracket breaks the match.
_CONTROL = re.compile(r"<(?=\||/?[A-Za-z_][\w.-]{0,40}>)|\[(?=/?INST\])")

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


def break_control(text: str) -> str:
    """``text`` with no chat-template or control token in it (see ``_CONTROL``)."""
    return _CONTROL.sub(lambda m: m.group() + " ", text)


def neutralise_name(name: str) -> str:
    """Make an entity name or relation label safe inside a call.

    Besides the call markers, ``>>`` and ``;`` are replaced, control-token look-alikes
    broken (a name reaches prompts in read results), whitespace (newlines included)
    collapses to single spaces, and the result is NFC-normalised.
    """
    name = unicodedata.normalize("NFC", name)
    name = _WHITESPACE.sub(" ", name).strip()
    return break_control(_replace_to_fixed_point(name, _NAME_MARKERS))


def has_markers(text: str) -> bool:
    """True when ``text`` contains a sequence that :func:`neutralise_name` would change."""
    return any(marker in text for marker, _ in _NAME_MARKERS) or bool(_CONTROL.search(text))


@dataclass(frozen=True)
class Triple:
    """One fact as it appears in a MEM_WRITE call."""

    subject: str
    relation: str
    object: str


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
        if not self.relation:
            raise ProtocolError("a read query needs a relation")
        if self.subject == "" or self.object == "":
            raise ProtocolError("a read query's name is not empty")

    @property
    def asks_for(self) -> str:
        """``"object"`` for ``s>>r>>``, ``"subject"`` for ``>>r>>o``."""
        return "object" if self.object is None else "subject"

    def format(self) -> str:
        """The query as it appears inside ``MEM_READ(...)``."""
        subject = escape(self.subject) if self.subject is not None else ""
        obj = escape(self.object) if self.object is not None else ""
        return f"{subject}{FIELD_SEP}{escape(self.relation)}{FIELD_SEP}{obj}"


# -- escaping --------------------------------------------------------------------------------


def escape(field: str) -> str:
    """Escape a name or label for use inside a call (see the module docstring)."""
    out = "".join("\\" + c if c in _ESCAPED else c for c in field)
    if out.endswith("-"):
        out = out[:-1] + "\\-"
    return out


def unescape(field: str) -> str:
    """Undo :func:`escape`. A dangling backslash is a protocol error."""
    out, chars = [], iter(field)
    for c in chars:
        if c == "\\":
            nxt = next(chars, None)
            if nxt is None:
                raise ProtocolError("a field ends in a lone backslash")
            out.append(nxt)
        else:
            out.append(c)
    return "".join(out)


def _split(text: str, sep: str) -> list[str]:
    """Split on unescaped ``sep``; the parts stay escaped."""
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
        elif text.startswith(sep, i):
            parts.append("".join(current))
            current, i = [], i + len(sep)
        else:
            current.append(text[i])
            i += 1
    parts.append("".join(current))
    return parts


def _find(text: str, marker: str, start: int = 0) -> int:
    """Index of the first unescaped ``marker`` at or after ``start``, or -1."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text.startswith(marker, i):
            return i
        else:
            i += 1
    return -1


# -- write calls -----------------------------------------------------------------------------


def _triple(text: str) -> Triple:
    fields = _split(text, FIELD_SEP)
    if len(fields) != 3 or not all(fields):
        raise ProtocolError(f"a written fact has three non-empty fields: {text!r}")
    subject, relation, obj = (unescape(f) for f in fields)
    return Triple(subject, relation, obj)


def format_write(triples: list[Triple] | tuple[Triple, ...]) -> str:
    """``({MEM_WRITE-->s>>r>>o;...})``; an empty list is the empty write."""
    for t in triples:
        if not (t.subject and t.relation and t.object):
            raise ProtocolError(f"a written fact has three non-empty fields: {t!r}")
    body = ITEM_SEP.join(
        FIELD_SEP.join(escape(f) for f in (t.subject, t.relation, t.object)) for t in triples
    )
    return f"{CALL_OPEN}{MEM_WRITE}{QUERY_END}{body}{CALL_CLOSE}"


def parse_write(text: str) -> list[Triple]:
    """The triples of one complete write call (surrounding whitespace allowed)."""
    text = text.strip()
    opening = f"{CALL_OPEN}{MEM_WRITE}{QUERY_END}"
    if not text.startswith(opening) or not text.endswith(CALL_CLOSE):
        raise ProtocolError(f"not a MEM_WRITE call: {text[:80]!r}")
    body = text[len(opening) : -len(CALL_CLOSE)]
    if _find(body, CALL_CLOSE) != -1:
        raise ProtocolError("text after the end of a MEM_WRITE call")
    if not body:
        return []
    return [_triple(item) for item in _split(body, ITEM_SEP)]


# -- read calls ------------------------------------------------------------------------------


def read_opening(queries: list[ReadQuery] | tuple[ReadQuery, ...]) -> str:
    """``({MEM_READ(q;q)-->``: the part the model writes, up to where results go."""
    if not 1 <= len(queries) <= MAX_QUERIES_PER_READ:
        raise ProtocolError(f"a read call has 1 to {MAX_QUERIES_PER_READ} queries")
    body = ITEM_SEP.join(q.format() for q in queries)
    return f"{CALL_OPEN}{MEM_READ}({body}){QUERY_END}"


def format_results(results: list[str] | tuple[str, ...]) -> str:
    """``r;r})``: what the runtime appends after ``-->``."""
    return ITEM_SEP.join(escape(r) for r in results) + CALL_CLOSE


def format_read(queries: list[ReadQuery] | tuple[ReadQuery, ...], results: list[str]) -> str:
    return read_opening(queries) + format_results(results)


def parse_queries(body: str) -> list[ReadQuery]:
    """Queries from the text between ``MEM_READ(`` and ``)-->``."""
    items = _split(body, ITEM_SEP)
    if not 1 <= len(items) <= MAX_QUERIES_PER_READ:
        raise ProtocolError(f"a read call has 1 to {MAX_QUERIES_PER_READ} queries")
    return [_query(item) for item in items]


def _query(text: str) -> ReadQuery:
    fields = _split(text, FIELD_SEP)
    if len(fields) != 3:
        raise ProtocolError(
            f"a read query has the form 'subject>>relation>>' or '>>relation>>object', not {text!r}"
        )
    subject, relation, obj = fields
    if bool(subject) == bool(obj):
        raise ProtocolError(f"a read query names a subject or an object, not both: {text!r}")
    if not relation:
        raise ProtocolError(f"a read query needs a relation: {text!r}")
    return ReadQuery(
        relation=unescape(relation),
        subject=unescape(subject) if subject else None,
        object=unescape(obj) if obj else None,
    )


def parse_read_request(text: str) -> list[ReadQuery]:
    """Queries from what a model writes under :func:`read_grammar`: ``MEM_READ(q;q)-->``.

    That is a read call after its ``({`` (where the runtime stopped generation) up to
    and including ``-->``, nothing before or after. :func:`parse_read` parses whole
    calls with it.
    """
    opening, end = f"{MEM_READ}(", ")" + QUERY_END
    if not text.startswith(opening) or not text.endswith(end):
        raise ProtocolError(f"not a complete MEM_READ call: {text[:80]!r}")
    return parse_queries(text[len(opening) : -len(end)])


def parse_read(text: str) -> tuple[list[ReadQuery], list[str] | None]:
    """Queries and results of a read call; results are None when the call stops at ``-->``."""
    text = text.strip()
    opening = f"{CALL_OPEN}{MEM_READ}("
    if not text.startswith(opening):
        raise ProtocolError(f"not a MEM_READ call: {text[:80]!r}")
    end = _find(text, ")" + QUERY_END, len(opening))
    if end == -1:
        raise ProtocolError("a MEM_READ call without ')-->'")
    request_end = end + 1 + len(QUERY_END)
    queries = parse_read_request(text[len(CALL_OPEN) : request_end])
    rest = text[request_end:]
    if not rest:
        return queries, None
    if not rest.endswith(CALL_CLOSE) or _find(rest, CALL_CLOSE) != len(rest) - len(CALL_CLOSE):
        raise ProtocolError("a MEM_READ call's results end with '})'")
    body = rest[: -len(CALL_CLOSE)]
    return queries, [] if not body else [unescape(r) for r in _split(body, ITEM_SEP)]


def parse_query(text: str) -> ReadQuery:
    """Parse a query typed by a person: ``subject>>relation>>`` or ``>>relation>>object``.

    Surrounding spaces of each part are ignored.
    """
    fields = [unescape(f).strip() for f in _split(text, FIELD_SEP)]
    if len(fields) != 3:
        raise ProtocolError(
            f"a read query has the form 'subject>>relation>>' or '>>relation>>object', not {text!r}"
        )
    subject, relation, obj = fields
    if subject and obj:
        raise ProtocolError(f"a read query leaves the subject or the object empty: {text!r}")
    if not subject and not obj:
        raise ProtocolError(f"a read query names a subject or an object: {text!r}")
    if not relation:
        raise ProtocolError(f"a read query needs a relation: {text!r}")
    return ReadQuery(relation=relation, subject=subject or None, object=obj or None)


# -- grammars (GBNF, as llama.cpp reads it) --------------------------------------------------


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_FIELD_RULES = f"""
fchar ::= [^\\\\;>}}\\x2D\\n] | "\\\\" [\\\\;>}}\\x2D]
field ::= (fchar | "-"){{0,{MAX_FIELD_CHARS - 1}}} fchar
"""


def _choice(name: str, options: list[str] | tuple[str, ...] | None) -> str:
    """A rule that allows only ``options`` (escaped), or any field when there are none."""
    if not options:
        return f"{name} ::= field\n"
    return f"{name} ::= " + " | ".join(_gbnf_literal(escape(o)) for o in options) + "\n"


def write_grammar(
    relations: list[str] | tuple[str, ...] | None = None,
    names: list[str] | tuple[str, ...] | None = None,
    max_triples: int = MAX_TRIPLES_PER_WRITE,
) -> str:
    """GBNF for one complete write call.

    ``relations`` and ``names`` restrict labels and entity names (prompted mode: a
    small model copies names from the text instead of inventing them).
    """
    return (
        f"root ::= {_gbnf_literal(CALL_OPEN + MEM_WRITE + QUERY_END)} "
        f"(triple ({_gbnf_literal(ITEM_SEP)} triple){{0,{max_triples - 1}}})? "
        f"{_gbnf_literal(CALL_CLOSE)}\n"
        f'triple ::= name ">>" relation ">>" name\n'
        + _choice("relation", relations)
        + _choice("name", names)
        + _FIELD_RULES
    )


def read_grammar(
    relations: list[str] | tuple[str, ...] | None = None,
    names: list[str] | tuple[str, ...] | None = None,
) -> str:
    """GBNF for a read call after ``({``, up to and including ``-->``.

    ``relations`` and ``names`` restrict labels and names to those the memory holds.
    """
    return (
        f'root ::= "{MEM_READ}(" query (";" query){{0,{MAX_QUERIES_PER_READ - 1}}} ")-->"\n'
        'query ::= name ">>" relation ">>" | ">>" relation ">>" name\n'
        + _choice("relation", relations)
        + _choice("name", names)
        + _FIELD_RULES
    )


# Free text in which no call can open: after an empty read, the answer goes on without memory.
NO_CALL_GRAMMAR = 'root ::= ([^(] | "(" [^{])*\n'


def results_grammar(answers: list[str] | tuple[str, ...]) -> str:
    """GBNF for a read's results after ``-->``: one of ``answers`` or none, then ``})``.

    ``answers`` must be non-empty and need no escaping (a field as written).
    """
    if not answers or any(escape(a) != a for a in answers):
        raise ProtocolError("results_grammar takes plain, non-empty answers")
    return f"root ::= answer? {_gbnf_literal(CALL_CLOSE)}\n" + _choice("answer", list(answers))
