"""Rendering for every listing: a table for people, JSON / JSONL / CSV for pipes.

Rows are dicts and stream through: JSONL and CSV print as rows arrive, JSON as
one array written incrementally. ``rich`` is imported only to draw a table.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]
JsonlFlag = Annotated[bool, typer.Option("--jsonl", help="Print one JSON object per line.")]
CsvFlag = Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")]


def choose(json_: bool = False, jsonl: bool = False, csv_: bool = False) -> str:
    """The output format from the three flags; more than one is a usage error."""
    chosen = [name for name, on in (("json", json_), ("jsonl", jsonl), ("csv", csv_)) if on]
    if len(chosen) > 1:
        raise typer.BadParameter("choose one of --json, --jsonl and --csv")
    return chosen[0] if chosen else "table"


def render(
    rows: Iterable[dict[str, Any]],
    fmt: str,
    columns: Sequence[tuple[str, str]],
    *,
    empty: str = "nothing to show",
) -> int:
    """Print ``rows`` in ``fmt``; ``columns`` are (key, header) pairs for table and CSV.

    JSON and JSONL carry every key of each row. Returns the number of rows.
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
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([header for _, header in columns])
        for row in rows:
            writer.writerow(["" if row.get(key) is None else row.get(key) for key, _ in columns])
            count += 1
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


def _plain(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return ""
    text = str(value)
    # Timestamps read better to the minute in a table; JSON keeps them whole.
    if len(text) >= 26 and text[4] == "-" and text[10] == "T":
        text = text[:16].replace("T", " ")
    return escape(text)


def message(text: str) -> None:
    """A line for the person, on stderr, so that stdout stays data."""
    sys.stderr.write(text + "\n")


def emit(text: str) -> None:
    """A line of data on stdout."""
    sys.stdout.write(text + "\n")
