"""A fact's whole row after every state change, and undo of batches with many changes.

A status check alone misses the bugs that matter here (a revived fact that still
names a successor, a deleted fact that a later write "supersedes", a ``valid_to``
overwritten), so these tests compare every column of every row involved.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from memllm_cli.errors import UndoConflictError
from memllm_cli.store import Evidence, FactFilter, Store

T2020 = "2020-01-01T00:00:00.000000+00:00"
T2023 = "2023-01-01T00:00:00.000000+00:00"
DOC = Evidence(origin="document", source_kind="document", uri="/n/a.md", sha256="a" * 64)


def add(store: Store, s: str, r: str, o: str, **kw: Any):
    with store.batch("add", f"{s} {r} {o}"):
        return store.add_fact(s, r, o, **kw)


def row(store: Store, fact_id: int) -> dict[str, Any]:
    """Every column but ``created_at`` (a clock reading), as the store returns it."""
    fields = asdict(store.fact(fact_id))
    del fields["created_at"]
    return fields


def rows(store: Store) -> list[dict[str, Any]]:
    return [row(store, f.id) for f in store.facts(FactFilter(include_all=True))]


def fact(
    fact_id: int,
    obj: str,
    status: str = "current",
    *,
    subject: str = "Ingrid",
    relation: str = "residence",
    origin: str = "manual",
    valid_from: str | None = None,
    valid_to: str | None = None,
    superseded_by: int | None = None,
) -> dict[str, Any]:
    return {
        "id": fact_id,
        "subject": subject,
        "relation": relation,
        "object": obj,
        "origin": origin,
        "status": status,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "superseded_by": superseded_by,
    }


def test_supersede_sets_status_successor_and_validity(store):
    add(store, "Ingrid", "residence", "Oslo", valid_from=T2020)
    add(store, "Ingrid", "residence", "Bergen", valid_from=T2023)
    assert rows(store) == [
        fact(1, "Oslo", "superseded", valid_from=T2020, valid_to=T2023, superseded_by=2),
        fact(2, "Bergen", valid_from=T2023),
    ]


def test_a_deleted_fact_stays_deleted_when_a_rival_arrives(store):
    oslo = add(store, "Ingrid", "residence", "Oslo", valid_from=T2020).fact
    with store.batch("rm", "rm"):
        store.remove_fact(oslo.id)
    deleted = row(store, oslo.id)
    assert deleted["status"] == "deleted" and deleted["superseded_by"] is None
    add(store, "Ingrid", "residence", "Bergen", valid_from=T2023)
    add(store, "Ingrid", "residence", "Bergen", evidence=DOC)  # a restatement changes nothing
    assert row(store, oslo.id) == deleted
    assert row(store, 2) == fact(2, "Bergen", valid_from=T2023)


def test_a_revived_fact_names_no_successor_and_its_history_ends(store):
    add(store, "Ingrid", "residence", "Oslo", valid_from=T2020)
    add(store, "Ingrid", "residence", "Bergen", valid_from=T2023)
    back = add(store, "Ingrid", "residence", "Oslo", valid_from="2024-01-01")
    assert back.action == "revived"
    assert [f.id for f in back.superseded] == [2]
    oslo, bergen = rows(store)
    assert oslo == fact(1, "Oslo", valid_from="2024-01-01")
    assert bergen == fact(
        2, "Bergen", "superseded", valid_from=T2023, valid_to="2024-01-01", superseded_by=1
    )
    assert [f.id for f in store.detail(1).history] == [1, 2]
    assert [f.id for f in store.detail(2).history] == [1, 2]


def test_removing_a_superseded_fact_keeps_when_it_ended(store):
    add(store, "Ingrid", "residence", "Oslo", valid_from=T2020)
    add(store, "Ingrid", "residence", "Bergen", valid_from=T2023)
    with store.batch("rm", "rm"):
        store.remove_fact(1)
    assert row(store, 1) == fact(
        1, "Oslo", "deleted", valid_from=T2020, valid_to=T2023, superseded_by=2
    )
    assert row(store, 2) == fact(2, "Bergen", valid_from=T2023)


def test_a_document_never_revives_what_the_user_replaced(store):
    """A document's value, superseded by the user's, stays superseded when restated."""
    add(store, "Ingrid", "residence", "Bergen", evidence=DOC, valid_from=T2020)
    add(store, "Ingrid", "residence", "Oslo", valid_from=T2023)
    again = add(store, "Ingrid", "residence", "Bergen", evidence=DOC)
    assert again.fact.status == "superseded" and again.fact.superseded_by == 2
    assert [f.object for f in store.facts()] == ["Oslo"]
    assert row(store, 2) == fact(2, "Oslo", valid_from=T2023)


def test_as_of_includes_the_first_day_and_excludes_the_last(store):
    add(store, "Ingrid", "residence", "Oslo", valid_from=T2020)
    add(store, "Ingrid", "residence", "Bergen", valid_from=T2023)

    def then(when: str) -> list[str]:
        return [f.object for f in store.facts(FactFilter(as_of=when))]

    assert then(T2020) == ["Oslo"]
    assert then(T2023) == ["Bergen"]
    assert then("2019-12-31T23:59:59.000000+00:00") == []


def test_an_edit_of_a_documents_fact_is_the_users_word(store):
    add(store, "Ingrid", "residence", "Oslo", evidence=DOC, valid_from=T2020)
    with store.batch("edit", "edit"):
        edited = store.edit_fact(1, obj="Bergen").fact
    assert row(store, edited.id) == fact(2, "Bergen", valid_from=edited.valid_from)
    old = row(store, 1)
    assert (old["status"], old["origin"], old["superseded_by"]) == ("superseded", "document", 2)
    # So a document's later value never supersedes it.
    add(store, "Ingrid", "residence", "Tromsø", evidence=DOC)
    assert [f.object for f in store.facts()] == ["Bergen"]


# -- undo of batches with more than one change -----------------------------------------------


def test_undo_of_a_batch_that_changed_one_fact_twice(store):
    """One batch adds Oslo, then supersedes it by Bergen: undo removes both."""
    with store.batch("ingest", "two changes"):
        store.add_fact("Ingrid", "residence", "Oslo", DOC)
        store.add_fact("Ingrid", "residence", "Bergen", DOC)
    assert [o.op for o in reversed(store.history())] == ["add", "add", "supersede"]
    result = store.undo()
    assert result.undone_ops == 3
    assert rows(store) == []


def test_undo_of_a_batch_restores_every_fact_it_changed(store):
    add(store, "Ingrid", "residence", "Oslo", valid_from=T2020)
    add(store, "Per", "residence", "Bergen", valid_from=T2020)
    before = rows(store)
    with store.batch("ingest", "both move"):
        store.add_fact("Ingrid", "residence", "Tromsø", valid_from=T2023)
        store.add_fact("Per", "residence", "Bodø", valid_from=T2023)
    assert [f["status"] for f in rows(store)] == ["superseded"] * 2 + ["current"] * 2
    store.undo()
    assert rows(store) == before


@pytest.mark.parametrize("changed", [0, 1, 2])
def test_undo_of_a_batch_refuses_when_any_of_its_facts_changed_later(store, changed):
    """Not only the batch's first change: a later edit of any fact blocks the undo."""
    with store.batch("ingest", "three facts"):
        for name in ("A", "B", "C"):
            store.add_fact(name, "employer", "NIVA")
    first_batch = store.history()[0].batch_id
    with store.batch("rm", "rm"):
        store.remove_fact(changed + 1)
    before = rows(store)
    with pytest.raises(UndoConflictError, match=f"fact {changed + 1} was changed later"):
        store.undo(batch_id=first_batch)
    assert rows(store) == before


def test_undo_of_an_edit_brings_the_old_fact_back_whole(store):
    add(store, "Ingrid", "employer", "NIVA", valid_from=T2020)
    before = rows(store)
    with store.batch("edit", "edit"):
        store.edit_fact(1, obj="SINTEF")
    edited = rows(store)
    assert edited[0]["status"] == "superseded" and edited[0]["superseded_by"] == 2
    assert edited[1]["object"] == "SINTEF" and edited[1]["status"] == "current"
    store.undo()
    assert rows(store) == before


@pytest.mark.parametrize("rival", [False, True])
def test_a_document_never_revives_a_fact_the_user_deleted(store, rival):
    """Found by tests/test_fuzz_store.py: with a manual rival it even turns "superseded"."""
    add(store, "Ingrid", "residence", "Bergen", evidence=DOC, valid_from=T2020)
    with store.batch("rm", "rm"):
        store.remove_fact(1)
    deleted = row(store, 1)
    if rival:
        add(store, "Ingrid", "residence", "Oslo", valid_from=T2023)
    add(store, "Ingrid", "residence", "Bergen", evidence=DOC)
    assert row(store, 1) == deleted
