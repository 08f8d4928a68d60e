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

#: libgomp's spin bound while a thread waits at a barrier or for the next parallel region
#: (its default, 300,000, lets a waiting thread take the core another thread needs).
SPIN_COUNT = "10000"
MAX_THREADS = 4  # a 135M model gains nothing from more; every barrier costs more with them


def import_llama_cpp() -> ModuleType:
    """``llama_cpp``, imported with memllm's OpenMP wait bound unless the user set one.

    The bound must be in the environment before the OpenMP runtime loads, so every
    import of llama_cpp goes through here.
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    import llama_cpp

    return llama_cpp


def thread_counts(threads: int | None = None) -> tuple[int, int]:
    """(threads for generating one token, threads for a batch of prompt tokens).

    ``threads`` (``--threads``) sets both. By default a batch uses the usable cores (at
    most :data:`MAX_THREADS`), and generation one thread.
    """
    if threads is not None:
        return threads, threads
    return 1, min(system.usable_cores(), MAX_THREADS)


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
