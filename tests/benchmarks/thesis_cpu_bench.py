"""The training step on the CPU against the CPU's own matrix rate (run by test_bench_thesis_cpu.py, one process per
preset so that its peak RSS is its own): `--steps` steps of a preset (random ViT) on a batch of real-size images
(photo-like JPEGs decoded, cropped and normalised by the training loader), each timed in three phases (masking +
forward, backward, clipping + AdamW), interleaved with a large fp32 GEMM on the same cores. Achieved FLOP/s is the
project's FLOP count (trainer.engine.metrics.flops_per_sample) over the step's time; the ratio divides it by the GEMM's
FLOP/s. Also: peak RSS, and the activation memory that autograd saves, measured at two batch sizes (fp32 and under
bf16 autocast) to project a batch-64 step's memory on a GPU. Prints one JSON object.

    python tests/benchmarks/thesis_cpu_bench.py --preset thesis --batch 8 --steps 3 --shards DIR
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
GEMM_N = 2048


def gemm_rate(a: torch.Tensor, b: torch.Tensor, repeat: int = 8) -> float:
    """FLOP/s of `a @ b` (fp32, square) over `repeat` products in a row (about 1-2 s: a window long enough to see
    the same share of the cores as a step does when other jobs share them)."""
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] * repeat / (time.perf_counter() - start)


def saved_bytes(forward: Any) -> int:
    """Bytes of the tensors autograd saves for backward in one call of `forward` (parameters excluded, each storage
    once): the activation memory a step holds at its peak, before backward frees it."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.nn.Parameter):
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    del out
    return sum(storages.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="thesis")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--shards", required=True, help="shards of real-size JPEGs (test_bench_loader.write_shards)")
    args = parser.parse_args()

    from trainer.config import preset_config
    from trainer.data.stream import ShardStream, StreamSettings, open_shards, to_device
    from trainer.engine.engine import OptimSettings, build_optimizer
    from trainer.engine.metrics import flops_per_sample
    from trainer.masking.masker import Masker, parse_mask_spec
    from trainer.model.objective import Pretrainer
    from trainer.model.posmask import PosMaskModel

    cpu = torch.device("cpu")
    cfg = preset_config(args.preset)
    torch.manual_seed(0)
    model = PosMaskModel(cfg.model, vision_weights="random")
    module = Pretrainer(model, mlm=True).train()
    optimizer = build_optimizer(module, OptimSettings(lr=cfg.lr, weight_decay=cfg.weight_decay), cpu)
    masker = Masker(parse_mask_spec("DET", 0.7), 103, cfg.model.vocab_size)
    size, L = cfg.model.image_size, cfg.model.max_text_len
    settings = StreamSettings(batch_size=args.batch, image_size=size, max_len=L, pad_to=L, shuffle_buffer=16)
    batch = next(iter(ShardStream(open_shards(args.shards).urls, settings)))
    batch.pop("corrupt"), batch.pop("drawn")
    batch = to_device(batch, cpu)

    def forward(b: dict) -> dict:
        masked = masker(b["ids"], b["pos"], b["word"])
        return module(b["pixels"], b["ids"], b["attention_mask"], b["image_ids"], masked.input_ids, masked.labels,
                      mlm_positions=masked.positions)

    def step() -> tuple[float, float, float, float]:
        t0 = time.perf_counter()
        out = forward(batch)
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
        optimizer.step()
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, float(out["loss"].detach())

    a, b = torch.randn(GEMM_N, GEMM_N), torch.randn(GEMM_N, GEMM_N)
    step()  # warm-up: lazy allocations, the optimiser's state
    gemm_rate(a, b, 2)
    gemms, phases, losses = [gemm_rate(a, b)], [], []
    for _ in range(args.steps):  # step and GEMM interleaved: the same cores, the same moment
        *times, loss = step()
        phases.append(times)
        losses.append(loss)
        gemms.append(gemm_rate(a, b))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    tokens = (size // model.vision.patch_embed.patch_size[0]) ** 2 + 1
    flops = flops_per_sample(model, tokens, L, True, masker.capacity) * args.batch
    fwd, bwd, opt = (statistics.median(p[i] for p in phases) for i in range(3))
    gemm = statistics.median(gemms)
    step_s = fwd + bwd + opt
    around = [(g0 + g1) / 2 for g0, g1 in zip(gemms, gemms[1:])]  # the GEMM windows before and after each step
    ratio = statistics.median(flops / sum(p) / g for p, g in zip(phases, around))

    def activations(amp: bool) -> tuple[float, float]:
        """(bytes per sample, bytes per step whatever the batch) that autograd saves, from batches of B/2 and B."""
        half = {k: v[: args.batch // 2] for k, v in batch.items()}
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else contextlib.nullcontext
        sizes = []
        for b_ in (half, batch):
            with ctx():
                sizes.append(saved_bytes(lambda: forward(b_)))
        per_sample = (sizes[1] - sizes[0]) / (args.batch - args.batch // 2)
        return per_sample, sizes[1] - per_sample * args.batch

    params = sum(p.numel() for p in module.parameters())
    act32, act16 = activations(False), activations(True)
    print(json.dumps({
        "preset": args.preset, "batch": args.batch, "steps": args.steps, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "params": params, "gflop_per_sample": flops / args.batch / 1e9,
        "forward_s": fwd, "backward_s": bwd, "optimizer_s": opt, "step_s": step_s, "losses": losses,
        "gemm_gflops": gemm / 1e9, "gemm_spread": (max(gemms) - min(gemms)) / gemm,
        "achieved_gflops": flops / step_s / 1e9, "ratio": ratio,
        "forward_ratio": flops / 3 / fwd / gemm, "backward_ratio": 2 * flops / 3 / bwd / gemm,
        "optimizer_share": opt / step_s, "peak_rss_mb": peak_rss_mb,
        "act_fp32_per_sample_mb": act32[0] / 2**20, "act_fp32_fixed_mb": act32[1] / 2**20,
        "act_bf16_per_sample_mb": act16[0] / 2**20, "act_bf16_fixed_mb": act16[1] / 2**20,
        "state_mb": 16 * params / 2**20,  # fp32 weights, gradients and AdamW's two moments
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
