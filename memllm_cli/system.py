"""What differs between Linux, macOS and Windows, in one module so the rest need not ask.

- Cores: the CPUs this process may run on. Linux honours ``taskset`` and cgroup cpusets
  through the affinity mask; macOS and Windows have no such call, so all of them.
- Private files: a new memory is mode 0600 and its folder 0700 where POSIX modes exist.
  On Windows the mode bits do nothing but read-only; the per-user data folder
  (platformdirs) is already private to its user.
- Termination: SIGTERM (and Windows' Ctrl-Break, SIGBREAK) run the same clean-up as
  Ctrl-C. Windows defines SIGTERM but never sends it to a console program, so there
  that handler simply never fires.
- Paths are ``pathlib`` everywhere, and the memory's home comes from platformdirs
  (``config.home_dir``): nothing here.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType

Handler = Callable[[int, FrameType | None], None]


def usable_cores() -> int:
    """The CPUs this process may run on (at least 1)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def make_private_folder(path: Path) -> None:
    """Create ``path`` (and parents) readable by its owner alone where modes exist."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create the empty file ``path``, mode 0600 whatever the umask.

    Raises ``FileExistsError`` when it exists (it is then left alone) and ``OSError``
    when it cannot be created.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def keep_private(path: Path) -> None:
    """Make the existing file ``path`` readable and writable by its owner alone (0600)."""
    os.chmod(path, 0o600)


def on_termination(handler: Handler) -> None:
    """Run ``handler`` when the process is asked to end: SIGTERM, and SIGBREAK on Windows."""
    for name in ("SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)
