"""No host sync on the training step's hot path: one step of the tiny preset as `trainer.train` runs it (the
masking op, `step_inputs`, the objective with its fixed-shape MLM slots, backward, clipping, fused AdamW, the
metrics window) makes no call that would wait for a CUDA device, counted on the CPU by a dispatch mode."""
from __future__ import annotations

import torch

from train_step import batch_of, tiny_step
from trainer.engine.host_sync import HostSyncCounter
from trainer.masking.masker import IGNORE_INDEX


def test_the_counter_sees_each_kind_of_sync() -> None:  # the control: what the step must not do, counted
    labels = torch.tensor([[5, IGNORE_INDEX, 7], [IGNORE_INDEX, 9, IGNORE_INDEX]])
    fused = torch.randn(2, 3, 4)
    with HostSyncCounter() as syncs:
        where = labels != IGNORE_INDEX
        fused[where]  # the boolean-indexed MLM of before
        labels[where]
        where.nonzero()
        float(where.sum())
        bool(where.any())
        fused[where] = 0.0
    assert syncs.events == ["boolean index (index)"] * 2 + ["nonzero (nonzero)", "item (_local_scalar_dense)",
                                                            "item (_local_scalar_dense)", "boolean index (index_put_)"]


def test_a_training_step_makes_no_host_sync() -> None:
    step = tiny_step("NOUN")
    batches = [batch_of([12, 9, 14, 7, 10, 11], seed=s) for s in range(3)]
    step.run(batches[0], 0)  # optimiser state, lazy buffers
    with HostSyncCounter() as syncs:
        for k, batch in enumerate(batches[1:], 1):
            out = step.run(batch, k)
    assert not syncs.events, syncs.summary()
    assert torch.isfinite(out["loss"]) and out["mlm"] > 0
    summary = step.window.summary(world=1)  # the log step: its one sync reads every count
    assert summary["masked"] > 0 and summary["mlm_dropped"] == 0
