"""``memllm ingest`` throughput against what llama.cpp allows, KV-cache reuse, and peak memory.

1. Throughput: the first ``--docs`` Re-DocRED dev documents, detokenised into text
   files, ingested with the default model (the base with memllm's adapter). Sentences/s and facts/s.
2. The limit, measured in the same run on the same loaded model: llama.cpp's prompt
   evaluation rate (tokens/s, a 512-token prompt from an empty cache) and generation
   rate (tokens/s, 128 greedy tokens, no grammar). The tokens the ingest really
   processed (prompt tokens not reused from the KV cache, and generated tokens) would
   take ``new/eval_rate + generated/gen_rate`` seconds at those rates; the ratio of that
   to the ingest's actual time is the efficiency (goal: at least 70%).
3. KV-cache reuse gain: the same documents again, into a fresh memory, with reuse off.
4. Peak memory (max RSS) of a child process that ingests a ``--big-mb`` MB Markdown file
   through the same pipeline with a model that writes nothing (so the figure is the
   pipeline's, not the model's), against a 1 MB file.

    python bench/bench_ingest.py --data ../shared/data --docs 10 --big-mb 100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memllm_cli.datasets.redocred import load
from memllm_cli.ingest.discovery import discover
from memllm_cli.ingest.pipeline import Ingestor
from memllm_cli.runtime import prompts
from memllm_cli.runtime.llama import LlamaModel
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.models import load_model
from memllm_cli.store import Store

OUT = Path(__file__).resolve().parent / "out"


def write_documents(data: Path, count: int, folder: Path) -> list[Path]:
    paths = []
    for index, doc in enumerate(load(data / "re-docred" / "dev_revised.json")):
        if index == count:
            break
        path = folder / f"doc{index:03d}.txt"
        path.write_text(" ".join(doc.sentences) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def raw_rates(model: LlamaModel) -> dict[str, float]:
    """Prompt-evaluation and generation tokens/s of this model on this machine, now."""
    filler = "The quick brown fox jumps over the lazy dog. " * 60
    prompt = prompts.chatml([("user", filler)])
    tokens = model.tokenize(prompt)[:512]
    model.llm.n_tokens = 0
    started = time.perf_counter()
    model.llm.eval(tokens)
    eval_rate = len(tokens) / (time.perf_counter() - started)
    gen = model.generate(prompts.chatml([("user", "Tell me a long story.")]), max_tokens=128)
    return {
        "prompt_eval_tokens_per_s": eval_rate,
        "generation_tokens_per_s": gen.completion_tokens / gen.seconds,
    }


def ingest(paths: list[Path], model: LlamaModel, db: Path) -> dict[str, float]:
    with Store.open(db) as store:
        session = Session(store, model, None)
        ingestor = Ingestor(store, session)
        started = time.perf_counter()
        reports = [ingestor.ingest(doc) for doc in discover([str(p) for p in paths])]
        seconds = time.perf_counter() - started
    usage = session.usage
    sentences = sum(r.sentences for r in reports)
    facts = sum(r.facts for r in reports)
    return {
        "seconds": seconds,
        "sentences": sentences,
        "facts": facts,
        "sentences_per_s": sentences / seconds,
        "facts_per_s": facts / seconds,
        "prompt_tokens": usage.prompt_tokens,
        "new_prompt_tokens": usage.new_prompt_tokens,
        "generated_tokens": usage.completion_tokens,
        "parse_failures": sum(r.parse_failures for r in reports),
    }


PEAK = """
import resource, sys
from memllm_cli.ingest.discovery import discover
from memllm_cli.ingest.pipeline import Ingestor
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.model import Generation
from memllm_cli.store import Store

class Silent:
    name, prompted = "silent", False

    def generate(self, prompt, **options):
        return Generation("({MEM_WRITE-->})")

with Store.open(sys.argv[2]) as store:
    report = Ingestor(store, Session(store, Silent())).ingest(next(discover([sys.argv[1]])))
print(report.sentences, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory(folder: Path, megabytes: int) -> dict[str, float]:
    paragraph = (
        "Ingrid Solberg moved to Trondheim in 2021. She works at NIVA, the Norwegian "
        "Institute for Water Research. Per Hansen lives in Bergen.\n\n"
    )
    result = {}
    for label, size in (("1MB", 1), (f"{megabytes}MB", megabytes)):
        path = folder / f"big-{size}.md"
        with path.open("w") as out:
            for _ in range(size * 1024 * 1024 // len(paragraph)):
                out.write(paragraph)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PEAK, str(path), str(folder / f"peak-{size}.db")],
            capture_output=True,
            text=True,
            check=True,
        )
        sentences, rss_kb = done.stdout.split()
        result[label] = {
            "sentences": int(sentences),
            "max_rss_mb": int(rss_kb) / 1024,
            "seconds": time.perf_counter() - started,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--docs", type=int, default=10)
    parser.add_argument("--big-mb", type=int, default=100)
    parser.add_argument("--skip-peak", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    report: dict = {"docs": args.docs}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_documents(args.data, args.docs, folder)
        model = load_model()  # the default: the base with memllm's adapter
        report["model"] = model.name
        rates = raw_rates(model)
        run = ingest(paths, model, folder / "a.db")
        limit = (
            run["new_prompt_tokens"] / rates["prompt_eval_tokens_per_s"]
            + run["generated_tokens"] / rates["generation_tokens_per_s"]
        )
        model.reuse_cache = False
        cold = ingest(paths, model, folder / "b.db")
        report.update(
            rates=rates,
            ingest=run,
            limit_seconds=limit,
            efficiency=limit / run["seconds"],
            without_kv_reuse=cold,
            kv_reuse_speedup=cold["seconds"] / run["seconds"],
        )
        if not args.skip_peak:
            report["peak_memory"] = peak_memory(folder, args.big_mb)
    (OUT / "bench_ingest.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
