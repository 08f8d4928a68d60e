"""Re-DocRED documents as natural text: detokenised, with each token's character span.

Re-DocRED stores sentences as token lists (``"( born 13 March 1963 in Mediaș , ..."``).
The model reads prose, so the training data, the evaluation and the benchmarks all
detokenise the same way, here (FewRel too), and keep the spans to map entity mentions
into the text. ``documents`` reads the training or held-out side of a split.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from memllm_cli.datasets.splits import in_split

PATH = "re-docred/dev_revised.json"
NO_SPACE_BEFORE = {
    ",",
    ".",
    ":",
    ";",
    "!",
    "?",
    ")",
    "]",
    "}",
    "%",
    "'s",
    "'",
    "n't",
    "'re",
    "'ve",
    "'ll",
    "'d",
    "'m",
    "’s",
}
NO_SPACE_AFTER = {"(", "[", "{", "$", "#"}


def detokenize(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Text and (start, end) character span of every token."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    length = 0
    quote_open = False
    glue_next = False
    for token in tokens:
        is_quote = token in ('"', "``", "''")
        if is_quote:
            token = '"'
        space = bool(out) and not glue_next
        if token in NO_SPACE_BEFORE or (is_quote and quote_open) or token.startswith("'s"):
            space = False
        if space:
            out.append(" ")
            length += 1
        spans.append((length, length + len(token)))
        out.append(token)
        length += len(token)
        glue_next = token in NO_SPACE_AFTER or (is_quote and not quote_open)
        if is_quote:
            quote_open = not quote_open
    return "".join(out), spans


@dataclass(frozen=True)
class Mention:
    name: str
    sentence: int
    start: int  # index of its first token in the sentence


@dataclass(frozen=True)
class Label:
    head: int  # index into entities
    tail: int
    relation: str  # Wikidata P-id
    evidence: tuple[int, ...]


@dataclass(frozen=True)
class Document:
    title: str
    sentences: tuple[str, ...]
    entities: tuple[tuple[Mention, ...], ...]
    labels: tuple[Label, ...]


def load(path: str | Path) -> Iterator[Document]:
    """Documents of a Re-DocRED-format split (dev, test, or any file of that shape)."""
    for raw in json.loads(Path(path).read_text(encoding="utf-8")):
        texts = [detokenize(tokens) for tokens in raw["sents"]]
        sentences = tuple(text for text, _ in texts)

        def mention(m: dict, texts: list = texts) -> Mention:
            # The name as the detokenised sentence spells it, not Re-DocRED's token join.
            text, spans = texts[m["sent_id"]]
            start, end = m["pos"]
            return Mention(text[spans[start][0] : spans[end - 1][1]], m["sent_id"], start)

        entities = tuple(tuple(mention(m) for m in mentions) for mentions in raw["vertexSet"])
        labels = tuple(
            Label(lab["h"], lab["t"], lab["r"], tuple(lab.get("evidence", ())))
            for lab in raw.get("labels", ())
        )
        yield Document(raw["title"], sentences, entities, labels)


def documents(data: Path | None, split: str, path: Path | None = None) -> list[Document]:
    """Re-DocRED documents of ``split`` ("train", "val" or "all"), split by title."""
    return [d for d in load(path or data / PATH) if in_split(d.title, split)]
