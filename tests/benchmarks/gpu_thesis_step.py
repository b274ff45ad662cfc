"""GPU benchmark of the `thesis` preset (ViT-B/32 224 px, 6+6 layers, batch 64): samples/s, MFU, peak memory,
data-wait share and masking share, for bf16 autocast + fused AdamW (+ torch.compile) against plain fp32.

    python tests/benchmarks/gpu_thesis_step.py [--steps 30] [--batch 64] [--shards data/shards/NAME]
                                               [--no-compile] [--markdown docs/benchmarks.md]

Without --shards the batch is synthetic and already on the GPU (data wait 0 by construction); with --shards
the loader of `posmask pretrain` feeds it, so the data-wait share is real. Exits 0 with a message without CUDA.
It runs the real model and objective, so the "bf16" figures include what stays float32 under autocast (the ITC
similarities and loss, the ITM and MLM heads: trainer.precision).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def run_config(name: str, amp: bool, fused: bool, compile_: bool, args: argparse.Namespace) -> dict:
    from trainer.config import preset_config
    from trainer.data import ShardStream, make_loader, open_shards
    from trainer.engine import autocast, param_groups
    from trainer.masking import Masker, parse_mask_spec
    from trainer.metrics import flops_per_sample, peak_tflops
    from trainer.model import PosMaskModel
    from trainer.objective import Pretrainer

    device = torch.device("cuda")
    cfg = preset_config("thesis")
    torch.manual_seed(0)
    model = PosMaskModel(cfg.model, vision_weights="random")
    module = Pretrainer(model, mlm=True).to(device).train()
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, fused=fused)
    forward = torch.compile(module) if compile_ else module
    masker = Masker(parse_mask_spec("DET", 0.7), 103, cfg.model.vocab_size, device=device)
    B, L, S = args.batch, cfg.model.max_text_len, cfg.model.image_size
    if args.shards:
        shards = open_shards(args.shards)
        stream = ShardStream(shards.urls, 0, 1, 0, 0, B, S, L, 0, 2000, (0.5, 1.0), pad_to=L)
        loader = iter(make_loader(stream, args.workers, pin_memory=True))

        def next_batch() -> dict:
            batch = next(loader)
            batch.pop("corrupt")
            batch.pop("drawn")
            return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    else:
        fixed = {"pixels": torch.randn(B, 3, S, S, device=device),
                 "ids": torch.randint(1000, 30000, (B, L), device=device),
                 "pos": torch.randint(0, 17, (B, L), device=device).to(torch.uint8),
                 "attention_mask": torch.ones(B, L, dtype=torch.long, device=device),
                 "image_ids": torch.arange(B, device=device)}

        def next_batch() -> dict:
            return fixed

    def step(timings: dict | None = None) -> None:
        t0 = time.perf_counter()
        batch = next_batch()
        if timings is not None:
            torch.cuda.synchronize()
            timings["wait"] += time.perf_counter() - t0
        masked = masker(batch["ids"], batch["pos"])
        with autocast(device, amp):
            out = forward(batch["pixels"], batch["ids"], batch["attention_mask"], batch["image_ids"],
                          masked.input_ids, masked.labels)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    for _ in range(5 if compile_ else 3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    timings = {"wait": 0.0}
    start = time.perf_counter()
    for _ in range(args.steps):
        step(timings)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    ids, pos = torch.randint(1000, 30000, (B, L), device=device), torch.randint(0, 17, (B, L), device=device)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(100):
        masker(ids, pos)
    torch.cuda.synchronize()
    mask_s = (time.perf_counter() - t0) / 100
    sps = B * args.steps / elapsed
    tokens = (S // 32) ** 2 + 1
    peak = peak_tflops(device, args.peak_tflops)
    mfu = flops_per_sample(model, tokens, L, True) * sps / (peak * 1e12) if peak else float("nan")
    return {"config": name, "samples_per_s": sps, "mfu": mfu, "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30,
            "data_wait_share": timings["wait"] / elapsed, "mask_share": mask_s / (elapsed / args.steps)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--shards")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float)
    parser.add_argument("--markdown", help="append the table to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_thesis_step: no CUDA GPU here; nothing measured")
        return 0
    configs = [("fp32, AdamW (reference)", False, False, False), ("bf16 autocast + fused AdamW", True, True, False)]
    if not args.no_compile:
        configs.append(("bf16 + fused + torch.compile", True, True, True))
    rows = [run_config(name, amp, fused, comp, args) for name, amp, fused, comp in configs]
    base = rows[0]["samples_per_s"]
    lines = [f"thesis preset on {torch.cuda.get_device_name()}, batch {args.batch}, "
             f"{'real shards' if args.shards else 'synthetic on-device batch'}", "",
             "| config | samples/s | vs fp32 | MFU | peak mem | data wait | masking share |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['samples_per_s']:.0f} | {r['samples_per_s'] / base:.2f}x | {r['mfu']:.1%} "
                     f"| {r['peak_mem_gb']:.1f} GiB | {r['data_wait_share']:.1%} | {r['mask_share']:.2%} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as handle:
            handle.write("\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
