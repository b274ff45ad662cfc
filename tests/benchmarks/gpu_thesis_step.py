"""GPU benchmark of the `thesis` preset (ViT-B/32 224 px, 6+6 layers, batch 64): samples/s, MFU, peak memory,
data-wait share, masking share and host syncs per step, for bf16 autocast + fused AdamW (+ torch.compile) against
plain fp32.

    python tests/benchmarks/gpu_thesis_step.py [--steps 30] [--batch 64] [--configs fp32,bf16,compile]
                                               [--shards data/shards/NAME] [--workers 8] [--decode cpu|gpu]
                                               [--compare-decode] [--write-doc] [--section GPU]

Without --shards the batch is synthetic and already on the GPU (data wait 0 by construction); with --shards
the loader of `posmask pretrain` feeds it (uint8 crops from the workers, normalised on the device; with
`--decode gpu` the device decodes too), so the data-wait share is real, and the loader alone is timed too
(samples/s it delivers with nothing else running); `--compare-decode` adds the last configuration with the other
decode. `--write-doc` puts the table in its `## SECTION` of docs/benchmarks.md (POSMASK_BENCH_DOC: another file).
Exits 0 with a message without CUDA; `--device cpu` runs the same code on a CPU (bf16 autocast and fused AdamW
exist there too, and torch.compile uses inductor's C++ backend): a check that it works, not figures.
It runs the real model and objective, so the "bf16" figures include what stays float32 under autocast (the ITC
similarities and loss, the ITM and MLM heads: trainer.model.precision). Only torch, timm, numpy, pillow,
safetensors, transformers' tokenizer and webdataset (with --shards) are imported: no spaCy, no Ray, no pyarrow.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
CONFIGS = {"fp32": ("fp32, AdamW (reference)", False, False, False),
           "bf16": ("bf16 autocast + fused AdamW", True, True, False),
           "compile": ("bf16 + fused + torch.compile", True, True, True)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def amp_context(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on the device's type (on CUDA the same as trainer.engine.engine.autocast)."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


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


def loader_rate(next_batch: Callable[[], dict], device: torch.device, batch: int, n: int) -> float:
    """Samples/s the loader delivers onto the device alone (after its workers have started)."""
    for _ in range(2):
        next_batch()
    sync(device)
    start = time.perf_counter()
    for _ in range(n):
        next_batch()
    sync(device)
    return batch * n / (time.perf_counter() - start)


def run_config(key: str, decode: str, args: argparse.Namespace) -> dict:
    """Warm up, then time `args.steps` training steps of one configuration."""
    from trainer.config import preset_config
    from trainer.engine.engine import param_groups
    from trainer.engine.host_sync import HostSyncCounter
    from trainer.engine.metrics import flops_per_sample, peak_memory_mb, peak_tflops
    from trainer.masking.masker import Masker, parse_mask_spec
    from trainer.model.objective import Pretrainer
    from trainer.model.posmask import PosMaskModel

    name, amp, fused, compile_ = CONFIGS[key]
    device = torch.device(args.device)
    cfg = preset_config(args.preset)
    torch.manual_seed(0)
    model = PosMaskModel(cfg.model, vision_weights="random")
    module = Pretrainer(model, mlm=True).to(device).train()
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, fused=fused)
    forward = torch.compile(module) if compile_ else module
    masker = Masker(parse_mask_spec("DET", 0.7), 103, cfg.model.vocab_size, device=device)
    next_batch = batches(args, cfg, device, decode)
    alone = loader_rate(next_batch, device, args.batch, args.steps) if args.shards else None

    def step(timings: dict | None = None) -> None:
        t0 = time.perf_counter()
        batch = next_batch()
        if timings is not None:
            sync(device)
            timings["wait"] += time.perf_counter() - t0
        masked = masker(batch["ids"], batch["pos"], batch["word"])
        with amp_context(device, amp):
            out = forward(batch["pixels"], batch["ids"], batch["attention_mask"], batch["image_ids"],
                          masked.input_ids, masked.labels, mlm_positions=masked.positions)
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
    syncs = None
    if not compile_:  # one more step, its host syncs counted (a dispatch mode; not with compiled graphs)
        try:
            with HostSyncCounter(device) as counter:
                step()
            syncs = len(counter.events)
            print(f"{name}, --decode {decode}: one step, {counter.summary()}", flush=True)
        except Exception as err:  # a count that fails must not cost the row its figures
            print(f"{name}, --decode {decode}: host syncs not counted ({type(err).__name__}: {err})", flush=True)
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
    flops = flops_per_sample(model, tokens, L, True, masker.capacity)
    mfu = flops * sps / (peak * 1e12) if peak else float("nan")
    return {"config": name + (f", --decode {decode}" if args.shards else ""), "samples_per_s": sps, "mfu": mfu,
            "peak_mem_gb": peak_memory_mb(device) / 1024, "data_wait_share": timings["wait"] / elapsed,
            "mask_share": mask_s / (elapsed / args.steps), "loader_alone": alone, "syncs": syncs}


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    """The `## SECTION` section."""
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (a check run, not figures)"
    source = (f"shards {args.shards}, {args.workers} loader workers" if args.shards
              else "a synthetic batch already on the device")
    versions = f"torch {torch.__version__}, Python {sys.version.split()[0]}"
    base = rows[0]["samples_per_s"]
    lines = [f"## {args.section}", "",
             f"`tests/benchmarks/gpu_thesis_step.py`: the {args.preset} preset on {where}, batch {args.batch}, "
             f"{args.steps} timed steps, {source}; {versions} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). "
             "MFU: the project's FLOP count (trainer.engine.metrics.flops_per_sample) over the bf16 dense peak. "
             "Host syncs: counted over one more step (not with torch.compile; on a CPU every tensor is a host "
             "tensor, so the non-fused AdamW's step counters count too).", "",
             "| config | samples/s | vs first | MFU | peak mem | data wait | loader alone | masking share "
             "| host syncs/step |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        alone = "—" if r["loader_alone"] is None else f"{r['loader_alone']:.0f}/s"
        syncs = "—" if r["syncs"] is None else str(r["syncs"])
        lines.append(f"| {r['config']} | {r['samples_per_s']:.0f} | {r['samples_per_s'] / base:.2f}x | {r['mfu']:.1%} "
                     f"| {r['peak_mem_gb']:.1f} GiB | {r['data_wait_share']:.1%} | {alone} | {r['mask_share']:.2%} "
                     f"| {syncs} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--configs", default="fp32,bf16,compile",
                        help=f"comma-separated, in this order: {', '.join(CONFIGS)}")
    parser.add_argument("--shards")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--decode", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--compare-decode", action="store_true", help="add the last configuration, other decode")
    parser.add_argument("--no-compile", action="store_true", help="drop `compile` from --configs")
    parser.add_argument("--peak-tflops", type=float)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--preset", choices=("thesis", "tiny"), default="thesis")
    parser.add_argument("--write-doc", action="store_true", help="write the section into docs/benchmarks.md")
    parser.add_argument("--section", default="GPU", help="the section's title (default GPU)")
    args = parser.parse_args()
    keys = [k.strip() for k in args.configs.split(",") if k.strip()]
    keys = [k for k in keys if not (args.no_compile and k == "compile")]
    unknown = [k for k in keys if k not in CONFIGS]
    if unknown or not keys:
        parser.error(f"--configs {args.configs!r}: valid are {', '.join(CONFIGS)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_thesis_step: no CUDA GPU here; nothing measured")
        return 0
    runs = [(k, args.decode) for k in keys]
    if args.shards and args.compare_decode:
        runs.append((keys[-1], "cpu" if args.decode == "gpu" else "gpu"))
    section = markdown([run_config(key, decode, args) for key, decode in runs], args)
    print(section)
    if args.write_doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_doc import write_section

        print(f"written to {write_section(section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
