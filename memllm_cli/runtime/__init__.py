"""The model runtime: backends, prompts, and the MemLLM read/write loops."""
