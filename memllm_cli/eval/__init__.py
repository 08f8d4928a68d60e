"""Evaluation: extraction F1, memory QA, perplexity; and readers for the public data sets."""
