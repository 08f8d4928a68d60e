"""The MCP tools' core (memllm_cli.mcp_server.tools), without the SDK: pages, writes, undo."""

from __future__ import annotations

import pytest

from memllm_cli.errors import InvalidInputError, NotFoundError
from memllm_cli.mcp_server.address import listen_address
from memllm_cli.mcp_server.tools import MemoryTools, client_name
from memllm_cli.runtime.scripted import ScriptedModel
from memllm_cli.store import Evidence, FactFilter

CLIENT = "Test Client"


@pytest.fixture
def loads():
    """(outputs, models): every model ``remember`` loads plays ``outputs``."""
    return [], []


@pytest.fixture
def tools(store, embedder, loads):
    outputs, models = loads

    def load():
        models.append(ScriptedModel(outputs))
        return models[-1]

    made = MemoryTools(store, embedder, load, me="Ingrid Solberg")
    yield made
    made.close()


def test_add_query_show_undo(tools, store):
    added = tools.add_fact(CLIENT, "Ingrid Solberg", "residence", "Bergen", note="She moved.")
    fact = added.written[0].fact
    assert (fact.origin, fact.status, added.written[0].action) == ("mcp", "current", "added")
    assert added.summary == (
        f"added fact {fact.id}: Ingrid Solberg >> residence >> Bergen "
        f"(undo: batch {added.batch_id})"
    )
    page = tools.query("Ingrid Solberg>>residence>>")
    assert [(a.answer, a.fact_id) for a in page.answers] == [("Bergen", fact.id)]
    shown = tools.show(fact.id)
    (evidence,) = shown.evidence
    assert (evidence.origin, evidence.source_kind, evidence.uri, evidence.sentence) == (
        "mcp",
        "mcp",
        "mcp:Test Client",
        "She moved.",
    )
    assert [op.op for op in shown.operations] == ["add"]
    (op,) = store.history(batch_id=added.batch_id)
    assert op.batch == "mcp Test Client: add Ingrid Solberg >> residence >> Bergen"
    undone = tools.undo()
    assert (undone.undone_ops, undone.description) == (1, f"undo batch {added.batch_id}")
    assert tools.query("Ingrid Solberg>>residence>>").total == 0
    assert store.count_facts(FactFilter(include_all=True)) == 0


def test_undo_takes_mcp_batches_only(tools, store):
    with store.batch("add", "facts add") as user_batch:
        store.add_fact("Ola", "employer", "Equinor")
    with pytest.raises(NotFoundError, match="nothing to undo made by mcp"):
        tools.undo()
    with pytest.raises(InvalidInputError, match=f"memllm undo --batch {user_batch}"):
        tools.undo(user_batch)
    first = tools.add_fact(CLIENT, "Ola", "residence", "Oslo")
    second = tools.add_fact(CLIENT, "Ola", "child", "Kari")
    with store.batch("add", "facts add"):
        store.add_fact("Ola", "sibling", "Per")
    assert tools.undo().description == f"undo batch {second.batch_id}"
    assert tools.undo().description == f"undo batch {first.batch_id}"
    assert sorted(f.relation for f in store.facts()) == ["employer", "sibling"]


def test_edit_fact_supersedes_and_undoes(tools, store):
    old = tools.add_fact(CLIENT, "Ola", "employer", "Equinor").written[0].fact
    edited = tools.edit_fact(CLIENT, old.id, obj="Statkraft")
    new = edited.written[0].fact
    assert (new.object, new.origin, new.status) == ("Statkraft", "mcp", "current")
    before = store.fact(old.id)
    assert (before.status, before.superseded_by) == ("superseded", new.id)
    assert store.evidence(new.id)[0].sentence == f"edited from fact {old.id}"
    tools.undo(edited.batch_id)
    assert store.fact(old.id).status == "current"
    with pytest.raises(NotFoundError):
        store.fact(new.id)


def test_a_manual_fact_is_the_users_alone(tools, store):
    with store.batch("add", "facts add"):
        manual = store.add_fact("Ola", "residence", "Oslo").fact
    with pytest.raises(InvalidInputError, match="entered by hand"):
        tools.edit_fact(CLIENT, manual.id, obj="Bergen")
    assert [f.object for f in store.facts()] == ["Oslo"]
    # A one-valued relation: the client's value is kept, superseded by the user's.
    change = tools.add_fact(CLIENT, "Ola", "residence", "Bergen")
    written = change.written[0].fact
    assert (written.status, written.superseded_by) == ("superseded", manual.id)
    assert "the user's own fact wins" in change.summary
    assert store.fact(manual.id).status == "current"
    # A fact the user deleted stays deleted: nothing changes, no batch to undo.
    with store.batch("rm", "facts rm"):
        store.remove_fact(manual.id)
    again = tools.add_fact(CLIENT, "Ola", "residence", "Oslo")
    assert (again.batch_id, again.written[0].action) == (None, "overruled")
    assert store.fact(manual.id).status == "deleted"


def test_forget_and_undo(tools, store):
    ids = [tools.add_fact(CLIENT, "Ola", "child", k).written[0].fact.id for k in ("Kari", "Per")]
    forgot = tools.forget(CLIENT, ids)
    assert [f.status for f in forgot.removed] == ["deleted", "deleted"]
    assert store.history(batch_id=forgot.batch_id)[0].batch == (
        f"mcp Test Client: forget {ids[0]} {ids[1]}"
    )
    tools.undo(forgot.batch_id)
    assert [store.fact(i).status for i in ids] == ["current", "current"]
    with pytest.raises(NotFoundError):
        tools.forget(CLIENT, [ids[0], 999])
    assert store.fact(ids[0]).status == "current"  # the whole batch rolled back


def test_recent_pages_cover_every_fact_once(tools):
    ids = [tools.add_fact(CLIENT, f"P{i}", "employer", "Acme").written[0].fact.id for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        page = tools.recent(3, cursor)
        seen += [f.id for f in page.facts]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids[::-1]
    assert pages == 3
    assert [f.subject for f in tools.recent(10, subject="P2").facts] == ["P2"]
    assert tools.recent(2, origin="manual").facts == []


def test_query_and_search_pages(tools):
    children = [f"Child{i:02d}" for i in range(12)]
    for child in children:
        tools.add_fact(CLIENT, "Ola Nordmann", "child", child)
    answers, offset = [], 0
    while offset is not None:
        page = tools.query("Ola Nordmann>>child>>", limit=5, offset=offset)
        assert page.total == 12
        answers += [a.answer for a in page.answers]
        offset = page.next_offset
    assert sorted(answers) == children
    hits, offset = [], 0
    while offset is not None:
        found = tools.search("Nordmann", limit=5, offset=offset, keyword_only=True)
        hits += [h.fact.object for h in found.hits]
        offset = found.next_offset
    assert sorted(hits) == children
    with pytest.raises(InvalidInputError, match="limit is between 1 and 50"):
        tools.query("Ola Nordmann>>child>>", limit=51)
    with pytest.raises(InvalidInputError, match="words to search"):
        tools.search("  ")


def test_show_cuts_its_lists_and_counts_them(tools):
    for n in range(4):
        change = tools.add_fact(CLIENT, "Ola", "employer", "Acme", note=f"Said {n}.")
    shown = tools.show(change.written[0].fact.id, limit=3)
    assert (len(shown.evidence), shown.evidence_total) == (3, 4)
    assert [e.sentence for e in shown.evidence] == ["Said 0.", "Said 1.", "Said 2."]
    assert (len(shown.operations), shown.operations_total) == (3, 4)


def test_remember_loads_the_model_on_first_use_only(tools, store, loads):
    outputs, models = loads
    tools.add_fact(CLIENT, "Ola", "employer", "Acme")
    tools.query("Ola>>employer>>")
    assert models == []
    outputs += [
        "({MEM_WRITE-->Ingrid Solberg>>employer>>NIVA})",
        "({MEM_WRITE-->})",
    ]
    change = tools.remember(CLIENT, "Ingrid Solberg works at NIVA.")
    fact = change.written[0].fact
    assert (fact.label, fact.origin) == ("Ingrid Solberg >> employer >> NIVA", "mcp")
    (evidence,) = store.evidence(fact.id)
    assert (evidence.uri, evidence.extractor, evidence.sentence) == (
        "mcp:Test Client",
        "scripted",
        "Ingrid Solberg works at NIVA.",
    )
    assert store.history(limit=1)[0].batch_id == change.batch_id
    nothing = tools.remember(CLIENT, "What a day.")
    assert (nothing.batch_id, nothing.written) == (None, [])
    assert len(models) == 1
    assert tools.undo().description == f"undo batch {change.batch_id}"
    assert store.count_facts(FactFilter(relation="employer", object="NIVA")) == 0
    with pytest.raises(InvalidInputError, match="at most 2000 characters"):
        tools.remember(CLIENT, "word " * 500)


def test_stats_and_relations(tools, store):
    tools.add_fact(CLIENT, "Ola", "residence", "Oslo")
    with store.batch("ingest", "ingest notes.md"):
        store.add_fact(
            "Ola",
            "employer",
            "Acme",
            Evidence(origin="document", source_kind="document", uri="/n.md", sha256="ab" * 32),
        )
        store.begin_document("/n.md", "ab" * 32)
    with store.batch("rm", "rm"):
        store.remove_fact(store.fact_id_of("Ola", "employer", "Acme"))
    stats = tools.stats()
    assert stats.facts == {"current": 1, "superseded": 0, "retracted": 0, "deleted": 1}
    assert stats.origins == {"document": 0, "chat": 0, "manual": 0, "mcp": 1}
    assert (stats.entities, stats.relations_used, stats.documents) == (3, 1, 1)
    latest, before = store.history(limit=2)  # the rm batch's op, the ingest's
    assert before.created_at < stats.last_change <= latest.created_at
    relations = tools.relations()
    assert (relations[0].label, relations[0].facts) == ("residence", 1)
    assert {r.label for r in relations} == {r.label for r in store.relations()}


def test_client_names_are_one_short_line():
    assert client_name("Claude\nDesktop\x00 " + "x" * 200) == "Claude Desktop " + "x" * 65
    assert client_name(None) == client_name("  ") == "unknown client"


@pytest.mark.parametrize(
    ("text", "remote", "token", "error"),
    [
        ("127.0.0.1:8765", False, None, None),
        ("[::1]:0", False, None, None),
        ("localhost:80", False, "t", None),
        ("0.0.0.0:8765", False, "t", "not a loopback address"),
        ("0.0.0.0:8765", True, None, "needs a bearer token"),
        ("192.168.1.5:8765", True, "t", None),
        ("8765", False, None, "HOST:PORT"),
        ("127.0.0.1:99999", False, None, "HOST:PORT"),
        ("127.0.0.1:", False, None, "HOST:PORT"),
    ],
)
def test_listen_address(text, remote, token, error):
    if error is None:
        address = listen_address(text, allow_remote=remote, token=token)
        assert address.url().endswith(f":{address.port}/mcp")
    else:
        with pytest.raises(InvalidInputError, match=error):
            listen_address(text, allow_remote=remote, token=token)


def test_cli_refuses_a_remote_address_before_serving(cli):
    result = cli("mcp", "--http", "0.0.0.0:8765")
    assert result.exit_code == 1
    assert "not a loopback address" in result.stderr and result.stdout == ""
    result = cli("mcp", "--http", "0.0.0.0:8765", "--allow-remote")
    assert result.exit_code == 1
    assert "needs a bearer token" in result.stderr


def test_cli_without_the_mcp_extra_says_how_to_install_it(cli, monkeypatch):
    import memllm_cli.mcp_server as package

    monkeypatch.setattr(package, "find_spec", lambda name: None)
    result = cli("mcp")
    assert result.exit_code == 1
    assert "error: memllm mcp needs the MCP SDK: pip install 'memllm[mcp]'" in result.stderr
