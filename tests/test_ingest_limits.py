"""Ingest at its limits: sentences too long for the model, Ctrl-C, names across a document.

A sentence that does not fit is skipped with FILE:LINE and the run goes on; the first
Ctrl-C is heard (even while the model has stderr silenced) and stops after the
sentence, dropping the unfinished document; a second one stops at once.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from scripted_memllm import start, traced, wait_for

from memllm_cli.runtime import models
from memllm_cli.runtime.model import Generation, PromptTooLongError
from memllm_cli.runtime.scripted import ScriptedModel
from memllm_cli.store import FactFilter, Store

EMPTY = "({MEM_WRITE-->})"


class SmallContextModel(ScriptedModel):
    """A scripted model whose context holds ``limit`` characters of prompt, like llama.cpp's."""

    limit: int = 20_000

    def generate(self, prompt: str, **options: object) -> Generation:
        if len(prompt) > self.limit:
            raise PromptTooLongError(f"the prompt ({len(prompt) // 4} tokens) does not fit")
        return super().generate(prompt, **options)  # type: ignore[arg-type]


@pytest.fixture
def small_model(monkeypatch):
    outputs: list[str] = []
    monkeypatch.setattr(models, "load_model", lambda *a, **k: SmallContextModel(outputs))
    return outputs


def facts(home):
    with Store.open(home / "memory.db") as store:
        return [(f.subject, f.relation, f.object) for f in store.facts(FactFilter())]


def test_a_one_megabyte_line_is_skipped_with_its_file_and_the_run_goes_on(
    cli, small_model, tmp_path, memllm_home
):
    big, notes = tmp_path / "big.txt", tmp_path / "notes.md"
    big.write_text("Ola Nordmann lives in Bergen.\n\n" + "blob " * 200_000 + "\n")
    notes.write_text("Per Hansen works at Equinor.\n")
    small_model += [
        "({MEM_WRITE-->Ola Nordmann>>residence>>Bergen})",
        "({MEM_WRITE-->Per Hansen>>employer>>Equinor})",
    ]
    result = cli("ingest", str(big), str(notes), "--json")
    assert result.exit_code == 0, result.stderr
    assert f"warning: {big}:3: a sentence of 999999 characters is too long" in result.stderr
    documents = json.loads(result.stdout)["documents"]
    assert [d["status"] for d in documents] == ["ingested", "ingested"]
    assert documents[0]["warnings"] == [
        f"{big}:3: a sentence of 999999 characters is too long for the model; skipped"
    ]
    assert documents[0]["sentences"] == 2 and documents[1]["warnings"] == []
    assert facts(memllm_home) == [
        ("Ola Nordmann", "residence", "Bergen"),
        ("Per Hansen", "employer", "Equinor"),
    ]
    with Store.open(memllm_home / "memory.db") as store:  # the blob is no stored sentence
        assert [p.text for p in store.relevant_sentences("blob")] == []


def test_a_sentence_the_model_cannot_fit_is_skipped_and_the_next_one_read(
    cli, small_model, tmp_path, memllm_home
):
    SmallContextModel.limit = 3000
    try:
        notes = tmp_path / "notes.txt"
        notes.write_text(
            "Ola Nordmann lives in Bergen.\n\n"
            + " ".join(["word"] * 1000)
            + ".\n\nPer Hansen works at Equinor.\n"
        )
        small_model += [
            "({MEM_WRITE-->Ola Nordmann>>residence>>Bergen})",
            "({MEM_WRITE-->Per Hansen>>employer>>Equinor})",
        ]
        result = cli("ingest", str(notes))
    finally:
        SmallContextModel.limit = 20_000
    assert result.exit_code == 0, result.stderr
    assert f"warning: {notes}:3: the prompt (" in result.stderr
    assert "does not fit; sentence skipped" in result.stderr
    assert [f[2] for f in facts(memllm_home)] == ["Bergen", "Equinor"]


def test_a_name_an_earlier_sentence_wrote_stays_known_later_in_the_document(
    cli, scripted_model, tmp_path, memllm_home
):
    """Writes are stored with the whole document, but grounding sees the earlier ones."""
    outputs, _ = scripted_model
    filler = "It was a long and rainy autumn, " * 10 + "and nobody went out."
    notes = tmp_path / "notes.txt"
    notes.write_text(
        f"Tove Lindahl works at Umeå University.\n\n{filler}\n\nLindahl lives in Luleå.\n"
    )
    outputs += [
        "({MEM_WRITE-->Tove Lindahl>>employer>>Umeå University})",
        EMPTY,
        # "Tove Lindahl" is not in the third sentence or its context (the filler only):
        # it is grounded because the first sentence wrote it.
        "({MEM_WRITE-->Tove Lindahl>>residence>>Luleå})",
    ]
    result = cli("ingest", str(notes))
    assert result.exit_code == 0, result.stderr
    assert facts(memllm_home) == [
        ("Tove Lindahl", "employer", "Umeå University"),
        ("Tove Lindahl", "residence", "Luleå"),
    ]


def story(path, sentences: int) -> None:
    lines = [f"Person{i} Hansen works at Firm{i}." for i in range(sentences)]
    path.write_text("\n\n".join(lines) + "\n")


def test_first_ctrl_c_is_heard_and_stops_after_the_sentence(tmp_path, memllm_home):
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    first.write_text("Ola Nordmann lives in Bergen.\n")
    story(second, 200)
    trace = tmp_path / "trace"
    proc = start(memllm_home, "ingest", str(first), str(second), delay=0.1, trace=trace)
    wait_for(lambda: traced(trace) >= 4)  # into b.md, with the model's stderr silenced
    proc.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - signalled < 5  # not the 20 s b.md would take
    assert proc.returncode == 130, err
    assert "stopping after this sentence" in err
    assert f"{second}: interrupted" in err
    assert traced(trace) < 20
    assert facts(memllm_home) == [("Ola Nordmann", "residence", "Bergen")]


def test_second_ctrl_c_stops_at_once(tmp_path, memllm_home):
    notes = tmp_path / "notes.md"
    story(notes, 10)
    trace = tmp_path / "trace"
    proc = start(memllm_home, "ingest", str(notes), delay=3.0, trace=trace)
    wait_for(lambda: traced(trace) >= 1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - signalled < 2.5  # before the 3 s sentence ends
    assert proc.returncode == 130
    assert "stopping after this sentence" in err and "interrupted" in err
    assert "Traceback" not in err
    with Store.open(memllm_home / "memory.db") as store:
        assert store.count_facts() == 0
        assert store.integrity_check() == ["ok"]
