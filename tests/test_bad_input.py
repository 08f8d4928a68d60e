"""Bad input through the CLI: one line on stderr, a non-zero exit, and the memory untouched.

Every case runs against a copy of one memory holding 200 imported facts (with
history), and compares a digest of every table before and after. A case that
prints a traceback, or the one line meant for bugs ("unexpected ..."), fails.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memllm_cli.cli import app
from memllm_cli.store import Store

HUGE = "99999999999999999999"  # past SQLite's int64
RELATIONS = ("employer", "residence", "educated at", "sibling")


def _jsonl(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _fact(**extra: object) -> dict:
    return {"subject": "Nina Lund", "relation": "employer", "object": "Aker", **extra}


FILES: dict[str, str | bytes] = {
    "big-cell.csv": "subject,relation,object\nA,employer," + "x" * 200_000 + "\n",
    "valid-from-number.jsonl": _jsonl(_fact(valid_from=12345)),
    "deep.jsonl": '{"subject": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
    "nul-name.jsonl": _jsonl(_fact(subject="Nina\u0000Lund")),
    "escape-name.jsonl": _jsonl(_fact(object="\u001b[31mred")),
    "bad-created-at.jsonl": _jsonl(_fact(status="current", created_at="yesterday")),
    "bad-valid-to.jsonl": _jsonl(_fact(status="superseded", valid_to="2024-02-30")),
    "self-superseding.jsonl": _jsonl(
        _fact(status="superseded", superseded_by={**_fact(), "subject": " nina  LUND"})
    ),
    "missing-successor.jsonl": _jsonl(
        _fact(status="superseded", superseded_by={**_fact(), "object": "Nowhere"})
    ),
    "bad-utf8-line.jsonl": _jsonl(_fact()).encode() + b'{"subject": "\xff\xfe"}\n',
    "binary.jsonl": b"\xff\xfe\x00binary\x89PNG",
    "blank.jsonl": "\n  \n\n",
    "empty.csv": "",
    "array.jsonl": "[1, 2]\n",
    "subject-number.jsonl": _jsonl(_fact(subject=5)),
    "empty-object.jsonl": _jsonl(_fact(object="   ")),
    "evidence-not-list.jsonl": _jsonl(_fact(evidence={"sentence": "x"})),
    "evidence-huge-line.jsonl": _jsonl(_fact(evidence=[{"line_start": int(HUGE)}])),
    "evidence-bool-line.jsonl": _jsonl(_fact(evidence=[{"line_start": True}])),
    "evidence-unknown.jsonl": _jsonl(_fact(evidence=[{"page": 3}])),
    "evidence-sentence-object.jsonl": _jsonl(_fact(evidence=[{"sentence": {"a": 1}}])),
    "evidence-origin.jsonl": _jsonl(_fact(evidence=[{"origin": "rumour"}])),
    "unknown-field.jsonl": _jsonl(_fact(confidence=0.9)),
    "bad-status.jsonl": _jsonl(_fact(status="maybe")),
    "bad-origin.jsonl": _jsonl(_fact(status="current", origin="rumour")),
    "many-digits.jsonl": '{"subject": "A", "relation": "b", "object": ' + "9" * 5000 + "}\n",
    "second-line-bad.jsonl": _jsonl(_fact(), {"subject": "A"}),
    "no-header.csv": "name,relation,object\nA,employer,B\n",
    "extra-cells.csv": "subject,relation,object\nA,employer,B,C\n",
    "bad-json-cell.csv": "subject,relation,object,evidence\nA,employer,B,[{\n",
    "long-name.jsonl": _jsonl(_fact(subject="N" * 1001)),
    "not-a-db.db": "these are my notes, not a memory\n",
    "zero.db": "",
    "note.md": "Nina Lund works at Aker.\n",
}

# (id, arguments, stdin, exit code, a fragment the error line must hold)
CASES = [
    ("show huge id", ["facts", "show", HUGE], None, 2, "not in the range"),
    ("rm huge id", ["facts", "rm", HUGE], None, 2, "not in the range"),
    ("rm a good and a huge id", ["facts", "rm", "1", HUGE], None, 2, "not in the range"),
    ("edit huge id", ["facts", "edit", HUGE, "--object", "x"], None, 2, "not in the range"),
    ("undo huge op", ["undo", HUGE], None, 2, "not in the range"),
    ("undo huge batch", ["undo", "--batch", HUGE], None, 2, "not in the range"),
    ("history huge fact", ["history", "--fact", HUGE], None, 2, "not in the range"),
    ("history huge batch", ["history", "--batch", HUGE], None, 2, "not in the range"),
    ("history huge -n", ["history", "-n", HUGE], None, 2, "not in the range"),
    ("history negative -n", ["history", "-n", "-1"], None, 2, "not in the range"),
    ("list huge -n", ["facts", "list", "-n", HUGE], None, 2, "not in the range"),
    ("list negative -n", ["facts", "list", "-n", "-3"], None, 2, "not in the range"),
    ("search huge -n", ["facts", "search", "x", "-n", HUGE], None, 2, "not in the range"),
    ("search zero -n", ["facts", "search", "x", "-n", "0"], None, 2, "not in the range"),
    ("show id 0", ["facts", "show", "0"], None, 2, "not in the range"),
    ("show negative id", ["facts", "show", "-5"], None, 2, "No such option"),
    ("show word id", ["facts", "show", "abc"], None, 2, "'abc'"),
    ("show missing id", ["facts", "show", "999999"], None, 1, "no fact with id 999999"),
    ("rm a good and a missing id", ["facts", "rm", "1", "999999"], None, 1, "no fact"),
    ("edit missing id", ["facts", "edit", "999999", "--object", "x"], None, 1, "no fact"),
    ("edit nothing", ["facts", "edit", "1"], None, 2, "give at least one"),
    ("edit to empty", ["facts", "edit", "1", "--object", " "], None, 1, "is empty"),
    ("undo missing op", ["undo", "999999"], None, 1, ""),
    ("undo missing batch", ["undo", "--batch", "999999"], None, 1, ""),
    ("undo op and batch", ["undo", "3", "--batch", "1"], None, 2, "not both"),
    ("add empty subject", ["facts", "add", "", "employer", "x"], None, 1, "subject is empty"),
    ("add blank relation", ["facts", "add", "a", "  ", "x"], None, 1, "relation is empty"),
    ("add escape in name", ["facts", "add", "a\x1b[2J", "employer", "x"], None, 1, "U+001B"),
    ("add long name", ["facts", "add", "N" * 1001, "employer", "x"], None, 1, "too long"),
    (
        "add bad date",
        ["facts", "add", "a", "residence", "b", "--valid-from", "soon"],
        None,
        1,
        "not a date",
    ),
    (
        "add impossible date",
        ["facts", "add", "a", "residence", "b", "--valid-from", "2024-13-45"],
        None,
        1,
        "not a date",
    ),
    ("list bad as-of", ["facts", "list", "--as-of", "yesterday"], None, 1, "not a date"),
    ("list bad origin", ["facts", "list", "--origin", "rumour"], None, 1, "origin is one of"),
    ("list two formats", ["facts", "list", "--json", "--csv"], None, 2, "choose one"),
    ("query without separators", ["facts", "query", "no separators"], None, 1, ""),
    ("query without names", ["facts", "query", ">>>>"], None, 1, ""),
    ("alias unknown entity", ["facts", "alias", "Nobody Here", "NH"], None, 1, "no entity"),
    ("merge unknown entity", ["facts", "merge", "Nobody Here", "Person 1"], None, 1, "no entity"),
    (
        "relation bad cardinality",
        ["relations", "set", "employer", "--cardinality", "three"],
        None,
        1,
        "cardinality",
    ),
    ("unknown command", ["remember"], None, 2, "No such command"),
    ("unknown option", ["facts", "list", "--colour"], None, 2, "No such option"),
    ("import 200 KB cell", ["facts", "import", "{big-cell.csv}"], None, 1, "too long"),
    (
        "import numeric valid_from",
        ["facts", "import", "{valid-from-number.jsonl}"],
        None,
        1,
        "'valid_from'",
    ),
    (
        "import JSON nested 100k deep",
        ["facts", "import", "{deep.jsonl}"],
        None,
        1,
        "nested too deeply",
    ),
    ("import NUL in a name", ["facts", "import", "{nul-name.jsonl}"], None, 1, "U+0000"),
    ("import escape in a name", ["facts", "import", "{escape-name.jsonl}"], None, 1, "U+001B"),
    (
        "import bad created_at",
        ["facts", "import", "{bad-created-at.jsonl}"],
        None,
        1,
        "'created_at'",
    ),
    (
        "import impossible valid_to",
        ["facts", "import", "{bad-valid-to.jsonl}"],
        None,
        1,
        "'valid_to'",
    ),
    (
        "import self-superseding",
        ["facts", "import", "{self-superseding.jsonl}"],
        None,
        1,
        "by itself",
    ),
    (
        "import missing successor",
        ["facts", "import", "{missing-successor.jsonl}"],
        None,
        1,
        "not in the memory",
    ),
    (
        "import bad UTF-8 line",
        ["facts", "import", "{bad-utf8-line.jsonl}"],
        None,
        1,
        "line 2: not UTF-8",
    ),
    ("import binary", ["facts", "import", "{binary.jsonl}"], None, 1, "not UTF-8"),
    ("import empty stdin", ["facts", "import", "-"], "", 1, "stdin is empty"),
    ("import blank stdin", ["facts", "import", "-"], "\n\n", 1, "stdin is empty"),
    ("import blank file", ["facts", "import", "{blank.jsonl}"], None, 1, "is empty"),
    ("import empty CSV", ["facts", "import", "{empty.csv}"], None, 1, "is empty"),
    ("import JSON array", ["facts", "import", "{array.jsonl}"], None, 1, "not a JSON object"),
    ("import subject number", ["facts", "import", "{subject-number.jsonl}"], None, 1, "'subject'"),
    ("import blank object", ["facts", "import", "{empty-object.jsonl}"], None, 1, "'object'"),
    (
        "import evidence object",
        ["facts", "import", "{evidence-not-list.jsonl}"],
        None,
        1,
        "'evidence'",
    ),
    (
        "import evidence huge line",
        ["facts", "import", "{evidence-huge-line.jsonl}"],
        None,
        1,
        "line_start",
    ),
    (
        "import evidence bool line",
        ["facts", "import", "{evidence-bool-line.jsonl}"],
        None,
        1,
        "line_start",
    ),
    (
        "import evidence unknown key",
        ["facts", "import", "{evidence-unknown.jsonl}"],
        None,
        1,
        "page",
    ),
    (
        "import evidence sentence object",
        ["facts", "import", "{evidence-sentence-object.jsonl}"],
        None,
        1,
        "sentence",
    ),
    (
        "import evidence bad origin",
        ["facts", "import", "{evidence-origin.jsonl}"],
        None,
        1,
        "origin",
    ),
    ("import unknown field", ["facts", "import", "{unknown-field.jsonl}"], None, 1, "confidence"),
    ("import bad status", ["facts", "import", "{bad-status.jsonl}"], None, 1, "status"),
    ("import bad origin", ["facts", "import", "{bad-origin.jsonl}"], None, 1, "origin"),
    (
        "import 5000-digit number",
        ["facts", "import", "{many-digits.jsonl}"],
        None,
        1,
        "not valid JSON",
    ),
    ("import second line bad", ["facts", "import", "{second-line-bad.jsonl}"], None, 1, "line 2"),
    ("import CSV without header", ["facts", "import", "{no-header.csv}"], None, 1, "header lacks"),
    ("import CSV extra cells", ["facts", "import", "{extra-cells.csv}"], None, 1, "more cells"),
    ("import CSV bad JSON cell", ["facts", "import", "{bad-json-cell.csv}"], None, 1, "evidence"),
    ("import long name", ["facts", "import", "{long-name.jsonl}"], None, 1, "too long"),
    (
        "import bad format",
        ["facts", "import", "{note.md}", "--format", "xml"],
        None,
        1,
        "unknown format",
    ),
    ("import missing file", ["facts", "import", "{dir}/none.jsonl"], None, 1, "cannot read"),
    ("import a folder", ["facts", "import", "{dir}"], None, 1, "cannot read"),
    ("import markdown as CSV", ["facts", "import", "{note.md}"], None, 1, "header lacks"),
    ("apply bad line", ["apply", "{second-line-bad.jsonl}"], None, 1, "line 2"),
    ("apply empty stdin", ["apply", "-"], "", 1, "stdin is empty"),
    ("export into a folder", ["facts", "export", "-o", "{dir}"], None, 2, "is a folder"),
    (
        "export to a missing folder",
        ["facts", "export", "-o", "{dir}/no/x.jsonl"],
        None,
        1,
        "No such file",
    ),
    ("ask with a non-URL", ["ask", "x", "--model-url", "notaurl"], None, 1, "http:// or https://"),
    ("ask with a file URL", ["ask", "x", "--model-url", "file:///etc/passwd"], None, 1, "http://"),
    (
        "ingest with an ftp URL",
        ["ingest", "{note.md}", "--model-url", "ftp://h/x"],
        None,
        1,
        "http://",
    ),
    ("ask with zero tokens", ["ask", "x", "--max-tokens", "0"], None, 2, "not in the range"),
    ("db is a folder", ["--db", "{dir}", "facts", "list"], None, 1, "it is a folder"),
    ("db folder missing", ["--db", "{dir}/no/m.db", "facts", "list"], None, 1, "does not exist"),
    (
        "db is a text file",
        ["--db", "{not-a-db.db}", "facts", "list"],
        None,
        1,
        "not a memllm database",
    ),
    (
        "db is an empty file",
        ["--db", "{zero.db}", "facts", "add", "a", "b", "c"],
        None,
        1,
        "is empty",
    ),
]
SKIP_BAD = [
    # --skip-bad: the good lines go in, each bad one is reported (nothing aborts)
    ("{bad-utf8-line.jsonl}", 1, "skipped line 2: not UTF-8 text"),
    ("{second-line-bad.jsonl}", 1, "skipped line 2: 'relation' must be a non-empty string"),
    ("{deep.jsonl}", 0, "skipped line 1: JSON nested too deeply"),
    ("{big-cell.csv}", 0, "skipped line 2: object is too long"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(folder of bad input files, a memory with 200 imported facts and some history)."""
    folder = tmp_path_factory.mktemp("corpus")
    for name, content in FILES.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    seed = folder / "seed.jsonl"
    seed.write_text(
        _jsonl(
            *(
                {
                    "subject": f"Person {i}",
                    "relation": RELATIONS[i % len(RELATIONS)],
                    "object": f"Thing {i % 23}",
                }
                for i in range(200)
            )
        )
    )
    memory = tmp_path_factory.mktemp("seed") / "memory.db"
    runner = CliRunner()
    for args in (
        ["facts", "import", str(seed)],
        ["facts", "edit", "2", "--object", "Thing 99"],
        ["facts", "rm", "3"],
    ):
        assert runner.invoke(app, ["--db", str(memory), *args]).exit_code == 0
    return folder, memory


def digest(path: Path) -> str:
    """Every row of every table, hashed: any change to the memory changes it."""
    hasher = hashlib.sha256()
    with Store.open(path) as store:
        tables = store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'"
            " ORDER BY name"
        ).fetchall()
        for (table,) in tables:
            rows = sorted(
                repr(tuple(row)) for row in store.conn.execute(f'SELECT * FROM "{table}"')
            )
            hasher.update(f"{table}:{len(rows)}:{''.join(rows)}".encode())
    return hasher.hexdigest()


def _fill(args: list[str], folder: Path) -> list[str]:
    """``{name}`` becomes the path of that corpus file, ``{dir}`` the corpus folder."""
    filled = []
    for arg in args:
        for name in FILES:
            arg = arg.replace("{" + name + "}", str(folder / name))
        filled.append(arg.replace("{dir}", str(folder)))
    return filled


@pytest.fixture
def run(corpus, tmp_path, monkeypatch):
    """Run one case on a fresh copy of the seeded memory; returns (result, before, after)."""
    folder, seed = corpus
    monkeypatch.delenv("MEMLLM_DEBUG")  # the user's view: a bug would print "unexpected ..."
    memory = tmp_path / "memory.db"
    shutil.copy(seed, memory)
    monkeypatch.setenv("MEMLLM_HOME", str(tmp_path))
    before = digest(memory)

    def invoke(args: list[str], stdin: str | None = None):
        result = CliRunner().invoke(app, _fill(args, folder), input=stdin)
        return result, before, digest(memory)

    return invoke


@pytest.mark.parametrize(
    ("args", "stdin", "code", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_and_changes_nothing(run, args, stdin, code, fragment):
    result, before, after = run(args, stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "unexpected" not in result.stderr, result.stderr
    assert fragment in result.stderr
    assert result.stdout == ""
    assert after == before


@pytest.mark.parametrize(("path", "imported", "line"), SKIP_BAD)
def test_skip_bad_reports_each_bad_line_and_goes_on(run, path, imported, line):
    result, before, after = run(["facts", "import", path, "--skip-bad"])
    assert result.exit_code == 0, result.stderr
    assert line in result.stderr
    assert f"imported {imported} facts from " in result.stderr
    assert (after != before) == (imported > 0)


def test_an_unexpected_error_is_one_line_with_a_hint(run, monkeypatch):
    from memllm_cli.store import Store as StoreClass

    def broken(self, fact_id):
        raise ValueError("planted bug")

    monkeypatch.setattr(StoreClass, "detail", broken)
    result, before, after = run(["facts", "show", "1"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: unexpected ValueError: planted bug (a bug in memllm; "
        "MEMLLM_DEBUG=1 shows the traceback)\n"
    )
    monkeypatch.setenv("MEMLLM_DEBUG", "1")
    with pytest.raises(ValueError, match="planted bug"):
        CliRunner().invoke(app, ["facts", "show", "1"], catch_exceptions=False)


def _damage_facts_table(memory: Path) -> None:
    """Overwrite the facts table's root page: SQLite reads garbage there."""
    with Store.open(memory) as store:
        root = store.conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'facts'"
        ).fetchone()[0]
        page_size = store.conn.execute("PRAGMA page_size").fetchone()[0]
    with memory.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xa5" * page_size)


@pytest.mark.parametrize(
    "args",
    [["facts", "list"], ["facts", "export"], ["facts", "show", "5"], ["history", "--fact", "5"]],
)
def test_a_damaged_memory_is_one_line_naming_doctor(corpus, tmp_path, monkeypatch, args):
    monkeypatch.delenv("MEMLLM_DEBUG")
    memory = tmp_path / "memory.db"
    shutil.copy(corpus[1], memory)
    _damage_facts_table(memory)
    result = CliRunner().invoke(app, ["--db", str(memory), *args])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: the memory cannot be read or written: ")
    assert "memllm doctor" in result.stderr


def test_doctor_reports_damage_as_findings(corpus, tmp_path):
    memory = tmp_path / "memory.db"
    shutil.copy(corpus[1], memory)
    _damage_facts_table(memory)
    result = CliRunner().invoke(app, ["--db", str(memory), "doctor", "--jsonl"])
    assert result.exit_code == 1
    findings = {f["check"]: f for f in map(json.loads, result.stdout.splitlines())}
    assert findings["integrity"]["level"] == "error" and findings["integrity"]["count"] > 0
    assert len(findings) == 9  # the memory's eight checks and the model's
    assert all(f["level"] in ("ok", "info", "warning", "error") for f in findings.values())
    assert "Traceback" not in result.output
