"""The fact memory: SQLite + sqlite-vec + FTS5 behind one facade, :class:`Store`.

Each concept has one module that owns its SQL:

- ``store.py``: the facade, over one connection; the only entry point from outside.
- ``names.py`` (with ``resolution.py``): entities, their names and aliases, and
  which full name a short name means.
- ``relations.py``: relations, their labels, P-ids, cardinalities and aliases.
- ``facts.py`` (with ``filters.py``): facts, their lifecycle, listing and detail;
  ``ranking.py``: the fact queries that reads and searches rank by; ``changes.py``
  (rules) and ``succession.py``: which writes state a change and what they replace;
  ``when.py`` (rules): the time a question asks about.
- ``oplog.py`` (with ``undo.py``): batches, the op log, history and undo.
- ``documents.py``: sources, evidence, ingested document versions and sentences.
- ``vectors.py``: the embedding cache, the sqlite-vec index, nearest names and labels.
- ``db.py`` and ``migrations.py``: the SQLite binding and the schema's history.
- ``models.py`` and ``text.py``: the dataclasses handed out, and name helpers.

Built on those: ``read.py`` (MemLLM reads), ``search.py`` (``facts search``),
``doctor.py`` (health checks), ``transfer.py`` (export and import) and
``merge.py`` (two entities made one).
"""

from memllm_cli.store.models import Evidence, Fact, FactFilter, ReadAnswer, WriteResult
from memllm_cli.store.resolution import NameScope
from memllm_cli.store.store import Store

__all__ = ["Evidence", "Fact", "FactFilter", "NameScope", "ReadAnswer", "Store", "WriteResult"]
