"""The embedders' interface: each one carries the read thresholds calibrated for it."""

import pytest

from memllm_cli.embed import MINILM_THRESHOLDS, ReadThresholds, get_embedder
from memllm_cli.embed.hashed import HashEmbedder
from memllm_cli.embed.llama import LlamaCppEmbedder
from memllm_cli.embed.sentence import SentenceTransformerEmbedder
from memllm_cli.errors import MemllmError


def test_minilm_embedders_carry_the_calibrated_thresholds():
    thresholds = (
        MINILM_THRESHOLDS.tau_entity,
        MINILM_THRESHOLDS.tau_relation,
        MINILM_THRESHOLDS.tau_mean,
    )
    assert thresholds == (0.08, 0.225, 0.15)
    assert SentenceTransformerEmbedder().read_thresholds == MINILM_THRESHOLDS
    assert LlamaCppEmbedder().read_thresholds == MINILM_THRESHOLDS


def test_the_test_embedder_keeps_looser_thresholds_of_its_own():
    expected = ReadThresholds(tau_entity=0.35, tau_relation=0.45, tau_mean=0.30, tau_fallback=0.6)
    assert HashEmbedder().read_thresholds == expected
    assert HashEmbedder(dim=64).read_thresholds == expected


def test_embedders_are_chosen_by_name():
    assert isinstance(get_embedder("hash"), HashEmbedder)
    assert isinstance(get_embedder("minilm-st"), SentenceTransformerEmbedder)
    with pytest.raises(MemllmError, match="unknown embedder"):
        get_embedder("contriever")
