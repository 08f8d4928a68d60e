"""Notes vaults: front matter, wikilinks, tags, hidden folders, .memllmignore, staying in sync."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from scripted_memllm import RuleModel

from memllm_cli.datasets.vault import edit_notes, write_vault
from memllm_cli.ingest.discovery import DEFAULT_INCLUDE, Skipped, discover, walk
from memllm_cli.ingest.text import markdown_blocks, sentences
from memllm_cli.ingest.vault import Note, split_link
from memllm_cli.protocol import USER_END, USER_START
from memllm_cli.runtime import models
from memllm_cli.runtime.model import Generation
from memllm_cli.store import FactFilter, Store

EMPTY = "({MEM_WRITE-->})"


class Recorder(RuleModel):
    """The rule model of scripted_memllm, in-process, keeping every prompt it was given."""

    def __init__(self) -> None:
        super().__init__(delay=0.0)
        self.prompts: list[str] = []

    def generate(self, prompt: str, **options: Any) -> Generation:
        self.prompts.append(prompt)
        return super().generate(prompt, **options)


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    model = Recorder()
    monkeypatch.setattr(models, "load_model", lambda *a, **k: model)
    return model


def read(text: str) -> tuple[list[tuple[str, int, int]], Note]:
    note = Note()
    found = sentences(io.StringIO(text), markdown=True, note=note)
    return [(s.text, s.line_start, s.line_end) for s in found], note


def facts(home: Path, **kw) -> list[tuple[str, str, str, str]]:
    with Store.open(home / "memory.db") as store:
        return [(f.subject, f.relation, f.object, f.status) for f in store.facts(FactFilter(**kw))]


def aliases(home: Path) -> dict[str, list[str]]:
    with Store.open(home / "memory.db") as store:
        return dict(store.names.aliased())


# -- the whole vault ------------------------------------------------------------------------


def test_no_front_matter_line_and_no_wikilink_reaches_a_prompt(cli, recorder, tmp_path):
    vault = write_vault(tmp_path / "vault", notes=50)
    result = cli("ingest", str(vault.root), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["documents"]) == 50 and report["skipped"] == {"hidden": 2, "ignored": 3}
    prompts = "\n".join(recorder.prompts)
    assert len(recorder.prompts) == sum(d["sentences"] for d in report["documents"]) > 150
    front = []
    for path in vault.notes:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "---"
        front += lines[1 : lines.index("---", 1)]
    assert len(front) > 100
    assert [line for line in front if line.strip() in prompts] == []
    assert "[[" not in prompts and "]]" not in prompts and "#people" not in prompts
    # What .obsidian/, .trash/ and .memllmignore hold is never read.
    for written in ("Obsidian keeps", "Nils Berg lives", "Half a thought", "Olu Haugen"):
        assert written not in prompts


def test_a_vault_unchanged_reads_nothing_and_edited_reads_only_what_changed(
    cli, recorder, tmp_path
):
    vault = write_vault(tmp_path / "vault", notes=40)
    assert cli("ingest", str(vault.root)).exit_code == 0
    first = len(recorder.prompts)
    again = cli("ingest", str(vault.root), "--json")
    assert len(recorder.prompts) == first
    assert {d["status"] for d in json.loads(again.stdout)["documents"]} == {"unchanged"}
    edited = edit_notes(vault, 3)
    cli("ingest", str(vault.root))
    # Two changed sentences per edited note: a new home and a new last sentence.
    new = recorder.prompts[first:]
    assert len(new) == 6
    assert sorted(p.rsplit(USER_START, 1)[1].split(USER_END)[0] for p in new if "bicycle" in p) == (
        sorted(f"{p.stem} has a new bicycle." for p in edited)
    )


# -- front matter -------------------------------------------------------------------------------

NOTE = """---
aliases: [Ingrid, "I. Solberg"]
tags: [people, work/lab]
created: 2024-01-05
employer: "[[NIVA]]"
status: active
---
# Ingrid Solberg #person

Ingrid lives in [[Trondheim]]. [[Per Hansen|Per]] works at [[NIVA|the lab]]. #work
#only #tags
She likes ![[photo.png]] coffee.
"""


def test_front_matter_is_data_and_the_lines_after_it_keep_their_numbers():
    found, note = read(NOTE)
    assert found == [
        ("Ingrid Solberg", 8, 8),
        ("Ingrid lives in Trondheim.", 10, 10),
        ("Per works at the lab.", 10, 10),
        ("She likes coffee.", 12, 12),
    ]
    assert note.front_lines == (1, 7)
    assert note.aliases("Ingrid Solberg") == ["Ingrid", "I. Solberg"]
    assert list(note.tags) == ["people", "work/lab", "person", "work", "only", "tags"]
    assert note.dates() == {"created": "2024-01-05"}
    assert [(p.key, p.values, p.line_start, p.text) for p in note.properties] == [
        ("employer", ("NIVA",), 5, 'employer: "[[NIVA]]"'),
        ("status", ("active",), 6, "status: active"),
    ]
    assert note.links == {"trondheim": "Trondheim", "per": "Per Hansen", "the lab": "NIVA"}


@pytest.mark.parametrize(
    ("text", "line", "warned"),
    [
        ("---\ntitle: [unclosed\n---\nLeft alone.\n", 4, True),  # not YAML
        ("---\n- a list\n---\nLeft alone.\n", 4, True),  # YAML, but not a mapping
        ("---\n---\nLeft alone.\n", 3, False),  # empty
        ("\ufeff---\ntags: [x]\n---\nLeft alone.\n", 4, False),  # a byte order mark first
    ],
)
def test_front_matter_that_is_no_mapping_is_set_aside_never_read(text, line, warned):
    found, note = read(text)
    assert found == [("Left alone.", line, line)]
    assert note.warnings == (["1: front matter is not a YAML mapping; ignored"] if warned else [])


def test_front_matter_only_at_the_start_of_a_file():
    text = "Intro.\n\n---\nkey: value\n---\n"
    assert [s[0] for s in read(text)[0]] == ["Intro.", "key: value"]
    # A later chunk of a big file starts at some other line: a "---" there is prose.
    later = [b.text for b in markdown_blocks("---\nkey: value\n---\n", first_line=5000)]
    assert later == ["key: value"]


# -- wikilinks and tags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inner", "target", "shown"),
    [
        ("Ingrid Solberg", "Ingrid Solberg", "Ingrid Solberg"),
        ("Ingrid Solberg|Ingrid", "Ingrid Solberg", "Ingrid"),
        ("Ingrid Solberg#Work|her job", "Ingrid Solberg", "her job"),
        ("Ingrid Solberg#Work", "Ingrid Solberg", "Ingrid Solberg"),
        ("#Work", "", "Work"),
        ("Ingrid Solberg#^block1", "Ingrid Solberg", "Ingrid Solberg"),
        ("Ingrid Solberg\\|Ingrid", "Ingrid Solberg", "Ingrid"),  # in a table
    ],
)
def test_split_link(inner, target, shown):
    assert split_link(inner) == (target, shown)


@pytest.mark.parametrize(
    ("text", "expected", "tags"),
    [
        ("Met [[Ingrid Solberg|Ingrid]] today.", "Met Ingrid today.", []),
        ("A photo: ![[a.png]] here.", "A photo: here.", []),
        ("Lunch #food with Per.", "Lunch with Per.", ["food"]),
        ("Lunch with Per #food/lunch.", "Lunch with Per.", ["food/lunch"]),
        ("C# and F# and issue #12 and x#y stay.", "C# and F# and issue #12 and x#y stay.", []),
        ("See `[[code]]` as written.", "See [[code]] as written.", []),
        ("| who |\n|---|\n| [[Per Hansen\\|Per]] |", "who: Per.", []),
    ],
)
def test_wikilinks_read_as_shown_text_and_tags_come_out(text, expected, tags):
    found, note = read(text + "\n")
    assert " ".join(s[0] for s in found) == expected
    assert list(note.tags) == tags


def test_a_heading_is_no_tag_and_a_line_of_tags_is_no_sentence():
    found, note = read("# Heading\n\n#one #two\n\n## Sub #three\n")
    assert found == [("Heading", 1, 1), ("Sub", 5, 5)]
    assert list(note.tags) == ["one", "two", "three"]


def test_a_shown_text_linked_to_two_notes_means_neither():
    _, note = read("[[Ingrid Solberg|Ingrid]] and [[Ingrid Berg|Ingrid]] and [[NIVA|the lab]].\n")
    assert note.names("Some Note") == {"the lab": "NIVA"}


# -- into memory ------------------------------------------------------------------------------


def test_links_and_aliases_resolve_names_into_the_notes_entities(
    cli, scripted_model, tmp_path, memllm_home
):
    outputs, loaded = scripted_model
    folder = tmp_path / "vault"
    (folder / "People").mkdir(parents=True)
    note = folder / "People" / "Ingrid Solberg.md"
    note.write_text(NOTE)
    outputs += [
        EMPTY,  # the heading
        "({MEM_WRITE-->Ingrid>>residence>>Trondheim})",
        "({MEM_WRITE-->Per>>employer>>the lab})",
        EMPTY,
    ]
    result = cli("ingest", str(folder), "--json")
    assert result.exit_code == 0, result.stderr
    (report,) = json.loads(result.stdout)["documents"]
    assert (report["sentences"], report["aliases"], report["facts"]) == (4, 2, 3)
    assert "2 alias(es) from front matter" in result.stderr
    assert facts(memllm_home) == [
        ("Ingrid Solberg", "employer", "NIVA", "current"),  # the front matter's property
        ("Ingrid Solberg", "residence", "Trondheim", "current"),  # "Ingrid": an alias
        ("Per Hansen", "employer", "NIVA", "current"),  # "Per", "the lab": links' targets
    ]
    assert aliases(memllm_home) == {
        "Ingrid Solberg": ["Ingrid", "I. Solberg"],
        "NIVA": ["the lab"],
        "Per Hansen": ["Per"],
    }
    shown = json.loads(cli("facts", "show", "1", "--json").stdout)["evidence"][0]
    assert (shown["sentence"], shown["line_start"], shown["extractor"]) == (
        'employer: "[[NIVA]]"',
        5,
        "front matter",
    )
    with Store.open(memllm_home / "memory.db") as store:
        source = store.ingested_version(str(note.resolve()))[0]
        meta = {(m.kind, m.key, m.value, m.owned) for m in store.document_meta(source)}
    assert {
        ("alias", "Ingrid", "Ingrid Solberg", True),
        ("alias", "I. Solberg", "Ingrid Solberg", True),
        ("date", "created", "2024-01-05", False),
        ("link", "Per", "Per Hansen", False),
        ("link", "the lab", "NIVA", False),
        ("tag", "work/lab", "", False),
        ("tag", "only", "", False),
    } <= meta
    # One undo takes the whole note back: facts, aliases, metadata, and the entities.
    assert cli("undo").exit_code == 0
    assert facts(memllm_home, include_all=True) == []
    assert aliases(memllm_home) == {}
    with Store.open(memllm_home / "memory.db") as store:
        assert store.document_meta(source) == []
        assert store.entity_ids("Ingrid Solberg") == []


def test_front_matter_aliases_follow_the_note_through_versions(
    cli, scripted_model, tmp_path, memllm_home
):
    outputs, _ = scripted_model
    note = tmp_path / "Tove Lindahl.md"
    other = tmp_path / "Tove Berg.md"
    other.write_text("---\naliases: [Tove]\n---\n")
    note.write_text("---\naliases: [Tove, TL]\n---\nNothing to say.\n")
    outputs += [EMPTY]
    result = cli("ingest", str(other), str(note))
    assert "'Tove' of 'Tove Lindahl' already names another entity" in result.stderr
    assert aliases(memllm_home) == {"Tove Berg": ["Tove"], "Tove Lindahl": ["TL"]}
    # The second version drops TL and adds Lindahl; the third adds TL back.
    note.write_text("---\naliases: [Lindahl]\n---\nNothing to say.\n")
    cli("ingest", str(note))
    assert aliases(memllm_home) == {"Tove Berg": ["Tove"], "Tove Lindahl": ["Lindahl"]}
    note.write_text("---\naliases: [Lindahl, TL]\n---\nNothing to say.\n")
    cli("ingest", str(note))
    assert aliases(memllm_home)["Tove Lindahl"] == ["Lindahl", "TL"]
    # An alias the user gave by hand is never taken away by a note.
    cli("facts", "alias", "Tove Lindahl", "T. Lindahl")
    note.write_text("---\naliases: [T. Lindahl]\n---\nNothing to say.\n")
    cli("ingest", str(note))
    assert aliases(memllm_home)["Tove Lindahl"] == ["T. Lindahl"]
    note.write_text("---\naliases: []\n---\nNothing to say.\n")
    cli("ingest", str(note))
    assert aliases(memllm_home)["Tove Lindahl"] == ["T. Lindahl"]
    # Undoing the version that took Lindahl and TL away puts them back (the last version
    # changed nothing undoable, so undo reaches that one).
    assert "batch" in cli("undo").stderr
    assert aliases(memllm_home)["Tove Lindahl"] == ["Lindahl", "TL", "T. Lindahl"]


def test_an_entity_with_aliases_but_no_facts_is_no_orphan(cli, scripted_model, tmp_path):
    note = tmp_path / "Per Hansen.md"
    note.write_text("---\naliases: [Per]\n---\n")
    cli("ingest", str(note))
    with Store.open(tmp_path / "home" / "memory.db") as store:
        assert store.entity_ids("Per") == store.entity_ids("Per Hansen") != []
        assert store.names.orphans() == []


def test_daily_notes_in_nested_folders_date_their_facts(cli, scripted_model, tmp_path, memllm_home):
    outputs, _ = scripted_model
    day = tmp_path / "journal" / "2025" / "03" / "2025-03-14.md"
    day.parent.mkdir(parents=True)
    day.write_text("---\ntags: [daily]\n---\n[[Per Hansen|Per]] moved to [[Oslo]]. #move\n")
    outputs += ["({MEM_WRITE-->Per>>residence>>Oslo})"]
    cli("ingest", str(tmp_path / "journal"))
    with Store.open(memllm_home / "memory.db") as store:
        (fact,) = store.facts(FactFilter())
    assert (fact.subject, fact.object, fact.valid_from) == ("Per Hansen", "Oslo", "2025-03-14")


# -- which files ------------------------------------------------------------------------------


def test_hidden_folders_and_memllmignore_are_skipped_and_counted(tmp_path):
    root = tmp_path / "vault"
    files = [
        "a.md",
        ".obsidian/workspace.md",
        ".trash/old.md",
        ".git/COMMIT_EDITMSG.md",
        ".hidden.md",
        "drafts/one.md",
        "keep/drafts.md",
        "keep/private.md",
        "keep/public.md",
        "keep/deep/x.tmp.md",
        "notes/x.tmp.md",
    ]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("Text.\n")
    (root / ".memllmignore").write_text("# comment\ndrafts/\n*.tmp.md\n")
    (root / "keep" / ".memllmignore").write_text("private.md\n")
    skipped = Skipped()
    found = [p.relative_to(root).as_posix() for p in walk(root, DEFAULT_INCLUDE, (), skipped)]
    assert found == ["a.md", "keep/drafts.md", "keep/public.md"]
    assert skipped.to_dict() == {"hidden": 4, "ignored": 4}
    # A hidden file named on the command line is read.
    (doc,) = discover([str(root / ".hidden.md")])
    assert doc.path.name == ".hidden.md"


def test_front_matter_properties_that_name_a_relation_state_facts(
    cli, scripted_model, tmp_path, memllm_home
):
    day = tmp_path / "2025-03-14.md"
    day.write_text(
        "---\ndate: 2025-03-14\nstatus: draft\nemployer:\n  - NIVA\n  - '[[Equinor|EQ]]'\n"
        "date_of_birth: 1990-05-01\nresidence: {city: Oslo}\n---\n"
    )
    result = cli("ingest", str(day), "--json")
    (report,) = json.loads(result.stdout)["documents"]
    assert (report["status"], report["sentences"], report["facts"]) == ("ingested", 0, 3)
    with Store.open(memllm_home / "memory.db") as store:
        found = [
            (f.subject, f.relation, f.object, f.valid_from, store.evidence(f.id)[0])
            for f in store.facts(FactFilter())
        ]
    # date and status name no fact about the note's subject; a mapping is no simple value.
    assert [f[:4] for f in found] == [
        ("2025-03-14", "employer", "NIVA", "2025-03-14"),
        ("2025-03-14", "employer", "Equinor", "2025-03-14"),
        ("2025-03-14", "date of birth", "1990-05-01", "2025-03-14"),
    ]
    employer = found[0][4]
    assert (employer.sentence, employer.line_start, employer.line_end) == (
        "employer: - NIVA - '[[Equinor|EQ]]'",
        4,
        6,
    )
    assert employer.extractor == "front matter" and employer.protocol_version is None


def test_a_dry_run_proposes_what_a_real_run_would_store(cli, scripted_model, tmp_path):
    outputs, _ = scripted_model
    note = tmp_path / "Ingrid Solberg.md"
    note.write_text(NOTE)
    outputs += [
        EMPTY,
        "({MEM_WRITE-->Ingrid>>residence>>Trondheim})",
        "({MEM_WRITE-->Per>>employer>>the lab})",
        EMPTY,
    ]
    result = cli("ingest", str(note), "--dry-run")
    proposed = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(p["subject"], p["relation"], p["object"]) for p in proposed} == {
        ("Ingrid Solberg", "residence", "Trondheim"),  # the note's alias, though not stored
        ("Per Hansen", "employer", "NIVA"),
        ("Ingrid Solberg", "employer", "NIVA"),
    }
