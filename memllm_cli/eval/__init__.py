"""Evaluation: extraction F1, memory QA, perplexity and edits; data from ``memllm_cli.datasets``."""
