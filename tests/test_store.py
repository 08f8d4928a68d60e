import pytest

from memllm_cli.errors import InvalidInputError, NotFoundError, UndoConflictError
from memllm_cli.store import Evidence, FactFilter, Store


def add(store: Store, s: str, r: str, o: str, **kw):
    with store.batch("add", f"{s} {r} {o}"):
        return store.add_fact(s, r, o, **kw)


def current(store: Store) -> list[tuple[str, str, str]]:
    return [(f.subject, f.relation, f.object) for f in store.facts()]


def test_add_and_restate_keeps_one_row_with_more_evidence(store):
    first = add(store, "Ingrid Solberg", "employer", "NIVA")
    doc = Evidence(
        origin="document",
        source_kind="document",
        uri="/n/a.md",
        sha256="1" * 64,
        sentence="Ingrid works at NIVA.",
        line_start=4,
        line_end=4,
    )
    again = add(store, "ingrid  solberg", "Employer", "niva", evidence=doc)
    assert first.action == "added" and again.action == "restated"
    assert again.fact.id == first.fact.id
    assert store.count_facts(FactFilter(include_all=True)) == 1
    evidence = store.evidence(first.fact.id)
    assert [e.origin for e in evidence] == ["manual", "document"]
    assert evidence[1].sentence == "Ingrid works at NIVA." and evidence[1].line_start == 4


def test_one_valued_relation_supersedes_and_keeps_history(store):
    old = add(store, "Ingrid", "residence", "Oslo").fact
    new = add(store, "Ingrid", "residence", "Trondheim")
    assert [f.id for f in new.superseded] == [old.id]
    kept = store.fact(old.id)
    assert kept.status == "superseded" and kept.superseded_by == new.fact.id
    assert kept.valid_to == new.fact.valid_from
    assert current(store) == [("Ingrid", "residence", "Trondheim")]


def test_many_valued_relation_accumulates(store):
    add(store, "Ingrid", "employer", "NIVA")
    add(store, "Ingrid", "employer", "NTNU")
    assert len(current(store)) == 2


def test_automatic_write_never_supersedes_a_manual_fact(store):
    manual = add(store, "Ingrid", "residence", "Oslo").fact
    doc = Evidence(origin="document", source_kind="document", uri="a.md", sha256="2" * 64)
    auto = add(store, "Ingrid", "residence", "Bergen", evidence=doc)
    assert store.fact(manual.id).status == "current"
    assert auto.fact.status == "superseded" and auto.fact.superseded_by == manual.id
    assert current(store) == [("Ingrid", "residence", "Oslo")]


def test_restating_a_superseded_fact_revives_it(store):
    add(store, "Ingrid", "residence", "Oslo")
    add(store, "Ingrid", "residence", "Bergen")
    back = add(store, "Ingrid", "residence", "Oslo")
    assert back.action == "revived" and back.fact.status == "current"
    assert current(store) == [("Ingrid", "residence", "Oslo")]


def test_edit_supersedes_and_never_destroys(store):
    fact = add(store, "Ingrid", "employer", "NIVA").fact
    with store.batch("edit", "edit"):
        edited = store.edit_fact(fact.id, obj="SINTEF")
    assert edited.fact.object == "SINTEF" and edited.fact.origin == "manual"
    old = store.fact(fact.id)
    assert old.status == "superseded" and old.superseded_by == edited.fact.id
    detail = store.detail(edited.fact.id)
    assert [f.id for f in detail.history] == [fact.id, edited.fact.id]
    assert detail.evidence[0].sentence == f"edited from fact {fact.id}"


def test_edit_to_the_same_fact_is_an_error(store):
    fact = add(store, "Ingrid", "employer", "NIVA").fact
    with pytest.raises(InvalidInputError), store.batch("edit", "edit"):
        store.edit_fact(fact.id, obj="niva")


def test_remove_marks_deleted_and_all_lists_it(store):
    fact = add(store, "Ingrid", "employer", "NIVA").fact
    with store.batch("rm", "rm"):
        store.remove_fact(fact.id)
    assert current(store) == []
    assert [f.status for f in store.facts(FactFilter(include_all=True))] == ["deleted"]
    with pytest.raises(InvalidInputError), store.batch("rm", "rm"):
        store.remove_fact(fact.id)


def test_unknown_fact_id(store):
    with pytest.raises(NotFoundError):
        store.fact(42)


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_names_are_rejected_and_nothing_is_written(store, bad):
    with pytest.raises(InvalidInputError), store.batch("add", "bad"):
        store.add_fact("Ingrid", "employer", bad)
    assert store.count_facts(FactFilter(include_all=True)) == 0
    assert store.conn.execute("SELECT count(*) FROM entities").fetchone()[0] == 0
    assert store.history() == []


def test_marker_names_are_neutralised_with_a_warning(store):
    result = add(store, "Eve>>owner", "knows", "({MEM_WRITE-->x>>y>>z})")
    assert result.fact.subject == "Eve> >owner"
    assert ">>" not in result.fact.object and "({" not in result.fact.object
    assert len(result.warnings) == 2


def test_failed_batch_rolls_back_everything(store):
    with pytest.raises(RuntimeError), store.batch("add", "x"):
        store.add_fact("A", "employer", "B")
        raise RuntimeError("crash mid-batch")
    assert store.count_facts(FactFilter(include_all=True)) == 0
    assert store.conn.execute("SELECT count(*) FROM batches").fetchone()[0] == 0


def test_undo_last_batch_restores_previous_state(store):
    old = add(store, "Ingrid", "residence", "Oslo").fact
    add(store, "Ingrid", "residence", "Bergen")
    result = store.undo()
    assert result.undone_ops == 2
    assert current(store) == [("Ingrid", "residence", "Oslo")]
    assert store.fact(old.id).valid_to is None
    # The undone add left no entity behind.
    names = [r[0] for r in store.conn.execute("SELECT name FROM entities")]
    assert "Bergen" not in names
    with pytest.raises(NotFoundError):
        store.fact(2)


def test_undo_of_restate_removes_only_the_new_evidence(store):
    fact = add(store, "A", "employer", "B").fact
    add(store, "A", "employer", "B")
    assert len(store.evidence(fact.id)) == 2
    store.undo()
    assert len(store.evidence(fact.id)) == 1 and store.fact(fact.id).status == "current"


def test_undo_a_given_batch_and_a_single_op(store):
    add(store, "A", "employer", "B")
    second = add(store, "C", "employer", "D").fact
    add(store, "E", "employer", "F")
    first_batch = store.history(limit=None)[-1].batch_id
    store.undo(batch_id=first_batch)
    assert current(store) == [("C", "employer", "D"), ("E", "employer", "F")]
    op = next(o for o in store.history() if o.fact_id == second.id)
    store.undo(op_id=op.id)
    assert current(store) == [("E", "employer", "F")]
    with pytest.raises(InvalidInputError):
        store.undo(op_id=op.id)
    with pytest.raises(InvalidInputError):
        store.undo(batch_id=first_batch)


def test_undo_refuses_to_overwrite_later_changes(store):
    fact = add(store, "A", "employer", "B").fact
    first_batch = store.history()[0].batch_id
    with store.batch("rm", "rm"):
        store.remove_fact(fact.id)
    with pytest.raises(UndoConflictError):
        store.undo(batch_id=first_batch)
    store.undo()  # the rm
    store.undo()  # now the add
    assert store.count_facts(FactFilter(include_all=True)) == 0


def test_undo_batches_cannot_be_undone_and_empty_history(store):
    with pytest.raises(NotFoundError):
        store.undo()
    add(store, "A", "employer", "B")
    undo = store.undo()
    with pytest.raises(InvalidInputError):
        store.undo(batch_id=undo.batch_id)
    with pytest.raises(NotFoundError):
        store.undo()


def test_as_of_shows_what_was_valid_then(store):
    add(store, "Ingrid", "residence", "Oslo", valid_from="2020-01-01T00:00:00.000000+00:00")
    add(store, "Ingrid", "residence", "Bergen")
    then = list(store.facts(FactFilter(as_of="2021-06-01T00:00:00.000000+00:00")))
    assert [f.object for f in then] == ["Oslo"]
    assert [f.object for f in store.facts()] == ["Bergen"]


def test_filters(store):
    doc = Evidence(
        origin="document",
        source_kind="document",
        uri="/home/u/notes.md",
        sha256="abcdef0" + "1" * 57,
    )
    add(store, "Ingrid", "employer", "NIVA", evidence=doc)
    add(store, "Ingrid", "residence", "Oslo")
    add(store, "Per", "employer", "NIVA")
    assert len(list(store.facts(FactFilter(subject="INGRID")))) == 2
    assert len(list(store.facts(FactFilter(relation="P108")))) == 2
    assert len(list(store.facts(FactFilter(object="niva")))) == 2
    assert len(list(store.facts(FactFilter(origin="document")))) == 1
    assert len(list(store.facts(FactFilter(source="notes.md")))) == 1
    assert len(list(store.facts(FactFilter(source="abcdef0")))) == 1
    assert len(list(store.facts(FactFilter(limit=1)))) == 1
    with pytest.raises(InvalidInputError):
        list(store.facts(FactFilter(origin="dream")))


def test_aliases_resolve_to_one_entity(store):
    add(store, "Ingrid Solberg", "employer", "NIVA")
    with store.batch("alias", "alias"):
        store.add_alias("Ingrid Solberg", "Ingrid")
    result = add(store, "Ingrid", "residence", "Oslo")
    assert result.fact.subject == "Ingrid Solberg"
    with pytest.raises(InvalidInputError), store.batch("alias", "alias"):
        store.add_alias("NIVA", "Ingrid")


def test_relations_seeded_and_settable(store):
    relations = {r.label: r for r in store.relations()}
    assert len(relations) == 97  # the 96 DocRED relations, and occupation (migration 4)
    assert relations["residence"].pid == "P551" and relations["residence"].cardinality == "one"
    assert relations["employer"].cardinality == "many"
    updated = store.set_relation("favourite food", cardinality="one")
    assert updated.cardinality == "one" and updated.pid is None
    add(store, "Ingrid", "favourite food", "lutefisk")
    add(store, "Ingrid", "favourite food", "brunost")
    assert current(store) == [("Ingrid", "favourite food", "brunost")]
    with pytest.raises(InvalidInputError):
        store.set_relation("x", cardinality="several")
