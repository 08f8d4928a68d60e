"""Invented note files in the shapes people keep: what the write and read examples of real notes
are made of.

:mod:`~memllm_cli.datasets.notes` makes single self-contained statements. Real notes are
files: a heading, then a person named in full and afterwards by first name or "she";
"GP: Dr. Rao" lines and table rows; a partner named in passing; moves and job changes;
headings and chatter that state nothing. A model trained only on self-contained
statements writes nothing for "Sofia moved to Milan." two lines after "Sofia Marchetti
lives in Turin", and a flattened "sibling" for a brother-in-law. Here every document is
a list of lines, each with the facts it states, naming people as Re-DocRED's examples
do (:func:`~memllm_cli.train.data.write_example`'s callers): as the sentence names them
("Sofia"; the store links the short name to Sofia Marchetti), and for "she" by the
full name the context the ingest pipeline gives the model
(:func:`~memllm_cli.runtime.prompts.next_context`) holds; with neither, not at all.
Everything follows from the seed; the names are invented.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from memllm_cli.datasets import notes
from memllm_cli.datasets.notes import CITIES, COMPANIES, FIRST, LAST, MONTHS, SCHOOLS
from memllm_cli.protocol import ReadQuery, Triple
from memllm_cli.runtime.prompts import next_context
from memllm_cli.store.changes import was_left

# The roles a person holds for the user; each is also the relation label ("me >> GP >> ...").
ROLES = (
    "GP",
    "dentist",
    "manager",
    "solicitor",
    "accountant",
    "landlord",
    "plumber",
    "electrician",
    "mentor",
    "piano teacher",
    "physiotherapist",
    "vet",
)
# Kin by the word a note uses -> the relation label: notes.py's Wikidata ones, then the
# words themselves where Wikidata has no relation for them.
KIN = {
    **notes.KIN,
    "dad": "father",
    "mum": "mother",
    **{
        word: word
        for word in (
            "grandmother",
            "grandfather",
            "aunt",
            "uncle",
            "cousin",
            "niece",
            "nephew",
            "brother-in-law",
            "sister-in-law",
            "mother-in-law",
            "father-in-law",
        )
    },
}
FEMALE = frozenset(
    [
        "sister",
        "mother",
        "mum",
        "wife",
        "daughter",
        "grandmother",
        "aunt",
        "niece",
        "sister-in-law",
        "mother-in-law",
    ]
)
JOBS = (
    "nurse",
    "architect",
    "teacher",
    "software developer",
    "translator",
    "accountant",
    "chef",
    "firefighter",
    "pharmacist",
    "journalist",
    "civil engineer",
    "librarian",
)
TOPICS = ("Family", "Work", "Friends", "Contacts", "Team", "Household", "People", "Misc")
CHATTER = (
    "Quiet day.",
    "Not much to report.",
    "Rain all week.",
    "Long meeting, nothing decided.",
    "Need to renew the passport.",
    "Booked the dentist for next month.",
    "Started a new notebook.",
    "Too tired to write much.",
    "Good coffee at the new place on the corner.",
    "Reminder: pay the council tax.",
    "The garden needs weeding.",
    "Finally fixed the bike.",
)
PAST_HINT = ("{n} turned 91 last month.", "{n} sounded cheerful.", "{n} sends love to all of us.")
ME = "\x00me"  # stands for the user in a fact until the document is assembled

Ref = object  # a Person, ME, or a literal name


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    she: bool

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"

    def pronoun(self, possessive: bool = False) -> str:
        if possessive:
            return "Her" if self.she else "His"
        return "She" if self.she else "He"


@dataclass
class Line:
    """One sentence of a note file and the facts a reader of the whole file takes from it."""

    sentence: str
    context: str  # what the ingest pipeline shows the model before the sentence
    triples: list[Triple] = field(default_factory=list)
    questions: list[tuple[str, ReadQuery, list[str]]] = field(default_factory=list)


@dataclass
class _Draft:
    """A line before naming: facts over :class:`Person` references, and how the line names
    its person (``said``: the first name, the full name, or a pronoun)."""

    sentence: str
    facts: list[tuple[Ref, str, Ref]] = field(default_factory=list)
    said: dict[Person, str] = field(default_factory=dict)


def _person(rng: random.Random) -> Person:
    return Person(rng.choice(FIRST), rng.choice(LAST), rng.random() < 0.5)


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _title(role: str) -> str:
    return "Dr. " if role in ("GP", "dentist") else ""


def _about(rng: random.Random, p: Person) -> list[_Draft]:
    """One to three follow-up lines about ``p``, naming them by first name or pronoun."""
    city, other = rng.sample(CITIES, 2)
    org, org2 = rng.sample(COMPANIES, 2)
    job, school, partner = rng.choice(JOBS), rng.choice(SCHOOLS), _person(rng)
    word = rng.choice(("partner", "husband" if p.she else "wife"))
    options = [
        ("{n} lives in {city}.", [(p, "residence", city)]),
        ("{n} was born in {city}.", [(p, "place of birth", city)]),
        ("{n} studied at {school}.", [(p, "educated at", school)]),
        ("{n} works as {a_job} at {org}.", [(p, "occupation", job), (p, "employer", org)]),
        ("{n} is {a_job}.", [(p, "occupation", job)]),
        ("{n} is based in {city}.", [(p, "residence", city)]),
        ("{n} moved to {city}.", [(p, "residence", city)]),
        ("{n} moved from {other} to {city}.", [(p, "residence", other), (p, "residence", city)]),
        ("{n} left {org} and joined {org2}.", [(p, "employer", org), (p, "employer", org2)]),
        ("{n} now works at {org2}.", [(p, "employer", org2)]),
        (
            "{poss} {word}, {partner}, works at {org}.",
            [(p, KIN[word], partner.full), (partner.full, "employer", org)],
        ),
        (rng.choice(PAST_HINT), []),
    ]
    drafts = []
    for text, facts in rng.sample(options, rng.randint(1, 3)):
        said = rng.choice((p.first, p.first, p.pronoun(), p.full))
        poss = p.pronoun(possessive=True) if said == p.pronoun() else f"{said}'s"
        sentence = text.format(
            n=said,
            poss=poss,
            city=city,
            other=other,
            org=org,
            org2=org2,
            a_job=_a(job),
            school=school,
            partner=partner.full,
            word=word,
        )
        drafts.append(_Draft(sentence, list(facts), {p: said}))
    return drafts


def _person_block(rng: random.Random) -> list[_Draft]:
    """A person introduced in full, then named by first name or pronoun."""
    kin, role = rng.choice(sorted(KIN)), rng.choice(ROLES)
    p = Person(rng.choice(FIRST), rng.choice(LAST), kin in FEMALE)
    city, org = rng.choice(CITIES), rng.choice(COMPANIES)
    intro = rng.choice(
        (
            _Draft(f"Lunch with {p.full}."),
            _Draft(f"Met {p.full} at the conference in {city}."),
            _Draft(f"{p.full} works at {org}.", [(p, "employer", org)]),
            _Draft(
                f"Called my {kin}, {p.full}, who still lives in {city}.",
                [(ME, KIN[kin], p), (p, "residence", city)],
            ),
            _Draft(f"My {role} is {_title(role)}{p.full}.", [(ME, role, p)]),
        )
    )
    intro.said = {p: p.full}
    return [intro, *_about(rng, p)]


def _user_line(rng: random.Random) -> _Draft:
    """A line about the user's people: role lines, kin with a fact, table rows, a move."""
    p = _person(rng)
    role, kin = rng.choice(ROLES), rng.choice(sorted(KIN))
    city, other = rng.sample(CITIES, 2)
    org, job = rng.choice(COMPANIES), rng.choice(JOBS)
    title = _title(role)
    label = role[0].upper() + role[1:]
    drafts = (
        _Draft(f"{label}: {title}{p.full}", [(ME, role, title + p.full)]),
        _Draft(
            f"Our {role}, {p.full}, is based in {city}.",
            [(ME, role, p), (p, "residence", city)],
        ),
        _Draft(
            f"My {kin} {p.first} lives in {city}.",
            [(ME, KIN[kin], p.first), (p.first, "residence", city)],
        ),
        _Draft(
            f"My {kin}, {p.full}, works as {_a(job)}.", [(ME, KIN[kin], p), (p, "occupation", job)]
        ),
        _Draft(
            f"role: {role}; name: {title}{p.full}; city: {city}.",
            [(ME, role, title + p.full), (title + p.full, "work location", city)],
        ),
        _Draft(
            f"name: {p.full}; company: {org}; city: {city}.",
            [(p, "employer", org), (p, "work location", city)],
        ),
        _Draft(
            f"I moved from {other} to {city}.", [(ME, "residence", other), (ME, "residence", city)]
        ),
        _Draft(f"I now work at {org}.", [(ME, "employer", org)]),
    )
    draft = rng.choice(drafts)
    draft.said = {p: p.full}
    return draft


def _heading(rng: random.Random) -> _Draft:
    day = f"{rng.randint(1, 28)} {rng.choice(MONTHS)}"
    return _Draft(rng.choice((day, str(rng.randint(2015, 2025)), rng.choice(TOPICS))))


def document(rng: random.Random, me: str = "me", blocks: int = 4) -> list[Line]:
    """A note file as lines: headings, people named in full and then briefly, the user's
    people, chatter. Facts name people as the text the model sees does (see module doc)."""
    drafts: list[_Draft] = []
    for _ in range(blocks):
        if rng.random() < 0.6:
            drafts.append(_heading(rng))
        roll = rng.random()
        if roll < 0.5:
            drafts += _person_block(rng)
        elif roll < 0.85:
            drafts.append(_user_line(rng))
        else:
            drafts.append(_Draft(rng.choice(CHATTER)))
    lines: list[Line] = []
    context: list[str] = []
    for draft in drafts:
        seen = " ".join(context) + " " + draft.sentence

        def name(ref: Ref, draft: _Draft = draft, seen: str = seen) -> str | None:
            if ref is ME:
                return me
            if isinstance(ref, Person):  # as the sentence names them; for "she", as before
                said = draft.said.get(ref, "")
                if said in (ref.first, ref.full):
                    return said
                return ref.full if ref.full in seen else None
            return str(ref)

        triples = []
        for subject, relation, obj in draft.facts:
            s, o = name(subject), name(obj)
            if s and o:
                triples.append(Triple(s, relation, o))
        questions = _questions(draft.sentence, triples, me)
        lines.append(Line(draft.sentence, " ".join(context), triples, questions))
        context = next_context(context, draft.sentence)
    return lines


def _questions(line: str, triples: list[Triple], me: str) -> list[tuple[str, ReadQuery, list[str]]]:
    """A question for each fact that still holds (not what ``line`` says was left)."""
    out = []
    for t in triples:
        if was_left(line, t.object):
            continue
        if t.subject == me and t.relation in ASKED_AS:
            question = f"Who is my {ASKED_AS[t.relation]}?"
            out.append((question, ReadQuery(t.relation, subject=me), [t.object]))
        elif t.subject != me and t.relation in ASK:
            question = ASK[t.relation].format(t.subject)
            out.append((question, ReadQuery(t.relation, subject=t.subject), [t.object]))
    return out


# The word a user asks with for a relation to them: "Who is my sister?" reads ``sibling``.
ASKED_AS = {**{label: word for word, label in reversed(KIN.items())}, **{r: r for r in ROLES}}
ASK = {
    "residence": "Where does {} live now?",
    "work location": "In which city does {} work?",
    "employer": "Who employs {} now?",
    "occupation": "What is {}'s job?",
    "educated at": "Where did {} study?",
    "place of birth": "Where was {} born?",
    "spouse": "Who is {} married to?",
}
