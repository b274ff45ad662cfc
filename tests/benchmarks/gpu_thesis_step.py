"""GPU benchmark of the `thesis` preset (ViT-B/32 224 px, 6+6 layers, batch 64): samples/s, MFU, peak memory,
data-wait share and masking share, for bf16 autocast + fused AdamW (+ torch.compile) against plain fp32.

    python tests/benchmarks/gpu_thesis_step.py [--steps 30] [--batch 64] [--shards data/shards/NAME]
                                               [--workers 8] [--decode cpu|gpu] [--compare-decode]
                                               [--no-compile] [--write-doc]

Without --shards the batch is synthetic and already on the GPU (data wait 0 by construction); with --shards
the loader of `posmask pretrain` feeds it (uint8 crops from the workers, normalised on the device; with
`--decode gpu` the device decodes too), so the data-wait share is real; `--compare-decode` adds the fastest
configuration with the other decode. `--write-doc` puts the table in the
`## GPU` section of docs/benchmarks.md. Exits 0 with a message without CUDA; `--device cpu --preset tiny` runs
the same code on a CPU (a check that it works, not figures).
It runs the real model and objective, so the "bf16" figures include what stays float32 under autocast (the ITC
similarities and loss, the ITM and MLM heads: trainer.model.precision).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batches(args: argparse.Namespace, cfg, device: torch.device, decode: str) -> Callable[[], dict]:
    """The batch source: the training loader over --shards, or one synthetic batch on the device."""
    from trainer.data.stream import ShardStream, StreamSettings, make_loader, open_shards, to_device

    B, L, S = args.batch, cfg.model.max_text_len, cfg.model.image_size
    if not args.shards:
        fixed = {"pixels": torch.randn(B, 3, S, S, device=device),
                 "ids": torch.randint(1000, 30000, (B, L), device=device),
                 "pos": torch.randint(0, 17, (B, L), device=device).to(torch.uint8),
                 "word": torch.arange(L, device=device).repeat(B, 1).to(torch.int16),
                 "attention_mask": torch.ones(B, L, dtype=torch.long, device=device),
                 "image_ids": torch.arange(B, device=device)}
        return lambda: fixed
    settings = StreamSettings(batch_size=B, image_size=S, max_len=L, crop_scale=cfg.crop_scale, pad_to=L,
                              device_decode=decode == "gpu" and device.type == "cuda")
    stream = ShardStream(open_shards(args.shards).urls, settings)
    loader = iter(make_loader(stream, args.workers, pin_memory=device.type == "cuda"))

    def next_batch() -> dict:
        batch = next(loader)
        batch.pop("corrupt")
        batch.pop("drawn")
        return to_device(batch, device)

    return next_batch


def run_config(name: str, amp: bool, fused: bool, compile_: bool, decode: str, args: argparse.Namespace) -> dict:
    """Warm up, then time `args.steps` training steps of one configuration."""
    from trainer.config import preset_config
    from trainer.engine.engine import autocast, param_groups
    from trainer.masking.masker import Masker, parse_mask_spec
    from trainer.engine.metrics import flops_per_sample, peak_memory_mb, peak_tflops
    from trainer.model.posmask import PosMaskModel
    from trainer.model.objective import Pretrainer

    device = torch.device(args.device)
    cfg = preset_config(args.preset)
    torch.manual_seed(0)
    model = PosMaskModel(cfg.model, vision_weights="random")
    module = Pretrainer(model, mlm=True).to(device).train()
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, fused=fused)
    forward = torch.compile(module) if compile_ else module
    masker = Masker(parse_mask_spec("DET", 0.7), 103, cfg.model.vocab_size, device=device)
    next_batch = batches(args, cfg, device, decode)

    def step(timings: dict | None = None) -> None:
        t0 = time.perf_counter()
        batch = next_batch()
        if timings is not None:
            sync(device)
            timings["wait"] += time.perf_counter() - t0
        masked = masker(batch["ids"], batch["pos"], batch["word"])
        with autocast(device, amp):
            out = forward(batch["pixels"], batch["ids"], batch["attention_mask"], batch["image_ids"],
                          masked.input_ids, masked.labels)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    for _ in range(5 if compile_ else 3):
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timings = {"wait": 0.0}
    start = time.perf_counter()
    for _ in range(args.steps):
        step(timings)
    sync(device)
    elapsed = time.perf_counter() - start
    B, L, S = args.batch, cfg.model.max_text_len, cfg.model.image_size
    ids, pos = torch.randint(1000, 30000, (B, L), device=device), torch.randint(0, 17, (B, L), device=device)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(100):
        masker(ids, pos)
    sync(device)
    mask_s = (time.perf_counter() - t0) / 100
    sps = B * args.steps / elapsed
    tokens = (S // model.vision.patch_embed.patch_size[0]) ** 2 + 1
    peak = peak_tflops(device, args.peak_tflops)
    mfu = flops_per_sample(model, tokens, L, True) * sps / (peak * 1e12) if peak else float("nan")
    return {"config": name + (f", --decode {decode}" if args.shards else ""), "samples_per_s": sps, "mfu": mfu,
            "peak_mem_gb": peak_memory_mb(device) / 1024, "data_wait_share": timings["wait"] / elapsed,
            "mask_share": mask_s / (elapsed / args.steps)}


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    """The `## GPU` section."""
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (a check run, not figures)"
    source = (f"shards {args.shards}, {args.workers} loader workers" if args.shards
              else "a synthetic batch already on the device")
    base = rows[0]["samples_per_s"]
    lines = ["## GPU", "",
             f"`tests/benchmarks/gpu_thesis_step.py`: the {args.preset} preset on {where}, batch {args.batch}, "
             f"{args.steps} timed steps, {source} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).", "",
             "| config | samples/s | vs fp32 | MFU | peak mem | data wait | masking share |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['config']} | {r['samples_per_s']:.0f} | {r['samples_per_s'] / base:.2f}x | {r['mfu']:.1%} "
              f"| {r['peak_mem_gb']:.1f} GiB | {r['data_wait_share']:.1%} | {r['mask_share']:.2%} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--shards")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--decode", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--compare-decode", action="store_true", help="add the last configuration, other decode")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--preset", choices=("thesis", "tiny"), default="thesis")
    parser.add_argument("--write-doc", action="store_true", help="write the `## GPU` section of docs/benchmarks.md")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_thesis_step: no CUDA GPU here; nothing measured")
        return 0
    configs = [("fp32, AdamW (reference)", False, False, False, args.decode)]
    if args.device == "cuda":
        configs.append(("bf16 autocast + fused AdamW", True, True, False, args.decode))
        if not args.no_compile:
            configs.append(("bf16 + fused + torch.compile", True, True, True, args.decode))
    if args.shards and args.compare_decode:
        configs.append((*configs[-1][:4], "cpu" if args.decode == "gpu" else "gpu"))
    section = markdown([run_config(*config, args) for config in configs], args)
    print(section)
    if args.write_doc:
        from bench_doc import write_section

        print(f"written to {write_section(section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
