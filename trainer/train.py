"""Pre-training, top to bottom: shards in, POS-conditional masking on the device, MLM + ITC + ITM, on
the run engine (trainer.engine.engine: optimiser, schedule, DDP, checkpoints, resume, metrics.jsonl)."""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

import torch

from toolbox.atomic import atomic_write_json
from toolbox.errors import Interrupted
from shards.tokenizer import check_same_vocab, load_tokenizer
from trainer.model.albef import MomentumQueue
from trainer.config import TrainConfig
from trainer.data.reads import ReadCount, fresh_reads
from trainer.data.stream import (ShardStream, StreamSettings, check_shard_files, check_word_index, make_loader,
                                 open_shards, steps_per_epoch, to_device)
from trainer.data.device_decode import device_decode
from trainer.engine.distributed import DistInfo
from trainer.engine.engine import Engine, OptimSettings, capped_warmup
from trainer.masking.loss_weights import LOSS_NAMES
from trainer.masking.counts import TOTALS, mask_fields, step_counts
from trainer.masking.spec import MaskSpec
from trainer.masking.capacity import class_shares
from trainer.masking.masker import Masker
from trainer.engine.metrics import MetricsWindow, flops_per_sample, peak_memory_mb, peak_tflops
from trainer.model.posmask import PosMaskModel, save_pretrained
from trainer.run_dir import RunDir
from trainer.model.objective import Pretrainer
from trainer.engine.plots import plot_losses

log = logging.getLogger(__name__)
LOSSES = ("mlm", "itc", "itm", "itm_acc", "temp")


def optim_settings(cfg: TrainConfig, total: int, steps_per_epoch_: int = 1) -> OptimSettings:
    """AdamW with warm-up from warmup_lr, then cosine to min_lr. The warm-up lasts `warmup_epochs` epochs
    when set, else `warmup_steps` steps capped at a tenth of the run."""
    warmup = (round(cfg.warmup_epochs * steps_per_epoch_) if cfg.warmup_epochs is not None
              else capped_warmup(cfg.warmup_steps, total))
    return OptimSettings(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_lr=cfg.warmup_lr, min_lr=cfg.min_lr,
                         warmup_steps=warmup, grad_clip=cfg.grad_clip, decay_groups=cfg.decay_groups)


def fresh_loop_state() -> dict[str, Any]:
    """What a run carries across checkpoints besides the engine's state: counters and data position."""
    return {"stats": {"empty_mlm_batches": 0, "corrupt_samples": 0, "epochs": []}, "epoch": 0, "drawn": {},
            "workers": None, "reads": fresh_reads()}


def step_inputs(batch: dict[str, torch.Tensor], spec: MaskSpec, masker: Masker, cfg: TrainConfig, step: int,
                steps_per_epoch_: int, total: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The Pretrainer's keyword inputs for one batch (masking done here, on the device) and its token counts."""
    inputs: dict[str, Any] = dict(pixels=batch["pixels"], ids=batch["ids"], attention_mask=batch["attention_mask"],
                                  image_ids=batch["image_ids"])
    masked = masker(batch["ids"], batch["pos"], batch["word"], step) if spec.mlm else None
    if masked is not None:
        inputs.update(mlm_ids=masked.input_ids, mlm_labels=masked.labels, mlm_positions=masked.positions)
    counts = step_counts(masked, batch["pos"])
    device = batch["ids"].device  # schedules go in as tensors: torch.compile does not recompile per value

    def scalar(value: Any) -> torch.Tensor:  # a host value on the device without waiting for it (no stream sync)
        return torch.tensor(value).to(device, non_blocking=True)

    if not cfg.loss_weights.is_default:
        inputs["loss_weights"] = scalar(cfg.loss_weights.at(step, total))
    if cfg.albef:
        inputs["alpha"] = scalar(cfg.alpha * min(1.0, step / steps_per_epoch_))
    hard_steps = cfg.hard_negative_steps(total)
    if hard_steps:
        inputs["hardness"] = scalar(min(1.0, step / hard_steps))
    return inputs, counts


def train(cfg: TrainConfig, info: DistInfo) -> int:
    """Run (or resume) pre-training into cfg.run; raises Interrupted when stopped by SIGTERM."""
    device, rank, world = info.device, info.rank, info.world_size
    run_dir, spec = RunDir(cfg.run), cfg.mask
    shards = open_shards(cfg.shards)
    _, tok = load_tokenizer()
    check_same_vocab(shards.manifest, tok)
    check_shard_files(shards, cfg.allow_damaged_shards, cfg.verify_shards)
    if spec.whole_word:
        check_word_index(shards)
    model_config = dataclasses.replace(cfg.model, vocab_size=tok.vocab_size, pad_id=tok.pad_id)  # the shards'
    spe = steps_per_epoch(shards.total, world, cfg.batch_size)
    total = spe * cfg.epochs if cfg.max_steps is None else min(spe * cfg.epochs, cfg.max_steps)
    engine = Engine(run_dir.path, optim_settings(cfg, total, spe), info, total, cfg.identity(), amp=cfg.amp,
                    compile=cfg.compile, progress_keys=("loss", "mlm", "itc", "itm", "itm_acc", "masked_share"),
                    report_to=cfg.report_to)

    torch.manual_seed(cfg.seed)  # identical init on every rank
    model = PosMaskModel(model_config, vision_weights="random" if engine.resuming else cfg.vision_weights)
    albef = MomentumQueue(model, cfg.momentum, cfg.queue_size, cfg.model.embed_dim) if cfg.albef else None
    module = Pretrainer(model, spec.mlm, albef, cfg.mlm_mean)
    torch.manual_seed(cfg.seed + 1000 * rank)  # per-rank randomness (masking, negatives, dropout)
    net = engine.attach(module, find_unused_parameters=not spec.mlm, sync_buffers=False,  # ALBEF queues: per rank
                        after_step=model.clamp_temperature)
    masker = Masker(spec, tok.mask_id, tok.vocab_size, cfg.mask_probs, device, total, class_shares(shards.histograms))
    if info.is_main:  # the run record, with what the settings resolve to for this run's length
        resolved = {"total_steps": total, "steps_per_epoch": spe, "warmup_steps": engine.settings.warmup_steps,
                    "hard_negative_warmup_steps": cfg.hard_negative_steps(total), "vocab_size": tok.vocab_size,
                    "pad_id": tok.pad_id, "mlm_slot_share": masker.capacity}
        atomic_write_json(run_dir.run_config, {**cfg.to_dict(), "resolved": resolved})
    state = engine.loop_state or fresh_loop_state()
    stats = state["stats"]
    stats.setdefault("epochs", [])  # checkpoints of runs started before the read count
    reads = ReadCount(state.setdefault("reads", fresh_reads()))
    image_tokens = (cfg.model.image_size // model.vision.patch_embed.patch_size[0]) ** 2 + 1
    flops = flops_per_sample(model, image_tokens, cfg.model.max_text_len, spec.mlm, masker.capacity)
    peak = peak_tflops(device, cfg.peak_tflops)
    window = MetricsWindow(device, LOSSES, tuple(TOTALS), TOTALS)
    workers = max(1, cfg.workers)
    stream_settings = StreamSettings(
        batch_size=cfg.batch_size, image_size=cfg.model.image_size, max_len=cfg.model.max_text_len, seed=cfg.seed,
        pad_id=tok.pad_id, shuffle_buffer=cfg.shuffle_buffer, crop_scale=cfg.crop_scale, augment=cfg.augment,
        device_decode=device_decode(cfg.decode, device, cfg.augment),
        pad_to=cfg.model.max_text_len if cfg.compile else None)
    if info.is_main:
        log.info("mask %s | %d samples, %d steps/epoch x %d ranks x batch %d, %d steps total | MLM slots for %.1f %% "
                 "of the text positions", spec.report_label, shards.total, spe, world, cfg.batch_size, total,
                 100 * masker.capacity)

    module.train()
    stopped = False
    try:
        while not engine.done and not stopped:
            epoch, start = divmod(engine.step, spe)
            same_position = state["epoch"] == epoch and state["workers"] == workers
            stream = ShardStream(shards.urls, stream_settings, rank, world, epoch, skip_batches=start,
                                 drawn=state["drawn"] if same_position and start else None, sizes=shards.sizes)
            batches = iter(make_loader(stream, cfg.workers, pin_memory=device.type == "cuda"))
            state.update(epoch=epoch, workers=workers, drawn=dict(state["drawn"]) if same_position else {})
            corrupt_before, corrupt = stats["corrupt_samples"], {}  # per worker role, cumulative in this loader
            for index in range(start, spe):
                with window.waiting():
                    batch = next(batches)
                corrupt[index % workers] = int(batch.pop("corrupt"))
                state["drawn"][index % workers] = int(batch.pop("drawn"))
                reads.add(epoch, batch.pop("shards_read"))
                stats["corrupt_samples"] = corrupt_before + sum(corrupt.values())
                batch = to_device(batch, device)  # images normalised (and with --decode gpu decoded) there
                inputs, counts = step_inputs(batch, spec, masker, cfg, engine.step, spe, total)
                with engine.autocast():
                    out = net(**inputs)
                grad_norm = engine.update(out["loss"])
                window.add(batch["ids"].shape[0], out, counts)

                if index == spe - 1 or engine.done:  # the epoch's count, in the run record (a collective)
                    close_epoch(stats, reads.close_epoch(epoch, device), run_dir, info.is_main)
                if engine.due(cfg.log_every):
                    engine.log({**metrics_record(window, engine, epoch, grad_norm, stats, world, flops, peak, spec),
                                **reads.totals(device), **schedule_fields(cfg, masker, engine.step - 1, total)})
                stopped = engine.stop_requested()
                if stopped or engine.due(cfg.ckpt_every):
                    engine.save(state)
                if stopped or engine.done:
                    break
            del batches
    finally:
        engine.close()
    if stopped:
        raise Interrupted(f"stopped by SIGTERM at step {engine.step}; run the same command again to resume")
    if info.is_main:
        save_pretrained(model, run_dir.path)
        plot_losses(run_dir.metrics, run_dir.losses, title=f"{cfg.preset} {spec.report_label}")
        read = {k: sum(e[k] for e in stats["epochs"]) for k in ("samples_read", "samples_expected", "samples_short")}
        if read["samples_short"]:
            log.warning("the shards held %d fewer samples than their manifests list (epoch: read/expected %s)",
                        read["samples_short"], ", ".join(f"{e['epoch']}: {e['samples_read']}/{e['samples_expected']}"
                                                         for e in stats["epochs"]))
        atomic_write_json(run_dir.summary, {"steps": engine.step, "mask": spec.to_dict(), **stats,
                                            **read})  # last: finished
        log.info("done: %s (%s, %s, %s)", run_dir.path, run_dir.model.name, run_dir.model_config.name,
                 run_dir.losses.name)
    return 0


def close_epoch(stats: dict[str, Any], record: dict[str, int], run_dir: RunDir, is_main: bool) -> None:
    """Keep an epoch's read count (once: a resumed epoch replaces its record) and write it to the run record."""
    stats["epochs"] = [e for e in stats["epochs"] if e["epoch"] != record["epoch"]] + [record]
    if is_main:
        config = json.loads(run_dir.run_config.read_text(encoding="utf-8"))
        atomic_write_json(run_dir.run_config, {**config, "reads": stats["epochs"]})


def schedule_fields(cfg: TrainConfig, masker: Masker, step: int, total: int) -> dict[str, Any]:
    """The curriculum stage, the loss weights and the hard-negative share of step `step` (host values: no sync)."""
    fields: dict[str, Any] = {}
    if cfg.mask.stages:
        stage = masker.stage_at(step)
        fields.update(mask_stage=stage, mask_stage_name=cfg.mask.stages[stage].name)
    if not cfg.loss_weights.is_default:
        fields["loss_weights"] = dict(zip(LOSS_NAMES, cfg.loss_weights.at(step, total)))
    hard_steps = cfg.hard_negative_steps(total)
    if hard_steps:
        fields["itm_hardness"] = min(1.0, step / hard_steps)
    return fields


def metrics_record(window: MetricsWindow, engine: Engine, epoch: int, grad_norm: torch.Tensor | None,
                   stats: dict[str, Any], world: int, flops: float, peak: float | None,
                   spec: MaskSpec) -> dict[str, Any]:
    """One metrics.jsonl line, averaged over the logging window and over ranks (one host sync); `loss` is
    the unweighted sum of the three losses (the weights, when set, are logged beside it)."""
    values = window.summary(world)
    stats["empty_mlm_batches"] += values.pop("empty_mlm")
    masking = mask_fields(values, spec)
    record = {
        "step": engine.step, "epoch": epoch, "lr": engine.lr, "loss": values["mlm"] + values["itc"] + values["itm"],
        **values, "grad_norm": float(grad_norm) if grad_norm is not None else None, **masking,
        **{k: v for k, v in stats.items() if k != "epochs"},
        "peak_mem_mb": peak_memory_mb(engine.info.device), "time": time.time(),
    }
    if peak:
        record["mfu"] = flops * record["samples_per_s"] / world / (peak * 1e12)
    return record
