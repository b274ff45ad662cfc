"""bf16 autocast on the CPU, the stand-in for the GPU path (`engine.autocast` on CUDA): the tiny preset's whole
training step (masking, the objective with its MLM slots, backward, clipping, fused AdamW) runs under it; the
encoders compute in bf16 while the scoring heads and every loss stay float32 (trainer.model.precision), and the
losses stay within bf16's rounding of the fp32 step's."""
from __future__ import annotations

import pytest
import torch

from train_step import batch_of, tiny_step


def bf16() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_training_step_under_cpu_bf16_keeps_the_heads_float32() -> None:
    step, reference = tiny_step("NOUN", amp=bf16), tiny_step("NOUN")
    model = step.module.model
    seen: dict[str, torch.dtype] = {}
    watched = {"text mlp": model.text_layers[0].mlp.fc1, "cross-attention": model.fusion_layers[0].cross_attn.out,
               "vision block": model.vision.blocks[0].mlp.fc1, "itm head": model.itm_head,
               "mlm head": model.mlm_head}

    def record(name: str):
        def hook(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
            seen.setdefault(name, out.dtype)
        return hook

    hooks = [module.register_forward_hook(record(name)) for name, module in watched.items()]
    batch = batch_of([12, 9, 14, 7, 10, 11], seed=0)
    before = [p.detach().clone() for p in step.module.parameters()]
    torch.manual_seed(5)
    out = step.run(batch, 0)
    torch.manual_seed(5)
    ref = reference.run(batch, 0)
    for hook in hooks:
        hook.remove()
    assert seen == {"text mlp": torch.bfloat16, "cross-attention": torch.bfloat16, "vision block": torch.bfloat16,
                    "itm head": torch.float32, "mlm head": torch.float32}
    for key in ("loss", "mlm", "itc", "itm"):
        assert out[key].dtype == torch.float32 and torch.isfinite(out[key]), key
        assert float(out[key].detach()) == pytest.approx(float(ref[key].detach()), rel=2e-2), key
    assert all(p.dtype == torch.float32 for p in step.module.parameters())  # master weights stay float32
    assert any(not torch.equal(a, p) for a, p in zip(before, step.module.parameters()))  # the step updated them
