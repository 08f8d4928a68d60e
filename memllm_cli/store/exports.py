"""``facts export --format markdown|graphml|ntriples``: the memory for people and other tools.

Read-only views, unlike the JSONL backup of :mod:`~memllm_cli.store.transfer`
(which imports back): nothing here is read again by memllm.

- Markdown: one document, a section per entity (by name) listing its facts (relation,
  its Wikidata P-id, object, validity, the file:line that stated it) and the facts
  that name it as their object; or a folder with a page per entity, linked to each
  other, and an index. Names are escaped so they render as written.
- GraphML: entities are nodes (``label``, ``aliases``), facts are directed edges
  (``label`` = relation, ``pid``, ``status``, ``origin``, ``valid_from``,
  ``valid_to``, ``sources``, ``fact_id``), for Gephi, Cytoscape, yEd or networkx.
- N-Triples: one triple per current fact. The predicate is Wikidata's direct-claim
  property (``wdt:P551``) where the relation has a P-id, else a local IRI; entities
  are local IRIs ``urn:memllm:entity:<name, percent-encoded>`` with an ``rdfs:label``
  (and ``skos:altLabel`` per alias). Plain triples cannot say a fact ended, so this
  format holds current facts only.

Markdown and GraphML hold current facts unless ``include_all``, then every fact
with its status. Facts come oldest first, so the output is the same for the same memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

from memllm_cli.errors import InvalidInputError
from memllm_cli.store.models import ORIGINS, Evidence, Fact, FactFilter
from memllm_cli.store.relations import PID
from memllm_cli.store.store import Store
from memllm_cli.store.transfer import export_all, export_records, write_csv, write_jsonl

FORMATS = ("jsonl", "csv", "markdown", "graphml", "ntriples")
ENTITY_IRI = "urn:memllm:entity:"
RELATION_IRI = "urn:memllm:relation:"
WIKIDATA_DIRECT = "http://www.wikidata.org/prop/direct/"
RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
SKOS_ALT_LABEL = "<http://www.w3.org/2004/02/skos/core#altLabel>"
GRAPHML_NS = "http://graphml.graphdrawing.org/xmlns"


def format_problem(
    fmt: str, *, csv_: bool = False, include_all: bool = False, folder: bool = False
) -> str | None:
    """Why ``facts export`` cannot write ``fmt`` as asked (a usage error), or None.

    ``folder``: the output is a folder, which only Markdown pages go to.
    """
    if fmt not in FORMATS:
        return f"--format is one of {', '.join(FORMATS)}, not {fmt!r}"
    if csv_ and fmt != "csv":
        return f"--csv and --format {fmt} disagree; give one"
    if include_all and fmt == "ntriples":
        return (
            "N-Triples holds current facts only (a plain triple cannot say a fact ended); "
            "use --format graphml --all, or jsonl, for history"
        )
    if folder and fmt != "markdown":
        return f"--output is a folder; {fmt} goes to a file (only markdown writes pages)"
    return None


def write_export(store: Store, out: TextIO, fmt: str, *, include_all: bool = False) -> int:
    """Write the memory in ``fmt`` (see :data:`FORMATS`); the number of records or facts.

    JSONL and CSV are the backup of :mod:`~memllm_cli.store.transfer`: always every fact.
    """
    if fmt == "jsonl":
        return write_jsonl(export_all(store), out)
    if fmt == "csv":
        return write_csv(export_records(store), out)
    if fmt == "ntriples":
        return write_ntriples(store, out)
    writer = write_markdown if fmt == "markdown" else write_graphml
    return writer(store, out, include_all=include_all)


@dataclass(frozen=True)
class _Row:
    """A fact with what the exports show beside it."""

    fact: Fact
    pid: str | None
    sources: list[str]  # "FILE:LINE", "chat" or "manual": where it was stated, in order


def _rows(store: Store, include_all: bool) -> Iterator[_Row]:
    pids = {r.label: r.pid for r in store.relations() if r.pid and PID.match(r.pid)}
    for fact in store.facts(FactFilter(include_all=include_all)):
        sources = list(dict.fromkeys(_source(e) for e in store.evidence(fact.id)))
        yield _Row(fact, pids.get(fact.relation), sources)


def _source(evidence: Evidence) -> str:
    if evidence.source_kind == "document" and evidence.uri:
        return f"{evidence.uri}:{evidence.line_start}" if evidence.line_start else evidence.uri
    return evidence.source_kind or evidence.origin


def _aliases(store: Store) -> dict[str, list[str]]:
    return dict(store.names.aliased())


def _day(stamp: str) -> str:
    """A stored time as a reader wants it: the date, and the time unless it is midnight UTC."""
    if stamp[10:19] in ("", "T00:00:00"):
        return stamp[:10]
    return stamp[:16].replace("T", " ")


# -- Markdown -------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")


def md_escape(text: str) -> str:
    """``text`` as inline Markdown that renders as written (one line)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.splitlines()))


def md_code(text: str) -> str:
    """``text`` as a code span (file names stay readable unescaped), on one line."""
    text = " ".join(text.splitlines())
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


class _Entities:
    """The facts about each entity and the facts naming it, for Markdown."""

    def __init__(self, store: Store, include_all: bool) -> None:
        self.rows = list(_rows(store, include_all))
        self.aliases = _aliases(store)
        self.about: dict[str, list[_Row]] = {}
        self.named_by: dict[str, list[_Row]] = {}
        for row in self.rows:
            self.about.setdefault(row.fact.subject, []).append(row)
            self.named_by.setdefault(row.fact.object, []).append(row)
        self.names = sorted(
            self.about.keys() | self.named_by.keys(), key=lambda n: (n.casefold(), n)
        )
        which = "facts (history included)" if include_all else "current facts"
        self.summary = f"{len(self.rows)} {which} about {len(self.names)} entities."

    def section(self, name: str, heading: str, link: Callable[[str], str]) -> str:
        """``name``'s section under ``heading`` (``#`` or ``##``); ``link`` renders a name."""
        lines = [f"{heading} {md_escape(name)}", ""]
        if self.aliases.get(name):
            lines += [f"Also called: {', '.join(md_escape(a) for a in self.aliases[name])}", ""]
        lines += [f"- {_md_fact(row, link(row.fact.object))}" for row in self.about.get(name, [])]
        if self.named_by.get(name):
            lines += ([""] if self.about.get(name) else []) + ["Named by:", ""]
            for row in self.named_by[name]:
                lines.append(f"- {link(row.fact.subject)}: {_md_fact(row, md_escape(name))}")
        return "\n".join(lines) + "\n"


def write_markdown(store: Store, out: TextIO, *, include_all: bool = False) -> int:
    """One section per entity: its facts, then the facts naming it. Returns the fact count."""
    entities = _Entities(store, include_all)
    out.write(f"# Memory\n\n{entities.summary}\n")
    for name in entities.names:
        out.write("\n" + entities.section(name, "##", md_escape))
    return len(entities.rows)


def write_markdown_pages(store: Store, folder: Path, *, include_all: bool = False) -> int:
    """One page per entity in ``folder`` (new or empty), linked to each other, and an
    ``index.md``. File names are the entity names made safe on every system."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInputError(f"{folder} is not an empty folder; pages go only in an empty one")
    entities = _Entities(store, include_all)
    files: dict[str, str] = {}
    taken = {"index"}
    for name in entities.names:
        stem = _file_stem(name)
        base, n = stem, 1
        while stem.casefold() in taken:  # names a case-blind file system would merge
            n += 1
            stem = f"{base} ({n})"
        taken.add(stem.casefold())
        files[name] = stem + ".md"

    def link(name: str) -> str:
        return f"[{md_escape(name)}](<{files[name]}>)"

    folder.mkdir(parents=True, exist_ok=True)
    for name, file in files.items():
        (folder / file).write_text(entities.section(name, "#", link), encoding="utf-8")
    index = [f"# Memory\n\n{entities.summary}\n\n", *(f"- {link(n)}\n" for n in files)]
    (folder / "index.md").write_text("".join(index), encoding="utf-8")
    return len(entities.rows)


_UNSAFE_FILE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|#\[\]^]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)


def _file_stem(name: str) -> str:
    """A file name for ``name``: no separators or characters some system refuses, not
    hidden, not reserved on Windows, at most 100 characters."""
    stem = _UNSAFE_FILE.sub("_", name).strip(" .")[:100].strip(" .") or "_"
    return stem + "_" if _RESERVED.match(stem) else stem


def _md_fact(row: _Row, obj: str) -> str:
    fact = row.fact
    relation = f"**{md_escape(fact.relation)}**" + (f" ({row.pid})" if row.pid else "")
    text = f"{relation}: {obj}"
    if fact.status != "current":
        text = f"~~{text}~~ ({fact.status})"
    when = []
    if fact.valid_from and fact.valid_from != fact.created_at:
        when.append(f"since {_day(fact.valid_from)}")
    if fact.valid_to:
        when.append(f"until {_day(fact.valid_to)}")
    parts = [text, *when]
    if row.sources:
        parts.append(", ".join(s if s in ORIGINS else md_code(s) for s in row.sources))
    return " · ".join(parts)


# -- GraphML --------------------------------------------------------------------------------------

# XML 1.0 has no way to write these characters at all: they become U+FFFD.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NODE_KEYS = (("label", "string"), ("aliases", "string"))
_EDGE_KEYS = (
    ("label", "string"),
    ("pid", "string"),
    ("status", "string"),
    ("origin", "string"),
    ("valid_from", "string"),
    ("valid_to", "string"),
    ("sources", "string"),
    ("fact_id", "long"),
)


def xml_escape(text: str) -> str:
    """``text`` as XML character data. A CR is written as a reference: a parser would
    read a raw one as LF."""
    text = _XML_INVALID.sub("\ufffd", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", "&#13;")


def write_graphml(store: Store, out: TextIO, *, include_all: bool = False) -> int:
    """Entities as nodes, facts as directed edges with their attributes. Returns the fact count."""
    rows = list(_rows(store, include_all))
    aliases = _aliases(store)
    nodes: dict[str, str] = {}
    for row in rows:
        for name in (row.fact.subject, row.fact.object):
            nodes.setdefault(name, f"n{len(nodes)}")
    out.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<graphml xmlns="{GRAPHML_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{GRAPHML_NS} {GRAPHML_NS}/1.0/graphml.xsd">\n'
    )
    for kind, keys in (("node", _NODE_KEYS), ("edge", _EDGE_KEYS)):
        for name, kind_of in keys:
            out.write(
                f'  <key id="{kind[0]}_{name}" for="{kind}" attr.name="{name}" '
                f'attr.type="{kind_of}"/>\n'
            )
    out.write('  <graph id="memllm" edgedefault="directed">\n')
    for name, node in nodes.items():
        data = {"label": name, "aliases": "; ".join(aliases.get(name, []))}
        out.write(f'    <node id="{node}">{_data("n", data)}</node>\n')
    for row in rows:
        fact = row.fact
        data = {
            "label": fact.relation,
            "pid": row.pid,
            "status": fact.status,
            "origin": fact.origin,
            "valid_from": fact.valid_from,
            "valid_to": fact.valid_to,
            "sources": "; ".join(row.sources),
            "fact_id": str(fact.id),
        }
        out.write(
            f'    <edge id="f{fact.id}" source="{nodes[fact.subject]}" '
            f'target="{nodes[fact.object]}">{_data("e", data)}</edge>\n'
        )
    out.write("  </graph>\n</graphml>\n")
    return len(rows)


def _data(prefix: str, values: dict[str, str | None]) -> str:
    return "".join(
        f'<data key="{prefix}_{key}">{xml_escape(value)}</data>'
        for key, value in values.items()
        if value
    )


# -- N-Triples ------------------------------------------------------------------------------------

# As RDF 1.2 canonical N-Triples: these as ECHAR, other controls as \\uXXXX, the rest as is,
# but for the line breaks Unicode has besides CR and LF, escaped so that tools that split
# lines on them (Python's splitlines) still see one triple a line.
_NT_ECHAR = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"'}
_NT_ECHAR["\\"] = "\\\\"
_NT_UCHAR = re.compile("[\x00-\x07\x0b\x0e-\x1f\x7f\x85\u2028\u2029]")


def nt_literal(text: str) -> str:
    """``text`` as an N-Triples string literal, quotes included."""
    escaped = "".join(_NT_ECHAR.get(c, c) for c in text)
    escaped = _NT_UCHAR.sub(lambda m: f"\\u{ord(m.group()):04X}", escaped)
    # A lone surrogate cannot be written as UTF-8: say so instead of failing the export.
    return '"' + escaped.encode("utf-8", "replace").decode("utf-8") + '"'


def entity_iri(name: str) -> str:
    return f"<{ENTITY_IRI}{quote(name, safe='')}>"


def relation_iri(label: str, pid: str | None) -> str:
    if pid:
        return f"<{WIKIDATA_DIRECT}{pid}>"
    return f"<{RELATION_IRI}{quote(label, safe='')}>"


def write_ntriples(store: Store, out: TextIO) -> int:
    """One triple per current fact, each name labelled where it first appears; the fact count."""
    aliases = _aliases(store)
    labelled: set[str] = set()
    count = 0
    for row in _rows(store, include_all=False):
        fact = row.fact
        predicate = relation_iri(fact.relation, row.pid)
        for iri, label, alts in (
            (entity_iri(fact.subject), fact.subject, aliases.get(fact.subject, [])),
            (entity_iri(fact.object), fact.object, aliases.get(fact.object, [])),
            (predicate, fact.relation, []),
        ):
            if iri in labelled or (iri == predicate and row.pid):
                continue
            labelled.add(iri)
            out.write(f"{iri} {RDFS_LABEL} {nt_literal(label)} .\n")
            for alt in alts:
                out.write(f"{iri} {SKOS_ALT_LABEL} {nt_literal(alt)} .\n")
        out.write(f"{entity_iri(fact.subject)} {predicate} {entity_iri(fact.object)} .\n")
        count += 1
    return count
