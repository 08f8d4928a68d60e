"""An invented Obsidian-style notes vault, for the vault benchmark and tests.

People, places, companies, projects and daily notes in nested folders, written the
way vault users write: YAML front matter (aliases, tags, dates, a property that names
a relation), ``[[wikilinks]]`` with and without shown text, ``![[embeds]]``, inline and
tag-only ``#tags``, task items. Beside them, what ingest must leave alone: a
``.obsidian/`` settings folder (with a Markdown file in it), a ``.trash/``, and
``drafts/`` and ``Templates/`` that the vault's ``.memllmignore`` names.

The sentences "First Last lives in City." and "First Last works at Company." are
those the rule model of ``tests/scripted_memllm.py`` writes facts for. Everything
follows from the seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from memllm_cli.datasets.notes import CITIES, COMPANIES, FIRST, LAST

TEAMS = ("Family", "Friends", "Colleagues", "Neighbours", "Club")
_ANIMALS = ("Falcon", "Heron", "Lynx", "Otter", "Puffin", "Raven", "Wren", "Marten", "Ibex", "Orca")
PROJECTS = tuple(f"Project {name}" for name in _ANIMALS)
IGNORE = "drafts/\nTemplates/\n*.excalidraw.md\n"
_LIVES = re.compile(r"lives in \[\[([^\]]+)\]\]")


@dataclass
class Vault:
    """A generated vault: the notes ingest reads, and the files it must leave out."""

    root: Path
    notes: list[Path] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)  # under .obsidian/, .trash/
    ignored: list[Path] = field(default_factory=list)  # what .memllmignore names
    people: list[str] = field(default_factory=list)


def write_vault(root: Path, notes: int = 2000, seed: int = 0) -> Vault:
    """Write a vault of ``notes`` notes under ``root`` (created); return what is where."""
    rng = random.Random(seed)
    vault = Vault(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / ".memllmignore").write_text(IGNORE)
    cities = CITIES[: max(1, notes // 40)]
    companies = COMPANIES[: max(1, notes // 80)]
    projects = PROJECTS[: max(1, notes // 100)]
    fixed = len(cities) + len(companies) + len(projects)
    daily = max((notes - fixed) // 4, 0)
    pairs = [(f, s) for f in FIRST for s in LAST]
    rng.shuffle(pairs)
    people = [f"{f} {s}" for f, s in pairs[: max(notes - fixed - daily, 0)]]
    vault.people = people
    taken: set[str] = set()
    for index, person in enumerate(people):
        first, last = person.split()
        alias = f"{first} {last[0]}."
        aliases = [] if alias in taken else [alias]
        taken.add(alias)
        team = TEAMS[index % len(TEAMS)]
        _note(vault, f"People/{team}/{person}.md", _person(rng, person, aliases, team, people))
    for city in cities:
        _note(vault, f"Places/{city}.md", _place(rng, city, people))
    for company in companies:
        _note(vault, f"Work/Companies/{company}.md", _company(rng, company, people))
    for project in projects:
        _note(vault, f"Work/Projects/{project}.md", _project(rng, project, people))
    start = date(2024, 1, 1)
    for day in range(notes - len(vault.notes)):
        when = start + timedelta(days=day)
        path = f"Journal/{when.year}/{when.month:02d}/{when.isoformat()}.md"
        _note(vault, path, _daily(rng, people))
    _extras(vault)
    return vault


def edit_notes(vault: Vault, count: int, seed: int = 1) -> list[Path]:
    """Edit ``count`` people notes: a new home, and one sentence more. Two changed sentences
    each; the rest of each note is as it was."""
    rng = random.Random(seed)
    people = [p for p in vault.notes if p.parts[-3] == "People"]
    edited = rng.sample(people, count)
    for path in edited:
        text = path.read_text(encoding="utf-8")
        moved = next(c for c in CITIES if f"[[{c}]]" not in text)
        text = _LIVES.sub(f"lives in [[{moved}]]", text, count=1)
        path.write_text(text + f"\n{path.stem} has a new bicycle. #edited\n", encoding="utf-8")
    return edited


def _note(vault: Vault, relative: str, text: str) -> None:
    path = vault.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    vault.notes.append(path)


def _front(**values: str) -> str:
    return "---\n" + "".join(f"{k}: {v}\n" for k, v in values.items()) + "---\n"


def _link(rng: random.Random, name: str) -> str:
    """A wikilink to ``name``: plain, with a shown first word, or to a heading."""
    kind = rng.randrange(3)
    if kind == 0:
        return f"[[{name}]]"
    if kind == 1:
        return f"[[{name}|{name.split()[0]}]]"
    return f"[[{name}#Notes|{name}]]"


def _created(rng: random.Random) -> str:
    return (date(2022, 1, 1) + timedelta(days=rng.randrange(900))).isoformat()


def _person(
    rng: random.Random, person: str, aliases: list[str], team: str, people: list[str]
) -> str:
    city, company, friend = rng.choice(CITIES), rng.choice(COMPANIES), rng.choice(people)
    front = _front(
        aliases="[" + ", ".join(aliases) + "]",
        tags=f"[people, {team.lower()}]",
        created=_created(rng),
        employer=f'"[[{company}]]"',
    )
    first = person.split()[0]
    return (
        front
        + f"# {person}\n\n"
        + f"{person} lives in [[{city}]]. #home\n"
        + f"{person} works at {_link(rng, company)}.\n\n"
        + f"{first} met {_link(rng, friend)} at the {rng.choice(PROJECTS)} kickoff.\n"
        + "#people #contacts\n\n"
        + f"- [ ] call {_link(rng, friend)} about the trip\n"
        + f"- likes hiking near {_link(rng, rng.choice(CITIES))}\n\n"
        + f"![[{person} portrait.png]]\n"
    )


def _place(rng: random.Random, city: str, people: list[str]) -> str:
    return (
        _front(tags="[places]", created=_created(rng))
        + f"# {city}\n\n"
        + f"{_link(rng, rng.choice(people))} grew up in {city}. #travel\n"
        + f"The old town of {city} is worth a visit in spring.\n"
    )


def _company(rng: random.Random, company: str, people: list[str]) -> str:
    return (
        _front(aliases=f"[{company.split()[0]}]", tags="[work, companies]")
        + f"# {company}\n\n"
        + f"{_link(rng, rng.choice(people))} leads the data team at {company}.\n"
        + f"{company} moved its office to {_link(rng, rng.choice(CITIES))} last year. #office\n"
    )


def _project(rng: random.Random, project: str, people: list[str]) -> str:
    lead, designer = rng.choice(people), rng.choice(people)
    return (
        _front(aliases=f"[{project.split()[1]}]", tags="[work/projects, active]", status="active")
        + f"# {project}\n\n"
        + f"## Notes\n\n{_link(rng, lead)} leads {project}.\n"
        + f"The kickoff was in {_link(rng, rng.choice(CITIES))}. #kickoff\n\n"
        + "| who | role |\n|---|---|\n"
        + f"| [[{lead}]] | lead |\n"
        + f"| [[{designer}\\|{designer.split()[0]}]] | design |\n"
    )


def _daily(rng: random.Random, people: list[str]) -> str:
    person, city = rng.choice(people), rng.choice(CITIES)
    return (
        _front(tags="[daily]")
        + f"Lunch with {_link(rng, person)} in {_link(rng, city)}. #meeting\n"
        + f"{rng.choice(people)} lives in {city}.\n\n"
        + "#daily #log\n"
    )


def _extras(vault: Vault) -> None:
    """What ingest must not read: settings, trash, drafts and templates, and non-notes."""
    hidden = {
        ".obsidian/app.json": '{"alwaysUpdateLinks": true}\n',
        ".obsidian/snippets/readme.md": "Obsidian keeps [[settings]] here.\n",
        ".trash/Old note.md": _front(tags="[old]") + "Nils Berg lives in [[Leeds]].\n",
    }
    ignored = {
        "drafts/Unfinished.md": "Half a [[thought]] about Olu Haugen lives in Porto.\n",
        "Templates/Person.md": _front(aliases="[]", tags="[people]") + "# {{title}}\n",
        "Work/Board.excalidraw.md": "---\nexcalidraw-plugin: parsed\n---\n[[drawing]]\n",
    }
    for files, into in ((hidden, vault.hidden), (ignored, vault.ignored)):
        for relative, text in files.items():
            path = vault.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            into.append(path)
    (vault.root / "Places" / "map.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
