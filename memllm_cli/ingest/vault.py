"""What a notes vault's Markdown says besides its prose: front matter, wikilinks and tags.

Obsidian- and Logseq-style notes carry YAML front matter, ``[[wikilinks]]`` and
``#tags``. None of it is prose, and none of it reaches the model as written:

- front matter (found by mdit-py-plugins' front-matter rule, parsed by PyYAML's safe
  loader) is kept as data: its ``aliases`` name the note's entity, its ``tags`` and
  dates are the document's metadata, and its other simple ``key: value`` pairs are
  properties, which become facts where the key names a relation;
- ``[[Target]]``, ``[[Target|shown]]`` and ``[[Target#Heading|shown]]`` read as their
  shown text, and the note records that the shown text names the target (so a fact
  written about "shown" lands on the entity the target note is about); ``![[embed]]``
  is dropped;
- ``#tag`` and ``#nested/tag`` are taken out of the text and kept as metadata.

:func:`vault_plugin` adds the two inline rules to markdown-it; :class:`Note` collects
what a document's parse finds. The Markdown reader itself is :mod:`~memllm_cli.ingest.text`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from memllm_cli.ingest.dates import parse_heading
from memllm_cli.store.text import norm

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_inline import StateInline

# An Obsidian tag: letters, digits, _, - and / (nesting), not only digits ("#1" is no tag).
_TAG = re.compile(r"#([\w/-]+)")
_LETTER = re.compile(r"[^\W\d]")
_TAG_BEFORE = " \t\n([{"  # a tag starts a word: "C#" and "page#anchor" are no tags
_WIKILINK = re.compile(r"\[\[([^\[\]\n]+)\]\]")
ALIAS_KEYS = ("aliases", "alias")
TAG_KEYS = ("tags", "tag")
# When the note was written or changed: the document's dates, not its subject's.
FILE_DATE_KEYS = ("date", "created", "updated", "modified", "published", "lastmod")
# Front matter that describes the file, not the note's subject: never a fact.
RESERVED_KEYS = frozenset(
    ALIAS_KEYS
    + TAG_KEYS
    + FILE_DATE_KEYS
    + ("title", "cssclass", "cssclasses", "publish", "permalink", "draft")
)


@dataclass(frozen=True)
class Property:
    """A simple ``key: value`` of the front matter (a scalar or a list of scalars)."""

    key: str
    values: tuple[str, ...]
    line_start: int  # the key's line in the file, 1-based
    line_end: int  # the value's last line
    text: str  # those lines as written: the evidence of facts made from it


@dataclass
class Note:
    """What the parse of one Markdown document found besides its sentences."""

    front_matter: dict[str, Any] = field(default_factory=dict)
    front_lines: tuple[int, int] | None = None  # first and last line of the front matter
    properties: list[Property] = field(default_factory=list)
    tags: dict[str, None] = field(default_factory=dict)  # in order, once each
    links: dict[str, str] = field(default_factory=dict)  # norm(shown) -> target note
    shown: dict[str, str] = field(default_factory=dict)  # norm(shown) -> shown, as written
    ambiguous: set[str] = field(default_factory=set)  # shown texts linked to several targets
    warnings: list[str] = field(default_factory=list)

    # -- what the parse finds -------------------------------------------------------------

    def read_front_matter(self, text: str, first: int, last: int) -> None:
        """Parse the YAML between the fences, on file lines ``first`` to ``last`` (the fences).

        YAML that is not a mapping, or not valid, is set aside with a warning: it is
        still never read as prose.
        """
        self.front_lines = (first, last)
        if not text.strip():
            return
        found = _load_yaml(text)
        if found is None:
            self.warnings.append(f"{first}: front matter is not a YAML mapping; ignored")
            return
        data, key_lines = found
        self.front_matter = data
        lines = text.splitlines()
        for key, value in data.items():
            if not isinstance(key, str) or key.casefold() in RESERVED_KEYS:
                continue
            values = _scalars(value)
            if values and key in key_lines:
                start, end = key_lines[key]
                written = " ".join(line.strip() for line in lines[start : end + 1])
                self.properties.append(
                    Property(key, values, first + 1 + start, first + 1 + end, written)
                )
        for key in TAG_KEYS:
            for tag in _scalars(data.get(key), split=True):
                self.tag(tag.lstrip("#"))

    def tag(self, name: str) -> None:
        if name:
            self.tags.setdefault(name, None)

    def link(self, target: str, shown: str) -> None:
        """Note that ``shown`` names ``target``; linked to two targets, it means neither."""
        key = norm(shown)
        if not key or not target:
            return
        before = self.links.setdefault(key, target)
        self.shown.setdefault(key, shown)
        if norm(before) != norm(target):
            self.ambiguous.add(key)

    # -- what it means ------------------------------------------------------------------------

    def aliases(self, title: str | None) -> list[str]:
        """Other names of the note's subject: the front matter's aliases, and a ``title``
        that differs from ``title`` (the file's name)."""
        found: dict[str, str] = {}
        for key in ALIAS_KEYS:
            for alias in _scalars(self.front_matter.get(key)):
                found.setdefault(norm(alias), alias)
        written = self.front_matter.get("title")
        if isinstance(written, str) and written.strip():
            found.setdefault(norm(written), written.strip())
        if title:
            found.pop(norm(title), None)
        return [alias for key, alias in found.items() if key]

    def names(self, title: str | None) -> dict[str, str]:
        """What each name this note gives means: norm(name) -> the entity name it stands for.

        A link's shown text means its target (unless it was linked to several), and the
        note's aliases mean its title.
        """
        meant = {k: t for k, t in self.links.items() if k not in self.ambiguous}
        if title:
            for alias in self.aliases(title):
                meant.setdefault(norm(alias), title)
        return {k: t for k, t in meant.items() if norm(t) != k}

    def dates(self) -> dict[str, str]:
        """The front matter's dates (``date``, ``created``, ...), by key, as ISO dates."""
        found = {}
        for key, value in self.front_matter.items():
            if isinstance(value, date):
                found[str(key)] = value.isoformat()[:10]
            elif isinstance(value, str) and (parsed := parse_heading(value)):
                found[str(key)] = parsed
        return found


def _load_yaml(text: str) -> tuple[dict[Any, Any], dict[str, tuple[int, int]]] | None:
    """(the mapping, the 0-based first and last line of each top-level key and its value),
    or None when it is not a mapping."""
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            return None
        data = loader.construct_document(node)
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        return None
    lines = {}
    for key, value in node.value:
        if isinstance(key.value, str):
            end = value.end_mark
            last = end.line if end.column > 0 else end.line - 1  # a block ends on the next line
            lines[key.value] = (key.start_mark.line, max(key.start_mark.line, last))
    return data, lines


def _scalars(value: Any, *, split: bool = False) -> tuple[str, ...]:
    """A scalar or a list of scalars as text (wikilinks read as their targets); else ().

    ``split`` also splits a string on commas and spaces (``tags: a, b``).
    """
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float | date):
            if isinstance(value, list):
                continue
            return ()
        text = str(item).strip()
        text = _WIKILINK.sub(lambda m: split_link(m.group(1))[0], text)
        found.extend(re.split(r"[,\s]+", text) if split else [text])
    return tuple(t for t in found if t)


def split_link(inner: str) -> tuple[str, str]:
    """(target note, shown text) of the inside of ``[[...]]``.

    ``Target#Heading|shown``: the target is the note (``Target``), shown is ``shown``;
    without ``|`` the shown text is the target, or the heading of a same-note link. In a
    table the ``|`` is written ``\\|``.
    """
    target, _, shown = inner.replace("\\|", "|").partition("|")  # "\|" in a table
    note, _, heading = target.partition("#")
    note, heading = note.strip(), heading.strip().lstrip("^")
    return note, (shown.strip() or note or heading)


# -- markdown-it rules ----------------------------------------------------------------------


def vault_plugin(md: MarkdownIt) -> None:
    """Read ``[[wikilinks]]``, ``![[embeds]]`` and ``#tags`` as tokens of their own.

    A ``wikilink`` token's content is the shown text and its ``meta["target"]`` the
    note; an embed is a ``wikilink_embed`` token; a tag is a ``tag`` token.
    """
    md.inline.ruler.before("link", "wikilink", _wikilink_rule)
    md.inline.ruler.before("link", "tag", _tag_rule)


def _wikilink_rule(state: StateInline, silent: bool) -> bool:
    start = state.pos
    embed = state.src.startswith("![[", start)
    if not (embed or state.src.startswith("[[", start)):
        return False
    match = _WIKILINK.match(state.src, start + embed, state.posMax)
    if match is None:
        return False
    if not silent:
        target, shown = split_link(match.group(1))
        token = state.push("wikilink_embed" if embed else "wikilink", "", 0)
        token.content = shown
        token.meta = {"target": target}
    state.pos = match.end()
    return True


def _tag_rule(state: StateInline, silent: bool) -> bool:
    start = state.pos
    if state.src[start] != "#" or (start > 0 and state.src[start - 1] not in _TAG_BEFORE):
        return False
    match = _TAG.match(state.src, start, state.posMax)
    if match is None or not _LETTER.search(match.group(1)):
        return False
    if not silent:
        token = state.push("tag", "", 0)
        token.content = match.group(1).strip("/")
    state.pos = match.end()
    return True
