"""What an imported record may hold: types, times, characters and links, checked before any write.

``facts import`` and ``memllm apply`` read records that a person or a script may
have written by hand. Every value reaches SQLite, a prompt or a grammar, so a
wrong type, a time that is not a time, a control character or a fact that names
itself as its successor is refused here with a line that says which field.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from memllm_cli.errors import InvalidInputError
from memllm_cli.store.models import ORIGINS, SOURCE_KINDS
from memllm_cli.store.text import norm, parse_time

MAX_INT = 2**63 - 1  # SQLite's largest integer
TEXT_FIELDS = ("subject", "relation", "object", "origin", "status")
TIME_FIELDS = ("created_at", "valid_from", "valid_to")
EVIDENCE_TEXT = ("origin", "source_kind", "uri", "sha256", "sentence", "extractor")
EVIDENCE_INTS = ("line_start", "line_end")
ALLOWED_CONTROLS = "\t\n\r"  # whitespace that sentences may hold; names collapse it


def is_utf8(text: str) -> bool:
    """False when ``text`` holds bytes that were not UTF-8 (decoded as lone surrogates)."""
    return not any("\udc80" <= char <= "\udcff" for char in text)


def check_text(value: Any, field: str, *, required: bool = False) -> None:
    """A string (or None unless ``required``) holding valid text and no control characters."""
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInputError(f"'{field}' must be a {'non-empty ' if required else ''}string")
    for char in value:
        kind = unicodedata.category(char)
        if kind == "Cs":
            raise InvalidInputError(f"'{field}' is not UTF-8 text")
        if kind == "Cc" and char not in ALLOWED_CONTROLS:
            raise InvalidInputError(f"'{field}' contains the control character U+{ord(char):04X}")


def check_time(value: Any, field: str) -> str | None:
    """The store's form of a time field, or None; anything but an ISO date or time is refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"'{field}' must be a date or time string (YYYY-MM-DD or ISO 8601)")
    check_text(value, field)
    try:
        return parse_time(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"'{field}' is {exc}") from None


def check_evidence(item: dict[str, Any]) -> dict[str, Any]:
    """One evidence object, its time in the store's form (Evidence refuses unknown keys)."""
    for name in EVIDENCE_TEXT:
        check_text(item.get(name), f"evidence {name}")
    if item.get("origin") not in (None, *ORIGINS):
        raise InvalidInputError(f"'evidence origin' is one of {', '.join(ORIGINS)}")
    if item.get("source_kind") not in (None, *SOURCE_KINDS):
        raise InvalidInputError(f"'evidence source_kind' is one of {', '.join(SOURCE_KINDS)}")
    for name in EVIDENCE_INTS:
        value = item.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT
        ):
            raise InvalidInputError(f"'evidence {name}' must be a line number")
    checked = dict(item)
    if "created_at" in item:
        checked["created_at"] = check_time(item["created_at"], "evidence created_at")
    return checked


def check_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its times in the store's form; the error names the first bad field."""
    for name in TEXT_FIELDS:
        check_text(record.get(name), name, required=name in ("subject", "relation", "object"))
    checked = dict(record)
    for name in TIME_FIELDS:
        if name in record:
            checked[name] = check_time(record[name], name)
    evidence = record.get("evidence")
    if evidence is not None:
        if not (isinstance(evidence, list) and all(isinstance(e, dict) for e in evidence)):
            raise InvalidInputError("'evidence' must be a list of objects")
        checked["evidence"] = [check_evidence(item) for item in evidence]
    successor = record.get("superseded_by")
    if successor is not None:
        if not isinstance(successor, dict):
            raise InvalidInputError(
                "'superseded_by' must be an object with subject, relation, object"
            )
        for name in ("subject", "relation", "object"):
            check_text(successor.get(name), f"superseded_by {name}", required=True)
        keys = ("subject", "relation", "object")
        if [norm(successor[k]) for k in keys] == [norm(record[k]) for k in keys]:
            raise InvalidInputError("a fact cannot be superseded by itself")
    return checked
