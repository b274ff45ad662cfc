"""torch.compile (inductor) on the CPU: the tiny preset's training step compiled as `posmask pretrain --compile`
compiles it (the objective, captions padded to the preset's text length), against eager mode on the same batches.
Losses agree within 1e-4 (relative) over the steps; one graph serves batches whose captions and masked counts
differ (the fixed-shape MLM slots and the padded length: no recompilation per batch), with no graph break."""
from __future__ import annotations

import pytest
import torch

from train_step import batch_of, tiny_step

pytestmark = pytest.mark.slow  # compiles (about a minute on 2 busy cores)
LENGTHS = ([12, 9, 14, 7, 10, 11], [5, 20, 8, 16, 9, 13], [30, 6, 11, 9, 7, 12])  # different per batch
RTOL = 1e-4


def test_compiled_step_matches_eager_without_recompiling(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._inductor import config as inductor_config
    from torch._inductor.compile_fx import compile_fx

    monkeypatch.setattr(inductor_config, "fallback_random", True)  # the eager RNG: the same hard negatives
    graphs: list[int] = []

    def inductor(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(len(gm.graph.nodes))
        return compile_fx(gm, example_inputs)

    torch._dynamo.reset()
    eager, compiled = tiny_step("NOUN"), tiny_step("NOUN", compile_=lambda m: torch.compile(
        m, backend=inductor, fullgraph=True))
    pad = eager.cfg.model.max_text_len
    losses: dict[str, list[list[float]]] = {"eager": [], "compiled": []}
    for k, lengths in enumerate(LENGTHS):
        batch = batch_of(lengths, seed=k, pad_to=pad)
        for name, step in (("eager", eager), ("compiled", compiled)):
            torch.manual_seed(100 + k)  # the same masking draws and negatives for both
            out = step.run(batch, k)
            losses[name].append([float(out[key].detach()) for key in ("loss", "mlm", "itc", "itm")])
    torch._dynamo.reset()
    assert len(graphs) == 1, f"{len(graphs)} graphs compiled for {len(LENGTHS)} batches"
    masked = [int((batch_of(n, seed=k, pad_to=pad)["pos"] != 255).sum()) for k, n in enumerate(LENGTHS)]
    assert len(set(masked)) == len(LENGTHS)  # the batches really differ
    for step_eager, step_compiled in zip(losses["eager"], losses["compiled"]):
        assert step_compiled == pytest.approx(step_eager, rel=RTOL)
