"""The train / held-out split: by a stable hash of a name, the same on every machine and run.

Re-DocRED documents split by title and FewRel sentences by their text, so training
(``split="train"``) and evaluation (``split="val"``) never see the same item.
"""

from __future__ import annotations

import hashlib


def in_validation(key: str, fraction: float = 0.2) -> bool:
    """A stable split by name: the same document is held out on every machine and run."""
    digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < fraction


def in_split(key: str, split: str) -> bool:
    """Whether ``key`` belongs to ``split``: "val" (held out), "all", or else the training side."""
    return split == "all" or in_validation(key) == (split == "val")
