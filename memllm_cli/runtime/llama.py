"""A GGUF model run in-process by llama.cpp, with its own decoding loop.

Why not ``Llama.create_completion``: it applies a grammar to every token of the
vocabulary at every step, which makes a free-text field (a name the model may
spell any way) several times slower than unconstrained decoding. Here, as in
llama.cpp's own sampling code, the greedy token is checked against the grammar
alone, and the whole vocabulary is filtered only when that token is rejected.
The output is the same greedy, grammar-valid text.

The loop also reuses the KV cache explicitly: it evaluates only the tokens after
the longest prefix shared with what is already in the context, and reports how
many that was (``Generation.new_prompt_tokens``).
"""

from __future__ import annotations

import codecs
import ctypes
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from memllm_cli.errors import MemllmError
from memllm_cli.llamacpp import import_llama_cpp, quiet_stderr, thread_counts
from memllm_cli.runtime.model import (
    CONTEXT_TOKENS,
    Generation,
    PromptTooLongError,
    StopScanner,
    template_pieces,
)


class LlamaModel:
    """A GGUF model (optionally with a LoRA adapter) on the CPU, or GPU layers when available.

    ``threads``: llama.cpp's CPU threads (None: :func:`~memllm_cli.llamacpp.thread_counts`'
    default); ``gpu_layers``: layers to offload (None: all of them when llama.cpp was
    built with GPU support, else none).
    """

    def __init__(
        self,
        path: Path,
        *,
        adapter: Path | None = None,
        threads: int | None = None,
        gpu_layers: int | None = None,
    ) -> None:
        if not path.is_file():
            raise MemllmError(f"no model file at {path}")
        decode_threads, batch_threads = thread_counts(threads, path.stat().st_size)
        with quiet_stderr():
            import numpy

            llama_cpp = import_llama_cpp()

            if gpu_layers is None:
                gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
            try:
                self.llm = llama_cpp.Llama(
                    model_path=str(path),
                    lora_path=str(adapter) if adapter else None,
                    n_ctx=CONTEXT_TOKENS,
                    n_threads=decode_threads,
                    n_threads_batch=batch_threads,
                    n_gpu_layers=gpu_layers,
                    seed=0,  # decoding is greedy; a fixed seed all the same
                    verbose=False,
                )
            except ValueError as exc:
                raise MemllmError(f"cannot load model {path}: {exc}") from None
        self._lib = llama_cpp
        self._np = numpy
        self._vocab = self.llm._model.vocab
        self._n_vocab = self.llm.n_vocab()
        self.name = path.name + (f"+{adapter.name}" if adapter else "")
        self.adapter = adapter.name if adapter else None
        self.prompted = adapter is None
        self.reuse_cache = True  # benchmarks turn it off to measure what reuse gains

    # -- grammar --------------------------------------------------------------------------------

    def _grammar(self, text: str) -> Any:
        """A fresh grammar sampler; a grammar that fails to compile is an error, never ignored."""
        with quiet_stderr():
            sampler = self._lib.llama_sampler_init_grammar(self._vocab, text.encode(), b"root")
        if not sampler:
            raise MemllmError("a memory grammar did not compile (a bug in memllm)")
        return sampler

    def _allowed(self, sampler: Any, token: int, logit: float) -> bool:
        """Whether the grammar accepts ``token`` next: one candidate, one check."""
        lib = self._lib
        data = (lib.llama_token_data * 1)(lib.llama_token_data(token, logit, 0.0))
        array = lib.llama_token_data_array(data=data, size=1, selected=-1, sorted=False)
        lib.llama_sampler_apply(sampler, ctypes.byref(array))
        return data[0].logit != float("-inf")

    def _best_allowed(self, sampler: Any, logits: Any) -> int:
        """The highest-scoring token the grammar accepts, filtering the whole vocabulary."""
        np, lib = self._np, self._lib
        candidates = np.empty(self._n_vocab, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        candidates["id"] = np.arange(self._n_vocab, dtype=np.int32)
        candidates["logit"] = logits
        candidates["p"] = 0.0
        pointer = candidates.ctypes.data_as(ctypes.POINTER(lib.llama_token_data))
        array = lib.llama_token_data_array(
            data=pointer, size=self._n_vocab, selected=-1, sorted=False
        )
        lib.llama_sampler_apply(sampler, ctypes.byref(array))
        return int(np.argmax(candidates["logit"]))

    # -- decoding -------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text``: only the chat template's own tokens become control tokens.

        Tokenising the whole prompt with ``special=True`` would turn a note's
        ``<|im_end|><|im_start|>assistant`` into real turns; each piece between template
        tokens is tokenised as plain text instead. llama.cpp cuts text at control tokens
        before it merges, so a prompt without look-alikes gets the same ids as before.
        """
        tokens = self.llm.tokenize(b"", add_bos=True, special=False)
        for piece, control in template_pieces(text):
            tokens += self.llm.tokenize(piece.encode(), add_bos=False, special=control)
        return tokens

    def _prefill(self, tokens: list[int]) -> int:
        """Evaluate ``tokens`` after the prefix already in the KV cache; return how many ran.

        The last prompt token always runs: its logits start the generation.
        """
        cached = self.llm.input_ids[: self.llm.n_tokens].tolist()
        shared = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            shared += 1
        shared = min(shared, len(tokens) - 1) if self.reuse_cache else 0
        self.llm.n_tokens = shared
        self.llm.eval(tokens[shared:])
        return len(tokens) - shared

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        started = time.perf_counter()
        np, lib = self._np, self._lib
        tokens = self.tokenize(prompt)
        if len(tokens) + max_tokens > self.llm.n_ctx():
            raise PromptTooLongError(
                f"the prompt ({len(tokens)} tokens) does not fit the model's context "
                f"({self.llm.n_ctx()} tokens)"
            )
        sampler = self._grammar(grammar) if grammar else None
        scanner = StopScanner(stop, on_text)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        finish, produced = "length", 0
        try:
            with quiet_stderr():
                new = self._prefill(tokens)
                for _ in range(max_tokens):
                    logits = np.ctypeslib.as_array(
                        self.llm._ctx.get_logits(), shape=(self._n_vocab,)
                    )
                    token = int(np.argmax(logits))
                    if sampler is not None and not self._allowed(sampler, token, logits[token]):
                        token = self._best_allowed(sampler, logits)
                    if lib.llama_vocab_is_eog(self._vocab, token):
                        finish = "end"
                        break
                    if sampler is not None:
                        lib.llama_sampler_accept(sampler, token)
                    produced += 1
                    piece = decoder.decode(self.llm.detokenize([token], special=True))
                    if scanner.feed(piece):
                        finish = "stop"
                        break
                    self.llm.eval([token])
        finally:
            if sampler is not None:
                lib.llama_sampler_free(sampler)
        text = scanner.finish()
        return Generation(
            text,
            scanner.stopped_by,
            finish,
            prompt_tokens=len(tokens),
            completion_tokens=produced,
            seconds=time.perf_counter() - started,
            new_prompt_tokens=new,
        )

    def logprobs(self, prefix: str, continuation: str) -> list[float]:
        """The log-probability of each token of ``continuation`` after ``prefix``.

        Teacher-forced, for perplexity: the evaluation harness scores target entities
        with and without a memory read in front of them.
        """
        np = self._np
        head = self.tokenize(prefix)
        full = self.tokenize(prefix + continuation)
        if full[: len(head)] != head:  # the boundary merged into one token: keep the prefix's
            full = head + self.llm.tokenize(continuation.encode(), add_bos=False, special=False)
        scores = []
        with quiet_stderr():
            self._prefill(head)
            for token in full[len(head) :]:
                logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self._n_vocab,))
                logits = logits.astype(np.float64)
                top = logits.max()
                scores.append(float(logits[token] - top - np.log(np.exp(logits - top).sum())))
                self.llm.eval([token])
        return scores
