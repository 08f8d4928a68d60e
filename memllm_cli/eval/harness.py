"""``memllm eval``: every measurement the model card quotes, in one reproducible run.

Systems: ``adapter`` (the embedded base with our LoRA adapter), ``prompted`` (the
same base, few-shot prompted under the grammar, no adapter), any ``--reference``
GGUF a user brings (prompted), and ``server``, the model behind ``--model-url``.
Baselines for memory QA use the base model without the adapter: ``no-memory`` (the
model alone) and ``rag`` (top sentences pasted into the prompt); on notes also
``pasted`` (the whole note file) and ``bm25`` (top lines by BM25), scored right /
wrong / unanswered (``eval.notes``). The output records the seed, the sha256 of
every data file and model, and the configuration, so a run can be repeated and
compared.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memllm_cli.eval import notes, noteset, perplexity, qa, write
from memllm_cli.eval.common import Progress, System, no_progress, scratch_store
from memllm_cli.eval.noteset import generated_notes
from memllm_cli.hashing import file_sha256
from memllm_cli.protocol import PROTOCOL_VERSION

if TYPE_CHECKING:
    from memllm_cli.runtime.server import ServerOptions

PARTS = ("write", "fewrel", "qa", "notes", "perplexity", "edits")


@dataclass
class EvalConfig:
    data: Path | None = None  # ../shared/data: the defaults below are its held-out sides
    split: Path | None = None  # a Re-DocRED-format file, all of it evaluated
    docs: int = 20
    fewrel: Path | None = None
    fewrel_sentences: int = 100
    questions: Path | None = None  # an EntityQuestions-format folder (its dev/ split)
    question_split: str = "dev"
    question_count: int = 100
    notes: Path | None = None  # Markdown notes ...
    notes_qa: Path | None = None  # ... and their JSONL questions; else generated
    notes_count: int = 40
    perplexity_docs: int = 10
    edits: int = 20
    systems: tuple[str, ...] = ("adapter", "prompted")
    references: tuple[Path, ...] = ()
    parts: tuple[str, ...] = PARTS
    seed: int = 7
    model_url: str | None = None  # the system "server": a model behind --model-url ...
    model_name: str | None = None
    server: ServerOptions | None = None  # ... and how to reach it (never in the report)
    threads: int | None = None  # llama.cpp's (None: its default policy)
    gpu_layers: int | None = None


@dataclass
class Systems:
    """The systems under test, the plain base (for the baselines), and each model file's hash."""

    under_test: list[System]
    base: System
    models: dict[str, Any]


def load_systems(cfg: EvalConfig) -> Systems:
    """The models ``cfg`` names, loaded once for the whole run."""
    from functools import partial

    from memllm_cli.errors import MemllmError
    from memllm_cli.runtime.llama import LlamaModel
    from memllm_cli.runtime.models import default_model_path, shipped_adapter

    load = partial(LlamaModel, threads=cfg.threads, gpu_layers=cfg.gpu_layers)
    base_path = default_model_path()
    base = System("prompted", load(base_path))
    models: dict[str, Any] = {"base": {"file": base_path.name, "sha256": file_sha256(base_path)}}
    systems = []
    for name in cfg.systems:
        if name == "prompted":
            systems.append(base)
        elif name == "adapter":
            adapter = shipped_adapter(base_path).path
            systems.append(System("adapter", load(base_path, adapter=adapter)))
            models["adapter"] = {"file": adapter.name, "sha256": file_sha256(adapter)}
        elif name == "server":
            if not cfg.model_url:
                raise MemllmError("the system server needs --model-url")
            from memllm_cli.runtime.server import ServerModel

            served = ServerModel(cfg.model_url, cfg.model_name, cfg.server)
            systems.append(System("server", served))
            models["server"] = served.describe()
        else:
            raise MemllmError(f"unknown system {name!r} (adapter, prompted or server)")
    for path in cfg.references:
        name = f"reference:{path.stem}"
        systems.append(System(name, load(path)))
        models[name] = {"file": path.name, "sha256": file_sha256(path)}
    return Systems(systems, base, models)


def _label_for(cfg: EvalConfig) -> Callable[[str], str]:
    from memllm_cli.datasets.relations import label_for

    return lambda pid: label_for(pid, cfg.data)


def _need(path: Path | None, what: str) -> Path:
    from memllm_cli.errors import MemllmError

    if path is None or not path.exists():
        raise MemllmError(f"no {what}: give --data or its own option")
    return path


def run(
    cfg: EvalConfig, embedder: Any, progress: Progress = no_progress, systems: Systems | None = None
) -> dict[str, Any]:
    """Run the parts of ``cfg`` and return the report (JSON-ready)."""
    from memllm_cli.datasets import entityquestions, fewrel, redocred

    started = time.perf_counter()
    systems = systems or load_systems(cfg)
    under_test, base = systems.under_test, systems.base
    label_for = _label_for(cfg)
    data_files: dict[str, str] = {}
    results: dict[str, Any] = {}
    root = cfg.data

    @cache
    def documents() -> list:
        """The Re-DocRED documents to evaluate, read once for write mode and perplexity:
        all of ``--split``, or the held-out side of the shared dev file."""
        path = cfg.split or _need(root and root / redocred.PATH, "Re-DocRED split")
        data_files[str(path)] = file_sha256(path)
        return redocred.documents(root, "all" if cfg.split else "val", path)

    if "write" in cfg.parts:
        docs = documents()[: cfg.docs]
        results["write"] = {
            s.name: write.evaluate_documents(s, docs, label_for, progress) for s in under_test
        }

    if "fewrel" in cfg.parts:
        path = cfg.fewrel or _need(root and root / fewrel.PATH, "FewRel file")
        data_files[str(path)] = file_sha256(path)
        items = fewrel.items(root, "val" if cfg.fewrel is None else "all", path)
        items = random.Random(cfg.seed).sample(items, min(cfg.fewrel_sentences, len(items)))
        results["fewrel"] = {s.name: write.evaluate_fewrel(s, items, progress) for s in under_test}

    eq_items: list[qa.QAItem] = []
    if "qa" in cfg.parts or "edits" in cfg.parts:
        folder = cfg.questions or _need(root and root / entityquestions.FOLDER, "EntityQuestions")
        questions = entityquestions.questions(root, cfg.question_split, folder)
        for path in sorted((folder / cfg.question_split).glob("P*.json")):
            data_files[str(path)] = file_sha256(path)
        eq_items = qa.entity_question_items(questions, cfg.question_count, cfg.seed)

    if "qa" in cfg.parts:
        part: dict[str, Any] = {}
        with scratch_store() as store:
            qa.load_facts(store, eq_items)
            for s in under_test:
                part[s.name] = qa.evaluate_memory(s, store, embedder, eq_items, progress)
            part["no-memory"] = qa.evaluate_memory(
                base, store, embedder, eq_items, progress, memory=False
            )
        part["rag"] = qa.evaluate_rag(
            base, embedder, qa.fact_passages(eq_items), eq_items, progress=progress
        )
        results["qa"] = part

    if "notes" in cfg.parts:
        results["notes"] = _notes_part(cfg, under_test, base, embedder, progress, data_files)

    if "perplexity" in cfg.parts:
        docs = documents()[: cfg.perplexity_docs]
        results["perplexity"] = {
            s.name: perplexity.evaluate(s, docs, label_for, 5, progress) for s in under_test
        }

    if "edits" in cfg.parts:
        part = {}
        for s in under_test:
            with scratch_store() as store:
                qa.load_facts(store, eq_items)
                part[s.name] = qa.evaluate_edits(
                    s, store, embedder, eq_items, cfg.edits, cfg.seed, progress
                )
        results["edits"] = part

    from memllm_cli import __version__

    return {
        "memllm": __version__,
        "protocol_version": PROTOCOL_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - started, 1),
        "config": {
            k: (recorded_path(str(v), root) if isinstance(v, Path) else v)
            for k, v in asdict(cfg).items()
            if k not in ("references", "model_url", "server")  # the server is in "models"
        }
        | {"references": [str(p) for p in cfg.references]},
        "embedder": getattr(embedder, "model_id", None),
        "data": {recorded_path(path, root): sha for path, sha in data_files.items()},
        "models": systems.models,
        "results": results,
    }


def recorded_path(path: str, root: Path | None) -> str:
    """A data file as the report names it, with no machine path in it: relative to the
    data folder when it lies there, else its folder's name and its own."""
    resolved = Path(path).resolve()
    if root is not None and resolved.is_relative_to(Path(root).resolve()):
        inside = resolved.relative_to(Path(root).resolve()).as_posix()
        return resolved.name if inside == "." else inside
    return f"{resolved.parent.name}/{resolved.name}"


def _notes_part(
    cfg: EvalConfig,
    under_test: list[System],
    base: System,
    embedder: Any,
    progress: Progress,
    data_files: dict[str, str],
) -> dict[str, Any]:
    """Notes (a file or a folder) + questions, or generated notes: memllm and the baselines."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="memllm-notes-") as tmp:
        if cfg.notes is not None:
            questions = _need(cfg.notes_qa, "questions for --notes (--notes-qa)")
            notes_set = noteset.read_notes(cfg.notes, questions)
            for f in notes_set.files:
                data_files[str(f.path)] = file_sha256(f.path)
            data_files[str(questions)] = file_sha256(questions)
        else:
            path, items = generated_notes(Path(tmp), cfg.seed, cfg.notes_count)
            files = noteset.note_files(path)
            notes_set = noteset.NotesSet(files, noteset.with_files(items, files, str(path)))
        return notes.evaluate(notes_set, under_test, base, embedder, progress)


HEADLINES = {
    "write": ("f1", "precision", "recall"),
    "fewrel": ("f1", "precision", "recall"),
    "qa": ("accuracy",),
    "notes": ("accuracy",),
    "perplexity": ("perplexity_without_memory", "perplexity_with_memory"),
}


def summary(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per part, system and headline metric: what the printed table shows."""
    rows = []
    for part, by_system in report["results"].items():
        for system, result in by_system.items():
            if not isinstance(result, dict):
                continue
            if part == "edits":
                metrics = {
                    "reliability": result["reliability"]["accuracy"],
                    "locality": result["locality"]["accuracy"],
                }
            else:
                metrics = {m: result[m] for m in HEADLINES[part] if m in result}
            for metric, value in metrics.items():
                rows.append(
                    {
                        "part": part,
                        "system": system,
                        "metric": metric,
                        "value": value,
                        "parse_failures": result.get("parse_failures"),
                        "seconds_per_item": result.get("seconds_per_item"),
                    }
                )
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The summary as a Markdown table (parts and metrics down, systems across), for cards."""
    rows = summary(report)
    systems = list(dict.fromkeys(r["system"] for r in rows))
    keys = list(dict.fromkeys((r["part"], r["metric"]) for r in rows))
    value = {(r["part"], r["metric"], r["system"]): r["value"] for r in rows}
    lines = [
        "| part | metric | " + " | ".join(systems) + " |",
        "| --- | --- |" + " --- |" * len(systems),
    ]
    for part, metric in keys:
        cells = [_cell(value.get((part, metric, s))) for s in systems]
        lines.append(f"| {part} | {metric} | " + " | ".join(cells) + " |")
    if "notes" in report["results"]:
        rows, columns = notes.table(report["results"]["notes"])
        lines += [
            "",
            "Notes QA: right / wrong / unanswered (r/w/u) per system",
            "",
            "| " + " | ".join(header for _, header in columns) + " |",
            "|" + " --- |" * len(columns),
        ]
        for row in rows:
            lines.append("| " + " | ".join(_cell(row.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)
