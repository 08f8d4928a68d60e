"""Documents into sentences with their source lines: Markdown (markdown-it-py) and plain text.

Files are read in chunks that end at a blank line outside a code fence, so a
100 MB file never sits in memory whole; each chunk is parsed on its own with its
line offset. Markdown keeps what a person wrote as prose: paragraphs, headings,
list items, block quotes, and table rows (as "header: cell" pairs). Code blocks
and raw HTML are skipped unless asked for; front matter, wikilinks and tags are
read as a notes vault means them (:mod:`~memllm_cli.ingest.vault`). Sentences come
from sentencex.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from memllm_cli.ingest.vault import Note

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

CHUNK_CHARS = 256 * 1024
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
REPLACEMENT = "\ufffd"  # what the "replace" decode error handler puts for a bad sequence


@dataclass(frozen=True)
class Block:
    """A run of prose with the source line of each character's line start."""

    text: str
    line_start: int  # 1-based
    line_end: int
    line_breaks: tuple[int, ...] = ()  # offsets in ``text`` where a new source line begins
    heading: int = 0  # the Markdown heading level (1-6), 0 when the block is not a heading


@dataclass(frozen=True)
class Sentence:
    text: str
    line_start: int
    line_end: int
    heading: int = 0  # the level of the heading it is (part of), else 0


def chunks(stream: TextIO, size: int = CHUNK_CHARS) -> Iterator[tuple[int, str]]:
    """(first line number, text) pieces of ``stream``, cut at blank lines outside fences."""
    lines: list[str] = []
    count, first, number, fence = 0, 1, 0, None
    for number, line in enumerate(stream, start=1):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)[0]
            fence = None if fence == marker else (fence or marker)
        lines.append(line)
        count += len(line)
        if count >= size and fence is None and not line.strip():
            yield first, "".join(lines)
            lines, count, first = [], 0, number + 1
    if lines:
        yield first, "".join(lines)


@cache
def _markdown(front_matter: bool) -> MarkdownIt:
    """The Markdown parser (one per process): CommonMark, tables, and a vault's syntax."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.front_matter import front_matter_plugin

    from memllm_cli.ingest.vault import vault_plugin

    md = MarkdownIt("commonmark").enable("table").use(vault_plugin)
    return md.use(front_matter_plugin) if front_matter else md


def markdown_blocks(
    text: str, first_line: int = 1, *, code: bool = False, note: Note | None = None
) -> Iterator[Block]:
    """Prose blocks of a Markdown text, with source lines (``first_line`` is the text's first).

    Front matter (at the document's start only), wikilinks and tags are read as
    :mod:`~memllm_cli.ingest.vault` says, into ``note`` when one is given.
    """
    start_of_file = first_line == 1
    if start_of_file and text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark would hide the front matter's fence
    note = note if note is not None else Note()
    tokens = _markdown(start_of_file).parse(text)
    header: list[str] = []
    row: list[str] = []
    in_head = False
    row_line = first_line
    for index, token in enumerate(tokens):
        if token.type == "front_matter" and token.map:
            fences = (first_line + token.map[0], first_line + token.map[1] - 1)
            note.read_front_matter(token.content, *fences)
            continue
        if token.type in ("fence", "code_block"):
            if code and token.map:
                yield _plain_block(
                    token.content, first_line + token.map[0] + (token.type == "fence")
                )
            continue
        if token.type == "thead_open":
            in_head, header = True, []
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            row, row_line = [], first_line + (token.map[0] if token.map else 0)
        elif token.type == "tr_close" and not in_head and row:
            names = header + [""] * (len(row) - len(header))
            cells = [f"{h}: {c}" if h else c for h, c in zip(names, row, strict=False)]
            yield Block("; ".join(c for c in cells if c.strip()) + ".", row_line, row_line)
        elif token.type == "inline":
            content, breaks = _inline_text(token, note)
            if index > 0 and tokens[index - 1].type in ("th_open", "td_open"):
                (header if in_head else row).append(content.strip())
                continue
            if not content.strip() or not token.map:
                continue
            start = first_line + token.map[0]
            opener = tokens[index - 1] if index > 0 else None
            level = int(opener.tag[1:]) if opener and opener.type == "heading_open" else 0
            yield Block(content, start, first_line + token.map[1] - 1, breaks, level)


def _inline_text(token: object, note: Note) -> tuple[str, tuple[int, ...]]:
    """Plain text of an inline token (links keep their text, images their alt text).

    A wikilink reads as its shown text and an embed as nothing; a tag is taken out,
    with the spaces before it. ``note`` records the links and tags.
    """
    parts: list[str] = []
    breaks: list[int] = []
    for child in token.children or []:  # type: ignore[attr-defined]
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
            breaks.append(sum(len(p) for p in parts))
        elif child.type == "image":
            parts.append(child.content)
        elif child.type == "wikilink":
            parts.append(child.content)
            note.link(child.meta["target"], child.content)
        elif child.type == "tag":
            note.tag(child.content)
            if parts and (not breaks or breaks[-1] < sum(len(p) for p in parts)):
                parts[-1] = parts[-1].rstrip(" \t")  # never a line break's space
    return "".join(parts), tuple(breaks)


def _plain_block(text: str, first_line: int) -> Block:
    breaks, offset = [], 0
    for line in text.splitlines(keepends=True)[:-1]:
        offset += len(line)
        breaks.append(offset)
    return Block(
        " ".join(text.split("\n")).strip(), first_line, first_line + text.count("\n"), tuple(breaks)
    )


def text_blocks(text: str, first_line: int = 1) -> Iterator[Block]:
    """Paragraphs of plain text (blank-line separated), with source lines."""
    paragraph: list[str] = []
    start = first_line
    for number, line in enumerate(text.splitlines(keepends=True), start=first_line):
        if line.strip():
            if not paragraph:
                start = number
            paragraph.append(line)
        elif paragraph:
            yield _paragraph(paragraph, start)
            paragraph = []
    if paragraph:
        yield _paragraph(paragraph, start)


def _paragraph(lines: list[str], start: int) -> Block:
    breaks, offset, parts = [], 0, []
    for line in lines:
        if parts:
            breaks.append(offset)
        part = line.rstrip("\r\n") + " "
        parts.append(part)
        offset += len(part)
    return Block("".join(parts).rstrip(), start, start + len(lines) - 1, tuple(breaks))


def split_sentences(block: Block, language: str = "en") -> Iterator[Sentence]:
    """The block's sentences, each with the source lines it spans."""
    from sentencex import segment

    offset = 0
    for piece in segment(language, block.text):
        begin = block.text.find(piece, offset)
        begin = offset if begin == -1 else begin
        offset = begin + len(piece)
        end = begin + len(piece.rstrip())  # spaces after it are not on its lines
        text = " ".join(piece.split())
        if not text:
            continue
        first = block.line_start + sum(1 for b in block.line_breaks if b <= begin)
        last = block.line_start + sum(1 for b in block.line_breaks if b < end)
        yield Sentence(text, first, min(last, block.line_end), block.heading)


def sentences(
    stream: TextIO,
    *,
    markdown: bool,
    code: bool = False,
    language: str = "en",
    note: Note | None = None,
) -> Iterator[Sentence]:
    """Every sentence of a document, streamed chunk by chunk.

    ``note`` collects a Markdown document's front matter, links and tags as they are read.
    """
    for first_line, chunk in chunks(stream):
        blocks: Iterable[Block] = (
            markdown_blocks(chunk, first_line, code=code, note=note)
            if markdown
            else text_blocks(chunk, first_line)
        )
        for block in blocks:
            yield from split_sentences(block, language)


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


class Counted(io.TextIOWrapper):
    """A text reader whose position in characters read is known, for progress."""

    chars = 0

    def __next__(self) -> str:
        line = super().__next__()
        self.chars += len(line)
        return line
