"""Changes: which written facts replace, and which are replaced by, the sentence they come from.

Rules only, no SQL (like :mod:`~memllm_cli.store.resolution`); :mod:`~memllm_cli.store.facts`
applies them when a document or chat sentence is stored. Notes record changes ("Sofia
moved to Milan", "Sofia left Fiat; she now works at Prada", "Elena moved from Naples to
Rome"). For a relation that holds one value at a time *in practice* (:data:`CHANGING`:
residence, employer, occupation, position held, sports team, spouse or partner), a
sentence that states a change (a cue word of the relation's family, or a general one:
"now", "no longer", "became", "switched to") gives each fact it states one role:

- ``"past"``: its object is what the sentence says was left ("from Naples", "left
  Fiat", "quit Pirelli"): the fact is stored already superseded, never current;
- ``"replace"``: any other object: the subject's other current document and chat facts
  of the relation are superseded by it (manual ones never are).

A small model often writes only the new value ("Elena moved from Naples to Rome":
residence Rome). :func:`left_behind` adds what the sentence says was left, as a name
written in it, so the past is kept ("Where did Elena live before Rome?").

Without a cue the relation's own cardinality decides, as before: employer stays
many-valued, so "works at Fiat and teaches at the Politecnico" keeps both current.
Marking these relations "one" in the seed would instead make every such pair a
supersession; a cue states the change, so only a cue makes one.
"""

from __future__ import annotations

import re

from memllm_cli.protocol import Triple
from memllm_cli.store.models import Evidence
from memllm_cli.store.text import norm

_MOVE = r"moved|moves|moving|relocated|relocates|emigrated|settled"
_JOB = (
    r"joined|joins|left|leaves|quit|quits|started|starts|hired|switched|retired|resigned"
    r"|promoted|transferred|signed|appointed|became|becomes|took over"
)
_PARTNER = r"married|marries|divorced|separated|engaged|split up|broke up"
_GENERAL = r"now|no longer|not any more|anymore|switched to|became|becomes|since"

# Relation label -> the cue words that state a change of its value.
CHANGING: dict[str, str] = {
    "residence": _MOVE,
    "employer": _JOB,
    "occupation": _JOB,
    "position held": _JOB,
    "member of sports team": _JOB,
    "work location": _MOVE + "|" + _JOB,
    "spouse": _PARTNER,
    "unmarried partner": _PARTNER,
    "partner": _PARTNER,
}
_CUES = {
    label: re.compile(rf"\b(?:{words}|{_GENERAL})\b", re.IGNORECASE)
    for label, words in CHANGING.items()
}
_NON_WORD = re.compile(r"[^\w&-]+")
_STOP = r"(?=\s+(?:and|to|for|after|in|where|because|but|then)\b|[,;.:!?()]|$)"
# What a sentence says was left: "from A to B", "left A", "quit A", "no longer works at A".
_LEFT = (
    re.compile(r"\bfrom\s+(.+?)\s+(?:to|for|in)\s+", re.IGNORECASE),
    re.compile(
        rf"\b(?:left|leaves|quit|quits|resigned from|retired from|departed|divorced"
        rf"|separated from|no longer (?:\w+ )?(?:at|in|for|with))\s+(.+?){_STOP}",
        re.IGNORECASE,
    ),
)


def change_role(evidence: Evidence, relation: str, obj: str) -> str | None:
    """``"past"``, ``"replace"`` or None: the role of (…, ``relation``, ``obj``) in ``evidence``.

    ``relation`` is the relation's label. Manual writes and sentences without a cue
    of the relation's family get None: the relation's cardinality alone decides.
    """
    sentence = evidence.sentence
    if evidence.origin == "manual" or not sentence or not states_change(sentence, relation):
        return None
    return "past" if was_left(sentence, obj) else "replace"


def states_change(sentence: str, relation: str) -> bool:
    """Whether ``sentence`` has a cue that states a change of ``relation``'s value."""
    cue = _CUES.get(norm(relation))
    return cue is not None and cue.search(sentence) is not None


def left_behind(sentence: str, triples: list[Triple]) -> list[Triple]:
    """The facts ``sentence`` says ended, beside the new values ``triples`` state.

    For a written fact of a changing relation, with the relation's cue in the sentence:
    a capitalised name of at most five words that the sentence says was left ("from
    Naples to", "left Pirelli"), with the written object after it, is the relation's
    earlier value. Stored, :func:`change_role` makes it past.
    """
    found: list[Triple] = []
    for t in triples:
        if not states_change(sentence, t.relation):
            continue
        for pattern in _LEFT:
            for m in pattern.finditer(sentence):
                name = m.group(1).strip()
                new = Triple(t.subject, t.relation, name)
                if (
                    name[:1].isupper()
                    and len(name.split()) <= 5
                    and names(sentence[m.end() :], t.object)
                    and norm(name) not in {norm(t.subject), norm(t.object)}
                    and all(_key(x) != _key(new) for x in [*triples, *found])
                ):
                    found.append(new)
    return found


def was_left(sentence: str, name: str) -> bool:
    """Whether ``sentence`` says ``name`` was left ("moved from Naples", "left Fiat")."""
    key = _words(name)
    return bool(key.strip()) and any(
        key in _words(m.group(1)) for pattern in _LEFT for m in pattern.finditer(sentence)
    )


def names(sentence: str, name: str) -> bool:
    """Whether ``sentence`` contains ``name`` as whole words."""
    key = _words(name)
    return bool(key.strip()) and key in _words(sentence)


def _key(t: Triple) -> tuple[str, str, str]:
    return norm(t.subject), norm(t.relation), norm(t.object)


def _words(text: str) -> str:
    """``text`` folded to its words, space-padded, so a name matches whole words only."""
    return " " + norm(_NON_WORD.sub(" ", text)) + " "
