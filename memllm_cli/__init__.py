"""memllm: a private, offline knowledge assistant built on MemLLM."""

__version__ = "0.1.0.dev0"
