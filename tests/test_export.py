"""The adapter export: PyTorch LoRA -> llama.cpp LoRA GGUF over the Q4_1 base, same outputs.

Needs the ``[train]`` extra (transformers, peft) and the real base model; slow (~1 min).
"""

from __future__ import annotations

import pytest

pytest.importorskip("peft")

from memllm_cli.runtime import prompts
from memllm_cli.runtime.models import default_model_path
from memllm_cli.train.export import export, verify
from memllm_cli.train.train import Config, load_base, lora_model

pytestmark = pytest.mark.slow


def test_exported_adapter_matches_pytorch(tmp_path):
    import gguf
    import torch

    torch.manual_seed(0)
    base = default_model_path()
    model, _ = load_base(base)
    model = lora_model(model, Config(rank=4, alpha=8.0))
    lora = {}
    for key, value in model.state_dict().items():
        if "lora_" in key:  # peft starts B at zero; a random B makes the adapter matter
            lora[key] = torch.randn_like(value) * (0.05 if "lora_B" in key else 0.1)
    pt = tmp_path / "adapter.pt"
    torch.save({"lora": lora, "rank": 4, "alpha": 8.0}, pt)
    out = export(pt, base, tmp_path / "adapter.gguf")

    reader = gguf.GGUFReader(str(out))
    names = [t.name for t in reader.tensors]
    assert "blk.0.attn_q.weight.lora_a" in names and "blk.29.ffn_down.weight.lora_b" in names
    assert not any(n.split(".")[0] == "output" or "token_embd" in n for n in names)

    prompt = prompts.write_prompt("", "Kari Hansen works for Equinor.", prompted=False)
    (check,) = verify(pt, out, base, [prompt], max_tokens=12)
    assert check.agree >= 0.9  # llama.cpp with the adapter follows PyTorch with it ...
    assert check.agree_without < check.agree  # ... and the adapter is what makes it so
