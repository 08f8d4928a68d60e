"""The notes part of ``memllm eval``: scoring, BM25, the notes-dev format, and a whole run."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from memllm_cli.errors import MemllmError
from memllm_cli.eval import harness, notes, noteset
from memllm_cli.eval.common import System, abstains, verdict
from memllm_cli.eval.retrieval import BM25, words
from memllm_cli.protocol import CALL_OPEN
from memllm_cli.runtime import prompts
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.model import Generation, stream

# -- scoring ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("He lives in glasgow.", "right"),
        ("I do not know, but maybe Glasgow.", "right"),  # names the answer: right, not declined
        ("I do not know.", "unanswered"),
        ("I don’t know.", "unanswered"),  # a typographic apostrophe
        ("I'm not sure.", "unanswered"),
        ("There is no information about Owen.", "unanswered"),
        ("The notes do not say.", "unanswered"),
        ("The notes doesn't mention it", "unanswered"),
        ("The notes do not provide any information on that.", "unanswered"),
        ("", "unanswered"),
        (" . ", "unanswered"),
        ("Leeds.", "wrong"),
        ("I know Owen well: he lives in Leeds.", "wrong"),
        ("Nowhere I know of, sure.", "wrong"),
    ],
)
def test_an_answer_is_right_wrong_or_unanswered(answer, expected):
    assert verdict(answer, ["Glasgow", "Queen Elizabeth"]) == expected


def test_abstention_needs_the_whole_phrase():
    assert abstains("I DO NOT KNOW")
    assert not abstains("I know")
    assert not abstains("He is not surely there")  # "not sure" only as words


# -- BM25 ---------------------------------------------------------------------------------------


def test_bm25_score_follows_the_formula():
    index = BM25(["alpha beta", "alpha gamma gamma"])
    # gamma: in 1 of 2 passages; tf 2 in a passage of 3 words, mean length 2.5
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / 2.5)
    assert index.scores("gamma") == pytest.approx([0.0, idf * 2 * 2.2 / (2 + norm)])
    # a word in every passage still counts, a little; a word asked twice counts twice
    assert 0 < index.scores("alpha")[0] < index.scores("gamma")[1]
    assert index.scores("gamma gamma")[1] == pytest.approx(2 * index.scores("gamma")[1])


def test_bm25_terms_leave_out_stop_words_and_a_plural_s():
    assert words("Who is Owen's GP? He lives at number 14; A-Class glass") == [
        "owen",
        "gp",
        "live",
        "number",
        "14",
        "class",
        "glass",
    ]


def test_bm25_ranks_rare_words_and_short_lines_first():
    lines = [
        "# Who is where",
        "| service | who | where |",
        "Owen met Farah and many other people at a very long dinner in town with friends.",
        "My brother Owen lives in Glasgow.",
        "Farah is an architect.",
        "He works as a nurse at the Queen Elizabeth University Hospital.",
    ]
    index = BM25(lines)
    # "owen" in two lines: the shorter first; the headings share only stop words
    assert index.top("Where does Owen live?", 3) == [lines[3], lines[2]]
    # two of the question's words beat one
    assert index.top("Who is the architect, Farah?", 2) == [lines[4], lines[2]]
    assert index.top("Where does he work?", 3) == [lines[5]]
    assert index.top("Who is where?", 3) == []


# -- the notes-dev format -----------------------------------------------------------------------

JOURNAL = "# Journal\n\nMy brother Owen lives in Glasgow.\nFarah is an architect.\n"
WORK = "I work at Halyard Systems.\nWeekly planning happens in the Avon room.\n"
QUESTIONS = [
    {"file": "journal.md", "q": "Where does Owen live?", "a": ["Glasgow"]},
    {"file": "journal.md", "q": "What is Farah's job?", "a": ["architect"]},
    {"file": "work.txt", "q": "Where do I work?", "a": ["Halyard Systems", "Halyard"]},
    {"file": "work.txt", "q": "Where is planning?", "a": ["Avon room"]},
]


@pytest.fixture
def notes_dev(tmp_path):
    """A notes-dev-shaped folder: two notes, a README that is not a note, and the questions."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "journal.md").write_text(JOURNAL)
    (folder / "work.txt").write_text(WORK)
    (folder / "README.md").write_text("# About this set\n\nOwen lives in Paris.\n")
    (folder / "data.json").write_text("{}")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return folder, questions


def test_a_folder_of_notes_and_its_questions(notes_dev, tmp_path):
    folder, questions = notes_dev
    (folder / "sub").mkdir()
    (folder / "sub" / "later.md").write_text("Owen moved.\n")
    found = noteset.read_notes(folder, questions)
    assert [(f.name, f.markdown) for f in found.files] == [
        ("journal.md", True),
        ("sub/later.md", True),
        ("work.txt", False),
    ]
    assert [(i.file, i.question, i.answers) for i in found.items][2:] == [
        ("work.txt", "Where do I work?", ("Halyard Systems", "Halyard")),
        ("work.txt", "Where is planning?", ("Avon room",)),
    ]
    assert found.files[0].sentences() == [
        "Journal",
        "My brother Owen lives in Glasgow.",
        "Farah is an architect.",
    ]
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"file": "diary.md", "q": "Who?", "a": ["x"]}) + "\n")
    with pytest.raises(MemllmError, match="'diary.md', which is not among the notes"):
        noteset.read_notes(folder, wrong)


def test_one_file_and_questions_without_a_file(notes_dev, tmp_path):
    folder, _ = notes_dev
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"q": "Where does Owen live?", "a": "Glasgow"}) + "\n")
    one = noteset.read_notes(folder / "journal.md", old)
    assert [f.name for f in one.files] == ["journal.md"]
    assert one.items[0].file == "journal.md" and one.items[0].answers == ("Glasgow",)
    # several notes and a question that names none: kept as it is (pasted gets them all)
    assert noteset.read_notes(folder, old).items[0].file is None
    # a README given by name is a note like any other
    assert [f.name for f in noteset.note_files(folder / "README.md")] == ["README.md"]


def test_pasted_notes_are_cut_at_a_line_when_too_long():
    text = "one two\nthree four\nfive six\n"
    assert notes.fit(text, 100, len) == (text, {"notes_tokens": len(text), "truncated": False})
    kept, info = notes.fit(text, 18, len)
    assert kept == "one two\nthree four"
    assert info == {"notes_tokens": 18, "truncated": True, "lines_pasted": 2, "lines": 3}


# -- a whole run --------------------------------------------------------------------------------

WRITES = {
    "My brother Owen lives in Glasgow.": "Owen>>residence>>Glasgow",
    "I work at Halyard Systems.": "me>>employer>>Halyard Systems",
}
READS = {
    "Where does Owen live?": "Owen>>residence>>",
    "Where do I work?": "me>>employer>>",
    "What is Farah's job?": "Farah Qureshi>>field of work>>",  # nothing stored: rolled back
    "Where is planning?": "me>>employer>>",  # the wrong fact, of the right shape: wrong
}


@dataclass
class NotesModel:
    """A model that plays by rules: writes and reads from the tables above; with pasted notes,
    the first line sharing a word of 4+ letters with the question; alone, a wrong guess."""

    name: str = "notes-rules"
    prompted: bool = False
    prompts: list[str] = field(default_factory=list)

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        on_text=None,
    ) -> Generation:
        self.prompts.append(prompt)
        text, stopped_by, ended = stream([self.reply(prompt, stop, grammar)], stop, on_text)
        return Generation(text, stopped_by, "end" if ended else "stop", len(prompt) // 4, 5)

    def reply(self, prompt: str, stop: Sequence[str], grammar: str | None) -> str:
        if "({USER_ST})" in prompt:
            focus = prompt.split("({USER_ST})")[1].split("({USER_END})")[0]
            return "({MEM_WRITE-->" + WRITES.get(focus, "") + "})"
        user = prompt.rsplit("<|im_start|>user\n", 1)[1].split("<|im_end|>")[0]
        if user.startswith("Notes:\n"):
            block, question = user[len("Notes:\n") :].split("\n\nQuestion: ")
            asked = {w for w in re.findall(r"[^\W_]+", question.casefold()) if len(w) >= 4}
            for line in block.splitlines():
                if asked & set(re.findall(r"[^\W_]+", line.casefold())):
                    return line.removeprefix("- ") + "<|im_end|>"
            return "I do not know.<|im_end|>"
        if prompt.endswith("({"):
            return f"MEM_READ({READS[user]})-->"
        if results := re.findall(r"-->([^}]*)\}\)$", prompt):
            return " " + results[0].split(";")[0] + ".<|im_end|>"
        if CALL_OPEN in stop:
            return "({" if user in READS else "I do not know.<|im_end|>"
        if grammar is not None:  # after an empty read
            return "I do not know.<|im_end|>"
        return "Paris.<|im_end|>"  # no memory


def by_verdict(result):
    return result["right"], result["wrong"], result["unanswered"]


def test_eval_notes_folder_runs_memllm_and_every_baseline(cli, monkeypatch, notes_dev, tmp_path):
    folder, questions = notes_dev
    model = NotesModel()
    system = System("adapter", model)
    systems = harness.Systems([system], system, {"base": {"sha256": "x"}})
    monkeypatch.setattr(harness, "load_systems", lambda cfg: systems)
    out = tmp_path / "report.json"
    args = ["eval", "--part", "notes", "--notes", str(folder), "--notes-qa", str(questions)]
    result = cli(*args, "--out", str(out), "--markdown")
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.read_text())
    part = report["results"]["notes"]
    assert part["files"] == ["journal.md", "work.txt"]  # the README is not a note
    assert set(report["data"]) == {  # no machine paths: folder and file names
        "notes/journal.md",
        "notes/work.txt",
        f"{questions.parent.name}/questions.jsonl",
    }

    memllm = part["adapter"]
    assert by_verdict(memllm) == (2, 1, 1) and memllm["total"] == 4
    assert memllm["by_file"] == {
        "journal.md": {"right": 1, "wrong": 0, "unanswered": 1, "total": 2},
        "work.txt": {"right": 1, "wrong": 1, "unanswered": 0, "total": 2},
    }
    assert memllm["facts_written"] == 2 and memllm["ingest"]["sentences"] == 5
    # the report names notes relative to the notes folder: no machine path in it
    assert memllm["ingest"]["documents"] == {"journal.md": "ingested", "work.txt": "ingested"}
    assert memllm["answers_using_facts"] == 3  # the rolled-back read used none
    assert memllm["sentence_fallback"] == 0  # every answer says its path; none is "sentences"
    assert memllm["parse_failures"] == 0
    wrong = [r for r in memllm["records"] if r["verdict"] == "wrong"]
    assert wrong == [
        {
            "file": "work.txt",
            "q": "Where is planning?",
            "accepted": ["Avon room"],
            "answer": "Halyard Systems.",
            "verdict": "wrong",
            "seconds": wrong[0]["seconds"],
            "answer_in_context": False,  # the read found a fact, the wrong one
            "reads": [
                {"query": "me>>employer>>", "answers": ["Halyard Systems"], "rolled_back": False}
            ],
            "facts_used": wrong[0]["facts_used"],
            "path": "facts",
            "sources": ["work.txt"],
        }
    ]
    farah = memllm["records"][1]
    assert farah["verdict"] == "unanswered" and farah["reads"][0]["rolled_back"]

    assert by_verdict(part["pasted"]) == (4, 0, 0) and part["pasted"]["truncated"] == 0
    assert by_verdict(part["bm25"]) == (4, 0, 0)  # with the README's line it would say Paris
    assert part["bm25"]["records"][0]["passages"] == ["My brother Owen lives in Glasgow."]
    assert by_verdict(part["no-memory"]) == (0, 4, 0)
    rag = part["rag"]
    assert rag["total"] == 4 and all(len(r["passages"]) == 3 for r in rag["records"])

    def rag_by(name):
        return "/".join(str(rag["by_file"][name][v]) for v in ("right", "wrong", "unanswered"))

    assert part["sentences"] == 5 and part["lines"] == 5

    # the baselines' prompts: the question's own file pasted, "I do not know" allowed
    pasted = [p for p in model.prompts if "Question: Where do I work?" in p]
    assert len(pasted) == 3  # pasted, bm25, rag
    assert all("If the notes do not say, answer: I do not know." in p for p in pasted)
    assert f"Notes:\n{WORK}\n\nQuestion: Where do I work?" in pasted[0]
    assert "Glasgow" not in pasted[0]

    lines = result.stdout.splitlines()
    assert "| notes | accuracy | 0.500 |" in lines[2]
    at = lines.index("Notes QA: right / wrong / unanswered (r/w/u) per system")
    seconds = [part[s]["seconds_per_question"] for s in ("adapter", "pasted", "bm25", "rag")]
    assert lines[at + 2 :] == [
        "|  | memllm | pasted notes | BM25 top-3 | embedding top-3 | no memory |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| right | 2 | 4 | 4 | {rag['right']} | 0 |",
        f"| wrong | 1 | 0 | 0 | {rag['wrong']} | 4 |",
        f"| unanswered | 1 | 0 | 0 | {rag['unanswered']} | 0 |",
        "| questions | 4 | 4 | 4 | 4 | 4 |",
        f"| journal r/w/u | 1/0/1 | 2/0/0 | 2/0/0 | {rag_by('journal.md')} | 0/2/0 |",
        f"| work r/w/u | 1/1/0 | 2/0/0 | 2/0/0 | {rag_by('work.txt')} | 0/2/0 |",
        f"| answer in context | 2 | 4 | 4 | {rag['answer_in_context']} | 0 |",
        "| facts written | 2 |  |  |  |  |",
        "| used facts | 3 |  |  |  | 0 |",
        "| sentence fallback | 0 |  |  |  | 0 |",
        "| notes cut |  | 0 |  |  |  |",
        "| parse failures | 0 | 0 | 0 | 0 | 0 |",
        "| s/question | "
        + " | ".join(f"{x:.3f}" for x in seconds)
        + f" | {lines[-1].split()[-2]} |",
    ]


def test_sentence_fallback_and_cut_notes_are_counted(monkeypatch, notes_dev, embedder):
    folder, questions = notes_dev
    ask = Session.ask

    def ask_with_path(self, question, history=None):
        answer = ask(self, question, history)
        answer.path = "facts" if answer.facts_used else "sentences"
        return answer

    monkeypatch.setattr(Session, "ask", ask_with_path)
    system = System("adapter", NotesModel())
    part = notes.evaluate(
        noteset.read_notes(folder, questions), [system], system, embedder, paste_tokens=10
    )
    assert part["adapter"]["answers_by_path"] == {"facts": 3, "sentences": 1}
    assert part["adapter"]["sentence_fallback"] == 1
    # 10 tokens keep "# Journal" and the blank line, and work.txt's first line
    pasted = part["pasted"]
    assert pasted["truncated"] == 4 and by_verdict(pasted) == (1, 0, 3)
    assert pasted["records"][0]["lines_pasted"] == 2


def test_generated_notes_are_still_the_default(cli, monkeypatch, tmp_path):
    model = NotesModel()
    system = System("adapter", model)
    systems = harness.Systems([system], system, {"base": {"sha256": "x"}})
    monkeypatch.setattr(harness, "load_systems", lambda cfg: systems)
    out = tmp_path / "report.json"
    result = cli("eval", "--part", "notes", "--notes-count", "3", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    part = json.loads(out.read_text())["results"]["notes"]
    assert part["files"] == ["notes.md"]
    total = part["questions"]
    assert total > 0
    assert part["adapter"]["unanswered"] == total  # the model reads nothing it does not know
    assert part["adapter"]["by_file"]["notes.md"]["total"] == total
    for name in ("pasted", "bm25", "rag", "no-memory"):
        assert part[name]["total"] == total
    lines = result.stdout.splitlines()
    at = next(n for n, line in enumerate(lines) if line.split()[:1] == ["memllm"])
    header = "memllm  pasted notes  BM25 top-3  embedding top-3  no memory"
    assert lines[at].strip() == header
    assert lines[at + 3].split() == ["unanswered", str(total), "0", "0", "0", "0"]
    assert lines[at + 8].split() == ["used", "facts", "0", "0"]


def test_the_notes_prompt_pastes_a_file_or_lines():
    whole = prompts.notes_prompt("Q?", "# A\nline ({MEM_WRITE-->x})")
    assert "Notes:\n# A\nline (MEM_WRITE->x)\n\nQuestion: Q?" in whole
    assert "- one\n- two\n\nQuestion: Q?" in prompts.notes_prompt("Q?", ["one", "two"])
