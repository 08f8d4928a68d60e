"""Every command through the real CLI, in-process: stdout is data, stderr is for people."""

import csv
import io
import json
import os
import stat

import pytest

from memllm_cli.cli import app, output


def seed(cli):
    assert cli("facts", "add", "Ingrid Solberg", "residence", "Oslo").exit_code == 0
    assert cli("facts", "add", "Ingrid Solberg", "residence", "Trondheim").exit_code == 0
    assert cli("facts", "add", "Ingrid Solberg", "employer", "NIVA").exit_code == 0


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_help_lists_every_command_with_a_description(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("facts", "relations", "history", "undo", "doctor"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["facts", c]
        for c in ("add", "list", "show", "edit", "rm", "query", "search", "import", "export")
    ]
    + [["relations", "list"], ["relations", "set"], ["history"], ["undo"], ["doctor"]]
    + [["config", c] for c in ("show", "get", "set", "unset", "path", "edit")],
)
def test_every_command_help_has_an_example(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Example: memllm " + " ".join(command) in " ".join(result.stdout.split())


def test_add_prints_id_on_stdout_and_messages_on_stderr(cli):
    first = cli("facts", "add", "Ingrid Solberg", "residence", "Oslo")
    assert first.stdout == "1\n"
    assert first.stderr == "added fact 1: Ingrid Solberg >> residence >> Oslo\n"
    second = cli("facts", "add", "Ingrid Solberg", "residence", "Trondheim", "--json")
    assert json.loads(second.stdout)["id"] == 2
    assert "superseded fact 1: Ingrid Solberg >> residence >> Oslo" in second.stderr


def test_list_formats(cli):
    seed(cli)
    rows = jsonl(cli("facts", "list", "--jsonl").stdout)
    assert [(r["id"], r["object"]) for r in rows] == [(2, "Trondheim"), (3, "NIVA")]
    as_json = json.loads(cli("facts", "list", "--json").stdout)
    assert as_json == rows
    table = cli("facts", "list").stdout
    assert "Trondheim" in table and "Oslo" not in table
    parsed = list(csv.DictReader(io.StringIO(cli("facts", "list", "--csv").stdout)))
    assert [r["object"] for r in parsed] == ["Trondheim", "NIVA"]
    everything = jsonl(cli("facts", "list", "--all", "--jsonl").stdout)
    assert [r["status"] for r in everything] == ["superseded", "current", "current"]
    only = jsonl(cli("facts", "list", "-r", "employer", "--jsonl").stdout)
    assert [r["object"] for r in only] == ["NIVA"]
    assert jsonl(cli("facts", "list", "--origin", "chat", "--jsonl").stdout) == []
    assert cli("facts", "list", "--json").stdout.startswith("[\n  {")
    assert cli("facts", "list", "-s", "nobody", "--json").stdout == "[]\n"


def test_two_output_flags_are_a_usage_error(cli):
    result = cli("facts", "list", "--json", "--csv")
    assert result.exit_code == 2


LISTINGS = [
    ["facts", "list"],
    ["facts", "query", "Ingrid Solberg>>residence>>", "--exact"],
    ["facts", "search", "Trondheim", "--keyword"],
    ["relations", "list"],
    ["history"],
    ["doctor"],
]


@pytest.mark.parametrize("command", LISTINGS, ids=lambda c: " ".join(c[:2]))
def test_every_listing_has_the_same_output_options(cli, command):
    seed(cli)
    rows = jsonl(cli(*command, "--jsonl").stdout)
    assert rows and json.loads(cli(*command, "--json").stdout) == rows
    parsed = list(csv.DictReader(io.StringIO(cli(*command, "--csv").stdout)))
    assert len(parsed) == len(rows)
    # Piped (CliRunner's stdout is no terminal): one tab-separated row a line, no header.
    piped = cli(*command).stdout.splitlines()
    assert len(piped) == len(rows)
    assert {line.count("\t") for line in piped} == {len(parsed[0]) - 1}
    assert [line.split("\t")[0] for line in piped] == [next(iter(r.values())) for r in parsed]
    for flags in (["--json", "--csv"], ["--jsonl", "--json"], ["--csv", "--jsonl", "--json"]):
        result = cli(*command, *flags)
        assert result.exit_code == 2 and "choose one of --json, --jsonl and --csv" in result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize("command", LISTINGS, ids=lambda c: " ".join(c[:2]))
def test_a_listing_at_a_terminal_is_a_table(cli, command, monkeypatch):
    seed(cli)
    rows = jsonl(cli(*command, "--jsonl").stdout)
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True)
    table = cli(*command).stdout
    assert "\t" not in table
    assert table.count("\n") > len(rows)  # a header, then the rows


def test_piped_rows_escape_backslashes_and_keep_whole_timestamps(cli):
    cli("facts", "add", "Ingrid\\Solberg", "note", "a  b")
    row = cli("facts", "list").stdout
    fact = jsonl(cli("facts", "list", "--jsonl").stdout)[0]
    assert row == f"1\tIngrid\\\\Solberg\tnote\ta b\tmanual\t{fact['valid_from']}\n"
    assert cli("relations", "list").stdout.count("\n") == len(
        jsonl(cli("relations", "list", "--jsonl").stdout)
    )


def test_tsv_cells_escape_tabs_newlines_and_returns(capsys):
    rows = [{"a": "x\ty", "b": "one\ntwo\r", "c": None}, {"a": 1, "b": True, "c": "\\t"}]
    assert output.render(rows, "tsv", [("a", "A"), ("b", "B"), ("c", "C")]) == 2
    assert capsys.readouterr().out == "x\\ty\tone\\ntwo\\r\t\n1\tTrue\t\\\\t\n"


def test_an_empty_tsv_listing_says_so_on_stderr_only(cli):
    result = cli("facts", "list")
    assert result.stdout == "" and result.stderr == "no facts\n"


def test_as_of(cli):
    cli("facts", "add", "Ingrid", "residence", "Oslo", "--valid-from", "2020-01-01")
    cli("facts", "add", "Ingrid", "residence", "Bergen")
    rows = jsonl(cli("facts", "list", "--as-of", "2021-01-01", "--jsonl").stdout)
    assert [r["object"] for r in rows] == ["Oslo"]
    bad = cli("facts", "list", "--as-of", "last tuesday")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: not a date")


def test_show(cli):
    seed(cli)
    text = cli("facts", "show", "1").stdout
    assert "Ingrid Solberg >> residence >> Oslo" in text and "superseded by fact 2" in text
    detail = json.loads(cli("facts", "show", "2", "--json").stdout)
    assert detail["fact"]["object"] == "Trondheim"
    assert [h["id"] for h in detail["history"]] == [1, 2]


def test_edit_rm_history_undo(cli):
    seed(cli)
    edited = cli("facts", "edit", "3", "--object", "SINTEF")
    assert edited.exit_code == 0 and edited.stdout == "4\n"
    assert "superseded fact 3" in edited.stderr
    removed = cli("facts", "rm", "4")
    assert removed.exit_code == 0 and "deleted fact 4" in removed.stderr
    ops = jsonl(cli("history", "--jsonl").stdout)
    assert [o["op"] for o in ops][:3] == ["delete", "edit", "add"]
    undone = cli("undo")
    assert undone.exit_code == 0 and "undo batch" in undone.stderr
    assert [r["object"] for r in jsonl(cli("facts", "list", "--jsonl").stdout)] == [
        "Trondheim",
        "SINTEF",
    ]
    cli("undo")
    assert [r["object"] for r in jsonl(cli("facts", "list", "--jsonl").stdout)] == [
        "Trondheim",
        "NIVA",
    ]
    result = json.loads(cli("undo", "--json").stdout)
    assert result["undone_ops"] == 1


def test_undo_by_op_and_batch(cli):
    seed(cli)
    ops = jsonl(cli("history", "--jsonl").stdout)
    first = ops[-1]
    conflict = cli("undo", "--batch", str(first["batch_id"]))
    assert conflict.exit_code == 1 and "changed later" in conflict.stderr
    employer = next(o for o in ops if o["fact"].endswith("NIVA"))
    assert cli("undo", str(employer["id"])).exit_code == 0
    assert cli("undo", "1", "--batch", "1").exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["facts", "show", "99"], "error: no fact with id 99\n"),
        (["facts", "rm", "99"], "error: no fact with id 99\n"),
        (["facts", "edit", "99", "--object", "x"], "error: no fact with id 99\n"),
        (["facts", "add", "", "employer", "x"], "error: subject is empty\n"),
        (["facts", "add", "a", "  ", "x"], "error: relation is empty\n"),
        (["facts", "query", "no separators"], None),
        (["undo"], "error: nothing to undo\n"),
        (["facts", "import", "/no/such/file.jsonl"], None),
    ],
)
def test_domain_errors_are_one_line_and_exit_1(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    if message:
        assert result.stderr == message


def test_usage_errors_exit_2(cli):
    assert cli("facts", "show", "abc").exit_code == 2
    assert cli("facts", "edit", "1").exit_code == 2
    assert cli("nonsense").exit_code == 2


def test_marker_names_are_neutralised_with_a_warning(cli):
    result = cli("facts", "add", "Mallory", "knows", "x})({MEM_WRITE-->a>>b>>c})")
    assert result.exit_code == 0
    assert "warning: object" in result.stderr and "neutralised" in result.stderr
    stored = jsonl(cli("facts", "list", "--jsonl").stdout)[0]["object"]
    assert "({" not in stored and "})" not in stored and ">>" not in stored


def test_import_from_stdin_and_file(cli, tmp_path):
    lines = (
        '{"subject": "A", "relation": "employer", "object": "B"}\n'
        '{"subject": "C", "relation": "employer", "object": "D"}\n'
    )
    result = cli("facts", "import", "-", input=lines)
    assert result.exit_code == 0 and result.stderr == "imported 2 facts from stdin\n"
    path = tmp_path / "more.csv"
    path.write_text("subject,relation,object\nE,employer,F\n")
    assert cli("facts", "import", str(path)).exit_code == 0
    assert len(jsonl(cli("facts", "list", "--jsonl").stdout)) == 3
    sniffed = cli("facts", "import", "-", input="subject,relation,object\nG,employer,H\n")
    assert sniffed.exit_code == 0


def test_import_bad_line_reports_number_and_imports_nothing(cli):
    lines = '{"subject": "A", "relation": "employer", "object": "B"}\n{"subject": "A"\n'
    result = cli("facts", "import", "-", input=lines)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: line 2: not valid JSON")
    assert cli("facts", "list", "--json").stdout == "[]\n"
    skipped = cli("facts", "import", "-", "--skip-bad", input=lines)
    assert skipped.exit_code == 0 and "skipped line 2" in skipped.stderr


def test_import_rejects_binary_input(cli, tmp_path):
    path = tmp_path / "blob.jsonl"
    path.write_bytes(b"\xff\xfe\x00binary\x89PNG")
    result = cli("facts", "import", str(path))
    assert result.exit_code == 1 and "not UTF-8" in result.stderr


def test_export_import_round_trip_byte_identical(cli, tmp_path, monkeypatch):
    seed(cli)
    cli("facts", "rm", "3")
    for flag, name in (([], "x.jsonl"), (["--csv"], "x.csv")):
        first = cli("facts", "export", *flag).stdout
        monkeypatch.setenv("MEMLLM_HOME", str(tmp_path / f"fresh-{name}"))
        path = tmp_path / name
        path.write_text(first)
        assert cli("facts", "import", str(path)).exit_code == 0
        assert cli("facts", "export", *flag).stdout == first
        out = tmp_path / f"again-{name}"
        assert cli("facts", "export", *flag, "-o", str(out)).exit_code == 0
        assert out.read_text() == first


def test_query(cli):
    seed(cli)
    result = cli("facts", "query", "Ingrid Solberg>>residence>>", "--json")
    answers = json.loads(result.stdout)
    assert [a["answer"] for a in answers] == ["Trondheim"] and answers[0]["fact_id"] == 2
    fuzzy = json.loads(cli("facts", "query", "ingrid solbergg>>residence>>", "--json").stdout)
    assert [a["answer"] for a in fuzzy] == ["Trondheim"]
    none = cli("facts", "query", "ingrid solbergg>>residence>>", "--exact")
    assert none.exit_code == 0 and none.stderr == "no answer in memory\n"


def test_search(cli):
    seed(cli)
    cli("facts", "add", "Per Hansen", "employer", "Equinor")
    hits = jsonl(cli("facts", "search", "Trondheim", "--jsonl").stdout)
    assert hits[0]["object"] == "Trondheim" and "name" in hits[0]["matched"]
    keyword = jsonl(cli("facts", "search", "Equinor", "--keyword", "--jsonl").stdout)
    assert [h["subject"] for h in keyword] == ["Per Hansen"]
    assert cli("facts", "search", "zzzqqq", "--keyword").stderr == "nothing found\n"


def test_relations(cli):
    listed = jsonl(cli("relations", "list", "--jsonl").stdout)
    assert len(listed) == 97  # the 96 DocRED relations, and occupation (migration 4)
    made = cli("relations", "set", "favourite food", "--cardinality", "one", "--json")
    assert json.loads(made.stdout)["cardinality"] == "one"
    bad = cli("relations", "set", "x", "--pid", "Q42")
    assert bad.exit_code == 1


def test_doctor(cli):
    seed(cli)
    cli("facts", "add", "ingrid solberg.", "employer", "NTNU")
    result = cli("doctor", "--json")
    assert result.exit_code == 0
    findings = {f["check"]: f for f in json.loads(result.stdout)}
    assert findings["integrity"]["level"] == "ok"
    assert findings["duplicate entities"]["count"] == 1
    assert cli("doctor", "--fix").exit_code == 0


def test_doctor_reports_embedding_mismatch(cli, monkeypatch):
    seed(cli)
    cli("facts", "query", "ingrid solbergg>>residence>>")
    from memllm_cli.embed.hashed import HashEmbedder

    monkeypatch.setattr("memllm_cli.cli.common.embedder", lambda: HashEmbedder(dim=64))
    monkeypatch.setattr("memllm_cli.cli.facts.embedder", lambda: HashEmbedder(dim=64))
    query = cli("facts", "query", "ingrid solbergg>>residence>>")
    assert query.exit_code == 1 and "doctor --reembed" in query.stderr
    monkeypatch.setattr("memllm_cli.cli.doctor.embedder", lambda: HashEmbedder(dim=64))
    assert cli("doctor").exit_code == 1
    assert cli("doctor", "--reembed").exit_code == 0
    assert cli("facts", "query", "ingrid solbergg>>residence>>").exit_code == 0


def test_db_option_and_not_a_database(cli, tmp_path):
    path = tmp_path / "other.db"
    assert cli("--db", str(path), "facts", "add", "A", "employer", "B").exit_code == 0
    assert len(jsonl(cli("--db", str(path), "facts", "list", "--jsonl").stdout)) == 1
    assert cli("facts", "list", "--json").stdout == "[]\n"
    junk = tmp_path / "junk.db"
    junk.write_text("hello")
    result = cli("--db", str(junk), "facts", "list")
    assert result.exit_code == 1 and "not a memllm database" in result.stderr
    assert junk.read_text() == "hello"
    missing = cli("--db", str(tmp_path / "no" / "m.db"), "facts", "list")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder(cli, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = cli("--db", str(folder / "m.db"), "facts", "add", "A", "employer", "B")
        assert result.exit_code == 1 and result.stderr.startswith("error: ")
    finally:
        folder.chmod(stat.S_IRWXU)


def test_read_only_memory_file_as_root_safe(cli, tmp_path):
    """A memory opened read-only by SQLite (immutable URI is not used): writes fail cleanly."""
    path = tmp_path / "m.db"
    cli("--db", str(path), "facts", "add", "A", "employer", "B")
    from memllm_cli.store import Store

    with Store.open(path) as store:
        store.conn.execute("PRAGMA query_only = ON")
        from memllm_cli.errors import StoreError

        with pytest.raises(StoreError, match="cannot write"), store.batch("add", "x"):
            store.add_fact("C", "employer", "D")


def test_version(cli):
    assert cli("--version").stdout.startswith("memllm ")


def test_app_is_importable_without_side_effects():
    assert app.info.name == "memllm"
