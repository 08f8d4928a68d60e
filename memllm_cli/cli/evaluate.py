"""``memllm eval``: the evaluation harness the model card quotes, on any split you point it at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from memllm_cli.cli.common import embedder
from memllm_cli.cli.options import (
    ApiKey,
    GpuLayers,
    ModelName,
    ModelUrl,
    ServedAdapter,
    ServerKind,
    Threads,
    Timeout,
    server_options,
)
from memllm_cli.cli.output import JsonFlag, message, render
from memllm_cli.cli.progress import task_progress


def evaluate(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            exists=True,
            file_okay=False,
            help="The shared data folder; its held-out sides are the defaults.",
        ),
    ] = None,
    split: Annotated[
        Path | None,
        typer.Option(
            "--split",
            exists=True,
            dir_okay=False,
            help="A Re-DocRED-format file to evaluate write mode on (all of it).",
        ),
    ] = None,
    fewrel: Annotated[
        Path | None, typer.Option("--fewrel", exists=True, dir_okay=False, help="A FewRel file.")
    ] = None,
    questions: Annotated[
        Path | None,
        typer.Option(
            "--questions",
            exists=True,
            file_okay=False,
            help="An EntityQuestions-format folder (with relation_query_templates.json).",
        ),
    ] = None,
    question_split: Annotated[
        str, typer.Option("--question-split", help="Its subfolder: dev, test, ...")
    ] = "dev",
    notes: Annotated[
        Path | None,
        typer.Option(
            "--notes",
            exists=True,
            help="Notes to ingest: a file, or a folder of .md/.txt files (default: generated).",
        ),
    ] = None,
    notes_qa: Annotated[
        Path | None,
        typer.Option(
            "--notes-qa",
            exists=True,
            dir_okay=False,
            help='Their questions, JSONL of {"file": ..., "q": ..., "a": [...]} ("file" optional).',
        ),
    ] = None,
    docs: Annotated[int, typer.Option("--docs", min=1, help="Re-DocRED documents.")] = 20,
    sentences: Annotated[
        int, typer.Option("--fewrel-sentences", min=1, help="FewRel sentences.")
    ] = 100,
    count: Annotated[int, typer.Option("--question-count", min=1, help="Questions.")] = 100,
    notes_count: Annotated[int, typer.Option("--notes-count", min=1, help="Generated notes.")] = 40,
    perplexity_docs: Annotated[int, typer.Option("--perplexity-docs", min=1)] = 10,
    edits: Annotated[int, typer.Option("--edits", min=1, help="Counterfactual edits.")] = 20,
    system: Annotated[
        list[str] | None,
        typer.Option("--system", "-s", help="adapter, prompted and/or server (repeatable)."),
    ] = None,
    reference: Annotated[
        list[Path] | None,
        typer.Option(
            "--reference",
            exists=True,
            dir_okay=False,
            help="Another GGUF to evaluate, prompted (repeatable).",
        ),
    ] = None,
    part: Annotated[
        list[str] | None,
        typer.Option(
            "--part",
            "-p",
            help="write, fewrel, qa, notes, perplexity, edits (repeatable; default all).",
        ),
    ] = None,
    model_url: ModelUrl = None,
    model_name: ModelName = None,
    served_adapter: ServedAdapter = False,
    server_kind: ServerKind = "auto",
    api_key: ApiKey = None,
    timeout: Timeout = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 7,
    threads: Threads = None,
    gpu_layers: GpuLayers = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", dir_okay=False, help="Write the JSON report here.")
    ] = None,
    markdown_: Annotated[
        bool, typer.Option("--markdown", help="Print the summary as a Markdown table.")
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Measure write mode, memory QA and its baselines, perplexity and edits.

    Every part runs for each system (the adapter, and the base prompted few-shot);
    memory QA also runs the base model without memory and with retrieval (RAG).
    The report records seeds and the sha256 of every data and model file.

    Example: memllm eval --data ../shared/data --out eval.json

    Example: memllm eval --split test.json --part write --docs 100

    Example: memllm eval --notes notes/ --notes-qa questions.jsonl --part notes -s adapter

    Example: memllm eval --part notes -s adapter --model-url http://127.0.0.1:8080 --served-adapter

    With --model-url the model behind it is evaluated too, as the system "server"
    (-s server alone evaluates only it, beside the baselines).

    The notes part also runs the base model with the question's note file pasted,
    with the top-3 lines by BM25, with the top-3 sentences by the embedder, and
    alone; it counts right, wrong and unanswered ("I do not know") answers.
    """
    from memllm_cli.errors import MemllmError
    from memllm_cli.eval.harness import PARTS, EvalConfig, markdown, run, summary
    from memllm_cli.eval.notes import table as notes_table

    parts = tuple(part or PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise typer.BadParameter(f"unknown part {unknown[0]!r} (choose from {', '.join(PARTS)})")
    if (notes is None) != (notes_qa is None):
        raise MemllmError("--notes and --notes-qa go together")
    server = server_options(model_url, api_key, server_kind, served_adapter, timeout)
    systems = tuple(system or ("adapter", "prompted"))
    if model_url and "server" not in systems:
        systems += ("server",)
    cfg = EvalConfig(
        data=data,
        split=split,
        docs=docs,
        fewrel=fewrel,
        fewrel_sentences=sentences,
        questions=questions,
        question_split=question_split,
        question_count=count,
        notes=notes,
        notes_qa=notes_qa,
        notes_count=notes_count,
        perplexity_docs=perplexity_docs,
        edits=edits,
        systems=systems,
        references=tuple(reference or ()),
        parts=parts,
        seed=seed,
        model_url=model_url,
        model_name=model_name,
        server=server,
        threads=threads,
        gpu_layers=gpu_layers,
    )
    with task_progress("eval") as progress:
        report = run(cfg, embedder(), progress)
    if out is not None:
        out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        message(f"report written to {out}")
    if json_:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    if markdown_:
        typer.echo(markdown(report), nl=False)
        return
    columns = [
        ("part", "part"),
        ("system", "system"),
        ("metric", "metric"),
        ("value", "value"),
        ("parse_failures", "parse failures"),
        ("seconds_per_item", "s/item"),
    ]
    render(summary(report), "table", columns)
    if "notes" in report["results"]:
        rows, notes_columns = notes_table(report["results"]["notes"])
        render(rows, "table", notes_columns)


# `memllm eval`, built only when named (see MemllmGroup.LAZY): its many options would
# otherwise cost every command's start-up.
app = typer.Typer()
app.command("eval")(evaluate)
