"""Prompts for read mode (answering) and write mode (extracting), in ChatML.

SmolLM2-Instruct and most small instruct models speak ChatML. The finetuned
adapter is trained on exactly these builders and on the write-mode context policy
(``next_context``): memllm_cli/train imports them, as ingest and the evaluation do,
so the runtime and the training data cannot drift apart. In prompted mode (a model
without our adapter) a few worked examples show the call format; the grammar does
the rest.

Every untrusted text (a note, a chat message, a stored sentence) goes in through
``neutralise_text``: no call markers and no chat-template tokens, so the template's
own ``IM_START`` and ``IM_END`` are the only control tokens a prompt holds, and the
llama.cpp backend tokenises nothing else as one (``model.template_pieces``).
"""

from __future__ import annotations

from collections.abc import Sequence

from memllm_cli.protocol import ReadQuery, Triple, format_read, format_write
from memllm_cli.runtime.model import IM_END, IM_START
from memllm_cli.untrusted import neutralise_text, write_focus

READ_SYSTEM = (
    "You are memllm, a personal knowledge assistant with a memory of facts. "
    "Before answering a question about a person, place or thing, look it up: write "
    "({MEM_READ(subject>>relation>>)--> to ask for objects or ({MEM_READ(>>relation>>object)--> "
    "to ask for subjects; the memory appends its answers. Then answer in one short sentence "
    "using them. If the memory has nothing, say you do not know."
)
WRITE_SYSTEM = (
    "You extract facts for a memory. Read the text and write every fact that the sentence "
    "between ({USER_ST}) and ({USER_END}) states, as ({MEM_WRITE-->subject>>relation>>object}) "
    "with facts separated by ';'. Use full names. If the sentence states no fact, write "
    "({MEM_WRITE-->})."
)

# The adapter learnt its task from data, so its prompts carry no instructions: a
# short system line keeps training steps and every prompt at inference cheap.
ADAPTER_READ_SYSTEM = "Answer, reading memory first."
ADAPTER_WRITE_SYSTEM = "Write the marked sentence's facts to memory."

READ_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "Where does Ola Nordmann live?",
        format_read([ReadQuery("residence", subject="Ola Nordmann")], ["Bergen"])
        + " Ola Nordmann lives in Bergen.",
    ),
    (
        "Who works at Equinor?",
        format_read([ReadQuery("employer", object="Equinor")], ["Kari Hansen", "Per Olsen"])
        + " Kari Hansen and Per Olsen work at Equinor.",
    ),
    (
        "Where does Kari Hansen work?",
        format_read([ReadQuery("employer", subject="Kari Hansen")], ["Equinor"])
        + " Kari Hansen works at Equinor.",
    ),
)
WRITE_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        write_focus("", "Ola Nordmann lives in Bergen. He was born in Tromsø."),
        format_write(
            [
                Triple("Ola Nordmann", "residence", "Bergen"),
                Triple("Ola Nordmann", "place of birth", "Tromsø"),
            ]
        ),
    ),
    (
        write_focus("", "Kari Hansen, a geologist, works for Equinor in Stavanger."),
        format_write(
            [
                Triple("Kari Hansen", "employer", "Equinor"),
                Triple("Kari Hansen", "work location", "Stavanger"),
            ]
        ),
    ),
    (write_focus("Kari Hansen works for Equinor.", "It was a rainy day."), format_write([])),
)


def chatml(messages: Sequence[tuple[str, str]]) -> str:
    """``messages`` as ChatML, ending with an open assistant turn."""
    body = "".join(f"{IM_START}{role}\n{text}{IM_END}\n" for role, text in messages)
    return body + f"{IM_START}assistant\n"


def _examples(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [m for user, assistant in pairs for m in (("user", user), ("assistant", assistant))]


def read_prompt(
    question: str,
    history: Sequence[tuple[str, str]] = (),
    *,
    me: str = "me",
    prompted: bool = True,
) -> str:
    """The read-mode prompt for ``question`` after earlier (user, answer) turns."""
    system = READ_SYSTEM if prompted else ADAPTER_READ_SYSTEM
    messages = [("system", f"{system} The user is called {me}.")]
    if prompted:
        messages += _examples(READ_EXAMPLES)
    for user, answer in history:
        messages += [("user", neutralise_text(user)), ("assistant", neutralise_text(answer))]
    messages.append(("user", neutralise_text(question)))
    return chatml(messages)


# Short enough that a write prompt stays near 130 tokens, which is what the adapter
# was trained on: ingest, the training data and the evaluation all build the write
# context with ``next_context``.
CONTEXT_CHARS = 300


def next_context(context: list[str], sentence: str, budget: int = CONTEXT_CHARS) -> list[str]:
    """The context after ``sentence``: it grows, and past ``budget`` restarts from it.

    Restarting (rather than sliding) keeps the prompt prefix stable, so llama.cpp
    reuses its KV cache for all sentences between two restarts.
    """
    context = [*context, sentence]
    return context[-1:] if sum(len(s) + 1 for s in context) > budget else context


def write_prompt(context: str, sentence: str, *, me: str = "me", prompted: bool = True) -> str:
    """The write-mode prompt: context, then the focus sentence between the user markers."""
    system = WRITE_SYSTEM if prompted else ADAPTER_WRITE_SYSTEM
    messages = [("system", f'{system} Facts about the user ("I", "my") have the subject {me}.')]
    if prompted:
        messages += _examples(WRITE_EXAMPLES)
    messages.append(("user", write_focus(context, sentence)))
    return chatml(messages)


RAG_SYSTEM = "Answer the question in one short sentence, using the notes."


def rag_prompt(question: str, passages: Sequence[str]) -> str:
    """Retrieval baseline: the top passages pasted before the question (no memory calls)."""
    notes = "\n".join(f"- {neutralise_text(p)}" for p in passages)
    user = f"Notes:\n{notes}\n\nQuestion: {neutralise_text(question)}"
    return chatml([("system", RAG_SYSTEM), ("user", user)])


NOTES_SYSTEM = (
    "Answer the question with a short phrase, using the notes. "
    "If the notes do not say, answer: I do not know."
)


def notes_prompt(question: str, notes: str | Sequence[str]) -> str:
    """The notes baselines' prompt: a note file pasted whole (``str``) or retrieved lines.

    No memory calls; the model is told to say "I do not know" when the notes do not say.
    """
    block = notes if isinstance(notes, str) else "\n".join(f"- {p}" for p in notes)
    user = f"Notes:\n{neutralise_text(block)}\n\nQuestion: {neutralise_text(question)}"
    return chatml([("system", NOTES_SYSTEM), ("user", user)])


EVIDENCE_SYSTEM = "Answer from the notes. If the notes do not say, answer: I do not know."


def evidence_prompt(question: str, sentences: Sequence[str], *, me: str = "me") -> str:
    """The evidence fallback: the stored sentences found for ``question``, then the question.

    Notes and question reach the model neutralised, like every untrusted text. The
    fallback then opens the assistant turn with a read call, whose results the model
    completes from the notes (see runtime/answer.py).
    """
    notes = "\n".join(f"- {neutralise_text(s)}" for s in sentences)
    user = f"Notes:\n{notes}\n\nQuestion: {neutralise_text(question)}"
    return chatml([("system", f"{EVIDENCE_SYSTEM} The user is called {me}."), ("user", user)])
