"""The memory's files: private modes whatever the umask, no empty-file surprise, no spool left."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memllm_cli.errors import StoreError
from memllm_cli.store import Store


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: every mode below is memllm's choice, not the umask's."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_memory_and_its_wal_files_are_private(tmp_path, open_umask):
    path = tmp_path / "memory.db"
    with Store.open(path) as store:
        with store.batch("add", "add"):
            store.add_fact("Ingrid Solberg", "residence", "Trondheim")
        side_files = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(side.exists() for side in side_files)
        assert [mode(p) for p in (path, *side_files)] == [0o600, 0o600, 0o600]


def test_the_cli_creates_a_private_memory_folder(cli, memllm_home, open_umask):
    assert cli("facts", "add", "A", "employer", "B").exit_code == 0
    assert mode(memllm_home) == 0o700
    assert mode(memllm_home / "memory.db") == 0o600


def test_an_existing_memory_keeps_its_mode(tmp_path):
    path = tmp_path / "memory.db"
    Store.open(path).close()
    path.chmod(0o640)
    Store.open(path).close()
    assert mode(path) == 0o640


def test_an_empty_file_is_not_silently_made_a_memory(cli, tmp_path):
    empty = tmp_path / "notes.txt"
    empty.touch()
    result = cli("--db", str(empty), "facts", "add", "A", "employer", "B")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot open memory {empty}: the file is empty, not a memllm database "
        "(remove it to start a new memory there)\n"
    )
    assert empty.read_bytes() == b""
    with pytest.raises(StoreError, match="empty"):
        Store.open(empty)


def test_a_device_is_not_a_memory(cli):
    result = cli("--db", os.devnull, "facts", "list")
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot open memory {os.devnull}: it is not a regular file\n"


SLOW_INGEST = """
import sys, time
from memllm_cli.runtime import models
from memllm_cli.runtime.scripted import ScriptedModel

class Slow(ScriptedModel):
    def generate(self, prompt, **kwargs):
        print("generating", file=sys.stderr, flush=True)
        time.sleep(60)

models.load_model = lambda *args, **kwargs: Slow([])
from memllm_cli.cli import main
sys.argv = ["memllm", "ingest", "-"]
main()
"""


def _memllm(tmp_path: Path, code: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "TMPDIR": str(tmp_path / "tmp"),
        "MEMLLM_HOME": str(tmp_path / "home"),
        "MEMLLM_EMBEDDER": "hash",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    (tmp_path / "tmp").mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _wait_for(check, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigterm_while_stdin_is_spooled_leaves_no_spool_file(tmp_path):
    code = (
        "import sys\nfrom memllm_cli.cli import main\nsys.argv = ['memllm', 'ingest', '-']\nmain()"
    )
    proc = _memllm(tmp_path, code)
    assert proc.stdin is not None
    proc.stdin.write("Ingrid Solberg lives in Trondheim.\n")
    proc.stdin.flush()
    spools = tmp_path / "tmp"
    _wait_for(lambda: any(spools.glob("memllm-stdin-*")))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert list(spools.iterdir()) == []


def test_sigterm_during_the_model_rolls_back_and_removes_the_spool(tmp_path):
    proc = _memllm(tmp_path, SLOW_INGEST)
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write("Ingrid Solberg lives in Trondheim.\n")
    proc.stdin.close()
    assert proc.stderr.readline().strip() == "generating"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert list((tmp_path / "tmp").iterdir()) == []
    with Store.open(tmp_path / "home" / "memory.db") as store:
        assert store.integrity_check() == ["ok"]
        assert store.count_facts() == 0
        assert store.ingested_version("stdin") is None
