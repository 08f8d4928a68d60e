"""Training data: examples built by the runtime's own prompts and the protocol's own calls."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np

from memllm_cli.datasets.notes import notes
from memllm_cli.datasets.redocred import Label
from memllm_cli.datasets.splits import in_validation
from memllm_cli.protocol import ReadQuery, Triple, parse_read, parse_write
from memllm_cli.runtime import prompts
from memllm_cli.runtime.prompts import next_context
from memllm_cli.train import data
from memllm_cli.train.export import permute_rows
from memllm_cli.train.train import Config, batches, parse_args, tokenize


def test_one_write_example_per_sentence_with_the_pipelines_context(doc):
    examples = list(data.redocred_write([doc], None))
    assert len(examples) == 3
    first, second, third = examples
    assert first.prompt == prompts.write_prompt("", doc.sentences[0], prompted=False)
    context = " ".join(next_context([], doc.sentences[0]))
    assert second.prompt == prompts.write_prompt(context, doc.sentences[1], prompted=False)
    calls = [e.reply[0][0].removesuffix(prompts.IM_END) for e in examples]
    assert parse_write(calls[0]) == [Triple("Ola Nordmann", "place of birth", "Tromsø")]
    # the subject as this sentence names it: the model copies what it sees
    assert parse_write(calls[1]) == [Triple("Nordmann", "employer", "Equinor")]
    assert parse_write(calls[2]) == []  # an empty write, kept as a negative
    assert data.is_empty_write(third) and not data.is_empty_write(first)


def test_a_sentence_is_taught_only_the_facts_it_grounds(doc):
    """Re-DocRED's inferred facts (neither name in the sentence) are not taught as writes."""
    inferred = Label(head=2, tail=1, relation="P131", evidence=(2,))  # "He likes rain."
    doc = replace(doc, labels=(*doc.labels, inferred))

    def writes(**options: bool) -> list[list[Triple]]:
        examples = data.redocred_write([doc], None, **options)
        return [parse_write(e.reply[0][0].removesuffix(prompts.IM_END)) for e in examples]

    taught = writes(grounded=True)
    assert taught[2] == []  # the sentence names neither Equinor nor Tromsø
    everything = writes()  # the shipped recipe: all of them
    assert everything[2] == [
        Triple("Equinor", "located in the administrative territorial entity", "Tromsø")
    ]
    assert taught[:2] == everything[:2]


def test_read_example_trains_the_call_and_answer_not_the_results():
    query = ReadQuery("place of birth", subject="Ada Dahl")
    example = data.read_example(
        "eq",
        "Where was Ada Dahl born?",
        [query],
        ["Porto", "Lyon"],
        data.answer_sentence(["Porto"]),
    )
    (call, trained_call), (results, trained_results), (answer, trained_answer) = example.reply
    assert (trained_call, trained_results, trained_answer) == (True, False, True)
    queries, found = parse_read(call + results)
    assert queries == [query] and found == ["Porto", "Lyon"]
    assert answer == " Porto." + prompts.IM_END


def test_an_empty_read_teaches_the_rolled_back_answer():
    example = data.read_example(
        "eq", "Where was X born?", [ReadQuery("place of birth", "X")], [], data.DONT_KNOW
    )
    assert len(example.reply) == 1
    assert "({" not in example.reply[0][0]


def test_evidence_reads_teach_the_answer_as_the_note_writes_it():
    """The evidence fallback's prompt, the note among others, the call, then its words."""
    rng = random.Random(3)
    answering = [n for n in notes(rng, 40, "me") if n.questions][:10]
    others = [n.sentence for n in notes(rng, 20, "me")]
    for note, example in zip(answering, data.evidence_reads(answering, others, rng), strict=True):
        (opening, trained_call), (results, trained_results) = example.reply
        assert trained_call and trained_results
        queries, found = parse_read(opening + results)
        question = example.prompt.split("Question: ")[1].split(prompts.IM_END)[0]
        asked = {q: (query, answers) for q, query, answers in note.questions}
        assert queries == [asked[question][0]]
        assert found and all(a in note.sentence for a in asked[question][1])
        notes_shown = example.prompt.split("Notes:\n")[1].split("\n\n")[0].splitlines()
        assert len(notes_shown) == 3 and f"- {note.sentence}" in notes_shown
        assert example.prompt == prompts.evidence_prompt(question, [n[2:] for n in notes_shown])


class CharTokenizer:
    """One token per character, with offsets, as a fast tokenizer reports them."""

    def __call__(self, text, return_offsets_mapping, add_special_tokens):
        return {
            "input_ids": [ord(c) for c in text],
            "offset_mapping": [(i, i + 1) for i in range(len(text))],
        }


def test_loss_falls_only_on_trained_segments():
    example = data.Example("t", "PROMPT", (("CALL", True), ("results", False), ("ANS", True)))
    ids, labels = tokenize(example, CharTokenizer())
    kept = "".join(chr(t) for t, lab in zip(ids, labels, strict=True) if lab != -100)
    assert kept == "CALLANS"


def test_batches_cover_every_example_once():
    encoded = [([0] * n, [0] * n) for n in range(1, 50)]
    plan = batches(encoded, 8, random.Random(0))
    assert sorted(i for b in plan for i in b) == list(range(49))
    assert all(len(b) <= 8 for b in plan)


def test_notes_map_the_user_to_their_name():
    for note in notes(random.Random(5), 200, me="Ada"):
        for triple in note.triples:
            assert "I" not in (triple.subject, triple.object)
        if note.sentence.startswith("I "):
            assert note.triples[0].subject == "Ada"


def test_validation_split_is_stable():
    # Pinned: the split must be the same on every machine and run (a salted hash() would not).
    assert [i for i in range(40) if in_validation(f"doc {i}")] == [2, 15, 24, 25, 38]
    assert not in_validation("Ola Nordmann")
    share = sum(in_validation(f"doc {i}") for i in range(2000)) / 2000
    assert 0.15 < share < 0.25


def test_permute_rows_matches_the_rotary_layout():
    """Rows of each head reorder from halves (HF) to interleaved pairs (GGUF)."""
    weight = np.arange(8).reshape(8, 1)  # one head of 8 rows
    assert permute_rows(weight, 1).ravel().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_every_config_field_is_a_flag():
    cfg = parse_args(["--data", "x", "--rank", "4", "--lr", "0.01"])
    assert (cfg.data, cfg.rank, cfg.lr) == ("x", 4, 0.01)
    assert Config().targets and "lm_head" not in Config().targets


def test_note_files_name_what_the_model_can_see():
    """Every written name is in the sentence or the context the pipeline gives, or is the user;
    a pronoun whose antecedent fell out of the context writes nothing."""
    from memllm_cli.datasets import notebook

    rng = random.Random(7)
    lines = [line for _ in range(40) for line in notebook.document(rng, "Ada")]
    assert sum(bool(line.triples) for line in lines) > len(lines) / 3
    assert any(not line.triples for line in lines)  # headings and chatter state nothing
    for line in lines:
        seen = f"{line.context} {line.sentence}"
        for t in line.triples:
            assert t.subject == "Ada" or t.subject in seen, (line, t)
            assert t.object in seen, (line, t)
    # the pipeline's context, as ingest builds it
    context: list[str] = []
    for line in notebook.document(random.Random(3), "me"):
        assert line.context == " ".join(context)
        context = next_context(context, line.sentence)


def test_note_files_ask_only_what_still_holds():
    from memllm_cli.datasets import notebook

    rng = random.Random(11)
    lines = [line for _ in range(200) for line in notebook.document(rng, "me")]
    moves = [line for line in lines if " moved from " in line.sentence]
    assert moves
    for line in moves:
        left = line.sentence.split(" from ")[1].split(" to ")[0]
        assert [t.object for t in line.triples if t.relation == "residence"][0] == left
        assert all(left not in answers for _, _, answers in line.questions)
    asked = {q for line in lines for q, _, _ in line.questions}
    assert "Who is my GP?" in asked and "Who is my brother-in-law?" in asked
