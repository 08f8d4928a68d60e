"""Names, normalisation and timestamps: small pure helpers the store shares."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from memllm_cli.errors import InvalidInputError
from memllm_cli.protocol import neutralise_name

MAX_NAME_CHARS = 1000  # a name goes into prompts and grammars: a page of text is not a name


def clean(name: str, what: str) -> str:
    """A name fit to store: markers neutralised, whitespace collapsed, never empty.

    Control characters (NUL, escapes) and text that was not UTF-8 are refused: they
    would reach terminals, prompts and the grammars of prompted mode.
    """
    cleaned = neutralise_name(name)
    if not cleaned:
        raise InvalidInputError(f"{what} is empty")
    if len(cleaned) > MAX_NAME_CHARS:
        raise InvalidInputError(
            f"{what} is too long ({len(cleaned)} characters; at most {MAX_NAME_CHARS})"
        )
    bad = next((c for c in cleaned if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise InvalidInputError(f"{what} contains the character U+{ord(bad):04X}, not text")
    return cleaned


def norm(name: str) -> str:
    """The key two names share when they denote the same thing: case, width and spacing folded."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def article_twin(name: str) -> str | None:
    """The same proper name with its leading "the" dropped, or with one added.

    "The Sacramento Bee" and "Sacramento Bee", "the United States" and "United States"
    name one thing, and a small model writes either. Only a capitalised name has a
    twin: "the economist" is no name, and "The Economist" is not the job "economist".
    """
    first, _, rest = " ".join(name.split()).partition(" ")
    if first.casefold() == "the":
        return rest if rest[:1].isupper() else None
    return f"the {first} {rest}".rstrip() if first[:1].isupper() else None


def now() -> str:
    """The current UTC time, ISO 8601 to the microsecond (timestamps sort as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> str:
    """A user-given date or time as the store's UTC ISO form; a bare date means its midnight UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"not a date: {text!r} (use YYYY-MM-DD or an ISO 8601 time)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
