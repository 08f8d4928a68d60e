"""Notes QA: memllm against four baselines on notes and questions in a user's words.

The notes are a file or a folder (every ``.md``/``.txt`` in it, found as ``memllm
ingest DIR`` finds them; a README describes a set and is left out). Questions are
JSONL in the notes-dev format: ``{"file", "q", "a": [accepted answers]}``. Each
system answers every question once:

- each system under test (``adapter`` is memllm as shipped): all the notes ingested
  into one memory by the ingest pipeline, then ``Session.ask``, what ``memllm ask`` runs;
- ``pasted``: the base model with the whole note file the question is about in its
  prompt (cut at a line when it does not fit the context; the cuts are counted);
- ``bm25``: the 3 note lines (of all files) with the best BM25 score in the prompt;
- ``rag``: the 3 note sentences closest to the question by the embedder;
- ``no-memory``: the base model alone.

The three baselines that paste notes say "if the notes do not say, answer: I do not
know". An answer is right when it contains an accepted answer, unanswered when it
declines (``common.abstains``), and wrong otherwise; every question's record is kept,
with whether the answer was there to be read: in the pasted notes, or in the reads'
results (``answer_in_context``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memllm_cli.embed import Embedder, unpack
from memllm_cli.eval import qa
from memllm_cli.eval.common import (
    VERDICTS,
    Metered,
    Progress,
    System,
    contains_answer,
    no_progress,
    scratch_store,
    verdict,
)
from memllm_cli.eval.noteset import NoteFile, NotesSet
from memllm_cli.eval.retrieval import BM25
from memllm_cli.ingest.discovery import discover
from memllm_cli.ingest.pipeline import DocumentReport, Ingestor
from memllm_cli.runtime import prompts
from memllm_cli.runtime.loop import Answer, Session
from memllm_cli.store import Store

TOP_K = 3  # lines (BM25) and sentences (embedder) pasted by the retrieval baselines
MAX_TOKENS = 64  # per answer, for every system
# The pasted notes' share of the default model's 4,096-token context (runtime.llama):
# the rest holds the instruction, the question and the answer.
PASTE_TOKENS = 3584
LABELS = {
    "adapter": "memllm",
    "server": "memllm (server)",
    "pasted": "pasted notes",
    "bm25": "BM25 top-3",
    "rag": "embedding top-3",
    "no-memory": "no memory",
}


# -- scoring ------------------------------------------------------------------------------------


@dataclass
class Score:
    """Each question's record and verdict, and the wall-clock seconds it took."""

    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, item: qa.QAItem, answer: str, seconds: float, **extra: Any) -> str:
        judged = verdict(answer, item.answers)
        self.records.append(
            {"file": item.file, "q": item.question, "accepted": list(item.answers)}
            | {"answer": answer, "verdict": judged, "seconds": round(seconds, 3), **extra}
        )
        self.seconds += seconds
        return judged

    def to_dict(self) -> dict[str, Any]:
        """Counts overall and per note file (the records are added last, by the caller)."""
        total = len(self.records)
        counts = Counter(r["verdict"] for r in self.records)
        by_file: dict[str, Counter[str]] = {}
        for r in self.records:
            by_file.setdefault(r["file"] or "?", Counter())[r["verdict"]] += 1
        return {v: counts[v] for v in VERDICTS} | {
            "total": total,
            "accuracy": round(counts["right"] / total, 4) if total else 0.0,
            "by_file": {
                name: {v: c[v] for v in VERDICTS} | {"total": c.total()}
                for name, c in by_file.items()
            },
            "seconds_per_question": round(self.seconds / total, 3) if total else 0.0,
            "answer_in_context": sum(bool(r.get("answer_in_context")) for r in self.records),
        }


def _reads(answer: Answer) -> list[dict[str, Any]]:
    return [
        {
            "query": r.query,
            "answers": [hit["answer"] for hit in r.results],
            "rolled_back": r.rolled_back,
        }
        for r in answer.reads
    ]


# -- the systems --------------------------------------------------------------------------------


def evaluate(
    notes: NotesSet,
    under_test: Sequence[System],
    base: System,
    embedder: Embedder,
    progress: Progress = no_progress,
    paste_tokens: int = PASTE_TOKENS,
) -> dict[str, Any]:
    """Every system on every question: the notes part of the report."""
    passages = [s for f in notes.files for s in f.sentences()]
    lines = [line.strip() for f in notes.files for line in f.text().splitlines() if line.strip()]
    part: dict[str, Any] = {
        "questions": len(notes.items),
        "files": [f.name for f in notes.files],
        "sentences": len(passages),
        "lines": len(lines),
        "k": TOP_K,
        "max_tokens": MAX_TOKENS,
    }
    for system in under_test:
        part[system.name] = evaluate_memory(system, notes, embedder, len(passages), progress)
    part["pasted"] = _baseline(base, notes.items, _pasted(base, notes, paste_tokens), progress)
    part["pasted"]["truncated"] = sum(bool(r.get("truncated")) for r in part["pasted"]["records"])
    index = BM25(lines)
    part["bm25"] = _baseline(
        base, notes.items, lambda item: (index.top(item.question, TOP_K), {}), progress, "bm25"
    )
    vectors = [unpack(v) for v in embedder.embed(passages)] if passages else []

    def closest(item: qa.QAItem) -> tuple[list[str], dict[str, Any]]:
        return qa.retrieve(embedder, passages, vectors, item.question, TOP_K), {}

    part["rag"] = _baseline(base, notes.items, closest, progress, "rag")
    with scratch_store() as store:
        part["no-memory"] = _ask_all(
            System("no-memory", base.model), store, embedder, notes.items, progress, memory=False
        )
    return part


def evaluate_memory(
    system: System,
    notes: NotesSet,
    embedder: Embedder,
    sentence_count: int = 0,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Ingest every note file into one fresh memory, then ask every question."""
    with scratch_store() as store:
        ingest = _ingest(store, system, embedder, notes.files, sentence_count, progress)
        result = _ask_all(system, store, embedder, notes.items, progress, files=notes.files)
        facts = store.count_facts()
    records = result.pop("records")
    return {"facts_written": facts, "ingest": ingest} | result | {"records": records}


def _ingest(
    store: Store,
    system: System,
    embedder: Embedder,
    files: Sequence[NoteFile],
    sentence_count: int,
    progress: Progress,
) -> dict[str, Any]:
    """``memllm ingest FILE...``: the pipeline, one batch per document, into ``store``."""
    ingestor = Ingestor(store, Session(store, system.model, embedder))
    label = f"notes ingest {system.name}"
    ingestor.on_progress = lambda p: progress(label, p.sentences, max(sentence_count, 1))
    started = time.perf_counter()
    reports = [
        doc if isinstance(doc, DocumentReport) else ingestor.ingest(doc)
        for doc in discover([str(f.path) for f in files])
    ]
    return {
        "documents": {recorded(r.name, files): r.status for r in reports},
        "sentences": sum(r.sentences for r in reports),
        "facts": sum(r.facts for r in reports),
        "parse_failures": sum(r.parse_failures for r in reports),
        "seconds": round(time.perf_counter() - started, 1),
    }


def recorded(path: str, files: Sequence[NoteFile]) -> str:
    """A note as the report names it: relative to the notes folder, never a machine path."""
    resolved = Path(path).resolve()
    return next((f.name for f in files if f.path.resolve() == resolved), resolved.name)


def _ask_all(
    system: System,
    store: Store,
    embedder: Embedder,
    items: Sequence[qa.QAItem],
    progress: Progress,
    memory: bool = True,
    files: Sequence[NoteFile] = (),
) -> dict[str, Any]:
    """Ask through ``Session.ask``: with the memory, or (``memory=False``) the model alone."""
    metered = Metered(system.model)
    session = Session(store, metered, embedder, memory=memory, max_tokens=MAX_TOKENS)
    score, failures, using_facts, paths = Score(), 0, 0, Counter()
    for n, item in enumerate(items):
        started = time.perf_counter()
        answer = session.ask(item.question)
        path = getattr(answer, "path", None)  # "facts" | "sentences" | "none", where answers say
        reads = _reads(answer)
        found = " ; ".join(a for r in reads if not r["rolled_back"] for a in r["answers"])
        score.add(
            item,
            answer.text,
            time.perf_counter() - started,
            answer_in_context=contains_answer(found, item.answers),
            reads=reads,
            facts_used=answer.facts_used,
            path=path,
            sources=[recorded(source, files) for source in answer.sources],
        )
        failures += answer.parse_failures
        using_facts += bool(answer.facts_used)
        if path is not None:
            paths[path] += 1
        progress(f"notes {system.name}", n + 1, len(items))
    return score.to_dict() | {
        "parse_failures": failures,
        "answers_using_facts": using_facts,
        "answers_by_path": dict(paths) if paths else None,
        "sentence_fallback": paths["sentences"] if paths else None,
        **metered.cost(len(items)),
        "records": score.records,
    }


Context = Callable[[qa.QAItem], tuple[str | list[str], dict[str, Any]]]


def _baseline(
    system: System,
    items: Sequence[qa.QAItem],
    context: Context,
    progress: Progress,
    name: str = "pasted",
) -> dict[str, Any]:
    """One generation per question with the notes ``context`` gives pasted into the prompt."""
    metered = Metered(system.model)
    score = Score()
    for n, item in enumerate(items):
        started = time.perf_counter()
        notes, extra = context(item)
        gen = metered.generate(
            prompts.notes_prompt(item.question, notes),
            max_tokens=MAX_TOKENS,
            stop=(prompts.IM_END,),
        )
        pasted = notes if isinstance(notes, str) else " ; ".join(notes)
        extra = {"answer_in_context": contains_answer(pasted, item.answers), **extra}
        if not isinstance(notes, str):
            extra["passages"] = notes
        score.add(item, gen.text.strip(), time.perf_counter() - started, **extra)
        progress(f"notes {name}", n + 1, len(items))
    return (
        score.to_dict()
        | {"parse_failures": 0, **metered.cost(len(items))}
        | {"records": score.records}
    )


def _pasted(system: System, notes: NotesSet, budget: int) -> Context:
    """The question's note file (all files, when a question names none), cut to ``budget``."""
    count = _token_counter(system.model)
    texts = {f.name: f.text() for f in notes.files}
    fitted: dict[str | None, tuple[str, dict[str, Any]]] = {}

    def context(item: qa.QAItem) -> tuple[str, dict[str, Any]]:
        if item.file not in fitted:
            text = texts[item.file] if item.file else "\n\n".join(texts.values())
            fitted[item.file] = fit(text, budget, count)
        return fitted[item.file]

    return context


def _token_counter(model: Any) -> Callable[[str], int]:
    """Tokens in a text for ``model`` (llama.cpp's tokenizer), else about 4 characters each."""
    tokenize = getattr(model, "tokenize", None)
    if callable(tokenize):
        return lambda text: len(tokenize(text))
    return lambda text: len(text) // 4


def fit(text: str, budget: int, count: Callable[[str], int]) -> tuple[str, dict[str, Any]]:
    """``text``, or as many of its first lines as fit ``budget`` tokens, and what was kept."""
    lines = text.splitlines()
    tokens = count(text)
    if tokens <= budget:
        return text, {"notes_tokens": tokens, "truncated": False}
    lo, hi = 0, len(lines)  # the most leading lines that fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count("\n".join(lines[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    kept = "\n".join(lines[:lo])
    return kept, {
        "notes_tokens": count(kept),
        "truncated": True,
        "lines_pasted": lo,
        "lines": len(lines),
    }


# -- the table ----------------------------------------------------------------------------------


def table(part: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """(rows, columns): systems side by side, right / wrong / unanswered first."""
    results = {name: r for name, r in part.items() if isinstance(r, dict)}
    files = list(dict.fromkeys(f for r in results.values() for f in r.get("by_file", {})))
    rows = [
        {"metric": label} | {name: r.get(key) for name, r in results.items()}
        for key, label in TOTALS
    ]
    for f in files:
        rows.append({"metric": f"{Path(f).stem} r/w/u"})
        for name, r in results.items():
            c = r.get("by_file", {}).get(f)
            rows[-1][name] = "/".join(str(c[v]) for v in VERDICTS) if c else None
    rows += [
        {"metric": label} | {name: r.get(key) for name, r in results.items()}
        for key, label in DETAILS
    ]
    columns = [("metric", ""), *[(name, LABELS.get(name, name)) for name in results]]
    return rows, columns


TOTALS = (*((v, v) for v in VERDICTS), ("total", "questions"))
DETAILS = (
    ("answer_in_context", "answer in context"),
    ("facts_written", "facts written"),
    ("answers_using_facts", "used facts"),
    ("sentence_fallback", "sentence fallback"),
    ("truncated", "notes cut"),
    ("parse_failures", "parse failures"),
    ("seconds_per_question", "s/question"),
)
