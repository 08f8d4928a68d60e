"""How memllm loads llama.cpp: quietly, and with OpenMP threads that yield when idle.

One place for the process-level settings both the language model and the llama.cpp
embedder rely on.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType


def import_llama_cpp() -> ModuleType:
    """``llama_cpp``, imported with OpenMP's passive wait policy.

    llama.cpp's OpenMP threads spin while they wait for each other. On a machine where
    anything else runs, a spinning thread can hold the core another one needs: on the
    2-core development machine, with one core busy, single-token decoding fell from
    31 to 7 tokens/s with 2 threads (36 tokens/s with passive waits). The setting must
    be in the environment before the OpenMP runtime loads, so every import goes here.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import llama_cpp

    return llama_cpp


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration, then restore it.

    llama.cpp (and ggml) write to fd 2 from C even with ``verbose=False``, so swapping
    ``sys.stderr`` is not enough. Process-wide: anything else writing to stderr meanwhile
    is silenced too, so keep the block tight.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
