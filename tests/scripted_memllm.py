"""``memllm`` in a subprocess, with a model that writes by rule and takes its time.

The kill, concurrency and Ctrl-C tests (and bench/bench_lock.py) need a real process
to kill or signal, and a model slow enough to be caught mid-document, without
weights. Run as ``python tests/scripted_memllm.py ARGS...`` (the arguments of
``memllm``); ``MEMLLM_TEST_DELAY`` is the seconds each generation takes, spent, like
llama.cpp's, with stderr silenced; with ``MEMLLM_TEST_TRACE`` set, each generation
first appends its focus sentence, one line, to that file (so a test knows how far it is);
with ``MEMLLM_TEST_NOISY`` set, each generation also writes a line to stdout, through
Python and straight to file descriptor 1 (as llama.cpp's C code can), so a test can check
that nothing of it reaches a protocol stream there.

The rules: "A B works at C." writes (A B, employer, C); "A B lives in C." writes
(A B, residence, C); any other sentence writes nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memllm_cli.llamacpp import quiet_stderr
from memllm_cli.protocol import USER_END, USER_START
from memllm_cli.runtime import models
from memllm_cli.runtime.model import Generation

RULES = (
    (re.compile(r"(\S+ \S+) works at (\S+?)\.?$"), "employer"),
    (re.compile(r"(\S+ \S+) lives in (\S+?)\.?$"), "residence"),
)


def triples(sentence: str) -> list[tuple[str, str, str]]:
    """What the rule model writes for ``sentence`` (tests compute expected facts with it)."""
    found = []
    for pattern, relation in RULES:
        match = pattern.match(sentence.strip())
        if match:
            found.append((match[1], relation, match[2]))
    return found


class RuleModel:
    """A write-mode model by rule, ``delay`` seconds a call."""

    name = "rules"
    prompted = False
    adapter = None

    def __init__(self, delay: float, trace: str | None = None) -> None:
        self.delay = delay
        self.trace = trace

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        focus = prompt.rsplit(USER_START, 1)[-1].split(USER_END, 1)[0]
        if self.trace:
            with open(self.trace, "a", encoding="utf-8") as handle:
                handle.write(" ".join(focus.split()) + "\n")
        if os.environ.get("MEMLLM_TEST_NOISY"):
            sys.stdout.write("noise from Python's sys.stdout\n")
            sys.stdout.flush()
            os.write(1, b"noise from file descriptor 1\n")
        with quiet_stderr():
            time.sleep(self.delay)
        written = ";".join(f"{s}>>{r}>>{o}" for s, r, o in triples(focus))
        return Generation("({MEM_WRITE-->" + written + "})")


def start(
    home: Path, *args: str, delay: float = 0.0, trace: Path | None = None, **popen: object
) -> subprocess.Popen[str]:
    """``memllm ARGS`` started in a subprocess on the memory in ``home``, text pipes."""
    env = {**os.environ, "MEMLLM_HOME": str(home), "MEMLLM_EMBEDDER": "hash"}
    env["MEMLLM_TEST_DELAY"] = str(delay)
    if trace is not None:
        env["MEMLLM_TEST_TRACE"] = str(trace)
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[arg-type]
    )


def run(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``memllm ARGS`` run to its end in a subprocess (no model delay)."""
    proc = start(home, *args)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def traced(trace: Path) -> int:
    """How many generations the traced process has begun."""
    return len(trace.read_text().splitlines()) if trace.exists() else 0


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def main() -> None:
    delay = float(os.environ.get("MEMLLM_TEST_DELAY", "0"))
    trace = os.environ.get("MEMLLM_TEST_TRACE")
    models.load_model = lambda *args, **kwargs: RuleModel(delay, trace)
    from memllm_cli.cli import main as memllm

    sys.argv[0] = "memllm"
    memllm()


if __name__ == "__main__":
    main()
