"""The Ray driver: list input chunks, run one task per missing output shard, merge, summarise."""
from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.images import DEFAULT_MAX_PIXELS, ImagePolicy
from pipeline.items import ChunkSpec, ShardResult
from pipeline.sources import safe_key
from pipeline.state import check_out, prepare_out, remove_stale_temporaries
from pipeline.tagger import model_identity
from pipeline.worker import TaskConfig, process_shard
from pipeline.writer import WORK_DIR, read_part
from shards.errors import UserError
from shards.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

TASK_RETRIES = 3


@dataclass
class PipelineConfig:
    """Everything `posmask tag-shards` was asked to do."""

    format: str
    src: Path
    out: Path
    workers: int = 2
    image_size: int = 256
    max_len: int = 64
    shard_size: int = 10_000
    seed: int = 0
    images: Path | None = None
    text_only: bool = False
    limit: int | None = None
    name: str | None = None
    source_name: str | None = None
    image_column: str | None = None
    caption_column: str | None = None
    key_column: str | None = None
    spacy_model: str | None = None
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    ray_address: str | None = None
    overwrite: bool = False
    progress: bool | None = None  # None: a bar on a terminal, log lines otherwise
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The source label stored in samples and used in keys."""
        return safe_key(self.source_name or self.format)

    @property
    def shard_name(self) -> str:
        """Prefix of the output tar names."""
        return safe_key(self.name or self.label)


def validate(cfg: PipelineConfig) -> None:
    """Reject impossible settings with one clear line."""
    from pipeline.sources import FORMATS

    if cfg.format not in FORMATS:
        raise UserError(f"unknown --format {cfg.format!r}; choose one of {', '.join(FORMATS)}")
    for flag, value, low in (("--workers", cfg.workers, 1), ("--max-len", cfg.max_len, 3),
                             ("--shard-size", cfg.shard_size, 1), ("--image-size", cfg.image_size, 0),
                             ("--max-image-pixels", cfg.max_image_pixels, 1)):
        if value < low:
            raise UserError(f"{flag} must be at least {low} (got {value})")
    if cfg.limit is not None and cfg.limit < 1:
        raise UserError(f"--limit must be at least 1 (got {cfg.limit})")
    if cfg.limit is not None and cfg.format == "img2dataset":
        raise UserError("--limit is not supported for --format img2dataset (pass fewer tars instead)")


def resolve_source(cfg: PipelineConfig) -> tuple[Path, Path | None]:
    """(input file or folder, image folder) — for `scenes`, the generated COCO-format sample."""
    if cfg.format != "scenes":
        if not cfg.src.exists():
            raise UserError(f"--src {cfg.src}: no such file or folder")
        return cfg.src.resolve(), cfg.images.resolve() if cfg.images else None
    try:
        from pipeline.scenes import ensure_scenes
    except ImportError as err:
        raise UserError(f"the built-in scenes sample is not available ({err})") from None
    captions, images = ensure_scenes(cfg.src, seed=cfg.seed)
    return Path(captions).resolve(), Path(images).resolve()


def build_chunks(cfg: PipelineConfig, src: Path, images: Path | None) -> list[ChunkSpec]:
    """The input chunks (chunk i -> output shard i)."""
    if cfg.format in ("coco", "scenes"):
        from pipeline.sources import coco

        return coco.chunks(src, images, cfg.text_only, cfg.shard_size, cfg.shard_name, cfg.label, cfg.limit)
    if cfg.format == "img2dataset":
        from pipeline.sources import img2dataset

        return img2dataset.chunks(src, cfg.shard_name, cfg.label)
    from pipeline.sources import table

    return table.chunks(src, images, cfg.text_only, cfg.shard_size, cfg.shard_name, cfg.label,
                        cfg.image_column, cfg.caption_column, cfg.key_column, cfg.limit)


def input_fingerprint(src: Path) -> dict[str, Any]:
    """What identifies the input's content: sha256 of a file, or names and sizes of a folder's tars.

    A resume on changed input would mix old and new shards, so a changed input counts as another config.
    """
    from shards.atomic import sha256_file

    if src.is_file():
        return {"bytes": src.stat().st_size, "sha256": sha256_file(src)}
    if src.is_dir():
        import hashlib

        digest = hashlib.sha256()
        tars = sorted(p for p in src.glob("*.tar") if p.is_file())
        for tar in tars:
            digest.update(f"{tar.name}\0{tar.stat().st_size}\n".encode())
        return {"tars": len(tars), "names_sizes_sha256": digest.hexdigest()}
    return {}


def output_config(cfg: PipelineConfig, src: Path, images: Path | None) -> dict[str, Any]:
    """The settings the output depends on (recorded in the manifest; a resume must match them)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "format": cfg.format,
        "src": str(src),
        "images": str(images) if images else None,
        "source": cfg.label,
        "name": cfg.shard_name,
        "image_size": 0 if cfg.text_only else cfg.image_size,
        "max_image_pixels": cfg.max_image_pixels,
        "text_only": cfg.text_only,
        "max_len": cfg.max_len,
        "shard_size": cfg.shard_size,
        "seed": cfg.seed,
        "limit": cfg.limit,
        "columns": {"image": cfg.image_column, "caption": cfg.caption_column, "key": cfg.key_column},
        "input": input_fingerprint(src),
        "tagger": model_identity(cfg.spacy_model),
        **cfg.extra,
    }


def init_ray(workers: int, address: str | None) -> bool:
    """Start local Ray with `workers` CPUs, or connect to `address`; True if this call started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                               "log_to_driver": False, "configure_logging": True}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers, object_store_memory=256 * 2**20, **options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise UserError(f"cannot start or reach Ray{' at ' + address if address else ''}: {err}") from None
    return True


def run_pipeline(cfg: PipelineConfig) -> dict[str, Any]:
    """Run tag-shards end to end; returns the manifest (with a `summary` line under `run`)."""
    from shards.manifest import read_manifest
    from shards.tokenizer import load_tokenizer

    started = time.perf_counter()
    validate(cfg)
    src, images = resolve_source(cfg)
    out = cfg.out.resolve()
    config = output_config(cfg, src, images)
    state = check_out(out, config, cfg.overwrite)
    chunks = [] if state == "done" else build_chunks(cfg, src, images)
    prepare_out(out, config, state)
    if state == "done":
        manifest = read_manifest(out)
        manifest["run"]["summary"] = "already complete: " + manifest["run"].get("summary", "")
        log.info("%s is already complete with this config; nothing to do", out)
        return manifest
    task_cfg = TaskConfig(out=str(out), max_len=cfg.max_len, text_only=cfg.text_only,
                          images=ImagePolicy(image_size=cfg.image_size, max_pixels=cfg.max_image_pixels),
                          spacy_model=cfg.spacy_model)
    results: dict[int, ShardResult] = {}
    for spec in chunks:
        done = read_part(out, spec.name)
        if done is not None:
            results[spec.index] = done
    resumed = len(results)
    if resumed:
        log.info("resuming: %d of %d shards already finished", resumed, len(chunks))
    pending = [spec for spec in chunks if spec.index not in results]
    if pending:
        run_tasks(pending, task_cfg, cfg, results, total_chunks=chunks)
    remove_stale_temporaries(out)
    elapsed = time.perf_counter() - started
    ordered = [results[spec.index] for spec in chunks]
    _, tokenizer_info = load_tokenizer()
    from pipeline.outputs import finish, totals

    tot = totals(ordered)
    summary = summary_line(tot, len(chunks), resumed, elapsed, out)
    run = {"workers": cfg.workers, "ray_address": cfg.ray_address, "seconds": round(elapsed, 2),
           "resumed_shards": resumed, "summary": summary,
           "shards": [{"file": r.name, "seconds": round(r.seconds, 3), "worker_pid": r.worker_pid,
                       "worker_rss_mb": round(r.worker_rss_mb, 1), "finished": round(r.finished, 3)}
                      for r in ordered]}
    manifest = finish(out, ordered, config, tokenizer_info.to_manifest(), run)
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    return manifest


def summary_line(tot: dict[str, Any], shards: int, resumed: int, seconds: float, out: Path) -> str:
    """One line: read, written, rejected by reason, truncated, shards, time."""
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(tot["rejected_by_reason"].items(), key=lambda kv: -kv[1]))
    rate = tot["read"] / seconds if seconds > 0 else 0.0
    return (f"read {tot['read']}, written {tot['written']}, rejected {tot['rejected']}"
            f"{' (' + reasons + ')' if reasons else ''}, truncated {tot['truncated']}; "
            f"{shards} shards{f' ({resumed} resumed)' if resumed else ''} in {seconds:.1f}s "
            f"({rate:.0f} captions/s) -> {out}")


def shard_failure(name: str, err: BaseException) -> UserError:
    """The one-line error for a failed Ray task. A UserError raised inside it (bad input) keeps its own
    message; other exceptions are not retried either; crashed workers and OSErrors were retried."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, UserError):
        return UserError(f"shard {name}: {cause}")
    last_line = str(err).strip().splitlines()[-1][:300]
    if cause is not None and not isinstance(cause, OSError):
        return UserError(f"shard {name} failed: {last_line}")
    return UserError(f"shard {name} failed after {TASK_RETRIES} retries: {last_line}; re-run to resume")


def run_tasks(pending: list[ChunkSpec], task_cfg: TaskConfig, cfg: PipelineConfig,
              results: dict[int, ShardResult], total_chunks: list[ChunkSpec]) -> None:
    """One Ray task per pending shard (a bounded number in flight), retried on worker failure."""
    import ray
    from tqdm import tqdm

    address = cfg.ray_address if cfg.ray_address is not None else os.environ.get("RAY_ADDRESS") or None
    started_ray = init_ray(cfg.workers, address)
    try:
        remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=[OSError])(process_shard)
        cfg_ref = ray.put(task_cfg)
        known = all(spec.n_items is not None for spec in total_chunks)
        total = sum(spec.n_items or 0 for spec in total_chunks) if known else None
        done_items = sum(r.read for r in results.values())
        show_bar = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
        bar = tqdm(total=total, initial=done_items, unit="cap", unit_scale=True, dynamic_ncols=True,
                   desc="tag-shards", disable=not show_bar, smoothing=0.3)
        in_flight: dict[Any, ChunkSpec] = {}
        queue = list(pending)
        window = max(2, 2 * int(ray.cluster_resources().get("CPU", cfg.workers)))
        t0 = time.perf_counter()
        fresh = 0
        while queue or in_flight:
            while queue and len(in_flight) < window:
                spec = queue.pop(0)
                in_flight[remote.remote(spec, cfg_ref)] = spec
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                spec = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:
                    raise shard_failure(spec.name, err) from None
                results[spec.index] = result
                fresh += result.read
                bar.update(result.read)
                if not show_bar:
                    rate = fresh / max(time.perf_counter() - t0, 1e-9)
                    left = (total - done_items - fresh) / rate if total and rate else float("nan")
                    log.info("%s done (%d/%d): %d written, %d rejected; %.0f captions/s, ETA %.0fs", spec.name,
                             len(results), len(total_chunks), result.samples, len(result.rejects), rate, left)
        bar.close()
    finally:
        if started_ray:
            ray.shutdown()


def config_from_args(args: Any) -> PipelineConfig:
    """PipelineConfig from parsed CLI arguments."""
    return PipelineConfig(**{k: getattr(args, k) for k in PipelineConfig.__dataclass_fields__
                             if hasattr(args, k)})


__all__ = ["PipelineConfig", "run_pipeline"]
