"""``memllm ingest --watch``: edits, deletions, renames and editors' saves, batch by batch.

Most tests drive :class:`~memllm_cli.ingest.watch.Watcher` with batches of changes
they make up and a clock they move, over real files and a real memory, with the rule
model of tests/scripted_memllm.py (it counts its calls). The kinds of change in a
batch are given wrong on purpose in places: the watcher trusts the disk, not them.
One test runs watchfiles for real, and one runs the command in a subprocess and stops
it with Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from scripted_memllm import RuleModel, wait_for
from watchfiles import Change

from memllm_cli.hashing import EMPTY_SHA256
from memllm_cli.ingest.discovery import Document, discover
from memllm_cli.ingest.pipeline import Ingestor
from memllm_cli.ingest.reports import DocumentReport
from memllm_cli.ingest.watch import Watcher, changes, editor_temp, watched_folders
from memllm_cli.runtime.loop import Session
from memllm_cli.store import FactFilter, Store

SCRIPT = Path(__file__).resolve().parent / "scripted_memllm.py"
A_TEXT = "Ingrid Solberg lives in Trondheim.\n\nPer Hansen works at NIVA.\n"


class CountingModel(RuleModel):
    """The rule model, counting its calls; ``before_call`` runs first (a save mid-read)."""

    def __init__(self) -> None:
        super().__init__(delay=0.0)
        self.calls = 0
        self.before_call: Callable[[], None] | None = None

    def generate(self, prompt: str, **kwargs):
        self.calls += 1
        if self.before_call is not None:
            hook, self.before_call = self.before_call, None
            hook()
        return super().generate(prompt, **kwargs)


class Bench:
    """A watched folder over a real memory, a made-up clock and made-up batches."""

    def __init__(self, store: Store, folder: Path, exclude: tuple[str, ...] = ()) -> None:
        self.store = store
        self.folder = folder
        self.exclude = exclude
        self.now = 100.0
        self.model = CountingModel()
        self.ingestor = Ingestor(store, Session(store, self.model))
        self.reports: list[DocumentReport] = []
        documents = self.scan()
        for doc in documents:  # what `memllm ingest DIR` does before it watches
            self.ingestor.ingest(doc)
        self.watcher = Watcher(
            self.ingestor,
            [folder],
            self.scan,
            lambda report: self.reports.append(report),
            clock=lambda: self.now,
            grace=1.0,
            documents=documents,
        )

    def scan(self) -> list[Document]:
        found = discover([str(self.folder)], exclude=self.exclude)
        return [d for d in found if isinstance(d, Document)]

    def step(self, *changed: tuple[Change, Path], wait: float = 0.0) -> list[DocumentReport]:
        """Let ``wait`` seconds pass, hand over one batch; the reports it gave."""
        self.now += wait
        self.watcher.step({(kind, str(path)) for kind, path in changed})
        out, self.reports = self.reports, []
        return out

    def facts(self) -> dict[tuple[str, str, str], str]:
        return {
            (f.subject, f.relation, f.object): f.status
            for f in self.store.facts(FactFilter(include_all=True))
        }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text(A_TEXT)
    return notes


@pytest.fixture
def bench(store: Store, folder: Path) -> Bench:
    watched = Bench(store, folder)
    assert watched.step() == []  # catching up: nothing changed since the first ingest
    return watched


ALL_CURRENT = {
    ("Ingrid Solberg", "residence", "Trondheim"): "current",
    ("Per Hansen", "employer", "NIVA"): "current",
}


def test_an_edit_is_read_again_as_a_rerun_would(bench: Bench, folder: Path):
    calls = bench.model.calls
    (folder / "a.md").write_text(
        "Ingrid Solberg lives in Trondheim.\n\nPer Hansen works at SINTEF.\n"
    )
    (report,) = bench.step((Change.modified, folder / "a.md"))
    assert (report.name, report.status) == (str(folder / "a.md"), "ingested")
    assert (report.sentences, report.reused, report.added, report.retracted) == (2, 1, 1, 1)
    assert bench.model.calls == calls + 1  # only the new sentence went to the model
    assert bench.facts() == {
        ("Ingrid Solberg", "residence", "Trondheim"): "current",
        ("Per Hansen", "employer", "NIVA"): "retracted",
        ("Per Hansen", "employer", "SINTEF"): "current",
    }
    # The same file touched again, unchanged: reported, nothing read.
    (again,) = bench.step((Change.modified, folder / "a.md"))
    assert again.status == "unchanged" and bench.model.calls == calls + 1


def test_a_deleted_note_is_removed_after_the_grace_and_undo_brings_it_back(
    bench: Bench, folder: Path, store: Store
):
    uri = str((folder / "a.md").resolve())
    before = store.ingested_version(uri)
    (folder / "a.md").unlink()
    assert bench.step((Change.deleted, folder / "a.md")) == []
    assert bench.step(wait=0.5) == []  # an editor's save may still bring it back
    assert bench.facts() == ALL_CURRENT
    (report,) = bench.step(wait=0.6)
    assert (report.status, report.retracted) == ("removed", 2)
    assert set(bench.facts().values()) == {"retracted"}
    assert store.ingested_version(uri)[1] == EMPTY_SHA256
    assert store.relevant_sentences("Where does Ingrid Solberg live?") == []
    assert bench.step(wait=5) == []  # removed once
    store.undo()
    assert bench.facts() == ALL_CURRENT and store.ingested_version(uri) == before
    assert store.relevant_sentences("Where does Ingrid Solberg live?")[0].uri == uri


def test_an_editors_save_by_rename_reads_nothing_and_retracts_nothing(
    bench: Bench, folder: Path, store: Store
):
    """vim: the file moves aside to a backup, a new one is written, the backup goes; the
    events come in two batches, the first saying the note was deleted."""
    calls = bench.model.calls
    note, backup = folder / "a.md", folder / "a.md~"
    note.rename(backup)
    assert bench.step((Change.deleted, note), (Change.added, backup)) == []
    note.write_text(A_TEXT)
    backup.unlink()
    (report,) = bench.step((Change.added, note), (Change.deleted, backup), wait=0.3)
    assert report.status == "unchanged"
    assert bench.step(wait=5) == []
    assert bench.facts() == ALL_CURRENT and bench.model.calls == calls
    assert not [op for op in store.history(limit=50) if op.op == "retract"]


def test_a_renamed_note_keeps_its_facts_in_one_undoable_batch(
    bench: Bench, folder: Path, store: Store
):
    calls = bench.model.calls
    old, new = folder / "a.md", folder / "b.md"
    old.rename(new)
    (report,) = bench.step((Change.deleted, old), (Change.added, new))
    assert (report.name, report.status, report.message) == (
        str(new),
        "ingested",
        f"renamed from {old}",
    )
    assert (report.sentences, report.reused, report.added, report.retracted) == (2, 2, 0, 0)
    assert bench.model.calls == calls and bench.facts() == ALL_CURRENT
    assert store.ingested_version(str(old.resolve()))[1] == EMPTY_SHA256
    assert bench.step(wait=5) == []  # the old name is not removed a second time
    fact = store.fact_id_of("Per Hansen", "employer", "NIVA")
    assert store.evidence(fact)[-1].uri == str(new.resolve())
    # One undo takes the whole rename back.
    store.undo()
    assert store.ingested_version(str(new.resolve())) is None
    assert store.ingested_version(str(old.resolve()))[1] != EMPTY_SHA256
    assert bench.facts() == ALL_CURRENT


def test_deleting_a_renamed_note_retracts_what_the_old_name_stated_too(bench: Bench, folder: Path):
    old, new = folder / "a.md", folder / "b.md"
    old.rename(new)
    bench.step((Change.deleted, old), (Change.added, new))
    new.unlink()
    bench.step((Change.deleted, new))
    (report,) = bench.step(wait=1.1)
    assert (report.status, report.retracted) == ("removed", 2)
    assert set(bench.facts().values()) == {"retracted"}


def test_a_rename_split_over_two_batches_still_carries_the_facts(bench: Bench, folder: Path):
    calls = bench.model.calls
    old, new = folder / "a.md", folder / "b.md"
    old.rename(new)
    assert bench.step((Change.deleted, old)) == []
    (report,) = bench.step((Change.added, new), wait=0.5)
    assert report.message == f"renamed from {old}" and bench.model.calls == calls
    assert bench.step(wait=5) == [] and bench.facts() == ALL_CURRENT


def test_a_copy_is_not_a_rename(bench: Bench, folder: Path):
    copy = folder / "copy.md"
    copy.write_text(A_TEXT)
    (report,) = bench.step((Change.added, copy))
    assert report.status == "ingested" and report.message == ""
    assert bench.step(wait=5) == [] and bench.facts() == ALL_CURRENT


def test_a_file_emptied_then_written_waits_for_the_write(bench: Bench, folder: Path):
    note = folder / "a.md"
    note.write_text("")
    assert bench.step((Change.modified, note)) == []
    assert bench.facts() == ALL_CURRENT
    note.write_text("Ingrid Solberg lives in Oslo.\n")
    (report,) = bench.step((Change.modified, note), wait=0.3)
    assert (report.status, report.added, report.superseded, report.retracted) == (
        "ingested",
        1,
        1,
        1,
    )
    assert bench.step(wait=5) == []
    assert bench.facts()[("Ingrid Solberg", "residence", "Oslo")] == "current"


def test_a_file_left_empty_is_read_as_empty_after_the_grace(bench: Bench, folder: Path):
    (folder / "a.md").write_text("")
    assert bench.step((Change.modified, folder / "a.md")) == []
    assert bench.step(wait=0.9) == []
    (report,) = bench.step(wait=0.2)
    assert (report.status, report.retracted) == ("empty", 2)
    assert set(bench.facts().values()) == {"retracted"}


def test_a_save_while_the_file_is_read_is_read_again_without_another_event(
    bench: Bench, folder: Path
):
    note = folder / "a.md"
    note.write_text(A_TEXT + "\nKari Nordmann lives in Bergen.\n")
    final = A_TEXT + "\nKari Nordmann lives in Molde. Ola Nordmann works at Equinor.\n"
    bench.model.before_call = lambda: note.write_text(final)
    (first,) = bench.step((Change.modified, note))
    assert first.status == "ingested" and "changed while being read" in first.message
    (second,) = bench.step(wait=0.25)  # a tick: no event names the file again
    assert second.status == "ingested"
    facts = bench.facts()
    assert facts[("Kari Nordmann", "residence", "Molde")] == "current"
    assert facts[("Ola Nordmann", "employer", "Equinor")] == "current"
    assert facts.get(("Kari Nordmann", "residence", "Bergen")) != "current"
    assert bench.step(wait=5) == []


def test_new_files_and_folders_moved_in_or_out_are_found(
    bench: Bench, folder: Path, tmp_path: Path
):
    outside = tmp_path / "elsewhere"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "c.md").write_text("Ola Nordmann works at Equinor.\n")
    (outside / "deep" / "d.txt").write_text("Kari Nordmann lives in Molde.\n")
    (outside / "deep" / "photo.jpg").write_bytes(b"\xff\xd8")
    # A folder moved in: one event, for the folder.
    (outside / "deep").rename(folder / "deep")
    reports = bench.step((Change.added, folder / "deep"))
    assert sorted((Path(r.name).name, r.status, r.added) for r in reports) == [
        ("c.md", "ingested", 1),
        ("d.txt", "ingested", 1),
    ]
    # Moved out again: the event names the folder only; its notes go after the grace.
    (folder / "deep").rename(outside / "deep")
    assert bench.step((Change.deleted, folder / "deep")) == []
    reports = bench.step(wait=1.1)
    assert sorted((Path(r.name).name, r.status, r.retracted) for r in reports) == [
        ("c.md", "removed", 1),
        ("d.txt", "removed", 1),
    ]
    assert bench.facts()[("Ingrid Solberg", "residence", "Trondheim")] == "current"


def test_editor_temporary_files_are_never_documents(bench: Bench, folder: Path):
    names = [".#a.md", "#a.md#", "a.md~", ".a.md.swp", ".a.md.swx", "4913", "a.md.tmp"]
    for name in names:
        (folder / name).write_text("Kari Nordmann lives in Molde.\n")
    assert bench.step(*[(Change.added, folder / n) for n in names]) == []
    assert all(editor_temp(n) for n in names)
    assert not any(editor_temp(n) for n in ("a.md", "notes.txt", "#tags.md", "tmp.md"))


def test_the_walker_decides_what_counts(store: Store, folder: Path):
    (folder / "drafts").mkdir()
    bench = Bench(store, folder, exclude=("drafts/*",))
    bench.step()
    draft = folder / "drafts" / "x.md"
    draft.write_text("Kari Nordmann lives in Molde.\n")
    (folder / "picture.png").write_bytes(b"\x89PNG")
    assert bench.step((Change.added, draft), (Change.added, folder / "picture.png")) == []
    assert ("Kari Nordmann", "residence", "Molde") not in bench.facts()


def test_catching_up_reads_what_changed_before_watching_began(store: Store, folder: Path):
    bench = Bench(store, folder)
    (folder / "a.md").write_text("Per Hansen works at NIVA.\n")
    (folder / "b.md").write_text("Kari Nordmann lives in Molde.\n")
    reports = bench.step()
    assert sorted((Path(r.name).name, r.status) for r in reports) == [
        ("a.md", "ingested"),
        ("b.md", "ingested"),
    ]
    assert bench.facts()[("Ingrid Solberg", "residence", "Trondheim")] == "retracted"


def test_a_fact_two_notes_stated_goes_when_neither_states_it(bench: Bench, folder: Path):
    """Retraction counts another document only through its latest version."""
    other = folder / "b.md"
    other.write_text("Per Hansen works at NIVA.\n")
    bench.step((Change.added, other))
    other.write_text("Nothing here.\n")
    (report,) = bench.step((Change.modified, other))
    assert report.retracted == 0  # a.md still states it
    (folder / "a.md").write_text("Ingrid Solberg lives in Trondheim.\n")
    (report,) = bench.step((Change.modified, folder / "a.md"))
    assert report.retracted == 1
    assert bench.facts()[("Per Hansen", "employer", "NIVA")] == "retracted"


def test_watched_folders_for_files_and_folders(tmp_path: Path):
    (tmp_path / "notes" / "sub").mkdir(parents=True)
    single = tmp_path / "todo.md"
    single.write_text("x")
    inside = tmp_path / "notes" / "sub" / "x.md"
    inside.write_text("x")
    assert watched_folders([single]) == ([tmp_path.resolve()], False)
    folders, recursive = watched_folders([tmp_path / "notes", inside])
    assert folders == [(tmp_path / "notes").resolve()] and recursive


def test_watchfiles_delivers_an_edit(store: Store, folder: Path):
    """The real file watcher: an edit arrives as a batch the watcher reads."""
    bench = Bench(store, folder)
    stop = threading.Event()
    seen: list[DocumentReport] = []
    bench.watcher.on_report = seen.append
    bench.watcher.clock = __import__("time").monotonic
    thread = threading.Thread(target=bench.watcher.run, args=(changes([folder], stop),))
    thread.start()
    try:
        wait_for(lambda: bench.watcher._caught_up)
        (folder / "a.md").write_text(A_TEXT + "\nKari Nordmann lives in Molde.\n")
        wait_for(lambda: any(r.status == "ingested" for r in seen))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert bench.facts()[("Kari Nordmann", "residence", "Molde")] == "current"


def test_watch_refuses_stdin_dry_run_and_missing_paths(cli, tmp_path: Path):
    for args in (["-"], [str(tmp_path), "--dry-run"], [str(tmp_path / "missing")]):
        result = cli("ingest", "--watch", *args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("error: ") and "--watch" in result.stderr, args


def test_the_command_watches_until_ctrl_c(tmp_path: Path, folder: Path):
    home = tmp_path / "home"
    err = tmp_path / "err.txt"
    env = {**os.environ, "MEMLLM_HOME": str(home), "MEMLLM_EMBEDDER": "hash"}
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "ingest", "--watch", str(folder), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            wait_for(lambda: "watching" in err.read_text())
            (folder / "b.md").write_text("Kari Nordmann lives in Molde.\n")
            wait_for(lambda: "b.md: ingested" in err.read_text())
            (folder / "a.md").unlink()
            wait_for(lambda: "a.md: removed" in err.read_text())
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 130
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(Path(x["name"]).name, x["status"]) for x in lines] == [
        ("a.md", "ingested"),
        ("b.md", "ingested"),
        ("a.md", "removed"),
    ]
    assert lines[2]["retracted"] == 2 and all("at" in x for x in lines)
    text = err.read_text()
    assert "b.md: ingested, 1 sentences (0 reused), 1 facts: 1 new" in text
    assert "a.md: removed, 2 facts retracted" in text
    assert "stopped watching: 1 document(s) read again, 1 removed" in text
    with Store.open(home / "memory.db") as memory:
        current = {(f.subject, f.object) for f in memory.facts(FactFilter())}
    assert current == {("Kari Nordmann", "Molde")}
