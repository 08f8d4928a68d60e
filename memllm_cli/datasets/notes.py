"""Invented personal notes: first-person statements, the facts they state, and questions.

Wikipedia prose teaches the model about third parties; a memllm user writes "My
sister Ada lives in Leeds" and "I started at Acme in 2019". This generator makes
such notes from invented names, mapped to the store's relation labels, for
training (write and read examples) and for the memory-QA evaluation (a Markdown
file plus a JSONL of questions and accepted answers). Everything follows from the
seed; nothing is looked up.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from memllm_cli.protocol import ReadQuery, Triple

FIRST = (
    "Ada",
    "Bjørn",
    "Chen",
    "Dara",
    "Emeka",
    "Freya",
    "Goran",
    "Hana",
    "Idris",
    "Jonas",
    "Kaia",
    "Luca",
    "Mira",
    "Nils",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tove",
    "Uma",
    "Vera",
    "Wiktor",
    "Ximena",
    "Yusuf",
    "Zofia",
    "Amara",
    "Benedikt",
    "Carmen",
    "Dmitri",
    "Elif",
    "Farah",
    "Gideon",
    "Ines",
    "Jae",
    "Kofi",
    "Leila",
    "Matteo",
    "Noor",
    "Otto",
    "Paloma",
    "Rafael",
    "Saoirse",
    "Tariq",
    "Ulla",
    "Viggo",
    "Wen",
)
LAST = (
    "Aalto",
    "Brenner",
    "Castell",
    "Dahl",
    "Eze",
    "Falk",
    "Grieg",
    "Holm",
    "Ibsen",
    "Jovanovic",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quist",
    "Rahman",
    "Solberg",
    "Takahashi",
    "Umarov",
    "Varga",
    "Weiss",
    "Yilmaz",
    "Zeller",
    "Abara",
    "Bianchi",
    "Costa",
    "Duarte",
    "Eriksen",
    "Fischer",
    "Haddad",
)
CITIES = (
    "Trondheim",
    "Leeds",
    "Porto",
    "Kraków",
    "Lyon",
    "Tampere",
    "Graz",
    "Utrecht",
    "Bergen",
    "Malmö",
    "Nantes",
    "Bilbao",
    "Ghent",
    "Turin",
    "Aarhus",
    "Brno",
    "Cork",
    "Kyoto",
    "Pune",
    "Accra",
    "Curitiba",
    "Halifax",
    "Dunedin",
    "Tartu",
)
COMPANIES = (
    "Nordlys Analytics",
    "Brightwater Labs",
    "Kestrel Robotics",
    "Fjordline Energy",
    "Copperleaf Studio",
    "Halcyon Foods",
    "Meridian Freight",
    "Quillstone Press",
    "Tidewater Health",
    "Orbweaver Systems",
    "Larkspur Bank",
    "Granite Peak Games",
)
SCHOOLS = (
    "the University of Tartu",
    "NTNU",
    "Ghent University",
    "the University of Leeds",
    "Politecnico di Torino",
    "Kyoto University",
    "TU Graz",
    "Aarhus University",
)
CLUBS = (
    "the Leeds Chess Club",
    "the Porto Rowing Club",
    "the Graz Choir",
    "Amnesty International",
    "the Green Party",
    "the Tartu Cycling Club",
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
KIN = {
    "sister": "sibling",
    "brother": "sibling",
    "father": "father",
    "mother": "mother",
    "wife": "spouse",
    "husband": "spouse",
    "partner": "spouse",
    "son": "child",
    "daughter": "child",
}
CHATTER = (
    "Need to buy coffee beans before Friday.",
    "The weather was awful all week.",
    "Remember to water the plants.",
    "Finished the second draft today.",
    "Call the dentist about the appointment.",
    "The train was late again.",
    "Watched a documentary about whales.",
    "Back up the laptop this weekend.",
    "Lunch was too long.",
    "Ideas for the garden: tomatoes, basil, beans.",
)


@dataclass
class Note:
    """One sentence, the facts it states, and the questions those facts answer."""

    sentence: str
    triples: list[Triple] = field(default_factory=list)
    questions: list[tuple[str, ReadQuery, list[str]]] = field(default_factory=list)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1950, 2005)}"


def _me_note(rng: random.Random, me: str) -> Note:
    """A first-person statement about the user."""
    kind = rng.randrange(6)
    if kind == 0:
        city = rng.choice(CITIES)
        text = rng.choice(
            ("I live in {c}.", "I moved to {c} last year.", "These days I live in {c}.")
        )
        return Note(
            text.format(c=city),
            [Triple(me, "residence", city)],
            [("Where do I live?", ReadQuery("residence", subject=me), [city])],
        )
    if kind == 1:
        org = rng.choice(COMPANIES)
        text = rng.choice(
            ("I started at {o} in {y}.", "I work for {o}.", "I joined {o} as an engineer.")
        )
        return Note(
            text.format(o=org, y=rng.randint(2005, 2025)),
            [Triple(me, "employer", org)],
            [("Where do I work?", ReadQuery("employer", subject=me), [org])],
        )
    if kind == 2:
        city = rng.choice(CITIES)
        return Note(
            f"I was born in {city}.",
            [Triple(me, "place of birth", city)],
            [("Where was I born?", ReadQuery("place of birth", subject=me), [city])],
        )
    if kind == 3:
        school = rng.choice(SCHOOLS)
        return Note(
            f"I studied at {school}.",
            [Triple(me, "educated at", school)],
            [("Where did I study?", ReadQuery("educated at", subject=me), [school])],
        )
    if kind == 4:
        date = _date(rng)
        return Note(
            f"My birthday is {date}.",
            [Triple(me, "date of birth", date)],
            [("When was I born?", ReadQuery("date of birth", subject=me), [date])],
        )
    club = rng.choice(CLUBS)
    return Note(
        f"I am a member of {club}.",
        [Triple(me, "member of", club)],
        [("What am I a member of?", ReadQuery("member of", subject=me), [club])],
    )


def _kin_note(rng: random.Random, me: str) -> Note:
    """A relative, named, often with a fact about them in the same sentence."""
    kin = rng.choice(sorted(KIN))
    name = _person(rng)
    relation = KIN[kin]
    triples = [Triple(me, relation, name)]
    questions = [(f"Who is my {kin}?", ReadQuery(relation, subject=me), [name])]
    extra = rng.randrange(3)
    if extra == 0:
        city = rng.choice(CITIES)
        text = f"My {kin} {name} lives in {city}."
        triples.append(Triple(name, "residence", city))
        questions.append((f"Where does {name} live?", ReadQuery("residence", subject=name), [city]))
    elif extra == 1:
        org = rng.choice(COMPANIES)
        text = f"My {kin}, {name}, works at {org}."
        triples.append(Triple(name, "employer", org))
        questions.append((f"Where does {name} work?", ReadQuery("employer", subject=name), [org]))
    else:
        text = f"{name} is my {kin}."
    return Note(text, triples, questions)


def _friend_note(rng: random.Random, me: str) -> Note:
    """A third person in the user's life."""
    name = _person(rng)
    kind = rng.randrange(4)
    if kind == 0:
        org, city = rng.choice(COMPANIES), rng.choice(CITIES)
        return Note(
            f"{name} works at {org} in {city}.",
            [Triple(name, "employer", org), Triple(name, "work location", city)],
            [
                (f"Where does {name} work?", ReadQuery("employer", subject=name), [org]),
                (f"Who works at {org}?", ReadQuery("employer", object=org), [name]),
            ],
        )
    if kind == 1:
        city, date = rng.choice(CITIES), _date(rng)
        return Note(
            f"{name} was born on {date} in {city}.",
            [Triple(name, "date of birth", date), Triple(name, "place of birth", city)],
            [
                (f"When was {name} born?", ReadQuery("date of birth", subject=name), [date]),
                (f"Where was {name} born?", ReadQuery("place of birth", subject=name), [city]),
            ],
        )
    if kind == 2:
        school = rng.choice(SCHOOLS)
        return Note(
            f"Met {name} today; she studied at {school}.",
            [Triple(name, "educated at", school)],
            [(f"Where did {name} study?", ReadQuery("educated at", subject=name), [school])],
        )
    spouse = _person(rng)
    return Note(
        f"{name} is married to {spouse}.",
        [Triple(name, "spouse", spouse)],
        [(f"Who is {name} married to?", ReadQuery("spouse", subject=name), [spouse])],
    )


GENERATORS: tuple[Callable[[random.Random, str], Note], ...] = (_me_note, _kin_note, _friend_note)


def notes(rng: random.Random, count: int, me: str = "me", chatter: float = 0.2) -> list[Note]:
    """``count`` notes; about ``chatter`` of them state nothing."""
    out = []
    for _ in range(count):
        if rng.random() < chatter:
            out.append(Note(rng.choice(CHATTER)))
        else:
            out.append(rng.choice(GENERATORS)(rng, me))
    return out


def markdown(title: str, items: list[Note]) -> str:
    """Notes as a Markdown file, a few bullet points per heading."""
    lines = [f"# {title}", ""]
    for i, note in enumerate(items):
        if i % 6 == 0:
            lines += ["", f"## Week {i // 6 + 1}", ""]
        lines.append(f"- {note.sentence}")
    return "\n".join(lines) + "\n"
