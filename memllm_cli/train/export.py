"""Turn a trained adapter (``adapter.pt``) into llama.cpp's LoRA GGUF, and check it.

llama.cpp applies a LoRA adapter as ``W x + (alpha / r) B A x`` over the quantised
base, reading tensors ``blk.N.<name>.weight.lora_a`` (r x in) and ``.lora_b``
(out x r). Two details matter: GGUF stores the query and key projections with
their rows permuted for its rotary embedding (convert_hf_to_gguf's ``permute``),
so ``lora_b`` of q and k must be permuted the same way; and lm_head is never
adapted (SmolLM2 ties it to the embeddings, and llama.cpp rejects such an adapter).

``verify`` runs the same prompts through the PyTorch model with the adapter and
through ``Llama(lora_path=...)`` over the Q4_1 base, and compares greedy outputs.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from memllm_cli.hashing import file_sha256
from memllm_cli.protocol import PROTOCOL_VERSION

GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_KEY = re.compile(r"layers\.(\d+)\.(self_attn\.\w+|mlp\.\w+)\.lora_([AB])\.")


def permute_rows(weight: Any, heads: int) -> Any:
    """The row order GGUF gives a query or key projection (its rotary layout)."""
    shape = weight.shape
    return (
        weight.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
    )


def base_shape(base: Path) -> tuple[int, int]:
    """(attention heads, key-value heads) from the base GGUF's metadata."""
    import gguf

    reader = gguf.GGUFReader(str(base))

    def value(key: str) -> int:
        field = reader.fields[key]
        return int(field.parts[field.data[0]][0])

    return value("llama.attention.head_count"), value("llama.attention.head_count_kv")


def export(adapter: Path, base: Path, out: Path) -> Path:
    """Write ``adapter`` (from train.py) as a llama.cpp LoRA GGUF for ``base``."""
    import gguf
    import numpy as np
    import torch

    state = torch.load(adapter, weights_only=False)
    heads, kv_heads = base_shape(base)
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(state["alpha"]))
    writer.add_string("memllm.protocol_version", PROTOCOL_VERSION)
    writer.add_string("memllm.base_sha256", file_sha256(base))
    writer.add_string("memllm.base_file", base.name)
    tensors = 0
    for key, value in sorted(state["lora"].items(), key=lambda kv: _order(kv[0])):
        match = _KEY.search(key)
        if match is None:
            raise ValueError(f"unexpected adapter tensor {key} (lm_head must not be adapted)")
        layer, module, which = match.groups()
        weight = value.float().numpy()
        if which == "B" and module == "self_attn.q_proj":
            weight = permute_rows(weight, heads)
        elif which == "B" and module == "self_attn.k_proj":
            weight = permute_rows(weight, kv_heads)
        name = f"blk.{layer}.{GGUF_NAMES[module]}.weight.lora_{which.lower()}"
        writer.add_tensor(name, np.ascontiguousarray(weight.astype(np.float16)))
        tensors += 1
    if not tensors:
        raise ValueError(f"{adapter} holds no LoRA tensors")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _order(key: str) -> tuple[int, str]:
    match = _KEY.search(key)
    return (int(match.group(1)), key) if match else (-1, key)


@dataclass
class Check:
    """One prompt: greedy texts, and next-token agreement along the PyTorch continuation."""

    prompt: str
    torch_text: str
    llama_text: str
    agree: float  # share of positions where llama.cpp+adapter picks PyTorch's token
    agree_without: float  # the same for llama.cpp without the adapter (the adapter must matter)

    @property
    def same(self) -> bool:
        return self.torch_text == self.llama_text


def verify(
    adapter_pt: Path, adapter_gguf: Path, base: Path, prompts: list[str], max_tokens: int = 48
) -> list[Check]:
    """Compare PyTorch+peft with llama.cpp+GGUF adapter over the Q4_1 base on ``prompts``.

    Greedy texts can part at a near-tie (llama.cpp multiplies 8-bit-quantised
    activations), so the check also teacher-forces PyTorch's continuation through
    llama.cpp and counts the positions where both pick the same next token.
    """
    import numpy as np
    import torch

    from memllm_cli.llamacpp import import_llama_cpp, quiet_stderr
    from memllm_cli.runtime.llama import LlamaModel
    from memllm_cli.train.train import Config, load_base, lora_model

    state = torch.load(adapter_pt, weights_only=False)
    model, tokenizer = load_base(base)
    model = lora_model(model, Config(rank=state["rank"], alpha=state["alpha"]))
    model.load_state_dict(state["lora"], strict=False)
    model.eval()
    generator = LlamaModel(base, adapter=adapter_gguf)
    with quiet_stderr():
        llama_cpp = import_llama_cpp()
        scorers = [
            llama_cpp.Llama(
                model_path=str(base),
                lora_path=str(lora) if lora else None,
                logits_all=True,
                n_ctx=1024,
                verbose=False,
            )
            for lora in (adapter_gguf, None)
        ]
    checks = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            out = model.generate(
                ids, max_new_tokens=max_tokens, do_sample=False, eos_token_id=tokenizer.eos_token_id
            )
            wanted = model(out).logits[0].argmax(-1).numpy()
        torch_text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        llama_text = generator.generate(prompt, max_tokens=max_tokens).text
        tokens = out[0].tolist()
        positions = range(ids.shape[1] - 1, len(tokens) - 1)
        agreement = []
        for scorer in scorers:
            scorer.reset()
            with quiet_stderr():
                scorer.eval(tokens)
            picked = np.asarray(scorer.scores[: len(tokens)]).argmax(-1)
            agreement.append(float(np.mean([picked[i] == wanted[i] for i in positions])))
        checks.append(Check(prompt, torch_text.strip(), llama_text.strip(), *agreement))
    return checks


def main(argv: list[str] | None = None) -> None:
    from memllm_cli.runtime.models import adapter_path, default_model_path

    parser = argparse.ArgumentParser(description="Export adapter.pt to a llama.cpp LoRA GGUF.")
    parser.add_argument("adapter", type=Path, help="adapter.pt written by train.py")
    parser.add_argument("--base", type=Path, default=None, help="base GGUF (default: SmolLM2)")
    parser.add_argument(
        "--out", type=Path, default=None, help="default: models/<base>.memllm-lora.gguf"
    )
    parser.add_argument(
        "--verify",
        type=Path,
        default=None,
        help="a JSONL of prompts ({'prompt': ...}) to compare PyTorch and llama.cpp on",
    )
    args = parser.parse_args(argv)
    base = args.base or default_model_path()
    out = args.out or adapter_path(base)
    export(args.adapter, base, out)
    written = {"adapter": str(out), "bytes": out.stat().st_size, "sha256": file_sha256(out)}
    print(json.dumps(written))  # noqa: T201
    if args.verify:
        prompts = [
            json.loads(line)["prompt"]
            for line in args.verify.read_text(encoding="utf-8").splitlines()
            if line
        ]
        checks = verify(args.adapter, out, base, prompts)
        for check in checks:
            print(json.dumps(asdict(check) | {"same": check.same}))  # noqa: T201
        summary = {
            "same_text": sum(c.same for c in checks),
            "of": len(checks),
            "agree": round(sum(c.agree for c in checks) / len(checks), 4),
            "agree_without_adapter": round(sum(c.agree_without for c in checks) / len(checks), 4),
        }
        print(json.dumps(summary))  # noqa: T201


if __name__ == "__main__":
    main()
