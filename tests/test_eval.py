"""The evaluation harness on a tiny Re-DocRED-format split and a model that plays by rules."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from memllm_cli.datasets.relations import label_for
from memllm_cli.eval import perplexity, qa, write
from memllm_cli.eval.common import PRF, System, contains_answer, scratch_store
from memllm_cli.eval.harness import generated_notes, recorded_path, summary
from memllm_cli.protocol import Triple, format_write
from memllm_cli.runtime.model import Generation
from memllm_cli.runtime.model import stream as _stream


def labels(pid: str) -> str:
    return label_for(pid, None)  # the store's labels cover P19 and P108


@dataclass
class RuleModel:
    """A deterministic model: ``rule(prompt)`` gives the whole output; stops apply as usual."""

    rule: Callable[[str], str]
    name: str = "rules"
    prompted: bool = False

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        on_text=None,
    ) -> Generation:
        text, stopped_by, ended = _stream([self.rule(prompt)], stop, on_text)
        return Generation(text, stopped_by, "end" if ended else "stop", len(prompt) // 4, 5)


def test_mentions_are_spelt_as_the_text_spells_them(doc):
    assert doc.sentences[0] == "Ola Nordmann (born 1960 in Tromsø) is a geologist."
    assert [m.name for m in doc.entities[0]] == ["Ola Nordmann", "Nordmann"]


def test_score_counts_any_mention_of_a_gold_entity(doc):
    gold = write.gold_of(doc, labels)
    predicted = [
        Triple("nordmann", "place of birth", "Tromsø"),  # an alias, other case: right
        Triple("Ola Nordmann", "place of birth", "Tromsø"),  # the same fact again: not counted
        Triple("Ola Nordmann", "residence", "Tromsø"),  # wrong relation
    ]
    counts = write.score(predicted, gold)
    assert (counts.tp, counts.fp, counts.fn) == (1, 1, 1)
    assert PRF(1, 1, 1).to_dict()["f1"] == 0.5


def test_a_capitalised_mention_matches_with_or_without_the():
    """As in the store: "Sacramento Bee" names the mention "The Sacramento Bee"."""
    gold = write.Gold.of(
        frozenset({(0, "country", 1), (2, "occupation", 3)}),
        {"The Sacramento Bee": {0}, "United States": {1}, "Ana": {2}, "The Economist": {3}},
    )
    predicted = [
        Triple("Sacramento Bee", "country", "the United States"),
        Triple("Ana", "occupation", "economist"),  # a job is not the paper The Economist
    ]
    counts = write.score(predicted, gold)
    assert (counts.tp, counts.fp, counts.fn) == (1, 1, 1)


def test_write_evaluation_runs_each_sentence_with_its_context(doc):
    prompts: list[str] = []

    def rule(prompt: str) -> str:
        prompts.append(prompt)
        if "Tromsø)" in prompt.split("({USER_ST})")[1]:
            return format_write([Triple("Ola Nordmann", "place of birth", "Tromsø")])
        return "({MEM_WRITE-->broken"

    result = write.evaluate_documents(System("rules", RuleModel(rule)), [doc], labels)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 0, 1)
    assert result["parse_failures"] == 2
    assert result["sentences"] == 3
    # the second sentence sees the first as context, as `memllm ingest` gives it
    assert "geologist. ({USER_ST})Nordmann works" in prompts[1]


def oracle_reader(prompt: str) -> str:
    """Reads (subject>>relation>>) from the question, then repeats the memory's answer."""
    results = re.findall(r"-->([^}]*)\}\)$", prompt)
    if results:
        return " " + results[0].split(";")[0] + ".<|im_end|>"
    if prompt.endswith("({"):
        who = re.search(r"Where was (.+) born\?", prompt)
        return f"MEM_READ({who.group(1) if who else 'x'}>>place of birth>>)-->"
    if "Notes:" in prompt:
        return prompt.split("Notes:\n- ")[1].split("\n")[0] + "<|im_end|>"
    if prompt.endswith("assistant\n"):
        return "({"
    return "I do not know.<|im_end|>"


def test_memory_qa_reads_the_memory_and_scores_containment():
    ada = Triple("Ada Dahl", "place of birth", "Porto")
    bo = Triple("Bo Falk", "place of birth", "Lyon")
    items = [
        qa.QAItem("Where was Ada Dahl born?", ("Porto",), ada),
        qa.QAItem("Where was Bo Falk born?", ("Leeds",), bo),  # the memory says Lyon
    ]
    system = System("oracle", RuleModel(oracle_reader))
    with scratch_store() as store:
        qa.load_facts(store, items)
        result = qa.evaluate_memory(system, store, None, items)
    assert (result["right"], result["total"], result["parse_failures"]) == (1, 2, 0)
    assert result["examples"][0]["reads"] == ["Ada Dahl>>place of birth>>"]


def test_rag_baseline_puts_retrieved_passages_in_the_prompt(embedder):
    items = [
        qa.QAItem(
            "Where was Ada Dahl born?", ("Porto",), Triple("Ada Dahl", "place of birth", "Porto")
        )
    ]
    passages = qa.fact_passages(items) + ["Equinor is in Stavanger."]
    result = qa.evaluate_rag(
        System("oracle", RuleModel(oracle_reader)), embedder, passages, items, k=1
    )
    assert result["accuracy"] == 1.0
    assert result["examples"][0]["passages"] == ["The place of birth of Ada Dahl is Porto."]


def test_edits_follow_the_correction_and_leave_others_alone():
    items = [
        qa.QAItem(f"Where was P{i} born?", (city,), Triple(f"P{i}", "place of birth", city))
        for i, city in enumerate(["Porto", "Leeds", "Lyon", "Graz"])
    ]
    with scratch_store() as store:
        qa.load_facts(store, items)
        result = qa.evaluate_edits(
            System("oracle", RuleModel(oracle_reader)), store, None, items, count=2, seed=1
        )
    assert result["edits"] == 2
    assert result["reliability"]["accuracy"] == 1.0
    assert result["locality"]["accuracy"] == 1.0


def test_perplexity_targets_follow_their_subject(doc):
    targets = perplexity.targets(doc, labels, 5)
    assert [(t.mention, t.query.format()) for t in targets] == [
        ("Tromsø", "Ola Nordmann>>place of birth>>"),
        ("Equinor", "Ola Nordmann>>employer>>"),
    ]
    assert targets[0].prefix == "Ola Nordmann (born 1960 in"


def test_generated_notes_ask_only_what_has_one_answer(tmp_path):
    path, items = generated_notes(tmp_path, seed=3, count=60)
    text = path.read_text()
    assert text.startswith("# Notes")
    assert items
    for item in items:
        assert len(item.answers) == 1
        assert item.answers[0] in text


def test_contains_answer_folds_case_and_spacing():
    assert contains_answer("She was born in  porto.", ["Porto"])
    assert not contains_answer("She was born in Lyon.", ["Porto", ""])


def test_summary_has_a_row_per_headline():
    result = {
        "f1": 0.5,
        "precision": 0.6,
        "recall": 0.4,
        "parse_failures": 0,
        "seconds_per_item": 0.1,
    }
    report = {"results": {"write": {"adapter": result}}}
    rows = summary(report)
    assert [r["metric"] for r in rows] == ["f1", "precision", "recall"]


def test_markdown_table_puts_systems_across():
    from memllm_cli.eval.harness import markdown

    report = {"results": {"qa": {"adapter": {"accuracy": 0.8}, "rag": {"accuracy": 0.5}}}}
    assert markdown(report).splitlines() == [
        "| part | metric | adapter | rag |",
        "| --- | --- | --- | --- |",
        "| qa | accuracy | 0.800 | 0.500 |",
    ]


@pytest.fixture
def question_folder(tmp_path):
    folder = tmp_path / "eq"
    (folder / "dev").mkdir(parents=True)
    templates = {"P19": "Where was [X] born?"}
    (folder / "relation_query_templates.json").write_text(json.dumps(templates))
    questions = [
        {"question": f"Where was P{i} born?", "answers": [c]}
        for i, c in enumerate(["Porto", "Leeds", "Lyon"])
    ]
    (folder / "dev" / "P19.dev.json").write_text(json.dumps(questions))
    return folder


def test_eval_command_reports_systems_baselines_and_hashes(
    cli, monkeypatch, question_folder, tmp_path
):
    from memllm_cli.eval import harness

    oracle = System("oracle", RuleModel(oracle_reader))
    systems = harness.Systems([oracle], oracle, {"base": {"sha256": "x"}})
    monkeypatch.setattr(harness, "load_systems", lambda cfg: systems)
    out = tmp_path / "report.json"
    result = cli("eval", "--questions", str(question_folder), "--part", "qa", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.read_text())
    qa_part = report["results"]["qa"]
    assert qa_part["oracle"]["accuracy"] == 1.0 and qa_part["oracle"]["total"] == 3
    assert {"no-memory", "rag"} <= set(qa_part)
    assert any(path.endswith("P19.dev.json") for path in report["data"])
    assert not any(path.startswith("/") for path in report["data"])  # no machine paths
    assert report["config"]["seed"] == 7
    assert str(tmp_path) not in out.read_text()  # the config's paths neither
    assert "accuracy" in result.stdout  # the printed table


def test_eval_with_a_model_url_adds_the_server_and_never_records_its_key(
    cli, monkeypatch, question_folder, tmp_path
):
    from memllm_cli.eval import harness

    oracle = System("oracle", RuleModel(oracle_reader))
    configs = []

    def load(cfg):
        configs.append(cfg)
        return harness.Systems([oracle], oracle, {"base": {"sha256": "x"}})

    monkeypatch.setattr(harness, "load_systems", load)
    out = tmp_path / "report.json"
    url = "http://user:pw@127.0.0.1:9/v1"
    args = ["--model-url", url, "--served-adapter", "--api-key", "sk-secret", "-s", "adapter"]
    result = cli("eval", "--questions", str(question_folder), "-p", "qa", "-o", str(out), *args)
    assert result.exit_code == 0, result.stderr
    (cfg,) = configs
    assert cfg.systems == ("adapter", "server") and cfg.model_url == url
    assert cfg.server.served_adapter and cfg.server.api_key == "sk-secret"
    assert "sk-secret" not in repr(cfg.server)
    report = out.read_text()
    assert "sk-secret" not in report and "pw@" not in report


def test_eval_command_rejects_an_unknown_part(cli):
    result = cli("eval", "--part", "vibes")
    assert result.exit_code == 2 and "unknown part 'vibes'" in result.stderr


def test_the_report_names_data_files_without_machine_paths(tmp_path):
    data = tmp_path / "shared" / "data"
    inside = data / "redocred" / "dev_revised.json"
    assert recorded_path(str(inside), data) == "redocred/dev_revised.json"
    assert recorded_path(str(tmp_path / "notes" / "a.md"), data) == "notes/a.md"
    assert recorded_path(str(tmp_path / "notes" / "a.md"), None) == "notes/a.md"
    assert recorded_path(str(data), data) == data.name  # the data folder itself
