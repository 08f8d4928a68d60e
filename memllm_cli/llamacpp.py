"""How memllm loads llama.cpp: quietly, with thread counts and OpenMP waits that suit
an idle machine and a busy one alike, decided without sampling the machine.

One place for the process-level settings both the language model and the llama.cpp
embedder rely on.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from memllm_cli import system

#: OpenMP threads wait asleep, not spinning: on a busy machine a spinning thread uses up
#: the time slice the thread it waits for needs (bench/bench_threads.py: spinning made
#: warm answers 15 to 25 times slower there). With a small model only prompt batches run
#: on several threads, and their few barriers cost little asleep.
WAIT_POLICY = "PASSIVE"
MAX_BATCH_THREADS = 4  # a small model gains little from more; each barrier costs more
#: Below this size one token's work is too small to split across threads: a thread per
#: token has no barrier to wait at, so other work on the machine cannot stall it.
SMALL_MODEL_BYTES = 1 << 30


def import_llama_cpp() -> ModuleType:
    """``llama_cpp``, imported with memllm's OpenMP wait policy unless the user set one.

    The policy must be in the environment before the OpenMP runtime loads, so every
    import of llama_cpp goes through here. (macOS builds of llama.cpp use ggml's own
    thread pool instead; there one thread per token avoids its waits alike.)
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    import llama_cpp

    return llama_cpp


def thread_counts(threads: int | None = None, model_bytes: int = 0) -> tuple[int, int]:
    """(threads generating a token, threads evaluating a batch of prompt tokens).

    ``threads`` (``--threads``) sets both. Otherwise a small model generates on one
    thread, and evaluates prompts on the usable cores but one (at most
    :data:`MAX_BATCH_THREADS`): a batch runs at the pace of its slowest thread, so a
    thread that shares its core with other work slows all of them. A large model
    (:data:`SMALL_MODEL_BYTES` or more) uses every usable core for both, as llama.cpp does.

    Measured with bench/bench_threads.py on a shared 2-core machine (load 3 to 7 from
    other work), median warm answer of the default model, without and with a core kept
    busy: one thread 0.61 and 0.65 s; two threads that spin 1.1 and 18 s; two that sleep
    1.2 and 1.3 s.
    """
    if threads is not None:
        return threads, threads
    cores = system.usable_cores()
    if model_bytes >= SMALL_MODEL_BYTES:
        return cores, cores
    return 1, max(1, min(cores - 1, MAX_BATCH_THREADS))


_saved_stderr: int | None = None  # the real fd 2 while quiet_stderr() silences it


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration, then restore it.

    llama.cpp (and ggml) write to fd 2 from C even with ``verbose=False``, so swapping
    ``sys.stderr`` is not enough. Process-wide: anything else writing to stderr meanwhile
    is silenced too, so keep the block tight.
    """
    global _saved_stderr
    sys.stderr.flush()
    saved = os.dup(2)
    outer = _saved_stderr
    _saved_stderr = saved if outer is None else outer  # nested: the real one stays
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # before forgetting it: a handler running now still finds a real fd
        _saved_stderr = outer
        os.close(saved)


@contextlib.contextmanager
def audible_stderr() -> Iterator[None]:
    """Let a message through while :func:`quiet_stderr` holds fd 2 (a signal handler's).

    A Ctrl-C lands while llama.cpp runs, that is inside :func:`quiet_stderr`; what
    the handler says must reach the person all the same.
    """
    saved = _saved_stderr
    if saved is None:
        yield
        return
    sys.stderr.flush()
    quiet = os.dup(2)
    try:
        os.dup2(saved, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(quiet, 2)
        os.close(quiet)
