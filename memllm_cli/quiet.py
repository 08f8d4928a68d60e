"""Keep llama.cpp's C-level chatter off the user's terminal."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


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
