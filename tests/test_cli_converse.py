"""``memllm ask`` and ``memllm chat`` through the CLI, on a scripted model."""

import json

import pytest

END = "<|im_end|>"


@pytest.fixture
def script(scripted_model):
    return scripted_model[0]


@pytest.fixture
def seeded(cli):
    cli("facts", "add", "Ingrid Solberg", "residence", "Trondheim")
    return cli


def test_ask_json(seeded, script):
    script += ["({", "MEM_READ(Ingrid Solberg>>residence>>)-->", "Trondheim." + END]
    result = seeded("ask", "Where does Ingrid Solberg live?", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["answer"] == "Trondheim."
    assert data["facts_used"] == [1]
    assert data["reads"][0]["results"][0]["answer"] == "Trondheim"
    assert set(data["timings"]) >= {"model_load", "generation", "read"}


def test_ask_streams_answer_and_cites_facts(seeded, script):
    script += ["She lives in ({", "MEM_READ(Ingrid Solberg>>residence>>)-->", "Trondheim." + END]
    result = seeded("ask", "Where does Ingrid Solberg live?", "--show-memory")
    assert result.stdout == "She lives in Trondheim.\n"
    assert "[memory read] ({MEM_READ(Ingrid Solberg>>residence>>)-->" in result.stderr
    assert "fact 1: Ingrid Solberg >> residence >> Trondheim" in result.stderr


def test_ask_from_stdin(seeded, script):
    script += ["No idea." + END]
    result = seeded("ask", "--no-memory", input="Who am I?\n")
    assert result.exit_code == 0 and result.stdout == "No idea.\n"


def test_ask_empty_question(seeded, script):
    result = seeded("ask", "   ")
    assert result.exit_code == 1 and result.stderr == "error: the question is empty\n"


def test_chat_writes_reads_and_slash_commands(seeded, script):
    script += [
        "({MEM_WRITE-->I>>employer>>NIVA})",  # write pass for the statement, which is not read
        "({",
        "MEM_READ(me>>employer>>)-->",  # "me" reads what was stored under the user's name
        "NIVA." + END,
        "({",
        "MEM_READ(Ingrid Solberg>>residence>>)-->",
        "Trondheim." + END,
    ]
    lines = [
        "I work at NIVA.",
        "Where do I work?",
        "Where does Ingrid Solberg live?",
        "/facts",
        "/undo",
        "/facts 1",
        "/forget 1",
        "/forget x",
        "/memory off",
        "/nonsense",
        "/help",
    ]
    result = seeded("chat", "--me", "Ola", input="\n".join(lines) + "\n")
    assert result.exit_code == 0
    out = result.stdout
    assert "memllm› Noted: Ola >> employer >> NIVA (2).\n" in out
    assert "NIVA." in out and "Trondheim." in out
    assert "⟨result⟩ ({MEM_READ(me>>employer>>)-->NIVA})\n  facts: 2\n" in result.stderr
    assert "2: Ola >> employer >> NIVA" in out
    assert "undo batch 2: 1 change(s) reverted" in out
    assert "forgot fact 1" in out and "/forget needs a number" in out
    assert "memory off" in out and "unknown command /nonsense" in out and "/undo" in out
    assert "⟨write⟩ 2: Ola >> employer >> NIVA" in result.stderr
    assert "⟨read⟩" in result.stderr


def test_chat_does_not_restore_what_the_user_removed(seeded, script):
    assert seeded("facts", "rm", "1").exit_code == 0
    script += ["({MEM_WRITE-->Ingrid Solberg>>residence>>Trondheim})"]
    result = seeded("chat", "--show-memory", input="Ingrid Solberg lives in Trondheim.\n")
    assert result.exit_code == 0
    assert (
        "memllm› not stored, as you corrected it before: "
        "Ingrid Solberg >> residence >> Trondheim (1).\n"
    ) in result.stdout
    assert "⟨overruled⟩ 1: Ingrid Solberg >> residence >> Trondheim" in result.stderr
    assert seeded("facts", "list", "--json").stdout.strip() == "[]"
