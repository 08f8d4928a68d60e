"""What a note's front matter, wikilinks and tags do to memory when its document is stored.

The parse (:mod:`~memllm_cli.ingest.vault`) finds them; here they are stored with the
document version, in the ingest's batch (so one undo takes them back):

- the front matter's aliases become aliases of the note's entity, named by the note's
  title (its file name, as a wikilink names it); an alias that names another entity
  is refused with a warning. An alias this document put in memory and a later version
  no longer declares is taken out again;
- tags, front-matter dates, links (shown text -> target note) and aliases are the
  version's metadata (``document_meta``);
- a front-matter ``key: value`` whose key names a relation (``employer: NIVA``,
  ``date_of_birth: 1990-05-01``) states a fact about the note's subject, with the
  front matter's lines as evidence (:func:`property_facts`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from memllm_cli.ingest.vault import Note, Property
from memllm_cli.store import Store
from memllm_cli.store.models import DocumentMeta
from memllm_cli.store.text import norm

FRONT_MATTER = "front matter"  # the extractor named by facts the front matter states


@dataclass
class NoteStored:
    """What storing a note's metadata did: aliases added, and what it refused."""

    aliases: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def note_title(path: Path, temporary: bool) -> str | None:
    """The name of the entity a note is about: its file name without the suffix (None: stdin)."""
    return None if temporary or not path.stem.strip() else path.stem.strip()


def record_note(
    store: Store, source_id: int, note: Note, title: str | None, previous: int | None
) -> NoteStored:
    """Store the note's aliases and metadata for the version ``source_id``.

    ``previous`` is the source id of the version ingested before, whose owned aliases
    this version keeps or takes out.
    """
    done = NoteStored()
    declared = note.aliases(title) if title else []
    before = store.document_meta(previous) if previous is not None else []
    owned_before = {norm(m.key) for m in before if m.kind == "alias" and m.owned}
    owned: set[str] = set()
    if title and declared:
        added, refused = store.declare_aliases(title, declared)
        done.aliases = added
        kept = {norm(a) for a in declared} - {norm(a) for a in refused}
        owned = {norm(a) for a in added} | (owned_before & kept)
        for alias in refused:
            done.warnings.append(
                f"alias {alias!r} of {title!r} already names another entity; not added "
                "(memllm facts merge makes them one)"
            )
    now = {norm(a) for a in declared}
    for meta in before:
        gone = meta.kind == "alias" and meta.owned and norm(meta.key) not in now
        if gone and store.remove_alias(meta.value, meta.key):
            done.removed.append(meta.key)
    items = [DocumentMeta("tag", tag) for tag in note.tags]
    items += [DocumentMeta("date", key, value) for key, value in note.dates().items()]
    items += [
        DocumentMeta("link", note.shown[key], target)
        for key, target in note.links.items()
        if key not in note.ambiguous
    ]
    items += [DocumentMeta("alias", a, title or "", norm(a) in owned) for a in declared]
    store.add_document_meta(source_id, items)
    return done


def property_facts(store: Store, note: Note, title: str | None) -> Iterator[tuple[Property, str]]:
    """(property, relation) for each front-matter property whose key names a relation.

    Each of the property's values is then a fact (title, relation, value).
    """
    if not title:
        return
    for prop in note.properties:
        relation = " ".join(prop.key.replace("_", " ").replace("-", " ").split())
        if relation and store.relation_ids(relation):
            yield prop, relation
