"""One entity per real thing: short names resolved at write time, aliases and merges.

Ingest tests run the scripted model; merge tests compare whole rows of every table
a merge touches, before and after ``undo``.
"""

import json

import pytest

from memllm_cli.errors import InvalidInputError, NotFoundError, UndoConflictError
from memllm_cli.store import Evidence, FactFilter, NameScope, Store
from memllm_cli.store.resolution import means, short_name, text_names

EMPTY = "({MEM_WRITE-->})"


def write(*triples: str) -> str:
    return "({MEM_WRITE-->" + ";".join(triples) + "})"


def stored(home, **kw) -> list[tuple[str, str, str, str]]:
    with Store.open(home / "memory.db") as store:
        return [(f.subject, f.relation, f.object, f.status) for f in store.facts(FactFilter(**kw))]


def names(home) -> list[tuple[str, str, int]]:
    """(name, the canonical name of its entity, is_alias) for every name, in row order."""
    with Store.open(home / "memory.db") as store:
        return store.conn.execute(
            "SELECT n.name, e.name, n.is_alias FROM names n "
            "JOIN entities e ON e.id = n.entity_id ORDER BY n.id"
        ).fetchall()


def ingest(cli, tmp_path, name: str, text: str, *args: str):
    path = tmp_path / name
    path.write_text(text)
    result = cli("ingest", str(path), *args)
    assert result.exit_code == 0, result.stderr
    return result


# -- write-time resolution, in a document ------------------------------------------------------


def test_a_first_name_joins_the_full_name_named_earlier(cli, scripted_model, tmp_path, memllm_home):
    outputs, _ = scripted_model
    outputs += [
        write("Tove Lindahl>>work location>>Umeå"),
        write("Tove>>place of birth>>Luleå"),
    ]
    ingest(cli, tmp_path, "a.md", "Tove Lindahl teaches in Umeå. Tove was born in Luleå.\n")
    assert stored(memllm_home) == [
        ("Tove Lindahl", "work location", "Umeå", "current"),
        ("Tove Lindahl", "place of birth", "Luleå", "current"),
    ]
    assert names(memllm_home) == [
        ("Tove Lindahl", "Tove Lindahl", 0),
        ("Umeå", "Umeå", 0),
        ("Tove", "Tove Lindahl", 1),
        ("Luleå", "Luleå", 0),
    ]
    # A question about the full name finds the fact stated with the short one.
    answer = cli("facts", "query", "Tove Lindahl>>place of birth>>", "--exact", "--json")
    assert [a["answer"] for a in json.loads(answer.stdout)] == ["Luleå"]
    shown = json.loads(cli("facts", "show", "2", "--json").stdout)
    assert shown["fact"]["subject"] == "Tove Lindahl"
    assert shown["evidence"][0]["sentence"] == "Tove was born in Luleå."


def test_surnames_titles_objects_and_names_only_the_text_gave(
    cli, scripted_model, tmp_path, memllm_home
):
    outputs, _ = scripted_model
    text = (
        "Lunch with Farah Qureshi. Farah runs Qureshi Levin Architects with Daniel Levin. "
        "Our GP is Dr. Anjali Rao. Dr. Rao works at Fernside. Levin admires Qureshi.\n"
    )
    outputs += [
        EMPTY,  # the model stored nothing about the full name: the text named her
        write(
            "Farah>>employer>>Qureshi Levin Architects", "Levin>>employer>>Qureshi Levin Architects"
        ),
        write("me>>GP>>Dr. Anjali Rao"),
        write("Dr. Rao>>employer>>Fernside"),
        write("Levin>>admires>>Qureshi"),
    ]
    ingest(cli, tmp_path, "a.md", text)
    assert stored(memllm_home) == [
        ("Farah Qureshi", "employer", "Qureshi Levin Architects", "current"),
        ("Daniel Levin", "employer", "Qureshi Levin Architects", "current"),
        ("me", "GP", "Dr. Anjali Rao", "current"),
        ("Dr. Anjali Rao", "employer", "Fernside", "current"),
        # "Qureshi": Farah Qureshi and Qureshi Levin (Architects) were both named: left as is.
        ("Daniel Levin", "admires", "Qureshi", "current"),
    ]


def test_two_full_names_leave_the_short_name_as_written(cli, scripted_model, tmp_path, memllm_home):
    outputs, _ = scripted_model
    outputs += [
        write("Tove Lindahl>>work location>>Umeå"),
        write("Tove Berg>>residence>>Kiruna"),
        write("Tove>>place of birth>>Luleå"),
    ]
    text = "Tove Lindahl teaches in Umeå. Tove Berg lives in Kiruna. Tove was born in Luleå.\n"
    ingest(cli, tmp_path, "a.md", text)
    assert stored(memllm_home, subject="Tove") == [("Tove", "place of birth", "Luleå", "current")]
    assert ("Tove", "Tove", 0) in names(memllm_home)


def test_a_short_name_after_in_is_a_place(cli, scripted_model, tmp_path, memllm_home):
    outputs, _ = scripted_model
    outputs += [
        write("Florence Welch>>residence>>London"),
        write("Florence Welch>>place of birth>>Florence"),
    ]
    text = "Florence Welch lives in London. She was born in Florence.\n"
    ingest(cli, tmp_path, "a.md", text)
    assert [(s, o) for s, _, o, _ in stored(memllm_home)] == [
        ("Florence Welch", "London"),
        ("Florence Welch", "Florence"),
    ]


def test_a_later_full_name_does_not_take_a_name_stored_as_written(
    cli, scripted_model, tmp_path, memllm_home
):
    outputs, _ = scripted_model
    outputs += [
        write("Luca>>residence>>Zurich"),
        write("Luca Bassi>>employer>>Zurich Insurance"),
        write("Sofia>>residence>>Zurich"),
    ]
    text = "Luca moved to Zurich. Luca Bassi joined Zurich Insurance. Sofia lives in Zurich.\n"
    ingest(cli, tmp_path, "a.md", text)
    # Zurich and Luca were stored as themselves before a longer name came: they stay.
    assert stored(memllm_home) == [
        ("Luca", "residence", "Zurich", "current"),
        ("Luca Bassi", "employer", "Zurich Insurance", "current"),
        ("Sofia", "residence", "Zurich", "current"),
    ]


def test_the_users_own_name_is_never_resolved(cli, scripted_model, tmp_path, memllm_home):
    outputs, _ = scripted_model
    outputs += [write("Ola Nordmann>>residence>>Oslo"), write("I>>place of birth>>Bergen")]
    text = "Ola Nordmann lives in Oslo. I was born in Bergen.\n"
    ingest(cli, tmp_path, "a.md", text, "--me", "Ola")
    assert stored(memllm_home, subject="Ola") == [("Ola", "place of birth", "Bergen", "current")]


# -- across documents: the memory, only when unambiguous -------------------------------------


def test_across_documents_only_a_unique_full_name_is_taken(
    cli, scripted_model, tmp_path, memllm_home
):
    outputs, _ = scripted_model
    outputs += [write("Tove Lindahl>>work location>>Umeå")]
    ingest(cli, tmp_path, "a.md", "Tove Lindahl teaches in Umeå.\n")
    outputs += [write("Tove>>place of birth>>Luleå")]
    ingest(cli, tmp_path, "b.md", "Tove was born in Luleå.\n")
    assert stored(memllm_home, subject="Tove Lindahl") == [
        ("Tove Lindahl", "work location", "Umeå", "current"),
        ("Tove Lindahl", "place of birth", "Luleå", "current"),
    ]
    # A second Tove in memory: the next document's "Tove" is ambiguous there.
    outputs += [write("Tove Berg>>residence>>Kiruna")]
    ingest(cli, tmp_path, "c.md", "Tove Berg lives in Kiruna.\n")
    outputs += [write("Lindahl>>employer>>Umeå University"), write("Berg>>sibling>>Sara")]
    ingest(cli, tmp_path, "d.md", "Lindahl works at Umeå University. Berg has a sister, Sara.\n")
    assert stored(memllm_home, source="d.md") == [
        ("Tove Lindahl", "employer", "Umeå University", "current"),
        ("Tove Berg", "sibling", "Sara", "current"),
    ]
    # "Tove" is an alias of Tove Lindahl now; a document naming only Tove Berg means her.
    outputs += [EMPTY, write("Tove>>employer>>LKAB")]
    ingest(cli, tmp_path, "e.md", "Tove Berg is at the mine. Tove works at LKAB.\n")
    assert stored(memllm_home, source="e.md") == [("Tove Berg", "employer", "LKAB", "current")]


def test_two_candidates_in_memory_leave_the_short_name_as_written(
    cli, scripted_model, tmp_path, memllm_home
):
    outputs, _ = scripted_model
    outputs += [write("Tove Lindahl>>work location>>Umeå", "Tove Berg>>residence>>Kiruna")]
    ingest(cli, tmp_path, "a.md", "Tove Lindahl and Tove Berg are cousins.\n")
    outputs += [write("Tove>>place of birth>>Luleå")]
    ingest(cli, tmp_path, "b.md", "Tove was born in Luleå.\n")
    assert stored(memllm_home, source="b.md") == [("Tove", "place of birth", "Luleå", "current")]


def test_a_known_canonical_name_stays_itself(cli, scripted_model, tmp_path, memllm_home):
    outputs, _ = scripted_model
    outputs += [write("Isla>>place of birth>>Brighton")]
    ingest(cli, tmp_path, "a.md", "Isla was born in Brighton.\n")
    outputs += [
        write("Felix>>member of sports team>>Brighton Juniors"),
        write("Felix>>x>>Brighton"),
    ]
    ingest(cli, tmp_path, "b.md", "Felix plays for Brighton Juniors. He loves Brighton.\n")
    assert stored(memllm_home, object="Brighton") == [
        ("Isla", "place of birth", "Brighton", "current"),
        ("Felix", "x", "Brighton", "current"),
    ]


def test_dry_run_shows_resolved_names_and_undo_removes_the_alias(
    cli, scripted_model, tmp_path, memllm_home
):
    outputs, _ = scripted_model
    text = "Tove Lindahl teaches in Umeå. Tove was born in Luleå.\n"
    outputs += [write("Tove Lindahl>>work location>>Umeå"), write("Tove>>place of birth>>Luleå")]
    proposed = ingest(cli, tmp_path, "a.md", text, "--dry-run").stdout
    subjects = [json.loads(line)["subject"] for line in proposed.splitlines()]
    assert subjects == ["Tove Lindahl", "Tove Lindahl"]
    assert stored(memllm_home) == [] and names(memllm_home) == []
    outputs += [write("Tove Lindahl>>work location>>Umeå"), write("Tove>>place of birth>>Luleå")]
    ingest(cli, tmp_path, "a.md", text)
    assert ("Tove", "Tove Lindahl", 1) in names(memllm_home)
    assert [o["fact"] for o in json.loads(cli("history", "--json").stdout)][-3:] == [
        "Tove Lindahl >> place of birth >> Luleå",
        "name Tove",
        "Tove Lindahl >> work location >> Umeå",
    ]
    assert cli("undo").exit_code == 0
    assert names(memllm_home) == [] and stored(memllm_home, include_all=True) == []


def test_chat_resolves_in_the_conversation_and_keeps_me(store):
    from memllm_cli.runtime.loop import Session
    from memllm_cli.runtime.scripted import ScriptedModel

    model = ScriptedModel(
        [write("Tove Lindahl>>employer>>Umeå University"), write("Tove>>spouse>>me")]
    )
    session = Session(store, model, me="Ola")
    session.remember("Tove Lindahl works at Umeå University.", session_id="s")
    session.remember("Tove is married to me.", session_id="s")
    assert [(f.subject, f.object) for f in store.facts()] == [
        ("Tove Lindahl", "Umeå University"),
        ("Tove Lindahl", "Ola"),
    ]


# -- the rules, directly -------------------------------------------------------------------


def test_short_and_full_names():
    assert short_name("Tove").word == "tove" and not short_name("Tove").surname
    assert short_name("Dr. Rao").surname and short_name("dr rao") is None
    assert [short_name(n) for n in ("NIVA", "me", "Tove Lindahl", "2021", "The")] == [None] * 5
    assert means(short_name("Rao"), "Dr. Anjali Rao")
    assert means(short_name("Anjali"), "Dr. Anjali Rao")
    assert not means(short_name("Dr. Anjali"), "Dr. Anjali Rao")  # a title goes with a surname
    assert not means(short_name("Lin"), "Mei Lin Chua")  # a middle name means nothing
    assert not means(short_name("Zurich"), "ETH Zurich")  # an acronym is no person's name
    assert not means(short_name("Zurich"), "University of Zurich")
    assert text_names("Yesterday Tove Lindahl met Dr. Anjali Rao, and Lindahl, Tove.") == [
        "Tove Lindahl",
        "Dr. Anjali Rao",
    ]
    assert text_names('"The Salt Road" by Imogen Achterberg (Faber).') == [
        "Salt Road",
        "Imogen Achterberg",
    ]


def test_resolve_reads_only_and_the_scope_keeps_its_choices(store):
    with store.batch("add", "add"):
        store.add_fact("Tove Lindahl", "employer", "Umeå University")
    scope = NameScope()
    assert store.resolve_name("Tove", scope) == "Tove Lindahl"
    assert store.entity_ids("Tove") == []  # a dry run writes no alias
    scope = NameScope()
    scope.read("Tove Berg lives in Kiruna.")
    assert store.resolve_name("Tove", scope) == "Tove Berg"  # the document comes first
    assert store.resolve_name("Kiruna", scope) == "Kiruna"


def test_a_proper_name_with_or_without_the_is_one_entity(store):
    """A small model writes "Sacramento Bee" for The Sacramento Bee and "the United States"."""
    with store.batch("add", "add"):
        first = store.add_fact("The Sacramento Bee", "country", "United States")
        second = store.add_fact("Sacramento Bee", "headquarters location", "the United States")
        job = store.add_fact("Ana Costa", "occupation", "economist")
        paper = store.add_fact("Ana Costa", "employer", "The Economist")
    assert second.fact.subject == "The Sacramento Bee" and second.fact.object == "United States"
    assert store.entity_ids("Sacramento Bee") == store.entity_ids("The Sacramento Bee")
    assert store.entity_ids("The United States") == store.entity_ids("United States") != []
    # Only capitalised names: the job and the paper stay two things.
    assert (job.fact.object, paper.fact.object) == ("economist", "The Economist")
    assert store.entity_ids("economist") != store.entity_ids("The Economist")
    listed = store.facts(FactFilter(subject="Sacramento Bee", object="the United States"))
    assert [f.id for f in listed] == [first.fact.id, second.fact.id]
    assert store.fact_id_of("Sacramento Bee", "country", "the United States") == first.fact.id


# -- facts alias ---------------------------------------------------------------------------


def test_alias_adds_refuses_another_entitys_name_and_undoes(cli, memllm_home):
    cli("facts", "add", "Tove Lindahl", "employer", "Umeå University")
    cli("facts", "add", "Tove Berg", "residence", "Kiruna")
    cli("facts", "add", "Berg", "residence", "Stockholm")
    added = cli("facts", "alias", "Tove Lindahl", "Tove", "--json")
    assert added.exit_code == 0 and added.stderr == "'Tove' is now an alias of Tove Lindahl\n"
    assert json.loads(added.stdout) == {
        "entity": "Tove Lindahl",
        "alias": "Tove",
        "added": True,
        "names": ["Tove Lindahl", "Tove"],
    }
    cli("facts", "add", "tove", "residence", "Umeå")
    assert stored(memllm_home, subject="Tove Lindahl")[-1] == (
        "Tove Lindahl",
        "residence",
        "Umeå",
        "current",
    )
    refused = cli("facts", "alias", "Tove Berg", "TOVE")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr == (
        "error: 'TOVE' already names another entity (Tove Lindahl); merge the two to make "
        "them one\n"
    )
    refused = cli("facts", "alias", "Tove Lindahl", "Berg")
    assert refused.stderr == (
        "error: 'Berg' already names another entity; merge the two to make them one\n"
    )
    missing = cli("facts", "alias", "Nobody", "N")
    assert (missing.exit_code, missing.stderr) == (1, "error: no entity named 'Nobody'\n")
    again = cli("facts", "alias", "Tove Lindahl", "tove")
    assert again.exit_code == 0 and "already names Tove Lindahl" in again.stderr
    cli("undo")  # the residence
    cli("undo")  # the alias
    assert ("Tove", "Tove Lindahl", 1) not in names(memllm_home)
    assert cli("facts", "list", "--subject", "Tove", "--json").stdout.strip() == "[]"


# -- facts merge ---------------------------------------------------------------------------


def doc(uri: str, line: int, sentence: str) -> Evidence:
    return Evidence(
        origin="document",
        source_kind="document",
        uri=uri,
        sha256=uri[-1] * 64,
        sentence=sentence,
        line_start=line,
        line_end=line,
    )


def add(store: Store, s: str, r: str, o: str, evidence: Evidence | None = None, **kw):
    with store.batch("add", f"{s} {r} {o}"):
        return store.add_fact(s, r, o, evidence, **kw).fact


TABLES = ("entities", "names", "facts", "provenance", "sources")


def rows(store: Store) -> dict[str, list[tuple]]:
    """Every row of the tables a merge changes, whole."""
    return {t: store.conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}


def test_merge_moves_facts_collapses_twins_and_undo_restores_every_row(store):
    fiat = add(store, "Sofia Marchetti", "employer", "Fiat", doc("/n/a", 1, "Sofia M. at Fiat."))
    twin = add(store, "Sofia", "employer", "Fiat", doc("/n/b", 3, "Sofia works at Fiat."))
    prada = add(store, "Sofia", "employer", "Prada", doc("/n/b", 4, "Sofia joined Prada."))
    partner = add(store, "Luca Bassi", "spouse", "Sofia")
    with store.batch("alias", "alias"):
        store.add_alias("Sofia", "Sofi")
    before = rows(store)
    with store.batch("merge", "facts merge"):
        result = store.merge("sofia marchetti", "Sofi")
    assert (result.entity, result.merged) == ("Sofia Marchetti", "Sofia")
    assert result.moved == [prada.id, partner.id] and result.collapsed == [(twin.id, fiat.id)]
    assert result.aliases == ["Sofia", "Sofi"] and result.superseded == []
    assert [(f.id, f.label, f.status) for f in store.facts(FactFilter(include_all=True))] == [
        (fiat.id, "Sofia Marchetti >> employer >> Fiat", "current"),
        (prada.id, "Sofia Marchetti >> employer >> Prada", "current"),
        (partner.id, "Luca Bassi >> spouse >> Sofia Marchetti", "current"),
    ]
    # The collapsed fact keeps the evidence of both statements.
    assert [(e.uri, e.line_start) for e in store.evidence(fiat.id)] == [("/n/a", 1), ("/n/b", 3)]
    assert (
        store.entity_ids("Sofi") == store.entity_ids("Sofia") == store.entity_ids("Sofia Marchetti")
    )
    after = rows(store)
    assert [r[1] for r in after["entities"]] == ["Sofia Marchetti", "Fiat", "Prada", "Luca Bassi"]
    assert [(r[2], r[4]) for r in after["names"]] == [
        ("Sofia Marchetti", 0),
        ("Fiat", 0),
        ("Sofia", 1),
        ("Prada", 0),
        ("Luca Bassi", 0),
        ("Sofi", 1),
    ]
    undone = store.undo()
    assert undone.undone_ops == len(store.history(batch_id=undone.batch_id, limit=None))
    assert rows(store) == before
    # And the merge can be made again, the same way.
    with store.batch("merge", "facts merge"):
        assert store.merge("Sofia Marchetti", "Sofia").collapsed == [(twin.id, fiat.id)]


def test_merge_keeps_the_current_twin_and_relinks_its_versions(store):
    turin = add(store, "Sofia Marchetti", "residence", "Turin", doc("/n/a", 1, "In Turin."))
    milan = add(store, "Sofia Marchetti", "residence", "Milan", doc("/n/a", 2, "Now Milan."))
    other = add(store, "Sofia", "residence", "Turin", doc("/n/c", 2, "Sofia lives in Turin."))
    before = rows(store)
    with store.batch("merge", "facts merge"):
        result = store.merge("Sofia Marchetti", "Sofia")
    # NAME's Turin was superseded, OTHER's current: OTHER's row survives and takes the evidence.
    assert result.collapsed == [(turin.id, other.id)] and result.moved == [other.id]
    survivor = store.fact(other.id)
    assert (survivor.subject, survivor.status) == ("Sofia Marchetti", "current")
    assert [e.uri for e in store.evidence(other.id)] == ["/n/a", "/n/c"]
    # Two current residences now: Turin is the newer statement, Milan is superseded by it.
    assert [f.id for f in result.superseded] == [milan.id]
    old = store.fact(milan.id)
    assert (old.status, old.superseded_by, old.valid_to) == (
        "superseded",
        other.id,
        survivor.valid_from,
    )
    store.undo()
    assert rows(store) == before


def test_a_survivor_superseded_by_its_dropped_twin_takes_the_twins_successor(store):
    # Edited onto the short name, then deleted: the old row on NAME points at its twin.
    old = add(store, "Sofia Marchetti", "employer", "Fiat")
    with store.batch("edit", "edit"):
        new = store.edit_fact(old.id, subject="Sofia").fact
    with store.batch("rm", "rm"):
        store.remove_fact(new.id)
    assert store.fact(old.id).superseded_by == new.id
    with store.batch("merge", "merge"):
        assert store.merge("Sofia Marchetti", "Sofia").collapsed == [(new.id, old.id)]
    kept = store.fact(old.id)
    assert (kept.subject, kept.status, kept.superseded_by) == (
        "Sofia Marchetti",
        "superseded",
        None,
    )


def test_merge_supersedes_the_older_current_fact_and_respects_manual_ones(store):
    paper = doc("/n/d", 1, "x")
    turin = add(store, "Sofia Marchetti", "residence", "Turin", paper)
    zurich = add(store, "Sofia", "residence", "Zurich", paper)
    with store.batch("merge", "merge"):
        result = store.merge("Sofia Marchetti", "Sofia")
    assert [f.id for f in result.superseded] == [turin.id] and result.conflicts == []
    rows_now = {f.id: f for f in store.facts(FactFilter(include_all=True))}
    assert rows_now[zurich.id].status == "current"
    assert (rows_now[turin.id].status, rows_now[turin.id].superseded_by) == (
        "superseded",
        zurich.id,
    )
    assert rows_now[turin.id].valid_to == zurich.valid_from
    assert store.history(limit=1)[0].op == "supersede"
    store.undo()
    # A manual fact is never superseded by an automatic one: the older manual one wins.
    manual = add(store, "Per Hansen", "residence", "Oslo")
    auto = add(store, "Per", "residence", "Bergen", paper)
    with store.batch("merge", "merge"):
        result = store.merge("Per Hansen", "Per")
    assert [f.id for f in result.superseded] == [auto.id]
    assert store.fact(manual.id).status == "current"
    assert store.fact(auto.id).superseded_by == manual.id
    # Two manual ones: both stay current, and the merge says so.
    add(store, "Ada", "residence", "Rome")
    add(store, "Ada Rossi", "residence", "Pisa")
    with store.batch("merge", "merge"):
        result = store.merge("Ada Rossi", "Ada")
    assert result.superseded == [] and result.conflicts == ["Ada Rossi >> residence"]
    assert len(list(store.facts(FactFilter(subject="Ada Rossi")))) == 2


def test_merge_refusals_and_undo_guards(store):
    add(store, "Sofia Marchetti", "employer", "Fiat")
    first = add(store, "Sofia", "founded", "Fiat")  # Sofia is the newest entity
    with pytest.raises(NotFoundError), store.batch("merge", "merge"):
        store.merge("Sofia Marchetti", "Nobody")
    with pytest.raises(InvalidInputError, match="same entity"), store.batch("merge", "merge"):
        store.merge("Sofia", "sofia")
    with store.batch("merge", "merge"):
        store.merge("Sofia Marchetti", "Sofia")
    merge_batch = store.history(limit=1)[0].batch_id
    one_op = store.history(limit=None, batch_id=merge_batch)[-1].id
    with pytest.raises(InvalidInputError, match="part of a merge"):
        store.undo(op_id=one_op)
    # Undoing the add underneath the merge would lose the merge's change to that fact.
    with pytest.raises(UndoConflictError, match=f"fact {first.id} was changed later"):
        store.undo(batch_id=merge_batch - 1)
    # A new entity that took the removed entity's id blocks the merge's undo.
    add(store, "Zed", "employer", "Fiat")
    before = rows(store)
    with pytest.raises(UndoConflictError, match="now belongs to 'Zed'"):
        store.undo(batch_id=merge_batch)
    assert rows(store) == before


def test_merge_cli(cli, memllm_home):
    cli("facts", "add", "Sofia Marchetti", "residence", "Turin")
    cli("facts", "add", "Sofia", "residence", "Zurich")
    merged = cli("facts", "merge", "Sofia Marchetti", "Sofia", "--json")
    assert merged.exit_code == 0
    assert merged.stderr.splitlines() == [
        "merged Sofia into Sofia Marchetti: 1 fact(s) moved, 0 duplicate(s) collapsed, "
        "0 superseded",
        "warning: Sofia Marchetti >> residence has several current manual facts; keep one "
        "(facts rm)",
    ]
    assert json.loads(merged.stdout)["aliases"] == ["Sofia"]
    again = cli("facts", "merge", "Sofia Marchetti", "Sofia")
    assert (again.exit_code, again.stderr) == (
        1,
        "error: 'Sofia Marchetti' and 'Sofia' already name the same entity\n",
    )
    history = json.loads(cli("history", "--json").stdout)
    assert [(o["op"], o["target"], o["fact"]) for o in history[:3]] == [
        ("merge", "entity", "entity Sofia"),
        ("merge", "name", "name Sofia"),
        ("merge", "fact", "Sofia Marchetti >> residence >> Zurich"),
    ]
    assert cli("undo").exit_code == 0
    assert stored(memllm_home)[1] == ("Sofia", "residence", "Zurich", "current")
