"""Shell conventions: completion of ids, labels and settings; chat line editing and history."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from memllm_cli.cli import app, lineedit
from memllm_cli.cli.converse import SLASH_COMMANDS
from memllm_cli.cli.lineedit import LineReader


def complete(*words: str, shell: str = "bash") -> list[str]:
    """What ``memllm WORDS<TAB>`` offers (the last word is the one being completed)."""
    line = " ".join(["memllm", *words])
    env = {"_MEMLLM_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        env |= {"COMP_WORDS": line, "COMP_CWORD": str(len(words))}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": line}
    result = CliRunner().invoke(app, [], env=env, prog_name="memllm")
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line]


@pytest.fixture
def twelve_facts(cli) -> None:
    for n in range(1, 13):
        assert cli("facts", "add", f"Person {n}", "residence", f"Town {n}").exit_code == 0
    cli("facts", "rm", "11")


def test_fact_ids_complete_newest_first_by_prefix(twelve_facts):
    assert complete("facts", "show", "1") == ["12", "11", "10", "1"]
    assert complete("facts", "rm", "2", "") == [str(n) for n in range(12, 0, -1)]
    assert complete("facts", "edit", "7") == ["7"]
    assert complete("facts", "show", "x") == []
    assert complete("history", "--fact", "12") == ["12"]


def test_zsh_shows_each_fact_beside_its_id(twelve_facts):
    offered = "\n".join(complete("facts", "show", "11", shell="zsh"))
    assert '"11":"Person 11 >> residence >> Town 11 (deleted)"' in offered


def test_relation_labels_complete_from_the_memory(cli, twelve_facts):
    assert complete("facts", "list", "-r", "resi") == ["residence"]
    assert complete("facts", "list", "--relation", "date") == ["date of birth", "date of death"]
    offered = "\n".join(complete("facts", "add", "X", "'date of d'", shell="zsh"))
    assert '"date of death"' in offered and "birth" not in offered
    assert complete("relations", "set", "zzz") == []
    cli("relations", "set", "favourite tea")
    assert complete("relations", "alias", "drinks", "fav") == ["favourite tea"]


def test_completion_never_creates_a_memory(memllm_home, tmp_path):
    assert complete("facts", "show", "") == []
    assert complete("--db", str(tmp_path / "none.db"), "facts", "list", "-r", "res") == []
    assert not (memllm_home / "memory.db").exists() and not (tmp_path / "none.db").exists()


def test_completion_follows_db_and_profile(cli, tmp_path):
    other = tmp_path / "other.db"
    cli("--db", str(other), "facts", "add", "A", "employer", "B")
    cli("config", "set", "--profile", "o", "db", str(other))
    assert complete("--db", str(other), "facts", "show", "") == ["1"]
    assert complete("--profile", "o", "facts", "show", "") == ["1"]
    assert complete("facts", "show", "") == []  # the default memory is empty
    assert complete("--profile", "") == ["o"]


def test_settings_keys_complete(cli):
    assert complete("config", "get", "model") == ["model", "model_url", "model_name"]


def test_completion_scripts_are_offered(cli):
    result = CliRunner().invoke(app, ["--help"], prog_name="memllm")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


# -- chat line editing -------------------------------------------------------------------------


@pytest.fixture
def readline_module():
    readline = pytest.importorskip("readline")
    yield readline
    readline.clear_history()


def reader(history: Path, editing: bool = True) -> LineReader:
    return LineReader(Console(file=io.StringIO()), history, SLASH_COMMANDS, editing=editing)


def test_history_is_private_bounded_and_skips_lines_typed_with_a_space(
    readline_module, tmp_path, monkeypatch
):
    history = tmp_path / "home" / "chat_history"
    monkeypatch.setattr(lineedit, "HISTORY_LENGTH", 3)
    typed = ["first", "second", " my secret", "third", "", "fourth"]
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{line}\n" for line in typed)))
    lines = reader(history)
    assert lines.editing
    assert [lines.read() for _ in typed] == typed
    lines.close()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    assert stat.S_IMODE(history.parent.stat().st_mode) == 0o700
    saved = history.read_text()
    assert "secret" not in saved and "first" not in saved
    assert all(word in saved for word in ("second", "third", "fourth"))
    again = reader(history)  # a new chat recalls them, oldest first
    count = readline_module.get_current_history_length()
    assert [readline_module.get_history_item(i) for i in range(1, count + 1)] == [
        "second",
        "third",
        "fourth",
    ]
    again.close()


def test_tab_completes_slash_commands(readline_module, tmp_path):
    lines = reader(tmp_path / "h")
    assert [lines._complete("/f", n) for n in range(3)] == ["/facts", "/forget", None]
    assert lines._complete("fa", 0) is None


def test_without_readline_or_a_terminal_lines_are_read_plainly(tmp_path, monkeypatch):
    monkeypatch.setattr(lineedit, "_readline", lambda: None)
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n"))
    lines = reader(tmp_path / "h")
    assert not lines.editing and lines.read() == "hello"
    lines.close()
    assert not (tmp_path / "h").exists()


def test_chat_from_a_pipe_keeps_no_history(cli, scripted_model, memllm_home):
    outputs, _ = scripted_model
    outputs.extend(["({MEM_WRITE-->})", "Hello."])
    result = cli("chat", input="Hello there.\n/quit\n")
    assert result.exit_code == 0, result.stderr
    assert not (memllm_home / lineedit.HISTORY_FILE).exists()
    assert os.environ["MEMLLM_HOME"] == str(memllm_home)


def test_id_prefixes_are_ranges_newest_first_within_the_limit(store):
    with store.batch("add", "25 facts"):
        for n in range(1, 26):
            store.add_fact(f"P{n}", "residence", f"T{n}")
    assert [f.id for f in store.facts_with_id_prefix("2", 3)] == [25, 24, 23]
    assert [f.id for f in store.facts_with_id_prefix("2", 50)] == [25, 24, 23, 22, 21, 20, 2]
    assert [f.id for f in store.facts_with_id_prefix("", 2)] == [25, 24]
    assert store.facts_with_id_prefix("0", 5) == store.facts_with_id_prefix("٣", 5) == []
    assert store.facts_with_id_prefix("26", 5) == []
