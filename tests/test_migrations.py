import hashlib

import pytest

from memllm_cli.errors import StoreError
from memllm_cli.store import Evidence, Store, db, migrations, seeds
from memllm_cli.store.schema_edit import widen_checks


def test_from_empty_file_reaches_latest(tmp_path):
    with Store.open(tmp_path / "m.db") as store:
        assert migrations.version(store.conn) == migrations.LATEST
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
        assert {"facts", "entities", "names", "relations", "provenance", "ops", "batches"} <= tables
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("start", [m.number for m in migrations.MIGRATIONS])
def test_from_every_earlier_version(tmp_path, start):
    """A file left at any earlier migration opens, keeps its facts, and reaches the latest."""
    path = tmp_path / "old.db"
    conn = db.connect(path)
    migrations.migrate(conn, target=start)
    conn.close()
    with Store.open(path) as store, store.batch("add", "add"):
        store.add_fact("A", "employer", "B")
    with Store.open(path) as store:
        assert migrations.version(store.conn) == migrations.LATEST
        assert [f.object for f in store.facts()] == ["B"]


def test_migrations_are_numbered_in_order():
    numbers = [m.number for m in migrations.MIGRATIONS]
    assert numbers == list(range(1, len(numbers) + 1))


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.db"
    Store.open(path).close()
    conn = db.connect(path)
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this memllm"):
        Store.open(path)


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a memllm database"):
        Store.open(path)
    assert path.read_text().startswith("these are my notes")


def test_missing_folder(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "nowhere" / "m.db")


def test_migration_3_keeps_cached_vectors(tmp_path):
    path = tmp_path / "v2.db"
    conn = db.connect(path)
    migrations.migrate(conn, target=2)
    conn.execute("INSERT INTO embeddings (text, vector) VALUES ('Oslo', x'0000803f')")
    conn.close()
    with Store.open(path) as store:
        rows = store.conn.execute("SELECT id, text, vector FROM embeddings").fetchall()
        assert rows == [(1, "Oslo", b"\x00\x00\x80\x3f")]


def test_migration_4_seeds_relation_aliases_from_empty(tmp_path):
    with Store.open(tmp_path / "m.db") as store:
        seed = seeds.seed_relation_aliases()
        wanted = sum(len(row["aliases"]) for row in seed["aliases"])
        rows = store.conn.execute(
            "SELECT r.pid, a.alias, a.origin FROM relation_aliases a "
            "JOIN relations r ON r.id = a.relation_id ORDER BY a.id"
        ).fetchall()
        expected = [
            (row["pid"], alias, "seed") for row in seed["aliases"] for alias in row["aliases"]
        ]
        assert len(rows) == wanted and rows == expected
        occupation = store.conn.execute(
            "SELECT label, pid, cardinality FROM relations WHERE pid = 'P106'"
        ).fetchall()
        assert occupation == [("occupation", "P106", "many")]


def test_migration_4_keeps_a_relation_labelled_like_an_alias(tmp_path):
    """A version-3 memory whose model wrote "lives in" and "occupation" as relations."""
    path = tmp_path / "v3.db"
    conn = db.connect(path)
    migrations.migrate(conn, target=3)
    conn.execute(
        "INSERT INTO relations (label, norm, created_at) VALUES "
        "('Lives in', 'lives in', '2024-01-01'), ('occupation', 'occupation', '2024-01-01')"
    )
    conn.close()
    with Store.open(path) as store, store.batch("add", "add"):
        lives_in = store.add_fact("Tove", "lives in", "Oslo").fact
        job = store.add_fact("Tove", "job", "geologist").fact
        home = store.add_fact("Tove", "home", "Bergen").fact
    with Store.open(path) as store:
        assert migrations.version(store.conn) == migrations.LATEST
        relations = {r.label: r for r in store.relations()}
        assert len(relations) == 98  # the 96 seeded, and the two written before
        assert "lives in" not in relations["residence"].aliases
        assert (lives_in.relation, job.relation, home.relation) == (
            "Lives in",
            "occupation",
            "residence",
        )
        assert relations["occupation"].pid == "P106" and "job" in relations["occupation"].aliases
        assert store.relation_ids("lives in") == [relations["Lives in"].id]


def test_migration_6_keeps_the_sentence_text_evidence_held_and_indexes_it(tmp_path):
    """Older segments get the text a fact's evidence kept for them; the index is whole."""
    path = tmp_path / "v5.db"
    conn = db.connect(path)
    migrations.migrate(conn, target=5)
    old = Store(conn, path)  # the components, over a file left at version 5
    uri, stated, silent = "/notes.md", "Ola lives in Leeds.", "He likes rain."
    with old.batch("ingest", "ingest notes.md") as batch:
        # What begin_document did at version 5 (today's also clears a table made later).
        source = old.documents.source("document", uri, "f" * 64)
        conn.execute(
            "UPDATE sources SET ingested_at = '2025-01-01T00:00:00', ingest_batch = ? WHERE id = ?",
            (batch, source),
        )
        evidence = Evidence("document", "document", uri, "f" * 64, stated, 1, 1)
        old.add_fact("Ola", "residence", "Leeds", evidence)
        for position, sentence in enumerate([stated, silent]):  # both on line 1
            digest = hashlib.sha256(sentence.encode()).hexdigest()
            conn.execute(
                "INSERT INTO segments (source_id, position, sentence_sha256, line_start, "
                "line_end) VALUES (?, ?, ?, 1, 1)",
                (source, position, digest),
            )
    conn.close()
    with Store.open(path) as store:
        rows = store.conn.execute("SELECT position, text FROM segments ORDER BY position")
        assert rows.fetchall() == [(0, stated), (1, None)]
        (found,) = store.relevant_sentences("Where does Ola live?")
        assert (found.text, found.cite) == (stated, f"{uri}:1")
        check = "INSERT INTO segments_fts(segments_fts, rank) VALUES ('integrity-check', 1)"
        store.conn.execute(check)
        store.undo()  # deletes the version's segments: the index stays whole
        store.conn.execute(check)
        assert store.relevant_sentences("Ola Leeds") == []


MCP_EVIDENCE = Evidence("mcp", "mcp", "mcp:Claude", "c" * 64, "Ola moved to Bergen.")


def test_migration_8_admits_mcp_into_a_memory_of_the_previous_release(tmp_path):
    """A version-6 memory (the previous release) keeps its rows, and from then on takes facts
    and notes over MCP."""
    path = tmp_path / "v6.db"
    conn = db.connect(path)
    migrations.migrate(conn, target=6)
    old = Store(conn, path)  # the components, over a file left at version 6
    chat = Evidence("chat", "chat", "chat:1", "d" * 64, "Ola works at Acme.")
    with old.batch("chat", "chat: Ola works at Acme."):
        kept = old.add_fact("Ola", "employer", "Acme", chat).fact
    with pytest.raises(StoreError, match="CHECK constraint failed"), old.batch("mcp", "mcp"):
        old.add_fact("Ola", "residence", "Bergen", MCP_EVIDENCE)
    conn.close()
    with Store.open(path) as store:
        assert store.integrity_check() == ["ok"]
        assert store.fact(kept.id) == kept
        assert store.evidence(kept.id)[0].uri == "chat:1"
        with store.batch("mcp", "mcp Claude: add"):
            added = store.add_fact("Ola", "residence", "Bergen", MCP_EVIDENCE).fact
        assert (added.origin, store.evidence(added.id)[0].uri) == ("mcp", "mcp:Claude")
        assert store.integrity_check() == ["ok"]
    with Store.open(path) as again:  # a new connection reads the widened schema too
        assert again.fact(added.id).origin == "mcp"


@pytest.mark.parametrize(
    ("table", "row"),
    [
        (
            "facts",
            "(subject_id, relation_id, object_id, origin, created_at) VALUES (1, 1, 1, ?, '')",
        ),
        ("provenance", "(fact_id, batch_id, origin, created_at) VALUES (1, 1, ?, '')"),
        ("sources", "(kind, uri, sha256, created_at) VALUES (?, 'u', 's', '')"),
    ],
)
def test_migration_8_still_refuses_other_origins(tmp_path, table, row):
    with Store.open(tmp_path / "m.db") as store:
        store.conn.execute("PRAGMA foreign_keys = OFF")
        with pytest.raises(db.IntegrityError, match="CHECK"):
            store.conn.execute(f"INSERT INTO {table} {row}", ("rumour",))
        store.conn.execute(f"INSERT INTO {table} {row}", ("mcp",))


def test_widen_checks_refuses_a_schema_without_the_check(tmp_path):
    conn = db.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE t (x INTEGER CHECK (x IN (1)))")
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(RuntimeError, match="lacks the CHECK x IN \\(2\\)"):
        widen_checks(conn, {"t": ("x IN (2)", "x IN (2, 3)")})
    conn.execute("ROLLBACK")
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 't'").fetchone()[0]
    assert sql == "CREATE TABLE t (x INTEGER CHECK (x IN (1)))"
    with pytest.raises(db.DatabaseError):  # writable_schema is off again
        conn.execute("UPDATE sqlite_master SET sql = 'x' WHERE name = 't'")
