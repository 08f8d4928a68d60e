"""``facts export --format markdown|graphml|ntriples``: parsed back, names exactly as stored.

GraphML is read with xml.etree, N-Triples with a strict line grammar (the N-Triples
productions for the terms memllm writes), Markdown with markdown-it (the renderer
memllm already reads notes with): every name must come back as it was, whatever
quotes, brackets, backslashes, ampersands or scripts it holds.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

from memllm_cli.errors import InvalidInputError
from memllm_cli.store import Store
from memllm_cli.store.exports import (
    ENTITY_IRI,
    format_problem,
    md_code,
    md_escape,
    nt_literal,
    write_graphml,
    write_markdown,
    write_ntriples,
    xml_escape,
)

G = "{http://graphml.graphdrawing.org/xmlns}"
ODD = 'Tom "T" & Jerry\'s 2 < 3 > 1 *x* [a](b) \\ #1 `c` | ~~s~~ _u_ <3 &amp'
UNICODE = "Åse Ødegård 日本 😀"

# N-Triples (RDF 1.1) for the terms memllm writes: IRIs, and plain string literals.
UCHAR = r"\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}"
IRIREF = rf"<(?:[^\x00-\x20<>\"{{}}|^`\\]|{UCHAR})*>"
LITERAL = rf"\"(?:[^\x22\x5C\x0A\x0D]|\\[tbnrf\"'\\]|{UCHAR})*\""
TRIPLE = re.compile(rf"^({IRIREF}) ({IRIREF}) ({IRIREF}|{LITERAL}) \.$")
ECHAR = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def unescape(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(
        r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)",
        lambda m: chr(int(m[1][1:], 16)) if len(m[1]) > 1 else ECHAR[m[1]],
        body,
    )


def triples(text: str) -> list[tuple[str, str, str]]:
    found = []
    assert text.endswith("\n")
    for line in text[:-1].split("\n"):
        match = TRIPLE.match(line)
        assert match, f"not an N-Triples line: {line!r}"
        found.append(match.groups())
    return found


@pytest.fixture
def memory(store: Store) -> Store:
    with store.batch("add", "test"):
        store.add_fact("Ingrid Solberg", "residence", "Trondheim")
        store.add_fact(ODD, "likes", UNICODE)
        store.add_fact(
            "Ingrid Solberg", "residence", "Oslo", valid_from="2024-03-01T00:00:00+00:00"
        )
        store.add_fact("Ingrid Solberg", "employer", ODD)
        store.add_alias("Ingrid Solberg", "Dr. Solberg")
    assert store.fact(2).subject == ODD  # stored as written: the exports must keep it so
    return store


def write(writer, store: Store, **kw) -> str:
    out = io.StringIO()
    writer(store, out, **kw)
    return out.getvalue()


def test_graphml_parses_with_every_name_and_fact(memory: Store):
    root = ET.fromstring(write(write_graphml, memory))
    keys = {k.get("id"): k.get("attr.name") for k in root.iter(f"{G}key")}
    graph = root.find(f"{G}graph")
    assert graph.get("edgedefault") == "directed"

    def data(element):
        return {keys[d.get("key")]: d.text for d in element.iter(f"{G}data")}

    nodes = {n.get("id"): data(n) for n in graph.iter(f"{G}node")}
    labels = {node["label"] for node in nodes.values()}
    assert labels == {"Ingrid Solberg", "Oslo", ODD, UNICODE}  # Trondheim: superseded
    (ingrid,) = [n for n in nodes.values() if n["label"] == "Ingrid Solberg"]
    assert ingrid["aliases"] == "Dr. Solberg"
    edges = [
        (nodes[e.get("source")]["label"], data(e), nodes[e.get("target")]["label"])
        for e in graph.iter(f"{G}edge")
    ]
    assert sorted((s, d["label"], o) for s, d, o in edges) == sorted(
        [
            ("Ingrid Solberg", "employer", ODD),
            ("Ingrid Solberg", "residence", "Oslo"),
            (ODD, "likes", UNICODE),
        ]
    )
    residence = next(d for _, d, o in edges if o == "Oslo")
    assert residence["pid"] == "P551" and residence["status"] == "current"
    assert residence["valid_from"].startswith("2024-03-01") and residence["sources"] == "manual"
    assert "pid" not in next(d for _, d, _ in edges if d["label"] == "likes")
    networkx = pytest.importorskip("networkx")  # a graph tool reads it too
    graph = networkx.read_graphml(io.StringIO(write(write_graphml, memory)))
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (4, 3)
    assert {d["label"] for _, d in graph.nodes(data=True)} == labels
    # --all: the superseded fact too, with its end.
    everything = ET.fromstring(write(write_graphml, memory, include_all=True))
    statuses = sorted(d.text for d in everything.iter(f"{G}data") if keys[d.get("key")] == "status")
    assert statuses == ["current", "current", "current", "superseded"]


def test_ntriples_lines_parse_with_wikidata_ids_and_labels(memory: Store):
    found = triples(write(write_ntriples, memory))
    label = "<http://www.w3.org/2000/01/rdf-schema#label>"
    names = {s: unescape(o) for s, p, o in found if p == label}
    # employer (P108) and residence (P551) are Wikidata's; "likes" is local, so labelled.
    assert set(names.values()) == {"Ingrid Solberg", "Oslo", ODD, UNICODE, "likes"}
    facts = {(names[s], p, names[o]) for s, p, o in found if not o.startswith('"')}
    facts = {f for f in facts if "altLabel" not in f[1]}
    assert facts == {
        ("Ingrid Solberg", "<http://www.wikidata.org/prop/direct/P551>", "Oslo"),
        ("Ingrid Solberg", "<http://www.wikidata.org/prop/direct/P108>", ODD),
        (ODD, "<urn:memllm:relation:likes>", UNICODE),
    }
    for subject in names:  # entity IRIs carry the name, percent-encoded
        if subject.startswith(f"<{ENTITY_IRI}"):
            assert unquote(subject[len(ENTITY_IRI) + 1 : -1]) == names[subject]
    alt = [(names[s], unescape(o)) for s, p, o in found if p.endswith("altLabel>")]
    assert alt == [("Ingrid Solberg", "Dr. Solberg")]
    # Every name labelled once.
    assert len([1 for _, p, _ in found if p == label]) == len(names)


def test_literal_and_xml_escaping_round_trip_any_text():
    text = 'a "q" \\ b\nc\rd\te\x00f\x1fg\x7f h 😀 \u2028'
    ((_, _, literal),) = triples(f"<urn:x> <urn:y> {nt_literal(text)} .\n")
    assert unescape(literal) == text
    element = ET.fromstring(f"<d>{xml_escape(text)}</d>")
    assert element.text == text.replace("\x00", "\ufffd").replace("\x1f", "\ufffd")
    assert ET.fromstring(f"<d>{xml_escape('x ￾ y')}</d>").text == "x \ufffd y"


def _inline_text(md: MarkdownIt, source: str) -> list[str]:
    """The plain text of each heading and list item, as a renderer would show it."""
    tokens = md.parse(source)
    out = []
    for i, token in enumerate(tokens):
        if token.type == "inline" and tokens[i - 1].type in ("heading_open", "paragraph_open"):
            out.append(
                "".join(c.content for c in token.children if c.type in ("text", "code_inline"))
            )
    return out


def test_markdown_renders_names_as_written(memory: Store):
    md = MarkdownIt("commonmark").enable("strikethrough")
    text = write(write_markdown, memory)
    tokens = md.parse(text)
    headings = [
        tokens[i + 1].children
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag == "h2"
    ]
    shown = ["".join(c.content for c in children) for children in headings]
    assert shown == sorted(["Ingrid Solberg", "Oslo", ODD, UNICODE], key=str.casefold)
    # No HTML, emphasis, code or links were made from the names.
    kinds = {c.type for children in headings for c in children}
    assert kinds == {"text"}
    kinds = {c.type for t in tokens if t.type == "inline" for c in t.children}
    assert not kinds & {"html_inline", "link_open", "em_open"}
    assert "- **residence** (P551): Oslo · since 2024-03-01 · manual" in text
    assert "Also called: Dr. Solberg" in text
    assert "Trondheim" not in text
    history = write(write_markdown, memory, include_all=True)
    assert "- ~~**residence** (P551): Trondheim~~ (superseded) · until 2024-03-01" in history
    assert md_escape("a\nb") == "a b"
    for raw in ("a`b", "`x", "x` ", " y ", "a_b*c.md:3"):
        (span,) = [c for t in md.parse(md_code(raw)) if t.children for c in t.children]
        assert (span.type, span.content) == ("code_inline", raw)


def test_markdown_and_graphml_name_the_file_and_line(cli, scripted_model, tmp_path):
    outputs, _ = scripted_model
    notes = tmp_path / "notes.md"
    notes.write_text("# People\n\nIngrid Solberg lives in Trondheim.\n")
    outputs += ["({MEM_WRITE-->})", "({MEM_WRITE-->Ingrid Solberg>>residence>>Trondheim})"]
    assert cli("ingest", str(notes)).exit_code == 0
    markdown = cli("facts", "export", "--format", "markdown").stdout
    assert f"- **residence** (P551): Trondheim · `{notes.resolve()}:3`" in markdown
    graph = ET.fromstring(cli("facts", "export", "-f", "graphml").stdout)
    assert f"{notes.resolve()}:3" in [d.text for d in graph.iter(f"{G}data")]
    result = cli("facts", "export", "-f", "ntriples", "-o", str(tmp_path / "m.nt"))
    assert result.exit_code == 0 and "exported 1 facts" in result.stderr
    assert len(triples((tmp_path / "m.nt").read_text())) == 3  # 2 labels, 1 fact


def test_export_format_choices(cli, memllm_home):
    cli("facts", "add", "Ingrid Solberg", "residence", "Oslo")
    assert cli("facts", "export", "-f", "csv").stdout == cli("facts", "export", "--csv").stdout
    assert cli("facts", "export").stdout == cli("facts", "export", "-f", "jsonl").stdout
    for args in (["-f", "xml"], ["-f", "markdown", "--csv"], ["-f", "ntriples", "--all"]):
        result = cli("facts", "export", *args)
        assert result.exit_code == 2 and result.stderr.startswith("error: "), args
    assert format_problem("graphml", include_all=True) is None


def test_markdown_pages_link_to_each_other(memory: Store, tmp_path, cli):
    from memllm_cli.store.exports import write_markdown_pages

    with memory.batch("add", "test"):
        memory.add_fact("con", "likes", "a/b: c?")
        memory.add_fact("Con", "likes", "Ingrid Solberg")  # same name folded: one entity
        memory.add_fact("CON.txt", "likes", "x")
    folder = tmp_path / "pages"
    assert write_markdown_pages(memory, folder) == 6
    md = MarkdownIt("commonmark")
    names: dict[str, str] = {}
    for page in folder.iterdir():
        if page.name != "index.md":  # the page's heading: its entity's name
            tokens = md.parse(page.read_text())
            names[page.name] = "".join(c.content for c in tokens[1].children)
    assert sorted(names.values(), key=str.casefold) == sorted(
        ["a/b: c?", "con", "CON.txt", "Ingrid Solberg", "Oslo", ODD, UNICODE, "x"],
        key=str.casefold,
    )
    assert {"con_.md", "CON.txt_.md", "a_b_ c_.md"} <= set(names)
    # Each link opens a page, and its text is that page's name.
    links = 0
    for page in folder.iterdir():
        for token in md.parse(page.read_text()):
            children = token.children or []
            for i, child in enumerate(children):
                if child.type == "link_open":
                    links += 1
                    assert names[unquote(child.attrs["href"])] == children[i + 1].content
    assert links == len(names) + 2 * 6  # the index, and each fact from both its ends
    with pytest.raises(InvalidInputError):
        write_markdown_pages(memory, folder)  # not empty any more
    assert cli("facts", "export", "-f", "graphml", "-o", str(tmp_path)).exit_code == 2
