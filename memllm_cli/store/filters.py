"""Fact filters: how a :class:`FactFilter` (``facts list`` options) becomes SQL.

One pure function, so every filter option, and the escaping ``--source`` needs,
is in one place; :mod:`memllm_cli.store.facts` runs what it builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memllm_cli.errors import InvalidInputError
from memllm_cli.store.models import ORIGINS, FactFilter
from memllm_cli.store.text import norm


def where(flt: FactFilter, entity_ids: Callable[[str], list[int]]) -> tuple[str, list[Any]]:
    """A WHERE clause over ``facts f`` (empty when nothing filters) and its parameters.

    ``entity_ids`` turns a name into the entities it names (``Names.entity_ids``).
    """
    clauses: list[str] = []
    params: list[Any] = []
    for column, name in (("f.subject_id", flt.subject), ("f.object_id", flt.object)):
        if name is not None:
            ids = entity_ids(name)
            clauses.append(f"{column} IN ({', '.join('?' * len(ids))})" if ids else "0")
            params += ids
    if flt.relation is not None:
        clauses.append("f.relation_id IN (SELECT id FROM relations WHERE norm = ? OR pid = ?)")
        params += [norm(flt.relation), flt.relation.strip()]
    if flt.origin is not None:
        if flt.origin not in ORIGINS:
            raise InvalidInputError(f"origin is one of {', '.join(ORIGINS)}, not {flt.origin!r}")
        clauses.append("f.origin = ?")
        params.append(flt.origin)
    if flt.source is not None:
        clauses.append(
            "f.id IN (SELECT p.fact_id FROM provenance p JOIN sources src "
            "ON src.id = p.source_id WHERE src.uri = ? OR src.uri LIKE ? ESCAPE '\\' "
            "OR (length(?) >= 7 AND src.sha256 LIKE ? || '%'))"
        )
        escaped = flt.source.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params += [flt.source, "%/" + escaped, flt.source, flt.source]
    if flt.before is not None:
        clauses.append("f.id < ?")
        params.append(flt.before)
    if flt.as_of is not None:
        clauses.append("f.valid_from <= ? AND (f.valid_to IS NULL OR f.valid_to > ?)")
        params += [flt.as_of, flt.as_of]
    elif not flt.include_all:
        clauses.append("f.status = 'current'")
    clause = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return clause, params
