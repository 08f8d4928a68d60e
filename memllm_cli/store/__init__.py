"""The fact memory: SQLite + sqlite-vec + FTS5, with migrations, an op log and MemLLM reads."""

from memllm_cli.store.models import Evidence, Fact, FactFilter, ReadAnswer, WriteResult
from memllm_cli.store.store import Store

__all__ = ["Evidence", "Fact", "FactFilter", "ReadAnswer", "Store", "WriteResult"]
