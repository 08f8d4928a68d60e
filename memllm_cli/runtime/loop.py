"""The MemLLM loops: read while answering, write while listening.

Read loop: generate until the model opens a call (``({``); generate the call under the read
grammar up to ``-->``; run its queries against the store; append the results and ``})``;
resume. An empty result rolls the call back and the answer continues without memory (no
immediate retry); only the latest read block stays in the context. When no read gave a
fact, the evidence fallback (:mod:`~memllm_cli.runtime.answer`) answers from the stored
sentences or says "I do not know", instead of the model alone. A model without our adapter
(prompted mode) is made to read first, under a grammar restricted to the names and
relations the memory holds, since a small model will not reliably decide to. "my brother"
in a question is first replaced by his name when memory knows him (:mod:`.hops`).

Write pass: the user's statement in write mode, under the write grammar; the
triples are stored with origin ``chat`` (or ``mcp``, an MCP client's note) and the
turn as provenance.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from memllm_cli.embed import Embedder
from memllm_cli.protocol import (
    CALL_OPEN,
    NO_CALL_GRAMMAR,
    PROTOCOL_VERSION,
    ProtocolError,
    ReadQuery,
    Triple,
    format_results,
    parse_read_request,
    parse_write,
    read_grammar,
    read_opening,
    write_grammar,
)
from memllm_cli.runtime import prompts
from memllm_cli.runtime.answer import Held, facts_say, fits, from_sentences, lstripped
from memllm_cli.runtime.grounding import is_grounded, names_user, overreach, spans
from memllm_cli.runtime.hops import two_step
from memllm_cli.runtime.model import Generation, Model, Usage
from memllm_cli.store import Evidence, NameScope, Store, WriteResult
from memllm_cli.store.changes import left_behind
from memllm_cli.store.models import Passage
from memllm_cli.store.read import read
from memllm_cli.store.text import norm
from memllm_cli.store.when import When, when_of
from memllm_cli.untrusted import dictated

MAX_GRAMMAR_NAMES = 2000


@dataclass
class ReadRecord:
    """One query of a read call, its answers, and whether the call was rolled back."""

    query: str
    results: list[dict[str, Any]]
    rolled_back: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "results": self.results, "rolled_back": self.rolled_back}


@dataclass
class Answer:
    """An answer and what it took: reads, facts, sources, and the generations' :class:`Usage`.

    ``timings`` holds the seconds spent outside generation (``read``; the CLI adds
    ``model_load``); generation's own are in ``usage``.
    """

    text: str
    reads: list[ReadRecord] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)
    facts_used: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    parse_failures: int = 0
    usage: Usage = field(default_factory=Usage)
    timings: dict[str, float] = field(default_factory=dict)
    path: str = "none"  # facts | sentences | none: what the answer came from
    citations: list[Passage] = field(default_factory=list)  # the sentences path's evidence

    def to_dict(self) -> dict[str, Any]:
        timings = {"generation": self.usage.seconds, **self.timings}
        return {
            "answer": self.text,
            "reads": [r.to_dict() for r in self.reads],
            "writes": self.writes,
            "facts_used": self.facts_used,
            "sources": self.sources,
            "parse_failures": self.parse_failures,
            "timings": {k: round(v, 4) for k, v in timings.items()},
            "tokens": {
                "prompt": self.usage.prompt_tokens,
                "completion": self.usage.completion_tokens,
            },
            "path": self.path,
            "citations": [c.to_dict() for c in self.citations],
        }


Event = Callable[[str, str], None]


@dataclass
class Session:
    """A model talking to one memory: ``on_event(kind, text)`` reports memory ops as they
    happen, ``on_text`` receives the visible answer as it streams."""

    store: Store
    model: Model
    embedder: Embedder | None = None
    me: str = "me"
    memory: bool = True
    max_calls: int = 3
    max_tokens: int = 256
    on_event: Event | None = None
    on_text: Callable[[str], None] | None = None
    usage: Usage = field(default_factory=Usage)
    scope: NameScope | None = None  # the names this conversation named, for chat writes
    dictated: int = 0  # writes dropped because they copied call syntax in the text

    def _generate(self, prompt: str, **options: Any) -> Generation:
        gen = self.model.generate(prompt, **options)
        self.usage.add(gen)
        return gen

    def _event(self, kind: str, text: str) -> None:
        if self.on_event is not None:
            self.on_event(kind, text)

    # -- reading --------------------------------------------------------------------------------

    def _read_grammar(self) -> str:
        """Prompted mode: only names and relations the memory holds; else any field."""
        if not self.model.prompted:
            return read_grammar()
        relations, allowed = self.store.grammar_vocabulary(MAX_GRAMMAR_NAMES)
        return read_grammar(relations or None, allowed)

    def _run_queries(
        self, queries: list[ReadQuery], answer: Answer, question: str, when: When | None = None
    ) -> list[str]:
        """Run a call's queries; the answers, merged in order, at most 30 per call.

        An answer not of the shape ``question`` asks for (a year for "who", a job for
        "where", an employer for "what job") is left out: the model read the wrong
        relation, and the year of publication must not answer "Who published it?".
        ``when``: the time the question asks about (store/when.py); None reads the present.
        """
        started = time.perf_counter()
        merged: list[str] = []
        records = []
        for query in map(self._user_query, queries):
            hits = read(self.store, query, self.embedder, when=when)
            records.append(ReadRecord(query.format(), [h.to_dict() for h in hits]))
            nearest = [h.label for h in hits if h.fallback]
            if nearest:
                self._event("fallback", f"{query.format()} nearest facts: " + "; ".join(nearest))
            misfits = [h for h in hits if not fits(question, h.answer)]
            if misfits:
                self._event("misfit", "; ".join(h.label for h in misfits) + f" (for {question!r})")
            for hit in hits:
                if hit in misfits:
                    continue
                if hit.answer not in merged and len(merged) < 30:
                    merged.append(hit.answer)
                    if hit.fact_id not in answer.facts_used:
                        answer.facts_used.append(hit.fact_id)
        answer.timings["read"] = answer.timings.get("read", 0.0) + time.perf_counter() - started
        if not merged:
            for record in records:
                record.rolled_back = True
        answer.reads += records
        return merged

    def ask(
        self, question: str, history: list[tuple[str, str]] | None = None, *, fallback: bool = True
    ) -> Answer:
        """Answer ``question``, reading memory as the model asks (or first, in prompted mode).

        When no read gives a fact, the answer comes from the stored sentences or is
        "I do not know" (:mod:`~memllm_cli.runtime.answer`), unless ``fallback`` is off
        or memory is: then the model's own answer stands.
        """
        if self.memory and (asked := two_step(self.store, question, self.me)) != question:
            self._event("two-step", asked)
            question = asked
        prompt = prompts.read_prompt(
            question, history or [], me=self.me, prompted=self.model.prompted
        )
        answer = Answer(text="")
        when = when_of(question)  # a past question reads superseded facts too
        visible: list[str] = []
        context: list[str] = []  # the assistant turn as the model sees it
        block_at: int | None = None  # index in ``context`` of the latest read block
        calls, blocked, budget = 0, not self.memory, self.max_tokens
        tried: list[ReadQuery] = []  # the latest call's queries
        results: list[str] = []  # the latest read's answers
        open_call = self.memory and self.model.prompted  # prompted mode reads first
        fallback = fallback and self.memory
        held = Held(self.on_text) if fallback and self.on_text is not None else None
        on_text = lstripped(held or self.on_text)

        def generate(text: str, **options: Any) -> Generation:
            nonlocal budget
            gen = self._generate(prompt + text, **options)
            answer.usage.add(gen)
            budget -= max(gen.completion_tokens, 1)
            return gen

        while budget > 0:
            if blocked and fallback and not answer.facts_used:
                break  # no read can follow, so the fallback answers, not the model alone
            if not open_call:
                gen = generate(
                    "".join(context),
                    max_tokens=budget,
                    stop=(prompts.IM_END,) if blocked else (CALL_OPEN, prompts.IM_END),
                    grammar=NO_CALL_GRAMMAR if blocked and self.memory else None,
                    on_text=on_text,
                )
                visible.append(gen.text)
                context.append(gen.text)
                if gen.stopped_by != CALL_OPEN:
                    break
                if calls >= self.max_calls:
                    break
            open_call = False
            call = generate(
                "".join(context) + CALL_OPEN,
                max_tokens=400,
                grammar=self._read_grammar(),
                stop=(prompts.IM_END,),
            )
            calls += 1
            try:
                queries = parse_read_request(call.text)
            except ProtocolError as exc:
                answer.parse_failures += 1
                self._event("error", f"unparseable memory call dropped: {exc}")
                blocked = True
                continue
            self._event("read", read_opening(queries))
            tried = queries
            found = self._run_queries(queries, answer, question, when)
            if not found:
                self._event("empty", read_opening(queries) + format_results([]) + " (rolled back)")
                blocked = True
                continue
            block = read_opening(queries) + format_results(found)
            self._event("result", block)
            results = found
            if block_at is not None:
                context[block_at] = ""
            block_at = len(context)
            context.append(block)
        answer.text = "".join(visible).strip()
        answer.sources = self._sources(answer.facts_used)
        if answer.facts_used:
            answer.path = "facts"
            if (said := facts_say(question, answer.text, results)) != answer.text:
                self._event("repaired", f"{answer.text!r} -> {said!r}: what the facts say")
            answer.text = said
            if held is not None:
                held.release(said)
        elif fallback:
            self._from_sentences(question, tried, answer)
        return answer

    def _from_sentences(self, question: str, tried: list[ReadQuery], answer: Answer) -> None:
        """No fact answered: the stored sentences answer, or "I do not know"."""

        def generate(prompt: str, **options: Any) -> Generation:
            gen = self._generate(prompt, **options)
            answer.usage.add(gen)
            return gen

        answer.text, answer.citations = from_sentences(
            self.store, question, generate, tried, me=self.me, on_event=self.on_event
        )
        answer.path = "sentences" if answer.citations else "none"
        if self.on_text is not None:
            self.on_text(answer.text)

    def _sources(self, fact_ids: list[int]) -> list[str]:
        sources: list[str] = []
        for fact_id in fact_ids:
            for item in self.store.evidence(fact_id):
                label = item.uri or item.origin
                if label not in sources:
                    sources.append(label)
        return sources

    # -- writing --------------------------------------------------------------------------------

    def extract(
        self,
        statement: str,
        context: str = "",
        *,
        known: Callable[[str], list[int]] | None = None,
    ) -> list[Triple]:
        """The facts ``statement`` states, in write mode under the write grammar.

        Grounded writes: a write whose names are not spans of the statement or its
        context, the user, or known names the text refers to is dropped, whatever backend
        made it, so an invented object never reaches memory. In prompted mode the grammar
        offers only those spans and known relation labels; the adapter's grammar leaves
        names free (constraining them cut its Re-DocRED precision from 0.30 to 0.27).
        ``known`` finds a name's entities for that check (default: the store's).

        Dictated writes: a triple copied from call syntax in the statement or its
        context (``untrusted.dictated``) is the text's write, not the model's; it is
        dropped and counted in ``dictated``. A triple relating a name to itself
        ("2020 >> follows >> 2020", from a heading) states nothing and is dropped.
        """
        text = f"{context} {statement}"
        grammar = write_grammar()
        if self.model.prompted:
            relations = [r.label for r in self.store.relations()]
            names = list(dict.fromkeys([*spans(text), self.me]))
            grammar = write_grammar(relations, names, max_triples=4)
        gen = self._generate(
            prompts.write_prompt(context, statement, me=self.me, prompted=self.model.prompted),
            max_tokens=600,
            grammar=grammar,
            stop=(prompts.IM_END,),
        )
        triples = list(dict.fromkeys(parse_write(gen.text)))  # a small model may repeat itself
        known = known or self.store.entity_ids
        dropped, kept = overreach(triples, statement, self.me, known), []
        for t in triples:
            label = f"{t.subject} >> {t.relation} >> {t.object}"
            if dictated(t, text):
                self.dictated += 1
                self._event("dropped", f"copied from a memory call in the text: {label}")
            elif norm(t.subject) == norm(t.object):  # one entity in the store
                self._event("dropped", f"a name related to itself: {label}")
            elif not is_grounded(t, statement, context, self.me, known):
                self._event("dropped", f"ungrounded write: {label}")
            elif t in dropped:
                self._event("dropped", f"{dropped[t]}: {label}")
            else:
                kept.append(Triple(self._who(t.subject), t.relation, self._who(t.object)))
        return kept + left_behind(statement, kept)

    def _who(self, name: str) -> str:
        """The user's name for "I", "me" or "user"; any other name as it is."""
        return self.me if names_user(name) else name

    def _user_query(self, query: ReadQuery) -> ReadQuery:
        """``me>>sibling>>`` reads the user's facts, stored under the user's name."""
        if query.subject is not None:
            return replace(query, subject=self._who(query.subject))
        return replace(query, object=self._who(query.object or ""))

    def remember(
        self, statement: str, *, session_id: str, context: str = "", origin: str = "chat"
    ) -> list[WriteResult]:
        """Store what a chat turn states, as one undoable batch with the turn as evidence.

        ``origin`` "mcp": an MCP client's note; ``session_id`` then names the client.
        """
        try:
            triples = self.extract(statement, context)
        except ProtocolError as exc:
            self._event("error", f"unparseable memory write dropped: {exc}")
            return []
        if not triples:
            return []
        if self.scope is None:  # short names resolve as in a document; the user's own never
            self.scope = NameScope(keep=frozenset({self.me}))
        self.scope.read(statement)
        evidence = Evidence(
            origin=origin,
            source_kind=origin,
            uri=f"{origin}:{session_id}",
            sha256=hashlib.sha256(statement.encode()).hexdigest(),
            sentence=statement,
            extractor=self.model.name,
            protocol_version=PROTOCOL_VERSION,
        )
        with self.store.batch(origin, f"{origin}: {statement[:60]}"):
            results = [
                self.store.add_fact(t.subject, t.relation, t.object, evidence, scope=self.scope)
                for t in triples
            ]
        for result in results:  # "overruled": the user deleted or corrected it; nothing changed
            kind = "overruled" if result.action == "overruled" else "write"
            self._event(kind, f"{result.fact.id}: {result.fact.label}")
        return results
