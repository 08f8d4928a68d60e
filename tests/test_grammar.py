"""The GBNF grammars against the formatter and the parser, offline (no model, no llama.cpp).

What the formatter writes, the grammar must accept; what the grammar accepts, the
parser must read, with ``-->`` and ``})`` only where the runtime expects them (it
stops a read at the first ``-->``). :mod:`gbnf` reads the grammar as a regex.
"""

from __future__ import annotations

import re

import pytest
from gbnf import GrammarSyntaxError, accepts, to_regex
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memllm_cli.protocol import (
    CALL_OPEN,
    MAX_TRIPLES_PER_WRITE,
    NO_CALL_GRAMMAR,
    ProtocolError,
    ReadQuery,
    Triple,
    _find,
    escape,
    format_write,
    parse_read_request,
    parse_write,
    read_grammar,
    read_opening,
    results_grammar,
    write_grammar,
)

FAST = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
TRICKY = st.sampled_from(["-", "--", ">", ";", "}", "})", "-->", "\\", "({", '"', "\n"])
names = (
    st.lists(st.one_of(st.text(min_size=1, max_size=4), TRICKY), min_size=1, max_size=4)
    .map("".join)
    .filter(lambda n: "\n" not in n)  # a name is one line (store.text cleans it)
)
triples = st.builds(Triple, names, names, names)
queries = st.one_of(
    st.builds(lambda r, s: ReadQuery(r, subject=s), names, names),
    st.builds(lambda r, o: ReadQuery(r, object=o), names, names),
)
WRITE_OPEN = "({MEM_WRITE-->"


# -- the reader itself --------------------------------------------------------------------------


def test_the_reader_reads_what_the_protocol_writes():
    grammar = 'root ::= "a\\"" x{1,2} [^a-c\\x2D]? ("|" | y)*\nx ::= [b-d]\ny ::= "\\\\"'
    assert accepts(grammar, 'a"b') and accepts(grammar, 'a"cdz|\\|')
    assert not accepts(grammar, 'a"') and not accepts(grammar, 'a"bbb')
    assert not accepts(grammar, 'a"b-') and not accepts(grammar, 'a"bb\\\\a')
    with pytest.raises(GrammarSyntaxError, match="recursive"):
        to_regex('root ::= "a" root?')
    for grammar in (write_grammar(), read_grammar(), write_grammar(["a"], ["b"]), NO_CALL_GRAMMAR):
        re.compile(to_regex(grammar))


# -- the formatter's output is accepted --------------------------------------------------------


@FAST
@given(st.lists(triples, max_size=MAX_TRIPLES_PER_WRITE))
@example([Triple("a-", "b--", "-")])
@example([Triple("x\\", "}", ";")])
@example([Triple("a", "b", "c")] * MAX_TRIPLES_PER_WRITE)
def test_the_write_grammar_accepts_every_formatted_write(items):
    call = format_write(items)
    assert accepts(write_grammar(), call)
    relations = sorted({t.relation for t in items}) or ["employer"]
    entity_names = sorted({t.subject for t in items} | {t.object for t in items}) or ["Ola"]
    assert accepts(write_grammar(relations, entity_names), call)


@FAST
@given(st.lists(queries, min_size=1, max_size=3))
@example([ReadQuery("r-", subject="a--")])
@example([ReadQuery("-", object="-")])
def test_the_read_grammar_accepts_every_formatted_read(qs):
    request = read_opening(qs).removeprefix(CALL_OPEN)
    assert accepts(read_grammar(), request)
    relations = sorted({q.relation for q in qs})
    entity_names = sorted({n for q in qs for n in (q.subject, q.object) if n is not None})
    assert accepts(read_grammar(relations, entity_names), request)


# -- what the grammar accepts is read by the parser ---------------------------------------------

WRITE_REGEX = to_regex(write_grammar())
READ_REGEX = to_regex(read_grammar())


@FAST
@given(st.from_regex(WRITE_REGEX, fullmatch=True))
@example("({MEM_WRITE-->a\\-->>b\\->>\\-})")
def test_every_write_the_grammar_allows_parses(call):
    found = parse_write(call)
    assert len(found) <= MAX_TRIPLES_PER_WRITE
    assert all(t.subject and t.relation and t.object for t in found)
    # '-->' only in the opening, '})' only at the end.
    assert _find(call, "-->") == len(WRITE_OPEN) - 3
    assert _find(call, "-->", len(WRITE_OPEN)) == -1
    assert _find(call, "})") == len(call) - 2
    assert accepts(write_grammar(), format_write(found))


@FAST
@given(st.from_regex(READ_REGEX, fullmatch=True))
@example("MEM_READ(a\\-->>b\\->>)-->")
def test_every_read_the_grammar_allows_parses_and_ends_at_its_first_arrow(call):
    qs = parse_read_request(call)
    assert 1 <= len(qs) <= 3
    assert _find(call, "-->") == len(call) - 3  # the runtime stops at the first one


# -- what the grammar must reject ----------------------------------------------------------------

FIELD = "x" * 80


@pytest.mark.parametrize(
    "call",
    [
        "({MEM_WRITE-->a->>b>>c})",  # a field ending in '-'
        "({MEM_WRITE-->a>>b>>c-})",
        "({MEM_WRITE-->a-->>b>>c})",
        "({MEM_WRITE-->a>>-->>c})",
        "({MEM_WRITE-->a>>b>>})",  # an empty field
        "({MEM_WRITE-->a>>b})",
        "({MEM_WRITE-->a;b>>c>>d})",  # an unescaped separator
        "({MEM_WRITE-->a>b>>c>>d})",
        "({MEM_WRITE-->a}b>>c>>d})",
        "({MEM_WRITE-->a\\b>>c>>d})",  # an escape of a character that needs none
        "({MEM_WRITE-->a>>b>>c}) ",  # anything after the call
        "({MEM_WRITE-->a>>b>>c})({MEM_WRITE-->d>>e>>f})",
        "({MEM_WRITE-->a>>b>>c;})",
        "({MEM_WRITE-->" + ";".join(["a>>b>>c"] * (MAX_TRIPLES_PER_WRITE + 1)) + "})",
        "({MEM_WRITE-->" + FIELD + "y>>b>>c})",  # a field over MAX_FIELD_CHARS
        "({MEM_WRITE-->a\n>>b>>c})",
    ],
)
def test_the_write_grammar_rejects(call):
    assert not accepts(write_grammar(), call)


@pytest.mark.parametrize(
    "call",
    [
        "({MEM_WRITE-->})",
        "({MEM_WRITE-->a\\->>b>>c})",
        "({MEM_WRITE-->a-b>>b>>c\\-})",
        "({MEM_WRITE-->a\\;b>>\\>>>\\}\\\\})",
        "({MEM_WRITE-->" + ";".join(["a>>b>>c"] * MAX_TRIPLES_PER_WRITE) + "})",
        "({MEM_WRITE-->" + FIELD + ">>b>>c})",
    ],
)
def test_the_write_grammar_accepts(call):
    assert accepts(write_grammar(), call)
    parse_write(call)


@pytest.mark.parametrize(
    "call",
    [
        "MEM_READ(a->>r>>)-->",
        "MEM_READ(a-->>r>>)-->",
        "MEM_READ(a>>r->>)-->",
        "MEM_READ(>>r>>b-)-->",
        "MEM_READ(a>>r>>b)-->",  # both names
        "MEM_READ(>>r>>)-->",  # neither
        "MEM_READ(a>>>>)-->",
        "MEM_READ(a>>r>>;b>>r>>;c>>r>>;d>>r>>)-->",  # four queries
        "MEM_READ(a>>r>>)-->x",
    ],
)
def test_the_read_grammar_rejects(call):
    assert not accepts(read_grammar(), call)


def test_restricted_grammars_allow_only_their_names_and_relations():
    grammar = write_grammar(["residence", "a>b;c}"], ["Ingrid Solberg", "x\\y", "end-"])
    call = format_write([Triple("x\\y", "a>b;c}", "end-"), Triple("end-", "residence", "x\\y")])
    assert accepts(grammar, call)
    assert not accepts(grammar, format_write([Triple("Ingrid", "residence", "x\\y")]))
    assert not accepts(grammar, format_write([Triple("x\\y", "employer", "end-")]))
    assert not accepts(grammar, "({MEM_WRITE-->end->>residence>>x\\y})")  # unescaped
    assert escape("end-") == "end\\-"


@pytest.mark.parametrize(("text", "ok"), [("a (b) {c} -> d", True), ("x ({y", False)])
def test_the_no_call_grammar_never_opens_a_call(text, ok):
    assert accepts(NO_CALL_GRAMMAR, text) is ok


def test_the_results_grammar_offers_its_answers_or_none():
    grammar = results_grammar(["Edith Hartley", "Shrewsbury"])
    assert accepts(grammar, "Edith Hartley})") and accepts(grammar, "})")
    assert not accepts(grammar, "Eddie Hartley})")
    assert not accepts(grammar, "Edith Hartley;Shrewsbury})")
    with pytest.raises(ProtocolError):
        results_grammar([])
    with pytest.raises(ProtocolError):
        results_grammar(["a;b"])  # a field that would need escaping
