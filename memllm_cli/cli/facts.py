"""``memllm facts ...``: see, add, search, correct and move the facts in memory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from memllm_cli.cli.common import MAX_INT, embedder, open_input, open_store
from memllm_cli.cli.complete import fact_ids, relation_labels
from memllm_cli.cli.output import CsvFlag, JsonFlag, emit, listing, message, render, report_import

if TYPE_CHECKING:
    from memllm_cli.embed import Embedder
    from memllm_cli.store import Store, WriteResult

app = typer.Typer(
    help="List, search, add, edit, remove, import and export facts.", no_args_is_help=True
)

FACT_COLUMNS = [
    ("id", "id"),
    ("subject", "subject"),
    ("relation", "relation"),
    ("object", "object"),
    ("origin", "origin"),
    ("valid_from", "since"),
]
ALL_COLUMNS = [*FACT_COLUMNS, ("status", "status"), ("valid_to", "until")]
FactId = Annotated[
    int, typer.Argument(metavar="ID", min=1, max=MAX_INT, help="The fact.", autocompletion=fact_ids)
]


def _report(result: WriteResult) -> None:
    for warning in result.warnings:
        message(f"warning: {warning}")
    fact = result.fact
    if fact.status != "current":
        message(
            f"fact {fact.id} is {result.action} but stays superseded by fact "
            f"{fact.superseded_by}: a manual fact wins over an automatic one"
        )
    else:
        message(f"{result.action} fact {fact.id}: {fact.label}")
    for old in result.superseded:
        message(f"superseded fact {old.id}: {old.label}")


@app.command("add")
def add(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="Who or what the fact is about.")],
    relation: Annotated[
        str,
        typer.Argument(help="A relation label or Wikidata P-id.", autocompletion=relation_labels),
    ],
    obj: Annotated[str, typer.Argument(metavar="OBJECT", help="The value.")],
    valid_from: Annotated[
        str | None, typer.Option("--valid-from", help="When it became true (YYYY-MM-DD).")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Add a fact by hand (origin: manual). Prints its id.

    A new object for a one-valued relation (residence, date of birth, ...)
    supersedes the current one, which stays in history.

    Example: memllm facts add "Ingrid Solberg" residence Trondheim
    """
    from memllm_cli.store.text import parse_time

    store = open_store(ctx)
    since = parse_time(valid_from) if valid_from else None
    with store.batch("add", f"facts add {subject} >> {relation} >> {obj}"):
        result = store.add_fact(subject, relation, obj, valid_from=since)
    _report(result)
    if json_:
        render([result.fact.to_dict()], "jsonl", [])
    else:
        emit(str(result.fact.id))


@app.command("list")
@listing
def list_(
    ctx: typer.Context,
    subject: Annotated[
        str | None, typer.Option("--subject", "-s", help="Exact name or alias.")
    ] = None,
    relation: Annotated[
        str | None,
        typer.Option("--relation", "-r", help="Label or P-id.", autocompletion=relation_labels),
    ] = None,
    obj: Annotated[str | None, typer.Option("--object", "-o", help="Exact name or alias.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Document path (or its file name) or sha256 prefix.")
    ] = None,
    origin: Annotated[str | None, typer.Option(help="document, chat, manual or mcp.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", "-a", help="Include superseded, retracted and deleted facts.")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Facts valid at this date or time.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=0, max=MAX_INT, help="At most this many.")
    ] = None,
    *,
    fmt: str,
) -> None:
    """List facts, oldest first: by default the current ones.

    Example: memllm facts list --subject "Ingrid Solberg" --jsonl

    Example: memllm facts list --all --as-of 2025-01-01
    """
    from memllm_cli.store.models import FactFilter
    from memllm_cli.store.text import parse_time

    flt = FactFilter(
        subject=subject,
        relation=relation,
        object=obj,
        source=source,
        origin=origin,
        include_all=all_,
        as_of=parse_time(as_of) if as_of else None,
        limit=limit,
    )
    store = open_store(ctx)
    rows = (fact.to_dict() for fact in store.facts(flt))
    render(rows, fmt, ALL_COLUMNS if all_ or as_of else FACT_COLUMNS, empty="no facts")


@app.command("show")
def show(
    ctx: typer.Context,
    fact_id: FactId,
    json_: JsonFlag = False,
) -> None:
    """Show one fact: its evidence (source and sentence), its versions and its operations.

    Example: memllm facts show 12
    """
    from dataclasses import asdict

    detail = open_store(ctx).detail(fact_id)
    if json_:
        render([asdict(detail)], "jsonl", [])
        return
    fact = detail.fact
    lines = [
        f"fact {fact.id}  {fact.label}",
        f"status    {fact.status} ({fact.origin})",
        f"valid     {fact.valid_from or '?'} -> {fact.valid_to or 'now'}",
    ]
    if fact.superseded_by is not None:
        lines.append(f"superseded by fact {fact.superseded_by}")
    lines.append("evidence")
    for item in detail.evidence:
        where = item.uri or item.source_kind or item.origin
        if item.line_start is not None:
            where += f":{item.line_start}"
            if item.line_end not in (None, item.line_start):
                where += f"-{item.line_end}"
        said = f'  "{item.sentence}"' if item.sentence else ""
        by = f"  [{item.extractor}, protocol {item.protocol_version}]" if item.extractor else ""
        lines.append(f"  {item.created_at}  {where}{said}{by}")
    if len(detail.history) > 1:
        lines.append("versions")
        for version in detail.history:
            mark = "*" if version.id == fact.id else " "
            lines.append(f" {mark}{version.id:>6}  {version.label}  ({version.status})")
    lines.append("operations")
    for op in detail.ops:
        undone = f"  (undone by batch {op.undone_by})" if op.undone_by else ""
        lines.append(
            f"  op {op.id}  {op.op}  batch {op.batch_id} '{op.batch}'  {op.created_at}{undone}"
        )
    emit("\n".join(lines))


@app.command("edit")
def edit(
    ctx: typer.Context,
    fact_id: FactId,
    subject: Annotated[str | None, typer.Option("--subject", help="New subject.")] = None,
    relation: Annotated[
        str | None,
        typer.Option("--relation", help="New relation.", autocompletion=relation_labels),
    ] = None,
    obj: Annotated[str | None, typer.Option("--object", help="New object.")] = None,
) -> None:
    """Correct a fact. The old version is kept, superseded by the new one; undo reverts.

    Example: memllm facts edit 12 --object Bergen
    """
    if subject is None and relation is None and obj is None:
        raise typer.BadParameter("give at least one of --subject, --relation, --object")
    store = open_store(ctx)
    with store.batch("edit", f"facts edit {fact_id}"):
        result = store.edit_fact(fact_id, subject=subject, relation=relation, obj=obj)
    _report(result)
    emit(str(result.fact.id))


@app.command("rm")
def rm(
    ctx: typer.Context,
    ids: Annotated[
        list[int],
        typer.Argument(
            metavar="ID...", min=1, max=MAX_INT, help="Facts to delete.", autocompletion=fact_ids
        ),
    ],
) -> None:
    """Delete facts. They stay in history (facts list --all) and undo brings them back.

    Example: memllm facts rm 12 13
    """
    store = open_store(ctx)
    with store.batch("rm", "facts rm " + " ".join(map(str, ids))):
        removed = [store.remove_fact(fact_id) for fact_id in ids]
    for fact in removed:
        message(f"deleted fact {fact.id}: {fact.label}")


@app.command("query")
@listing
def query(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="'subject>>relation>>' or '>>relation>>object'.")],
    exact: Annotated[
        bool, typer.Option("--exact", help="Exact names and labels only: never load the embedder.")
    ] = False,
    *,
    fmt: str,
) -> None:
    """Run a MemLLM read query, as the model does: ranked answers, at most 30.

    Exact name, alias and label matches come first; otherwise near names and labels
    (by embedding distance) are tried, under calibrated thresholds. A name can be a
    unique first name or surname. When the name is known but nothing matches, its facts
    with the nearest relations answer, marked fallback (not with --exact).

    Example: memllm facts query "Ingrid Solberg>>residence>>"

    Example: memllm facts query ">>employer>>NIVA" --json
    """
    from memllm_cli.protocol import parse_query
    from memllm_cli.store.read import read

    parsed = parse_query(text)
    store = open_store(ctx)
    answers = read(store, parsed, None if exact else _indexed_embedder(store))
    columns = [
        ("answer", "answer"),
        ("score", "distance"),
        ("fact_id", "fact"),
        ("subject", "subject"),
        ("relation", "relation"),
        ("object", "object"),
        ("fallback", "fallback"),
    ]
    render((a.to_dict() for a in answers), fmt, columns, empty="no answer in memory")


@app.command("search")
@listing
def search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Words to look for.")],
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=MAX_INT, help="At most this many facts.")
    ] = 20,
    keyword: Annotated[
        bool, typer.Option("--keyword", help="Keyword (FTS5) only: skip the embedding model.")
    ] = False,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include non-current facts.")] = False,
    *,
    fmt: str,
) -> None:
    """Search facts by meaning and by keyword (names, relations, evidence sentences), fused.

    Example: memllm facts search "where does Ingrid live"

    Example: memllm facts search Trondheim --keyword --jsonl
    """
    from memllm_cli.store.search import search as run_search

    store = open_store(ctx)
    hits = run_search(
        store, text, None if keyword else _indexed_embedder(store), limit=limit, include_all=all_
    )
    columns = [*FACT_COLUMNS[:4], ("score", "score"), ("matched", "matched")]
    render((hit.to_dict() for hit in hits), fmt, columns, empty="nothing found")


def _indexed_embedder(store: Store) -> Embedder:
    """The embedder, with every pending name embedded first (a progress bar when it is long)."""
    from memllm_cli.cli.progress import index_pending

    model = embedder()
    index_pending(store, model)
    return model


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Annotated[
        str, typer.Argument(metavar="FILE", help="A .jsonl or .csv file, or - for stdin.")
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="jsonl or csv (default: from the file).")
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Import the good lines and report the bad ones.")
    ] = False,
) -> None:
    """Import facts from NDJSON or CSV, all in one undoable batch.

    A line needs subject, relation and object. Lines exported by 'facts export'
    (with status) are restored exactly. A bad line aborts the whole import
    unless --skip-bad.

    Example: memllm facts import facts.jsonl

    Example: memllm facts import - < facts.csv
    """
    from memllm_cli.store.transfer import import_text

    store = open_store(ctx)
    with open_input(path) as (stream, name):
        report = import_text(store, stream, name=name, fmt=fmt, skip_bad=skip_bad)
    report_import(report, name)


@app.command("export")
def export(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="jsonl (default), csv, markdown, graphml, ntriples."),
    ] = None,
    all_: Annotated[
        bool,
        typer.Option("--all", "-a", help="markdown, graphml: non-current facts too."),
    ] = False,
    csv_: CsvFlag = False,
) -> None:
    """Export every fact: a backup (JSONL, CSV), or a view for people and graph tools.

    JSONL also holds your relation settings and aliases: 'facts import' of it into an
    empty memory gives back an identical export. CSV holds the facts only. markdown is
    a section per entity; graphml a graph of entities and facts (Gephi, networkx);
    ntriples RDF with Wikidata property ids (current facts). Those three are views:
    'facts import' reads JSONL and CSV only.

    Example: memllm facts export > backup.jsonl

    Example: memllm facts export --csv -o facts.csv

    Example: memllm facts export -f markdown -o memory.md

    Example: memllm facts export -f markdown -o vault/  (an empty folder: a page per entity)
    """
    from memllm_cli.store.exports import format_problem, write_export, write_markdown_pages
    from memllm_cli.store.transfer import export_settings

    chosen = (fmt or ("csv" if csv_ else "jsonl")).strip().lower()
    pages = output is not None and output.is_dir()
    if problem := format_problem(chosen, csv_=csv_, include_all=all_, folder=pages):
        raise typer.BadParameter(problem)
    store = open_store(ctx)
    if output is None:
        write_export(store, sys.stdout, chosen, include_all=all_)
    elif pages:
        count = write_markdown_pages(store, output, include_all=all_)
        message(f"exported {count} facts to {output}, a page per entity (index.md lists them)")
    else:
        with output.open("w", encoding="utf-8", newline="") as out:
            count = write_export(store, out, chosen, include_all=all_)
        message(
            f"exported {count} {'records' if chosen in ('jsonl', 'csv') else 'facts'} to {output}"
        )
    if chosen == "csv" and (left := sum(1 for _ in export_settings(store))):
        message(f"note: CSV holds facts only; {left} relation or alias record(s) need JSONL")
