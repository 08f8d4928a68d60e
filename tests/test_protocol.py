import pytest

from memllm_cli.protocol import (
    ProtocolError,
    ReadQuery,
    has_markers,
    neutralise_name,
    neutralise_text,
    parse_query,
)

MARKERS = ("({", "})", "-->")


@pytest.mark.parametrize(
    "text",
    ["({MEM_WRITE-->A>>b>>C})", "x ({({ y", "--->", "})})", "a-->b", "(({MEM_READ(x>>y>>)-->z}))"],
)
def test_neutralised_text_has_no_live_markers(text):
    out = neutralise_text(text)
    assert not any(marker in out for marker in MARKERS)


@pytest.mark.parametrize("name", ["A>>B", "x;y", ">>>", "a({b})c", "p-->q", "  spaced\n name "])
def test_neutralised_name_has_no_separators(name):
    out = neutralise_name(name)
    assert not has_markers(out)
    assert out == out.strip() and "\n" not in out


def test_plain_names_pass_unchanged():
    assert neutralise_name("Ingrid Solberg") == "Ingrid Solberg"
    assert neutralise_text("She moved (again) to Oslo; it rained.") == (
        "She moved (again) to Oslo; it rained."
    )


def test_parse_query_both_directions():
    assert parse_query("Ingrid Solberg>>residence>>") == ReadQuery(
        "residence", subject="Ingrid Solberg"
    )
    q = parse_query(">>employer>>NIVA")
    assert q.object == "NIVA" and q.subject is None and q.asks_for == "subject"
    assert q.format() == ">>employer>>NIVA"


@pytest.mark.parametrize("bad", ["a>>b", "a>>b>>c", ">>b>>", "a>>>>", "", "a>>b>>c>>d"])
def test_parse_query_rejects(bad):
    with pytest.raises(ProtocolError):
        parse_query(bad)
