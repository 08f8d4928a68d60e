"""Rendering for every listing: a table for people, JSON / JSONL / CSV for pipes.

Rows are dicts and stream through: JSONL, CSV and TSV print as rows arrive, JSON as
one array written incrementally. ``rich`` is imported only to draw a table.
Without a format flag a listing is a table at a terminal and tab-separated rows
when stdout is a pipe or file (as ``gh`` does): no header, one row a line, values
whole (timestamps to the microsecond), and a tab, newline, carriage return or
backslash inside a value written ``\\t``, ``\\n``, ``\\r``, ``\\\\``.
Messages for the person go to stderr.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from memllm_cli.store.transfer import ImportReport

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]
JsonlFlag = Annotated[bool, typer.Option("--jsonl", help="Print one JSON object per line.")]
CsvFlag = Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")]
_FORMAT_FLAGS = (
    ("json_", "json", JsonFlag),
    ("jsonl", "jsonl", JsonlFlag),
    ("csv_", "csv", CsvFlag),
)
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def table_format() -> str:
    """``table`` for a person at a terminal, ``tsv`` for a pipe or a file."""
    return "table" if stdout_is_terminal() else "tsv"


def listing(command: Callable[..., None]) -> Callable[..., None]:
    """Give a listing command the output options: ``--json``, ``--jsonl`` or ``--csv``.

    The command declares a keyword-only ``fmt: str`` and receives "json", "jsonl",
    "csv", or with no flag "table" (a terminal) or "tsv" (a pipe); two flags at once
    are a usage error.
    """
    signature = inspect.signature(command, eval_str=True)
    shown = [p for p in signature.parameters.values() if p.name != "fmt"] + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=flag)
        for name, _, flag in _FORMAT_FLAGS
    ]

    @functools.wraps(command)
    def with_format(*args: Any, **kwargs: Any) -> None:
        chosen = [fmt for name, fmt, _ in _FORMAT_FLAGS if kwargs.pop(name)]
        if len(chosen) > 1:
            raise typer.BadParameter("choose one of --json, --jsonl and --csv")
        command(*args, fmt=chosen[0] if chosen else table_format(), **kwargs)

    # typer reads the options from the signature: the three flags instead of ``fmt``.
    with_format.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
    return with_format


def render(
    rows: Iterable[dict[str, Any]],
    fmt: str,
    columns: Sequence[tuple[str, str]],
    *,
    empty: str = "nothing to show",
) -> int:
    """Print ``rows`` in ``fmt``; ``columns`` are (key, header) pairs for table, TSV and CSV.

    JSON and JSONL carry every key of each row; a table, TSV and CSV show a list value
    (aliases, matched fields) as one comma-separated cell. Returns the number of rows.
    """
    out = sys.stdout
    count = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    elif fmt == "json":
        out.write("[")
        for row in rows:
            out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(row, ensure_ascii=False))
            count += 1
        out.write("\n]\n" if count else "]\n")
    elif fmt == "csv":
        import csv  # only for --csv: not on every start

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([header for _, header in columns])
        for row in rows:
            writer.writerow([_cell(row.get(key)) for key, _ in columns])
            count += 1
    elif fmt == "tsv":
        for row in rows:
            out.write("\t".join(_cell(row.get(key)).translate(_TSV_ESCAPES) for key, _ in columns))
            out.write("\n")
            count += 1
        if not count:
            message(empty)
    else:
        count = _table(rows, columns, empty)
    return count


def _table(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]], empty: str) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    count = 0
    for row in rows:
        table.add_row(*[_plain(row.get(key)) for key, _ in columns])
        count += 1
    if count:
        Console(soft_wrap=False).print(table)
    else:
        message(empty)
    return count


def _cell(value: Any) -> str:
    """One cell's text: nothing for None, a list joined with commas."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def _plain(value: Any) -> str:
    from rich.markup import escape

    text = _cell(value)
    # Timestamps read better to the minute in a table; JSON keeps them whole.
    if len(text) >= 26 and text[4] == "-" and text[10] == "T":
        text = text[:16].replace("T", " ")
    return escape(text)


def report_import(report: ImportReport, name: str) -> None:
    """Warnings and skipped lines of an import, then the count: all on stderr."""
    for warning in report.warnings:
        message(f"warning: {warning}")
    for number, why in report.skipped:
        message(f"skipped line {number}: {why}")
    settings = f" and {report.settings} relation or alias record(s)" if report.settings else ""
    message(f"imported {report.imported} facts{settings} from {name}")


def message(text: str) -> None:
    """A line for the person, on stderr, so that stdout stays data."""
    sys.stderr.write(text + "\n")


def emit(text: str) -> None:
    """A line of data on stdout."""
    sys.stdout.write(text + "\n")
