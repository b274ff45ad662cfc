"""Per-step metrics: metrics.jsonl, throughput, data-wait share, peak memory, MFU, a live progress line."""
from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

# Dense bf16 tensor-core peaks (TFLOP/s) for MFU when --peak-tflops is not given.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "4090": 165.0}


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    """The GPU's bf16 peak, from the flag or its name; None on CPU or unknown GPUs."""
    if given or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def flops_per_sample(model: nn.Module, n_image_tokens: int, text_len: int, mlm: bool) -> float:
    """Training FLOPs per sample (6 x params x tokens per pass; attention scores ignored: short sequences).

    Passes: vision 1; text 1 (+1 MLM); fusion 3 (ITM pos + 2 negatives) (+1 MLM); MLM head 1.
    """
    def params(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    vision = params(model.vision) * n_image_tokens
    text = params(model.text_layers) * text_len * (2 if mlm else 1)
    fusion = params(model.fusion_layers) * text_len * (4 if mlm else 3)
    head = model.config.hidden_size * model.config.vocab_size * text_len if mlm else 0
    return 6.0 * (vision + text + fusion + head)


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or the process's peak RSS on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MetricsLog:
    """Appends one JSON line per logged step (main rank only) and prints a progress line."""

    def __init__(self, path: Path, enabled: bool, total_steps: int) -> None:
        self.path, self.enabled, self.total_steps = path, enabled, total_steps
        self.tty = sys.stderr.isatty()
        self.start = time.time()

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        self.progress(record)

    def progress(self, r: dict[str, Any]) -> None:
        """One line: step, losses, ITM accuracy, masked share, speed, data wait, ETA."""
        elapsed = time.time() - self.start
        line = (f"step {r['step']}/{self.total_steps} ep {r['epoch']} | loss {r['loss']:.3f} mlm {r['mlm']:.3f} "
                f"itc {r['itc']:.3f} itm {r['itm']:.3f} acc {r['itm_acc']:.2f} | masked {r['masked_share']:.3f} "
                f"| {r['samples_per_s']:.1f} samp/s wait {r['data_wait_share']:.0%} | {elapsed:.0f}s")
        if self.tty:
            sys.stderr.write("\r" + line[:160].ljust(160))
            sys.stderr.flush()
        else:
            log.info(line)

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl (ignores a torn last line)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
