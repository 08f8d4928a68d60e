"""``facts export`` and ``facts import``: JSONL and CSV that round-trip exactly.

An exported record carries everything about a fact: status, times, the fact
that superseded it (as its subject/relation/object, since ids are local to a
memory) and every piece of evidence. Importing such a record restores it as it
was. A record without ``status`` is a plain new fact (``{"subject": ...,
"relation": ..., "object": ...}``, optionally ``origin``, ``valid_from``,
``evidence``) and goes through the normal write rules, supersession included.

A JSONL export starts with what facts do not carry: a ``{"kind": "relation", ...}``
record for each relation a new memory would not have as it is (made, re-set or
aliased by the user: label, cardinality, P-id, the user's aliases) and a
``{"kind": "entity", "name": ..., "aliases": [...]}`` record for each entity with
aliases. Files without them (older exports, CSV) import as before.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, TextIO

from memllm_cli.errors import InvalidInputError, MemllmError
from memllm_cli.store.models import Evidence, FactFilter
from memllm_cli.store.records import check_record, is_utf8
from memllm_cli.store.store import Store

FIELDS = (
    "subject",
    "relation",
    "object",
    "origin",
    "status",
    "created_at",
    "valid_from",
    "valid_to",
    "superseded_by",
    "evidence",
)
REQUIRED = ("subject", "relation", "object")
JSON_CELLS = ("superseded_by", "evidence")
CSV_CELL_LIMIT = 1 << 26  # characters: evidence cells of much-stated facts outgrow csv's 128 KiB


SETTINGS_FIELDS = {
    "relation": ("kind", "label", "cardinality", "pid", "aliases"),
    "entity": ("kind", "name", "aliases"),
}


def export_settings(store: Store) -> Iterator[dict[str, Any]]:
    """The relation and entity records a restore needs besides the facts (JSONL only)."""
    for relation in store.relation_table.customised():
        yield {
            "kind": "relation",
            "label": relation.label,
            "cardinality": relation.cardinality,
            "pid": relation.pid,
            "aliases": relation.aliases,
        }
    for name, aliases in store.names.aliased():
        yield {"kind": "entity", "name": name, "aliases": aliases}


def export_all(store: Store) -> Iterator[dict[str, Any]]:
    """A full backup: the settings records, then every fact."""
    return chain(export_settings(store), export_records(store))


def export_records(store: Store) -> Iterator[dict[str, Any]]:
    """Every fact, oldest first, in the exchange form."""
    for fact in store.facts(FactFilter(include_all=True)):
        successor = None
        if fact.superseded_by is not None:
            later = store.fact(fact.superseded_by)
            successor = {
                "subject": later.subject,
                "relation": later.relation,
                "object": later.object,
            }
        yield {
            "subject": fact.subject,
            "relation": fact.relation,
            "object": fact.object,
            "origin": fact.origin,
            "status": fact.status,
            "created_at": fact.created_at,
            "valid_from": fact.valid_from,
            "valid_to": fact.valid_to,
            "superseded_by": successor,
            "evidence": [e.to_dict() for e in store.evidence(fact.id)],
        }


def write_jsonl(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    count = 0
    for record in records:
        writer.writerow([_cell(record.get(name), name) for name in FIELDS])
        count += 1
    return count


def _cell(value: Any, name: str) -> str:
    if value is None:
        return ""
    if name in JSON_CELLS:
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def read_records(text: Iterable[str], fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record or error message) for each record in a JSONL or CSV stream."""
    if fmt == "jsonl":
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            if not is_utf8(line):
                yield number, "not UTF-8 text"
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON ({exc.msg})"
                continue
            except ValueError as exc:  # e.g. an integer past Python's digit limit
                yield number, f"not valid JSON ({exc})"
                continue
            except RecursionError:
                yield number, "JSON nested too deeply"
                continue
            yield number, record if isinstance(record, dict) else "not a JSON object"
    elif fmt == "csv":
        csv.field_size_limit(max(csv.field_size_limit(), CSV_CELL_LIMIT))
        reader = csv.DictReader(text)
        try:
            missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
        except csv.Error as exc:
            yield 1, f"malformed CSV header ({exc})"
            return
        if missing:
            yield 1, f"the CSV header lacks {', '.join(missing)}"
            return
        for row in _csv_rows(reader):
            if isinstance(row, str):
                yield reader.line_num, row
                continue
            if None in row:
                yield reader.line_num, "more cells than the header has columns"
                continue
            if not all(is_utf8(v) for v in row.values() if isinstance(v, str)):
                yield reader.line_num, "not UTF-8 text"
                continue
            record: dict[str, Any] = {k: v for k, v in row.items() if v not in ("", None)}
            try:
                for name in JSON_CELLS:
                    if name in record:
                        record[name] = json.loads(record[name])
            except json.JSONDecodeError as exc:
                yield reader.line_num, f"the {name} cell is not valid JSON ({exc.msg})"
                continue
            except (ValueError, RecursionError):
                yield reader.line_num, f"the {name} cell is not valid JSON"
                continue
            yield reader.line_num, record
    else:
        raise InvalidInputError(f"unknown format {fmt!r} (jsonl or csv)")


def _csv_rows(reader: csv.DictReader[str]) -> Iterator[dict[str, Any] | str]:
    """The reader's rows; a row it cannot parse is its error message, and reading goes on."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield f"malformed CSV ({exc})"


def sniff_format(head: str) -> str:
    """``jsonl`` when the first non-blank character opens an object, else ``csv``."""
    return "jsonl" if head.lstrip().startswith("{") else "csv"


@dataclass
class ImportReport:
    imported: int = 0  # facts
    settings: int = 0  # relation and entity records
    skipped: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _validate(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its times in the store's form, or InvalidInputError (see records.py)."""
    unknown = set(record) - set(FIELDS)
    if unknown:
        raise InvalidInputError(f"unknown field(s): {', '.join(sorted(unknown))}")
    return check_record(record)


def _import_settings(store: Store, record: dict[str, Any]) -> None:
    """Restore one relation or entity record (see the module docstring)."""
    fields = SETTINGS_FIELDS.get(record["kind"])
    if fields is None:
        raise InvalidInputError(f"'kind' is relation or entity, not {record['kind']!r}")
    unknown = set(record) - set(fields)
    if unknown:
        raise InvalidInputError(f"unknown field(s): {', '.join(sorted(unknown))}")
    name = record.get(fields[1])
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"'{fields[1]}' must be a non-empty string")
    aliases = record.get("aliases") or []
    if not (isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)):
        raise InvalidInputError("'aliases' must be a list of strings")
    if record["kind"] == "entity":
        store.names.restore_aliases(name, aliases)
        return
    cardinality = record.get("cardinality", "many")
    if cardinality not in ("one", "many"):
        raise InvalidInputError(f"'cardinality' is one or many, not {cardinality!r}")
    store.relation_table.restore(name, cardinality, record.get("pid"), aliases)


def _import_one(
    store: Store, record: dict[str, Any] | str, documents: bool, begun: set[tuple[str, str]]
) -> tuple[tuple[int, dict[str, str]] | None, list[str]]:
    """Write one record; return the link its successor still needs (or None) and its warnings.

    A restored record's ``superseded_by`` names a fact that may come later in the
    stream, so :func:`import_records` links the two once every record is in.
    """
    if isinstance(record, str):
        raise InvalidInputError(record)
    if "kind" in record:
        _import_settings(store, record)
        return None, []
    record = _validate(record)
    if "status" in record:
        fact = store.fact_table.restore({**record, "superseded_by": None})
        successor = record.get("superseded_by")
        return ((fact.id, successor) if successor else None), []
    evidence = [Evidence.from_dict(e) for e in record.get("evidence") or []]
    for item in evidence if documents else []:
        version = (item.uri or "", item.sha256 or "")
        if item.source_kind == "document" and all(version) and version not in begun:
            store.begin_document(*version)
            begun.add(version)
    for item in evidence or [Evidence(origin=record.get("origin", "manual"))]:
        result = store.add_fact(
            record["subject"],
            record["relation"],
            record["object"],
            item,
            valid_from=record.get("valid_from"),  # in the store's form: _validate made it so
        )
    if result.action == "overruled":  # a dry run's proposal of a fact the user took back
        return None, [*result.warnings, "not stored: you deleted or corrected this fact"]
    return None, result.warnings


def import_records(
    store: Store,
    records: Iterable[tuple[int, dict[str, Any] | str]],
    *,
    skip_bad: bool = False,
    description: str = "facts import",
    documents: bool = False,
) -> ImportReport:
    """Import records in one batch. A bad record aborts everything unless ``skip_bad``.

    With ``documents``, each document version named in the evidence is marked as
    ingested (``memllm apply`` of ``ingest --dry-run`` output), so a later ingest of
    the unchanged file does nothing.
    """
    report = ImportReport()
    links: list[tuple[int, int, dict[str, str]]] = []
    begun: set[tuple[str, str]] = set()
    with store.batch("import", description):
        for number, record in records:
            try:
                with store.savepoint():
                    link, warnings = _import_one(store, record, documents, begun)
            except (MemllmError, TypeError) as exc:
                if not skip_bad:
                    raise InvalidInputError(f"line {number}: {exc}") from None
                report.skipped.append((number, str(exc)))
                continue
            if link is not None:
                links.append((number, *link))
            report.warnings += [f"line {number}: {w}" for w in warnings]
            if isinstance(record, dict) and "kind" in record:
                report.settings += 1
            else:
                report.imported += 1
        for number, fact_id, successor in links:
            by = store.fact_id_of(successor["subject"], successor["relation"], successor["object"])
            if by is None or by == fact_id:
                message = (
                    "its superseded_by fact is not in the memory"
                    if by is None
                    else "a fact cannot be superseded by itself"
                )
                if not skip_bad:
                    raise InvalidInputError(f"line {number}: {message}")
                report.skipped.append((number, message))
                continue
            store.fact_table.set_superseded_by(fact_id, by)
    return report


def import_text(
    store: Store,
    stream: TextIO,
    *,
    name: str,
    fmt: str | None = None,
    skip_bad: bool = False,
    documents: bool = False,
) -> ImportReport:
    """Import a JSONL or CSV stream; the format comes from ``fmt``, the file name, or the text."""
    try:
        lines = _text_lines(stream)
        blank: list[str] = []
        head = next(lines, "")
        while head and not head.strip():
            blank.append(head)
            head = next(lines, "")
        if not head:
            raise InvalidInputError(f"{name} is empty; nothing was imported")
        if not is_utf8(head) or "\x00" in head:
            raise UnicodeDecodeError("utf-8", b"", 0, 0, "not text")
        if fmt is None:
            suffix = Path(name).suffix.lower()
            fmt = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix)
            fmt = fmt or sniff_format(head)
        records = read_records(chain(blank, [head], lines), fmt)
        return import_records(
            store,
            records,
            skip_bad=skip_bad,
            description=f"{'apply' if documents else 'facts import'} {name}",
            documents=documents,
        )
    except UnicodeDecodeError:
        raise InvalidInputError(f"{name} is not UTF-8 text; nothing was imported") from None


def _text_lines(stream: TextIO) -> Iterator[str]:
    """The stream's lines. Bytes that are not UTF-8 become lone surrogates, not an abort, so
    the record holding them is refused alone (``--skip-bad`` goes on past it)."""
    binary = getattr(stream, "buffer", None)
    if binary is None:
        yield from stream
        return
    for raw in binary:
        yield raw.decode("utf-8", errors="surrogateescape")


def dumps(records: Iterable[dict[str, Any]], fmt: str) -> str:
    """Records as one JSONL or CSV string (tests and small exports)."""
    out = io.StringIO()
    (write_jsonl if fmt == "jsonl" else write_csv)(records, out)
    return out.getvalue()
