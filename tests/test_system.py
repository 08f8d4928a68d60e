"""What differs between platforms (system.py), the SQLite binding (db.py) and llama.cpp's
thread policy (llamacpp.py): the pieces a laptop install depends on."""

from __future__ import annotations

import os
import signal
import stat
from importlib.util import find_spec

import pytest

from memllm_cli import llamacpp, system
from memllm_cli.store import db

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes exist on POSIX only")


# -- the SQLite binding --------------------------------------------------------------------------


def test_the_binding_loads_sqlite_vec_and_has_fts5():
    conn = db.connect(":memory:")
    assert conn.execute("SELECT vec_version()").fetchone()[0].startswith("v")
    assert conn.execute("SELECT sqlite_compileoption_used('ENABLE_FTS5')").fetchone() == (1,)
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
    conn.execute("INSERT INTO t(body) VALUES ('Ingrid lives in Trondheim')")
    assert conn.execute("SELECT rowid FROM t WHERE t MATCH 'trondheim'").fetchall() == [(1,)]
    distance = conn.execute("SELECT vec_distance_l2('[1, 0]', '[0, 0]')").fetchone()[0]
    assert distance == pytest.approx(1.0)


def test_a_script_runs_whole_and_an_insert_reports_its_row():
    conn = db.connect(":memory:")
    db.run_script(
        conn,
        "CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\n"
        "CREATE TABLE log (x TEXT);\n"
        "CREATE TRIGGER a_log AFTER INSERT ON a BEGIN INSERT INTO log VALUES (new.x); END;\n",
    )
    conn.execute("INSERT INTO a (id, x) VALUES (41, 'first')")
    assert conn.execute("INSERT INTO a (x) VALUES (?)", ("second",)).lastrowid == 42
    assert conn.execute("SELECT x FROM log").fetchall() == [("first",), ("second",)]
    with pytest.raises(db.IntegrityError):
        conn.execute("INSERT INTO a (id, x) VALUES (41, 'again')")


# -- files and signals -----------------------------------------------------------------------------


@posix_only
def test_private_files_and_folders_are_the_owners_alone(tmp_path):
    old = os.umask(0)
    try:
        system.make_private_folder(tmp_path / "home" / "memllm")
        system.create_private_file(tmp_path / "home" / "memllm" / "memory.db")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "home" / "memllm").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home" / "memllm" / "memory.db").stat().st_mode) == 0o600


def test_an_existing_file_is_left_alone(tmp_path):
    path = tmp_path / "memory.db"
    path.write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        system.create_private_file(path)
    assert path.read_bytes() == b"kept"


def test_termination_runs_the_handler():
    def handler(signum, frame):
        raise SystemExit(128 + signum)

    before = signal.getsignal(signal.SIGTERM)
    try:
        system.on_termination(handler)
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, before)


def test_usable_cores_follow_the_affinity_mask():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert system.usable_cores() == expected >= 1


# -- llama.cpp's threads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "size", "expected"),
    [
        (2, 100 << 20, (1, 1)),  # the default model on a 2-core machine
        (4, 100 << 20, (1, 3)),  # one core left to the rest of the machine
        (16, 100 << 20, (1, llamacpp.MAX_BATCH_THREADS)),
        (16, 4 << 30, (16, 16)),  # a 7B model: every core, as llama.cpp does
        (1, 100 << 20, (1, 1)),
    ],
)
def test_default_threads(monkeypatch, cores, size, expected):
    monkeypatch.setattr(system, "usable_cores", lambda: cores)
    assert llamacpp.thread_counts(None, size) == expected


def test_threads_given_set_both(monkeypatch):
    monkeypatch.setattr(system, "usable_cores", lambda: 16)
    assert llamacpp.thread_counts(3, 100 << 20) == (3, 3)
    assert llamacpp.thread_counts(3, 4 << 30) == (3, 3)


@pytest.mark.skipif(find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({}, {"OMP_WAIT_POLICY": "PASSIVE"}),
        ({"GOMP_SPINCOUNT": "5"}, {"GOMP_SPINCOUNT": "5"}),
        ({"OMP_WAIT_POLICY": "PASSIVE"}, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ],
)
def test_threads_wait_asleep_unless_the_user_chose(monkeypatch, user, expected):
    for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in user.items():
        monkeypatch.setenv(name, value)
    llamacpp.import_llama_cpp()
    assert {k: os.environ[k] for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY") if k in os.environ} == (
        expected
    )
