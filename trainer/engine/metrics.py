"""Training metrics: sums over a logging window kept on the device, `metrics.jsonl` (written here and
read here only), throughput, peak memory, MFU, and a progress line per logged step; with `report_to`
"tensorboard", TensorBoard event files beside metrics.jsonl, with the same names, values and steps."""
from __future__ import annotations

import contextlib
import json
import logging
import resource
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toolbox.errors import UserError
from toolbox.progress import DEFAULT_EVERY, on_terminal
from trainer.engine.distributed import all_reduce_sum

log = logging.getLogger(__name__)

REPORT_TO: tuple[str, ...] = ("none", "tensorboard")
NOT_CURVES: frozenset[str] = frozenset({"step", "time"})  # record fields that are no curve


def event_writer_class() -> Any:  # -> type[torch.utils.tensorboard.SummaryWriter]
    """TensorBoard's SummaryWriter; a one-line UserError when the optional extra is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("--report-to tensorboard needs the tensorboard package: pip install 'posmask[tensorboard]' "
                        "(or pip install tensorboard)") from None
    return SummaryWriter


def check_report_to(report_to: str) -> None:
    """Refuse an unknown `report_to`, or tensorboard without its package, before anything runs."""
    if report_to not in REPORT_TO:
        raise UserError(f"report_to {report_to!r}; valid: {', '.join(REPORT_TO)}")
    if report_to == "tensorboard":
        event_writer_class()


class EventLog:
    """TensorBoard scalars of the metrics records: each number under its metrics.jsonl name (a dict of numbers as
    NAME/KEY), at the record's step. A resumed run purges the events after its checkpoint's step, as
    metrics.jsonl's reader keeps the last record of a step."""

    def __init__(self, folder: Path, start_step: int = 0) -> None:
        self.writer = event_writer_class()(log_dir=str(folder), purge_step=start_step or None)

    def write(self, record: Mapping[str, Any]) -> None:
        step = int(record["step"])
        for name, value in record.items():
            values = value.items() if isinstance(value, Mapping) else [(None, value)]
            for key, number in values:
                if name in NOT_CURVES or isinstance(number, bool) or not isinstance(number, (int, float)):
                    continue
                self.writer.add_scalar(name if key is None else f"{name}/{key}", number, step)

    def close(self) -> None:
        self.writer.close()


# Dense bf16 tensor-core peaks (TFLOP/s) for MFU when `posmask pretrain --peak-tflops` is not given.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "4090": 165.0}


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    """The GPU's bf16 peak, from the flag or its name; None on CPU or unknown GPUs."""
    if given or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def flops_per_sample(model: nn.Module, n_image_tokens: int, text_len: int, mlm: bool,
                     mlm_share: float = 1.0) -> float:
    """Training FLOPs per sample (6 x params x tokens per pass; attention scores ignored: short sequences).

    Passes: vision 1; text 1 (+1 MLM); fusion 3 (ITM pos + 2 negatives) (+1 MLM); the MLM vocabulary projection on
    `mlm_share` of the text positions (its slots: trainer.masking.capacity; 1 = every position).
    """
    def params(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    vision = params(model.vision) * n_image_tokens
    text = params(model.text_layers) * text_len * (2 if mlm else 1)
    fusion = params(model.fusion_layers) * text_len * (4 if mlm else 3)
    head = model.config.hidden_size * model.config.vocab_size * text_len * mlm_share if mlm else 0
    return 6.0 * (vision + text + fusion + head)


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or the process's peak RSS on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MetricsWindow:
    """Per-step values summed on the device over one logging window (no host sync until `summary`).

    `means` are averaged over the window's steps and the ranks; `totals` are summed: 0-d tensors, or
    1-d ones of the length `sizes` gives (read back as lists).
    """

    def __init__(self, device: torch.device, means: Sequence[str], totals: Sequence[str] = (),
                 sizes: Mapping[str, int] | None = None) -> None:
        self.device, self.mean_names, self.total_names = device, tuple(means), tuple(totals)
        self.sizes = [(sizes or {}).get(k, 1) for k in self.total_names]
        self.reset()

    def reset(self) -> None:
        """Start a new window."""
        self.start, self.wait, self.steps, self.samples = time.perf_counter(), 0.0, 0, 0
        self.values = torch.zeros(len(self.mean_names) + sum(self.sizes), dtype=torch.float64, device=self.device)

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Time spent inside counts as waiting for data."""
        start = time.perf_counter()
        yield
        self.wait += time.perf_counter() - start

    def add(self, samples: int, means: Mapping[str, torch.Tensor],
            totals: Mapping[str, torch.Tensor] | None = None) -> None:
        """One step's values (0-d tensors; 1-d for sized totals) and its number of samples on this rank."""
        self.steps += 1
        self.samples += samples
        parts = [means[k].detach().double().reshape(1) for k in self.mean_names]
        parts += [(totals or {})[k].detach().double().reshape(-1) for k in self.total_names]
        self.values += torch.cat(parts)

    def summary(self, world: int) -> dict[str, Any]:
        """Means, totals, samples/s over all ranks and this rank's data-wait share (one sync); resets."""
        values = all_reduce_sum(self.values.clone()).tolist()
        n = len(self.mean_names)
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        out: dict[str, Any] = {k: v / max(1, self.steps * world) for k, v in zip(self.mean_names, values[:n])}
        for k, size in zip(self.total_names, self.sizes):
            out[k] = int(values[n]) if size == 1 else [int(v) for v in values[n:n + size]]
            n += size
        out.update(samples_per_s=self.samples * world / elapsed, data_wait_share=self.wait / elapsed)
        self.reset()
        return out


class MetricsLog:
    """Appends one JSON line per logged step (main rank only) and shows a progress line: redrawn on a
    terminal, written to the log at most every `every` seconds (and at the last step) otherwise."""

    def __init__(self, path: Path, enabled: bool, total_steps: int, keys: Sequence[str] = ("loss",),
                 start_step: int = 0, every: float = DEFAULT_EVERY, events: Path | None = None) -> None:
        self.path, self.enabled, self.total_steps, self.keys = path, enabled, total_steps, tuple(keys)
        self.tty, self.every = on_terminal(), every
        self.start, self.start_step, self.last_line = time.time(), start_step, float("-inf")
        self.events = EventLog(events, start_step) if enabled and events is not None else None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        if self.events is not None:
            self.events.write(record)
        self.progress(record)

    def progress(self, r: dict[str, Any]) -> None:
        """One line: step, the chosen values, speed, data wait, elapsed time and ETA."""
        elapsed = time.time() - self.start
        values = " ".join(f"{k} {r[k]:.3f}" for k in self.keys if isinstance(r.get(k), (int, float)))
        speed = (f" | {r['samples_per_s']:.1f} samp/s wait {r['data_wait_share']:.0%}"
                 if "samples_per_s" in r else "")
        step = int(r.get("step", self.start_step))
        eta = elapsed / max(step - self.start_step, 1) * (self.total_steps - step)
        line = f"step {step}/{self.total_steps} | {values}{speed} | {elapsed:.0f}s, ETA {eta:.0f}s"
        if self.tty:
            sys.stderr.write("\r" + line[:160].ljust(160))
            sys.stderr.flush()
        elif time.time() - self.last_line >= self.every or step == self.total_steps:
            self.last_line = time.time()
            log.info(line)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl (a torn last line is ignored); [] when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def read_step_records(path: str | Path) -> dict[int, dict[str, Any]]:
    """A metrics.jsonl's step records by step, in step order (a resumed run's repeated steps: the last)."""
    by_step = {int(r["step"]): r for r in read_metrics(path) if "step" in r}
    return dict(sorted(by_step.items()))
