"""How memllm loads llama.cpp: quietly, and with OpenMP threads that yield when idle.

One place for the process-level settings both the language model and the llama.cpp
embedder rely on.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from types import ModuleType


def import_llama_cpp() -> ModuleType:
    """``llama_cpp``, imported with an OpenMP wait policy that suits the machine's load.

    llama.cpp's OpenMP threads spin while they wait for each other. Measured on the
    2-core development machine, single-token decoding with 2 threads (tokens/s):

        idle machine:       spin briefly (GOMP_SPINCOUNT=10000) 96, passive 27
        one core busy:      spin briefly 13, spin long (default) 1.5, passive 43

    So: passive waits when other work is running now, brief spins otherwise. The choice
    is made once, before the OpenMP runtime loads (every import goes here); variables
    the user set win.
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        if _busy_cores() >= 0.5 * (os.cpu_count() or 1) - 0.1:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        else:
            os.environ["GOMP_SPINCOUNT"] = "10000"
    import llama_cpp

    return llama_cpp


def _busy_cores(window: float = 0.05) -> float:
    """How many cores other work keeps busy now: /proc/stat sampled over ``window`` seconds.

    Sampled, not the load average: a benchmark's previous run must not count as load on
    this one. Elsewhere than Linux, the 1-minute load average.
    """

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total_before, idle_before = sample()
        time.sleep(window)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]
    total = total_after - total_before
    if total <= 0:
        return 0.0
    busy = 1 - (idle_after - idle_before) / total
    return busy * (os.cpu_count() or 1)


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
