"""Fuzzing the memory with sequences of writes, edits, deletions and undos.

Model writes go the way a chat turn's do (a ``MEM_WRITE`` call played by the
scripted model, parsed and stored by :meth:`Session.remember`), document writes
carry sentences that state changes ("moved from", "left", "now"), and the user
adds, edits, removes and undoes. After every step the memory must be consistent:
one current value per one-valued relation, no current fact with an end or a
successor, successor chains that end, a sound database; and undoing every batch,
newest first, must leave it empty.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memllm_cli.errors import InvalidInputError, NotFoundError, UndoConflictError
from memllm_cli.protocol import Triple, format_write
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.scripted import ScriptedModel
from memllm_cli.store import Evidence, Fact, FactFilter, Store

FUZZ = settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
SUBJECTS = ("Ada", "Per")
OBJECTS = ("Oslo", "Bergen", "NIVA", "Fiat")
RELATIONS = ("residence", "employer", "sibling")
# What a sentence says about (subject, object); "{o2}" is another object.
SENTENCES = (
    "{s} lives in {o}.",
    "{s} moved from {o2} to {o}.",
    "{s} moved from {o} to {o2}.",
    "{s} now works at {o}.",
    "{s} left {o}.",
    "{s} no longer works at {o}.",
    "{s} works at {o} and {o2}.",
)

names = st.sampled_from(SUBJECTS)
objects = st.sampled_from(OBJECTS)
relations = st.sampled_from(RELATIONS)
sentences = st.sampled_from(SENTENCES)
fact_ids = st.integers(1, 12)
steps = st.one_of(
    st.tuples(st.just("chat"), names, relations, objects, objects, sentences),
    st.tuples(st.just("document"), names, relations, objects, objects, sentences),
    st.tuples(st.just("manual"), names, relations, objects),
    st.tuples(st.just("edit"), fact_ids, objects),
    st.tuples(st.just("rm"), fact_ids),
    st.tuples(st.just("undo")),
    st.tuples(st.just("undo batch"), st.integers(1, 10)),
)


def apply_step(store: Store, step: tuple[Any, ...], number: int) -> None:
    kind = step[0]
    try:
        if kind in ("chat", "document"):
            _, subject, relation, obj, other, template = step
            sentence = template.format(s=subject, o=obj, o2=other)
            if kind == "chat":
                call = format_write([Triple(subject, relation, obj)])
                Session(store, ScriptedModel([call])).remember(sentence, session_id="fuzz")
                return
            evidence = Evidence(
                origin="document",
                source_kind="document",
                uri="/n/notes.md",
                sha256=f"{number:064x}",
                sentence=sentence,
            )
            with store.batch("ingest", "ingest"):
                store.add_fact(subject, relation, obj, evidence)
        elif kind == "manual":
            with store.batch("add", "add"):
                store.add_fact(*step[1:])
        elif kind == "edit":
            with store.batch("edit", "edit"):
                store.edit_fact(step[1], obj=step[2])
        elif kind == "rm":
            with store.batch("rm", "rm"):
                store.remove_fact(step[1])
        elif kind == "undo batch":
            store.undo(batch_id=step[1])
        else:
            store.undo()
    except (InvalidInputError, NotFoundError, UndoConflictError):
        pass  # a refusal is fine; check_consistent() checks it changed nothing harmful


def rows(store: Store) -> dict[int, Fact]:
    return {f.id: f for f in store.facts(FactFilter(include_all=True))}


def check_step(before: dict[int, Fact], after: dict[int, Fact], step: tuple[Any, ...]) -> None:
    """What one step may change: a deletion ends one fact and keeps when it ended."""
    if step[0].startswith("undo"):
        return
    for fact_id, old in before.items():
        new = after[fact_id]
        if old.status == "deleted":  # a later write never turns a deletion into a supersession
            assert new.status != "superseded", (old, new)
        if step[0] == "rm" and step[1] == fact_id and new.status == "deleted":
            assert new.valid_to == (old.valid_to or new.valid_to), (old, new)
            assert replace(new, status=old.status, valid_to=old.valid_to) == old


def check_consistent(store: Store) -> None:
    assert store.integrity_check() == ["ok"]
    assert store.foreign_key_check() == []
    facts = rows(store)
    one_valued = {r.label for r in store.relations() if r.cardinality == "one"}
    seen: set[tuple[str, str]] = set()
    for fact in facts.values():
        if fact.status == "current":
            assert fact.valid_to is None and fact.superseded_by is None, fact
            if fact.relation in one_valued:
                key = (fact.subject, fact.relation)
                assert key not in seen, f"two current values for {key}"
                seen.add(key)
        if fact.status == "superseded":
            assert fact.valid_to is not None, fact
        if fact.superseded_by is not None:
            assert fact.superseded_by in facts and fact.superseded_by != fact.id, fact
        chain, cursor = [], fact.id
        while cursor is not None:
            assert cursor not in chain, f"a successor loop: {chain + [cursor]}"
            chain.append(cursor)
            cursor = facts[cursor].superseded_by
        store.detail(fact.id)  # history and ops of every fact can be shown


@FUZZ
@given(st.lists(steps, min_size=1, max_size=10))
@example(
    [
        ("manual", "Ada", "residence", "Oslo"),
        ("rm", 1),
        ("manual", "Ada", "residence", "Bergen"),
        ("manual", "Ada", "residence", "Oslo"),
    ]
)
@example(
    [
        ("document", "Ada", "employer", "Fiat", "NIVA", "{s} works at {o} and {o2}."),
        ("document", "Ada", "employer", "NIVA", "Fiat", "{s} left {o2}."),
        ("chat", "Ada", "employer", "Fiat", "NIVA", "{s} now works at {o}."),
        ("edit", 1, "Oslo"),
        ("undo",),
        ("undo",),
    ]
)
@example(
    [
        ("document", "Ada", "residence", "Bergen", "Oslo", "{s} lives in {o}."),
        ("manual", "Ada", "residence", "Oslo"),
        ("document", "Ada", "residence", "Bergen", "Oslo", "{s} lives in {o}."),
        ("manual", "Ada", "residence", "Fiat"),
        ("rm", 1),
        ("rm", 2),
    ]
)
@example(
    [
        ("manual", "Ada", "residence", "Oslo"),
        ("manual", "Ada", "residence", "Bergen"),  # batch 2: add Bergen, supersede Oslo
        ("rm", 1),  # a later change to batch 2's second fact
        ("undo batch", 2),  # refused
    ]
)
def test_every_sequence_leaves_a_consistent_memory_that_undoes_to_empty(sequence):
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "memory.db") as store:
        for number, step in enumerate(sequence):
            before = rows(store)
            apply_step(store, step, number)
            check_step(before, rows(store), step)
            check_consistent(store)
        for _ in range(len(sequence) + 1):
            try:
                store.undo()
            except NotFoundError:
                break
            check_consistent(store)
        assert store.count_facts(FactFilter(include_all=True)) == 0
        assert store.conn.execute("SELECT count(*) FROM entities").fetchone()[0] == 0
