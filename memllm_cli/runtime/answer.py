"""The evidence fallback: when no read gave a fact, answer from the stored sentences, or not at all.

Answer paths, in order (DESIGN): facts from reads; the stored source sentences
most relevant to the question; otherwise "I do not know". The read loop
(:mod:`~memllm_cli.runtime.loop`) runs the first; this module the other two.

The ``k`` best sentences (BM25 over the question's content words) go into the
prompt as notes, the best last, and the assistant turn opens with the read call the model made
(or makes now): the model completes its results from the notes. That is the task
the adapter knows; asked in a plain chat turn, it says that its memory has nothing.

Then the answer is *grounded*: a wrong answer is worse than none, so it stands only
when the sentences say it. The check, :func:`supporting`:

- a reply that says it does not know is no answer;
- the reply's content words that the question does not already hold (compared as
  light stems) are its claim; a reply with no such word says nothing new;
- the claim has the shape the question asks for: a date or number for "when", a
  name for "who", a name or number for "where"; and the reply does not start with a
  name the question holds ("Ingrid Solberg AS" is more of Ingrid, not her employer);
- a job ("What is Owen's job?") is a word the sentences write in lower case (or an
  acronym), not a name: "Leeds", where he works, is no job;
- a sentence counts when it is about what the question asks about: it names
  someone the question names (the user too, for "I", "my", "our"), or starts with
  "he", "she", "it" or "they" after a sentence that does; for a question that
  names no one, it holds at least half of the question's content words;
- each part of the reply (split at commas and "and") is a run of words, as
  written, of a counted sentence; those sentences are cited.

So an invented name, place, date or job never passes, nor a true sentence about
someone else, nor words glued together from different places. It costs a few set
and list operations per sentence.

A reply that fails the check by its spelling is repaired: a small model misspells a name
it read ("Eddie Hartley" for Edith Hartley, "September 2023" for September). The model
answers again under a grammar that offers only the spans the check accepts that share
a word with its first reply (:func:`repairs`), or no answer. It may not pick another
answer: offered every acceptable span, it answered far more often and far more often
wrongly (notes-dev: 45 right, 11 wrong, against 40 and 4 without it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from memllm_cli.protocol import (
    CALL_CLOSE,
    CALL_OPEN,
    FIELD_SEP,
    ITEM_SEP,
    NO_CALL_GRAMMAR,
    ProtocolError,
    ReadQuery,
    escape,
    parse_read_request,
    read_grammar,
    read_opening,
    results_grammar,
)
from memllm_cli.runtime import prompts
from memllm_cli.runtime.grounding import spans
from memllm_cli.runtime.model import Generation
from memllm_cli.store import Store
from memllm_cli.store.models import Passage
from memllm_cli.words import (
    STOPWORDS,
    content_stems,
    content_words,
    says_unknown,
    speaks_first_person,
    stem,
    words,
)

I_DO_NOT_KNOW = "I do not know."
EVIDENCE_K = 3
EVIDENCE_TOKENS = 32
USER = "\x00user"  # what "I", "my" and "our" name: an anchor like any name
SUBJECT_PRONOUNS = frozenset({"he", "she", "it", "they"})
POSSESSIVES = frozenset({"his", "her", "its", "their"})
WH = frozenset({"when", "who", "whom", "whose", "where"})
_TIME_TEXT = """january february march april may june july august september october november
december monday tuesday wednesday thursday friday saturday sunday spring summer autumn winter"""
TIME_WORDS = frozenset(_TIME_TEXT.split())
PARTS = re.compile(r"[,;]|\band\b", re.IGNORECASE)  # where an answer lists several things
# A question about what someone does for a living: the answer is a common noun ("nurse").
JOB = re.compile(r"\b(jobs?|occupations?|professions?|work as|do for a living)\b", re.IGNORECASE)

Event = Callable[[str, str], None]


def mentions(text: str) -> set[str]:
    """The content stems of ``text``, and :data:`USER` when it speaks in the first person."""
    found = content_stems(text)
    if speaks_first_person(text):
        found.add(USER)
    return found


def names(question: str) -> set[str]:
    """Whom or what ``question`` names: its capitalised content words after the first
    word (as stems), and :data:`USER` when it says "I", "my" or "our"."""
    content = set(content_words(question))
    named = {stem(w) for w in words(question)[1:] if w[0].isupper() and w.casefold() in content}
    if speaks_first_person(question):
        named.add(USER)
    return named


def is_about(question: str, passage: Passage) -> bool:
    """Whether ``passage`` speaks of what ``question`` asks about.

    A question that names someone: the sentence names them too, or starts with
    "he", "she", "it" or "they" after a sentence that does, or with "his", "her", "its"
    or "their" and the word the question asks about ("Her partner, Luca Bassi, ..." for
    "Who is Sofia's partner?"; "Her friend Kari works at SINTEF" is Kari's employer, not
    Sofia's). A question that names no one: the sentence holds at least half of its
    content words.
    """
    named = names(question)
    if named:
        if named & mentions(passage.text):
            return True
        first = [w.casefold() for w in words(passage.text)[:2]]
        refers = bool(first) and (
            first[0] in SUBJECT_PRONOUNS
            or (first[0] in POSSESSIVES and stem(first[-1]) in content_stems(question))
        )
        return refers and bool(named & mentions(passage.context))
    content = content_stems(question)
    return 2 * len(content & mentions(passage.text)) >= len(content) > 0


def asks(question: str) -> str | None:
    """The question's wh-word ("who", "when", ...), casefolded; None if it has none."""
    return next((w.casefold() for w in words(question) if w.casefold() in WH), None)


def has_shape(question: str, claim: Sequence[str]) -> bool:
    """Whether the claimed words (as written) are what the question's wh-word asks for."""
    asked = asks(question)
    timely = [w for w in claim if w.isdigit() or w.casefold() in TIME_WORDS]
    named = [w for w in claim if w[0].isupper() and w.casefold() not in TIME_WORDS]
    if asked == "when":
        return bool(timely)
    if asked in ("who", "whom", "whose"):
        return bool(named)
    if asked == "where":
        return bool(named) or any(w.isdigit() for w in claim)
    return True


def claimed(question: str, reply: str) -> list[str]:
    """What ``reply`` claims: its content words (as written) that ``question`` does not hold."""
    asked = content_stems(question)
    return [w for w in words(reply) if w.casefold() not in STOPWORDS and stem(w) not in asked]


def supporting(question: str, reply: str, passages: Sequence[Passage]) -> list[Passage]:
    """The passages that say ``reply`` in answer to ``question``; [] when they do not.

    The reply must add content words to the question, of the shape it asks for,
    and each of its parts (split at commas and "and") must be a run of words of a
    sentence that is about what the question asks about; those sentences are cited.
    """
    if not reply.strip() or says_unknown(reply):
        return []
    claim = claimed(question, reply)
    if not claim or not has_shape(question, claim):
        return []
    if stem(words(reply)[0]) in names(question):
        return []  # it starts with whom the question names: more of the subject, not an answer
    about = [p for p in passages if is_about(question, p)]
    cited: list[Passage] = []
    for part in PARTS.split(reply):
        run = [w.casefold() for w in words(part)]
        if not run:
            continue
        source = next((p for p in about if _holds(p.text, run)), None)
        if source is None:
            return []
        if source not in cited:
            cited.append(source)
    if JOB.search(question) and not {w.casefold() for w in claim} & _common(p.text for p in cited):
        return []  # "Leeds" for "What is Owen's job?": a name, the place where he works
    return cited


def fits(question: str, answer: str) -> bool:
    """Whether a fact's object, as stored, answers ``question`` in shape (:func:`has_shape`);
    for a job, it is a common word or an acronym ("nurse", "CEO"), not a name: a read of
    ``Owen>>employer>>`` gives the hospital, which is no answer to "What is Owen's job?".
    """
    claim = words(answer)
    return has_shape(question, claim) and not (JOB.search(question) and not _common([answer]))


def _common(texts: Iterable[str]) -> set[str]:
    """The words the texts write as common words or acronyms, not as names (casefolded)."""
    return {w.casefold() for text in texts for w in words(text) if w.islower() or w.isupper()}


def repairs(question: str, reply: str, passages: Sequence[Passage]) -> list[str]:
    """Spellings of ``reply`` that :func:`supporting` accepts, as the sentences write them.

    Only a reply that failed by its spelling is repaired: some of its claimed words are
    in no sentence about the question, and some are. The repairs are the word spans of
    those sentences that share one of the latter and pass the check. A reply whose words
    are all there failed for another reason (its shape, its subject): it has none.
    """
    about = [p for p in passages if is_about(question, p)]
    seen = {w.casefold() for p in about for w in words(p.text)}
    claim = {w.casefold() for w in claimed(question, reply)}
    known = claim & seen
    if not known or claim <= seen:
        return []
    found = dict.fromkeys(
        span
        for p in about
        for span in spans(p.text)
        if escape(span) == span and known & {w.casefold() for w in words(span)}
    )
    return [span for span in found if supporting(question, span, about)]


def _holds(text: str, run: Sequence[str]) -> bool:
    """Whether the words of ``text`` contain ``run`` (casefolded words), in a row."""
    found = [w.casefold() for w in words(text)]
    return any(found[i : i + len(run)] == list(run) for i in range(len(found) - len(run) + 1))


def clean_reply(text: str) -> str:
    """The completed results as an answer: the first result, its call syntax and end cut."""
    text = text.split(CALL_CLOSE)[0].split(ITEM_SEP)[0].split(FIELD_SEP)[0]
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line.rstrip("?!.,: ").strip()


def from_sentences(
    store: Store,
    question: str,
    generate: Callable[..., Generation],
    queries: Sequence[ReadQuery] = (),
    *,
    me: str = "me",
    on_event: Event | None = None,
) -> tuple[str, list[Passage]]:
    """The answer from the stored sentences and the sentences it cites, or "I do not know".

    ``queries`` is the read the model made (and memory had nothing for); without
    one, the model writes one first, under the read grammar.
    """
    passages = store.relevant_sentences(question, EVIDENCE_K)
    for passage in passages:
        _event(on_event, "sentence", f"{passage.cite} {passage.text}")
    if not any(is_about(question, p) for p in passages):
        return I_DO_NOT_KNOW, []  # no reply could pass the check: the model is not asked
    # Best last, nearest the question: a small model leans on what it read last.
    prompt = prompts.evidence_prompt(question, [p.text for p in reversed(passages)], me=me)
    if not queries:
        call = generate(
            prompt + CALL_OPEN, max_tokens=400, grammar=read_grammar(), stop=(prompts.IM_END,)
        )
        try:
            queries = parse_read_request(call.text)
        except ProtocolError:
            return I_DO_NOT_KNOW, []
    opening = prompt + read_opening(list(queries))
    stop = (prompts.IM_END, CALL_CLOSE, "\n")
    gen = generate(opening, max_tokens=EVIDENCE_TOKENS, stop=stop, grammar=NO_CALL_GRAMMAR)
    reply = clean_reply(gen.text)
    cited = supporting(question, reply, passages)
    if cited or not reply or says_unknown(reply):
        return (in_full(store, question, reply), cited) if cited else (I_DO_NOT_KNOW, [])
    _event(on_event, "unsupported", f"{reply!r}: the sentences do not say it")
    offered = repairs(question, reply, passages)
    if not offered:
        return I_DO_NOT_KNOW, []
    gen = generate(opening, max_tokens=EVIDENCE_TOKENS, stop=stop, grammar=results_grammar(offered))
    repaired = clean_reply(gen.text)
    cited = supporting(question, repaired, passages)
    if not cited:
        return I_DO_NOT_KNOW, []
    _event(on_event, "repaired", f"{reply!r} -> {repaired!r}, as the sentence has it")
    return in_full(store, question, repaired), cited


def in_full(store: Store, question: str, reply: str) -> str:
    """The reply to a "who" question by the full name memory knows for it.

    Notes name someone in full once, then by first name ("Farah is an architect"), so
    the sentence that answers may give only "Farah"; the one entity that short name
    means (:meth:`Store.full_name`) is Farah Qureshi. Any other reply stands.
    """
    if asks(question) not in ("who", "whom"):
        return reply
    name = reply.strip().rstrip(".")
    return reply.replace(name, store.full_name(name), 1)


def _event(on_event: Event | None, kind: str, text: str) -> None:
    if on_event is not None:
        on_event(kind, text)


def facts_say(question: str, reply: str, found: Sequence[str]) -> str:
    """``reply``, or the facts read when it names what they do not ("Napa." after a read
    gave Naples: a small model misspells what it read).

    A reply to a wh-question whose claim (its content words the question does not hold)
    shares no word with the facts read is replaced by them; a reply with no claim, or to
    a yes/no question ("Yes."), stands.
    """
    claim = {w.casefold() for w in claimed(question, reply)}
    known = {w.casefold() for item in found for w in words(item)}
    wh = WH | {"what", "which"}
    if not found or not claim or claim & known or not wh & {w.casefold() for w in words(question)}:
        return reply
    return f"{'; '.join(found)}."


class Held:
    """Streamed answer text, held back until the answer is known.

    The read loop releases it at the end when a read gave a fact, as the answer settled
    (:func:`facts_say`); otherwise it is dropped and the fallback's answer is shown instead.
    """

    def __init__(self, on_text: Callable[[str], None]) -> None:
        self.on_text = on_text
        self.held: list[str] = []
        self.released = False

    def __call__(self, text: str) -> None:
        if self.released:
            self.on_text(text)
        else:
            self.held.append(text)

    def release(self, settled: str | None = None) -> None:
        """Show what was held, or ``settled`` instead when the answer became that."""
        if not self.released:
            self.released = True
            if settled is not None and settled != "".join(self.held).strip():
                self.held = [settled]
            for text in self.held:
                self.on_text(text)
            self.held.clear()


def lstripped(on_text: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """``on_text`` minus the answer's leading whitespace (what follows a read block)."""
    if on_text is None:
        return None
    started = False

    def emit(text: str) -> None:
        nonlocal started
        if not started:
            text = text.lstrip()
            started = bool(text)
        if text:
            on_text(text)

    return emit
