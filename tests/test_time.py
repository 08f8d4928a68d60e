"""Time: dated headings and daily notes, changes that supersede, questions about the past."""

import io

import pytest

from memllm_cli.ingest.dates import DocumentDates, file_date, parse_heading
from memllm_cli.ingest.text import sentences
from memllm_cli.protocol import ReadQuery
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.scripted import ScriptedModel
from memllm_cli.store import Evidence, FactFilter, Store
from memllm_cli.store.read import read
from memllm_cli.store.when import When, when_of

EMPTY = "({MEM_WRITE-->})"
END = "<|im_end|>"


def said(sentence, origin="document"):
    uri = "notes.md" if origin == "document" else "chat:1"
    return Evidence(origin, origin, uri, "0" * 64, sentence)


def add(store, *args, **kw):
    with store.batch("ingest", "notes"):
        return store.add_fact(*args, **kw)


def row(store, subject, relation, obj):
    fact = store.fact(store.fact_id_of(subject, relation, obj))
    return (fact.status, fact.valid_from, fact.valid_to, fact.superseded_by)


# -- document dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "year", "expected"),
    [
        ("2020", None, "2020-01-01"),
        ("2024-03-14", None, "2024-03-14"),
        ("3 January 2024", None, "2024-01-03"),
        ("January 2024", None, "2024-01-01"),
        ("January 3, 2024", None, "2024-01-03"),
        ("Monday, 3 January", 2021, "2021-01-03"),
        ("3 January", None, None),  # a day and month need a year from somewhere
        ("Projects 2020", None, None),
        ("Who is where, 2018 to 2025", None, None),
        ("31 February 2024", None, None),
        ("May", 2020, None),
    ],
)
def test_heading_dates(text, year, expected):
    assert parse_heading(text, year) == expected


def test_sections_nest_and_end():
    dates = DocumentDates("2025-03-14.md")
    assert dates.date == "2025-03-14"  # the file name, until a dated heading
    dates.heading(1, "Journal")
    dates.heading(2, "2020")
    dates.heading(3, "3 January")  # the year of the enclosing heading
    assert dates.date == "2020-01-03"
    dates.heading(3, "Work")  # ends "3 January"; still inside 2020
    assert dates.date == "2020-01-01"
    dates.heading(2, "Ideas")  # ends 2020
    assert dates.date == "2025-03-14"
    assert DocumentDates("notes.md").date is None
    undated = DocumentDates("notes.md")
    undated.heading(2, "3 January")
    assert undated.date is None
    assert file_date("journal/2025-03-14.md") == "2025-03-14" and file_date("v12345.md") is None


def test_markdown_headings_carry_their_level():
    text = "# Title\n\n## 2020\nSofia moved. Fine.\n\nSetext\n---\n"
    found = [(s.text, s.heading) for s in sentences(io.StringIO(text), markdown=True)]
    assert found == [("Title", 1), ("2020", 2), ("Sofia moved.", 0), ("Fine.", 0), ("Setext", 2)]


DATED = """# Who is where

## 2018
Sofia lives in Turin.

## 2022
Sofia moved from Turin to Milan.

## Ideas
Luca likes tea.
"""


def test_ingest_dates_facts_by_heading_and_file_name(cli, scripted_model, tmp_path, memllm_home):
    outputs, _ = scripted_model
    notes = tmp_path / "2025-03-14.md"
    notes.write_text(DATED)
    outputs += [
        EMPTY,
        EMPTY,
        "({MEM_WRITE-->Sofia>>residence>>Turin})",
        EMPTY,
        "({MEM_WRITE-->Sofia>>residence>>Turin;Sofia>>residence>>Milan})",
        EMPTY,
        "({MEM_WRITE-->Luca>>likes>>tea})",
    ]
    assert cli("ingest", str(notes)).exit_code == 0
    with Store.open(memllm_home / "memory.db") as store:
        turin, milan = store.fact_id_of("Sofia", "residence", "Turin"), None
        milan = store.fact_id_of("Sofia", "residence", "Milan")
        assert row(store, "Sofia", "residence", "Turin") == (
            "superseded",
            "2018-01-01",
            "2022-01-01",
            milan,
        )
        assert row(store, "Sofia", "residence", "Milan") == ("current", "2022-01-01", None, None)
        # "## Ideas" ends the 2022 section: the daily note's name dates the rest.
        assert row(store, "Luca", "likes", "tea") == ("current", "2025-03-14", None, None)
        assert turin != milan


def test_undated_documents_keep_the_write_time(cli, scripted_model, tmp_path, memllm_home):
    outputs, _ = scripted_model
    notes = tmp_path / "notes.md"
    notes.write_text("Luca likes tea.\n")
    outputs += ["({MEM_WRITE-->Luca>>likes>>tea})"]
    assert cli("ingest", str(notes)).exit_code == 0
    with Store.open(memllm_home / "memory.db") as store:
        fact = store.fact(1)
        assert fact.valid_from == fact.created_at


# -- changes ---------------------------------------------------------------------------------------


def test_now_works_at_supersedes_the_old_employer(store):
    with store.batch("ingest", "notes"):
        store.add_fact("Sofia", "employer", "Fiat", said("Sofia works at Fiat."), valid_from="2018")
        store.add_fact("Sofia", "employer", "Gucci", said("Sofia consults for Gucci."))
        result = store.add_fact(
            "Sofia",
            "employer",
            "Prada",
            said("Sofia left Fiat; she now works at Prada."),
            valid_from="2022-01-01",
        )
    prada = result.fact.id
    assert row(store, "Sofia", "employer", "Prada") == ("current", "2022-01-01", None, None)
    # Every other current employer is superseded, not only the one the sentence names.
    assert row(store, "Sofia", "employer", "Fiat") == ("superseded", "2018", "2022-01-01", prada)
    assert row(store, "Sofia", "employer", "Gucci")[::2] == ("superseded", "2022-01-01")
    assert sorted(f.object for f in result.superseded) == ["Fiat", "Gucci"]
    assert [f.object for f in store.facts(FactFilter(subject="Sofia"))] == ["Prada"]
    # One undo puts the whole batch back.
    store.undo(batch_id=store.history(limit=1)[0].batch_id)
    assert store.count_facts(FactFilter(include_all=True)) == 0


def test_values_stated_in_the_same_change_sentence_all_stay(store):
    add(store, "Sofia", "employer", "Fiat", said("Sofia works at Fiat."))
    text = said("Sofia left Fiat and now works at Prada and Gucci.")
    for company in ("Fiat", "Prada", "Gucci"):
        add(store, "Sofia", "employer", company, text, valid_from="2022-01-01")
    current = [f.object for f in store.facts(FactFilter(subject="Sofia"))]
    assert current == ["Prada", "Gucci"]
    prada = store.fact_id_of("Sofia", "employer", "Prada")
    assert row(store, "Sofia", "employer", "Fiat")[::2] == ("superseded", "2022-01-01")
    assert row(store, "Sofia", "employer", "Fiat")[3] in (
        prada,
        store.fact_id_of("Sofia", "employer", "Gucci"),
    )


def test_without_a_cue_employers_stay_many_valued(store):
    add(store, "Sofia", "employer", "Fiat", said("Sofia works at Fiat."))
    add(store, "Sofia", "employer", "Prada", said("Sofia also works at Prada."))
    current = [f.object for f in store.facts(FactFilter(subject="Sofia"))]
    assert current == ["Fiat", "Prada"]


def test_a_cue_of_another_relation_changes_nothing(store):
    add(store, "Sofia", "employer", "Fiat", said("Sofia works at Fiat."))
    # "moved" is a residence cue, not an employer one.
    add(store, "Sofia", "employer", "Prada", said("Sofia moved to Milan for Prada."))
    assert [f.status for f in store.facts(FactFilter(subject="Sofia"))] == ["current", "current"]


def test_manual_facts_are_never_superseded_by_a_change(store):
    add(store, "Sofia", "employer", "Fiat")  # manual
    add(store, "Sofia", "employer", "Prada", said("Sofia now works at Prada."))
    assert row(store, "Sofia", "employer", "Fiat")[0] == "current"
    assert row(store, "Sofia", "employer", "Prada")[0] == "current"
    # A chat change does supersede a document fact.
    add(store, "Luca", "employer", "Pirelli", said("Luca works at Pirelli."))
    add(store, "Luca", "employer", "ETH", said("Luca joined ETH.", origin="chat"))
    assert row(store, "Luca", "employer", "Pirelli")[0] == "superseded"


@pytest.mark.parametrize("order", [("Naples", "Rome"), ("Rome", "Naples")])
def test_moved_from_a_to_b_keeps_a_in_the_past(store, order):
    sentence = said("Elena Russo moved from Naples to Rome.")
    with store.batch("ingest", "notes"):
        for place in order:  # the model may write either first
            store.add_fact("Elena Russo", "residence", place, sentence, valid_from="2022-01-01")
    rome = store.fact_id_of("Elena Russo", "residence", "Rome")
    assert row(store, "Elena Russo", "residence", "Rome") == ("current", "2022-01-01", None, None)
    assert row(store, "Elena Russo", "residence", "Naples") == (
        "superseded",
        None,  # it began at some unknown earlier time
        "2022-01-01",
        rome,
    )


@pytest.mark.parametrize(
    ("sentence", "written", "added"),
    [
        ("Our friend Elena Russo moved from Naples to Rome.", ["residence Rome"], ["Naples"]),
        ("Luca left Pirelli and joined ETH Zurich.", ["employer ETH Zurich"], ["Pirelli"]),
        ("Sofia left Fiat; she now works at Prada.", ["employer Prada"], ["Fiat"]),
        ("Elena moved from Naples to Rome.", ["residence Rome", "residence Naples"], []),
        ("Ola moved from the countryside to Leeds.", ["residence Leeds"], []),  # no name
        ("Kari flew from Oslo to Rome.", ["residence Rome"], []),  # no cue of a move
        ("She now works from home for Acme.", ["employer Acme"], []),
        ("Per moved from Oslo to Bergen.", ["employer Bergen"], []),  # not the cue's relation
    ],
)
def test_a_change_sentence_gives_the_value_it_left(sentence, written, added):
    """The model often writes only the new value; the sentence names the old one."""
    from memllm_cli.protocol import Triple
    from memllm_cli.store.changes import left_behind

    triples = [Triple("X", *w.split(" ", 1)) for w in written]
    assert [t.object for t in left_behind(sentence, triples)] == added


def test_a_session_stores_what_a_move_left_in_the_past(store):
    model = ScriptedModel(["({MEM_WRITE-->Elena Russo>>residence>>Rome})"])
    session = Session(store, model)
    sentence = "Our friend Elena Russo moved from Naples to Rome."
    triples = session.extract(sentence)
    assert [(t.subject, t.relation, t.object) for t in triples] == [
        ("Elena Russo", "residence", "Rome"),
        ("Elena Russo", "residence", "Naples"),
    ]
    with store.batch("ingest", "notes"):
        for t in triples:
            store.add_fact(t.subject, t.relation, t.object, said(sentence), valid_from="2022")
    assert row(store, "Elena Russo", "residence", "Naples")[0] == "superseded"
    assert row(store, "Elena Russo", "residence", "Rome")[0] == "current"


def test_moving_on_from_a_known_place_ends_it(store):
    add(store, "Sofia", "residence", "Milan", said("Sofia moved to Milan."), valid_from="2020")
    add(store, "Sofia", "employer", "Pirelli", said("Sofia works at Pirelli."), valid_from="2020")
    text = said("Sofia moved from Milan to Zurich and left Pirelli.")
    add(store, "Sofia", "residence", "Milan", text, valid_from="2024-01-01")
    add(store, "Sofia", "employer", "Pirelli", text, valid_from="2024-01-01")
    add(store, "Sofia", "residence", "Zurich", text, valid_from="2024-01-01")
    zurich = store.fact_id_of("Sofia", "residence", "Zurich")
    assert row(store, "Sofia", "residence", "Milan") == ("superseded", "2020", "2024-01-01", zurich)
    # Left with no successor named: ended, and no current employer remains.
    assert row(store, "Sofia", "employer", "Pirelli") == ("superseded", "2020", "2024-01-01", None)
    assert row(store, "Sofia", "residence", "Zurich")[0] == "current"


# -- questions about the past ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Where does Sofia live now?", None),
        ("Who employs Elena Russo?", None),
        ("Where did Sofia work before Prada?", When(before="Prada")),
        ("Where did Luca work before joining ETH Zurich?", When(before="ETH Zurich")),
        ("Where did Sofia live in 2021?", When(start="2021-01-01", end="2022-01-01")),
        ("Where did Sofia live before 2022?", When(start="2021-12-31", end="2022-01-01")),
        ("Where did Sofia previously work?", When()),
        ("Where did Luca use to live?", None),  # "use to" without "used": the present
        ("Where did Luca used to live?", When()),
    ],
)
def test_when_a_question_asks_about(question, expected):
    assert when_of(question) == expected


@pytest.fixture
def history(store):
    """Sofia: Turin (2018) -> Milan (2020) -> Zurich (2024); Fiat (2018) -> Prada (2022)."""
    steps = [
        ("residence", "Turin", "Sofia lives in Turin.", "2018-01-01"),
        ("employer", "Fiat", "Sofia works at Fiat.", "2018-01-01"),
        ("residence", "Milan", "Sofia moved to Milan.", "2020-01-01"),
        ("employer", "Prada", "Sofia left Fiat; she now works at Prada.", "2022-01-01"),
        ("residence", "Zurich", "Sofia moved from Milan to Zurich.", "2024-01-01"),
    ]
    for relation, obj, sentence, date in steps:
        add(store, "Sofia", relation, obj, said(sentence), valid_from=date)
    return store


def answers(store, relation, when=None):
    return [a.answer for a in read(store, ReadQuery(relation, subject="Sofia"), when=when)]


def test_reads_about_the_present_see_current_facts_only(history):
    assert answers(history, "residence") == ["Zurich"]
    assert answers(history, "employer") == ["Prada"]


def test_reads_about_a_year_see_the_facts_valid_then(history):
    def year(y):
        return when_of(f"Where did Sofia live in {y}?")

    assert answers(history, "residence", year(2021)) == ["Milan"]
    assert answers(history, "residence", year(2019)) == ["Turin"]
    assert answers(history, "residence", year(2020)) == ["Milan"]  # from its first day
    assert answers(history, "residence", year(2025)) == ["Zurich"]
    assert answers(history, "employer", year(2021)) == ["Fiat"]


def test_reads_before_x_see_what_x_replaced(history):
    assert answers(history, "employer", When(before="Prada")) == ["Fiat"]
    assert answers(history, "residence", When(before="Zurich")) == ["Milan"]
    assert answers(history, "residence", When(before="Milan")) == ["Turin"]
    # An unknown X: the past in general, the most recently ended first, then the present.
    assert answers(history, "residence", When(before="Oslo")) == ["Milan", "Turin", "Zurich"]
    assert answers(history, "residence", When()) == ["Milan", "Turin", "Zurich"]


def test_what_came_before_x_is_never_x(store):
    """notes-dev: "Tobias joined Halyard from Ocado" stored only Halyard Systems; "Where
    did Tobias Engel work before Halyard?" must not be answered with it."""
    add(store, "Tobias Engel", "employer", "Halyard Systems", said("Tobias joined Halyard."))
    add(store, "Tobias Engel", "residence", "Bristol", said("Tobias lives in Bristol."))
    query = ReadQuery("employer", subject="Tobias Engel")
    assert read(store, query, when=When(before="Halyard")) == []
    assert read(store, query, when=When(before="Halyard Systems")) == []
    where = ReadQuery("residence", subject="Tobias Engel")
    assert [a.answer for a in read(store, where, when=When(before="Halyard"))] == ["Bristol"]


def test_ask_reads_the_past_when_the_question_does(history):
    def ask(question):
        model = ScriptedModel(["({MEM_READ(", "MEM_READ(Sofia>>employer>>)-->", "x" + END])
        answer = Session(history, model, None).ask(question)
        return answer.reads[0].results, model.prompts[2]

    results, prompt = ask("Where did Sofia work before Prada?")
    assert [r["answer"] for r in results] == ["Fiat"] and prompt.endswith("-->Fiat})")
    results, prompt = ask("Who employs Sofia now?")
    assert [r["answer"] for r in results] == ["Prada"] and prompt.endswith("-->Prada})")
