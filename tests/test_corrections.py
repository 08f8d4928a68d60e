"""The user's word outranks documents: edits, deletions and corrections survive re-ingests."""

import json

import pytest

from memllm_cli.store import Evidence, FactFilter, Store

LARS = "Lars Berg works at Equinor. Lars Berg lives in Bergen. Lars Berg was born in Oslo.\n"
WRITES = [
    "({MEM_WRITE-->Lars Berg>>employer>>Equinor})",
    "({MEM_WRITE-->Lars Berg>>residence>>Bergen})",
    "({MEM_WRITE-->Lars Berg>>place of birth>>Oslo})",
]


@pytest.fixture
def script(scripted_model):
    return scripted_model


def rows(home):
    """Every fact as (id, subject, relation, object, origin, status, superseded_by)."""
    with Store.open(home / "memory.db") as store:
        return [
            (f.id, f.subject, f.relation, f.object, f.origin, f.status, f.superseded_by)
            for f in store.facts(FactFilter(include_all=True))
        ]


def corrected(cli, script, tmp_path):
    """The issue's steps: ingest lars.md, edit fact 1 to Statoil, delete fact 3."""
    outputs, _ = script
    lars = tmp_path / "lars.md"
    lars.write_text(LARS)
    outputs += WRITES
    assert cli("ingest", str(lars)).exit_code == 0
    assert cli("facts", "edit", "1", "--object", "Statoil").exit_code == 0
    assert cli("facts", "rm", "3").exit_code == 0
    return lars


AFTER_CORRECTIONS = [
    (1, "Lars Berg", "employer", "Equinor", "document", "superseded", 4),
    (2, "Lars Berg", "residence", "Bergen", "document", "current", None),
    (3, "Lars Berg", "place of birth", "Oslo", "document", "deleted", None),
    (4, "Lars Berg", "employer", "Statoil", "manual", "current", None),
]


def test_a_new_version_does_not_bring_back_what_the_user_corrected(
    cli, script, tmp_path, memllm_home
):
    outputs, _ = script
    lars = corrected(cli, script, tmp_path)
    assert rows(memllm_home) == AFTER_CORRECTIONS
    lars.write_text(LARS.rstrip("\n") + " Lars Berg plays chess. Lars was born in Oslo.\n")
    # The model reads the new sentences only (the old ones keep what they stated, or that
    # they state nothing current); one states again the fact the user deleted.
    outputs += ["({MEM_WRITE-->Lars Berg>>hobby>>chess})", WRITES[2]]
    result = cli("ingest", str(lars), "--json")
    assert result.exit_code == 0, result.stderr
    assert outputs == []
    assert rows(memllm_home) == [
        *AFTER_CORRECTIONS,
        (5, "Lars Berg", "hobby", "chess", "document", "current", None),
    ]
    report = json.loads(result.stdout)["documents"][0]
    assert (report["added"], report["overruled"], report["retracted"]) == (1, 1, 0)
    assert "1 overruled by your corrections" in result.stderr


def test_undoing_a_correction_lifts_it(cli, script, tmp_path, memllm_home):
    outputs, _ = script
    lars = corrected(cli, script, tmp_path)
    assert cli("undo").exit_code == 0  # the rm
    assert cli("undo").exit_code == 0  # the edit
    assert [r[5] for r in rows(memllm_home)] == ["current", "current", "current"]
    # The third version drops the birth sentence (fact 3 is retracted), the fourth states it
    # again: with the verdict lifted, the document brings it back like any retracted fact.
    lars.write_text("Lars Berg works at Equinor. Lars Berg lives in Bergen.\n")
    cli("ingest", str(lars))  # both sentences are carried over: the model reads none
    assert rows(memllm_home)[2][5] == "retracted"
    lars.write_text(LARS)
    outputs += [WRITES[2]]
    report = json.loads(cli("ingest", str(lars), "--json").stdout)["documents"][0]
    assert (report["added"], report["overruled"]) == (1, 0)
    assert rows(memllm_home)[:3] == [
        (1, "Lars Berg", "employer", "Equinor", "document", "current", None),
        (2, "Lars Berg", "residence", "Bergen", "document", "current", None),
        (3, "Lars Berg", "place of birth", "Oslo", "document", "current", None),
    ]


def test_stating_the_fact_by_hand_lifts_it(cli, script, tmp_path, memllm_home):
    outputs, _ = script
    lars = corrected(cli, script, tmp_path)
    assert cli("facts", "add", "Lars Berg", "place of birth", "Oslo").exit_code == 0
    assert rows(memllm_home)[2] == (
        3,
        "Lars Berg",
        "place of birth",
        "Oslo",
        "manual",
        "current",
        None,
    )
    lars.write_text("Lars Berg lives in Bergen.\n")
    outputs += [WRITES[1]]
    cli("ingest", str(lars))
    # Stated by the user now, the fact outlives the sentence that is gone.
    assert rows(memllm_home)[2][5] == "current"


def test_chat_does_not_overrule_the_user(store):
    with store.batch("ingest", "doc"):
        employer = store.add_fact("Lars Berg", "employer", "Equinor", Evidence(origin="document"))
        birth = store.add_fact("Lars Berg", "place of birth", "Oslo", Evidence(origin="document"))
    with store.batch("edit", "edit"):
        store.edit_fact(employer.fact.id, obj="Statoil")
    with store.batch("rm", "rm"):
        store.remove_fact(birth.fact.id)
    before = [store.detail(i) for i in (1, 2, 3)]
    ops = len(store.history(limit=None))
    chat = Evidence(origin="chat", source_kind="chat", uri="chat:1", sha256="0" * 64)
    with store.batch("chat", "chat"):
        results = [
            store.add_fact("Lars Berg", "employer", "Equinor", chat),
            store.add_fact("Lars Berg", "place of birth", "Oslo", chat),
        ]
    assert [(r.action, r.fact.id, r.superseded) for r in results] == [
        ("overruled", 1, []),
        ("overruled", 2, []),
    ]
    assert [store.detail(i) for i in (1, 2, 3)] == before  # rows, evidence and ops alike
    assert len(store.history(limit=None)) == ops


def test_a_restored_backup_keeps_the_corrections(cli, script, tmp_path, memllm_home):
    outputs, _ = script
    lars = corrected(cli, script, tmp_path)
    backup = tmp_path / "backup.jsonl"
    backup.write_text(cli("facts", "export").stdout)
    restored = tmp_path / "restored.db"
    assert cli("--db", str(restored), "facts", "import", str(backup)).exit_code == 0
    outputs += WRITES
    report = json.loads(cli("--db", str(restored), "ingest", str(lars), "--json").stdout)
    with Store.open(restored) as store:
        assert [(f.object, f.status) for f in store.facts(FactFilter(include_all=True))] == [
            ("Equinor", "superseded"),
            ("Bergen", "current"),
            ("Oslo", "deleted"),
            ("Statoil", "current"),
        ]
    assert report["documents"][0]["overruled"] == 2


def test_apply_of_a_dry_run_says_what_the_user_corrected(cli, script, tmp_path, memllm_home):
    lars = corrected(cli, script, tmp_path)
    lars.write_text(LARS + "Lars Berg plays chess.\n")
    outputs, _ = script
    outputs += [*WRITES, "({MEM_WRITE-->Lars Berg>>member of>>chess})"]
    proposals = cli("ingest", str(lars), "--dry-run").stdout
    result = cli("apply", "-", input=proposals)
    assert result.exit_code == 0
    assert "not stored: you deleted or corrected this fact" in result.stderr
    assert rows(memllm_home)[:4] == AFTER_CORRECTIONS
