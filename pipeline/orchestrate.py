"""The Ray driver: list input chunks, run one task per missing output shard, merge, summarise (`run_output`,
which `retokenize` shares)."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.images import DEFAULT_MAX_PIXELS, ImagePolicy
from pipeline.items import ChunkSpec, ShardResult
from pipeline.sources import safe_key
from pipeline.shard_runs import run_tasks
from pipeline.state import (check_out, check_remote_out, local_out, prepare_out, publish_out,
                            remove_stale_temporaries)
from pipeline.tagger import model_identity
from pipeline.worker import TaskConfig, process_shard
from pipeline.writer import WORK_DIR, read_part
from toolbox.errors import UserError
from shards.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)


@dataclass
class PipelineConfig:
    """Everything `posmask tag-shards` was asked to do."""

    format: str
    src: Path
    out: str | Path  # a folder, or an fsspec URL the output is published to (`stage` holds it meanwhile)
    workers: int = 2
    image_size: int = 256
    max_len: int = 64
    shard_size: int = 10_000
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
    progress: bool | None = None  # None: a bar on a terminal, periodic log lines otherwise; False: log lines
    stage: Path | None = None  # where an output bound for a URL is made (default: a folder under the temp dir)
    command: str | None = None  # the command line that made it, for the card
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


def resolve_source(cfg: PipelineConfig) -> tuple[Path, Path | None, int]:
    """(input file or folder, image folder, seed): for `scenes`, the COCO training split of the sample and
    its generator seed; 0 for the other formats."""
    if cfg.format == "scenes":
        from pipeline.sources import scenes

        captions, images, seed = scenes.locate(cfg.src)
        return captions.resolve(), images.resolve(), seed
    if not cfg.src.exists():
        raise UserError(f"--src {cfg.src}: no such file or folder")
    return cfg.src.resolve(), cfg.images.resolve() if cfg.images else None, 0


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
    from toolbox.atomic import sha256_file

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


def output_config(cfg: PipelineConfig, src: Path, images: Path | None, seed: int) -> dict[str, Any]:
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
        "seed": seed,
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
            # "local": a fresh Ray of our own, even when a `ray start` cluster on this machine left its address.
            # Ray turns token authentication on for it, and says so in a WARNING on every run: kept on, not said.
            with quiet_token_notice():
                ray.init(address="local", num_cpus=workers, object_store_memory=256 * 2**20, **options)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as err:
        where = f" at {address}" if address else ""
        if is_auth_failure(err):
            raise UserError(f"cannot connect to Ray{where}: the cluster uses token authentication; set "
                            "RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, or ~/.ray/auth_token) "
                            "on every node and on this machine") from None
        raise UserError(f"cannot start or reach Ray{where}: {err}") from None
    return True


TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"


class _DropTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(TOKEN_NOTICE)


@contextlib.contextmanager
def quiet_token_notice() -> Iterator[None]:
    """Leave out Ray's notice that a local cluster it starts uses token authentication (it tells the user
    nothing to do); its other warnings and errors, and a cluster's refusal, still show."""
    logger, notice = logging.getLogger(TOKEN_NOTICE_LOGGER), _DropTokenNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def is_auth_failure(err: BaseException | None) -> bool:
    """True when Ray refused the connection for a missing or wrong token (the error or one of its causes).

    Ray raises `AuthenticationError` when token mode is on but no token is found; a missing or wrong
    token on the wire surfaces as a ConnectionError caused by a RuntimeError quoting the GCS's refusal.
    """
    from ray.exceptions import AuthenticationError

    chain: list[BaseException] = []
    while err is not None and err not in chain:
        chain.append(err)
        err = err.__cause__ or err.__context__
    marks = ("AuthenticationError", "InvalidAuthToken", "Unauthenticated")
    return any(isinstance(e, AuthenticationError) or any(m in str(e) for m in marks) for e in chain)


def run_pipeline(cfg: PipelineConfig) -> dict[str, Any]:
    """Run tag-shards end to end; returns the manifest (with a `summary` line under `run`)."""
    from shards.tokenizer import load_tokenizer

    started = time.perf_counter()
    validate(cfg)
    src, images, seed = resolve_source(cfg)
    config = output_config(cfg, src, images, seed)
    _, tokenizer_info = load_tokenizer()

    def task_config(out: Path) -> TaskConfig:
        return TaskConfig(out=str(out), max_len=cfg.max_len, text_only=cfg.text_only,
                          images=ImagePolicy(image_size=cfg.image_size, max_pixels=cfg.max_image_pixels),
                          spacy_model=cfg.spacy_model)

    return run_output(cfg, config, lambda: build_chunks(cfg, src, images), process_shard, task_config,
                      tokenizer_info.to_manifest(), started)


def run_output(runner: Any, config: dict[str, Any], make_chunks: Callable[[], list[ChunkSpec]],
               task: Callable[[ChunkSpec, Any], ShardResult], task_config: Callable[[Path], Any],
               tokenizer: dict[str, Any], started: float) -> dict[str, Any]:
    """The driver every shard output shares (tag-shards, retokenize): refuse an OUT made with another `config`
    or skip a finished one, make each missing shard with `task` (in process or one Ray task each), merge the
    shards' results into OUT's files, the card and the manifest (last), and publish it when OUT is a URL.
    `runner`: the command's settings (`out`, `stage`, `overwrite`, `workers`, `ray_address`, `progress`,
    `command`). Returns the manifest, with a `summary` line under `run`."""
    from shards.manifest import read_manifest

    out, url = local_out(runner.out, runner.stage)
    if url is not None and check_remote_out(url, config, runner.overwrite) == "done":
        manifest = read_manifest(url)
        manifest["run"]["summary"] = "already complete: " + manifest["run"].get("summary", "")
        log.info("%s is already complete with this config; nothing to do", url)
        return manifest
    state = check_out(out, config, runner.overwrite)
    chunks = [] if state == "done" else make_chunks()
    prepare_out(out, config, state)
    if state == "done":
        manifest = read_manifest(out)
        if url is not None:
            publish_out(out, url)
        manifest["run"]["summary"] = "already complete: " + manifest["run"].get("summary", "")
        log.info("%s is already complete with this config; nothing to do", url or out)
        return manifest
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
        run_tasks(pending, task_config(out), runner, results, total_chunks=chunks, task=task)
    remove_stale_temporaries(out)
    elapsed = time.perf_counter() - started
    ordered = [results[spec.index] for spec in chunks]
    from pipeline.outputs import finish, totals

    tot = totals(ordered)
    summary = summary_line(tot, len(chunks), resumed, elapsed, url or out)
    run = {"workers": runner.workers, "ray_address": runner.ray_address, "seconds": round(elapsed, 2),
           "resumed_shards": resumed, "summary": summary,
           "shards": [{"file": r.name, "seconds": round(r.seconds, 3), "worker_pid": r.worker_pid,
                       "worker_rss_mb": round(r.worker_rss_mb, 1), "finished": round(r.finished, 3)}
                      for r in ordered]}
    manifest = finish(out, ordered, config, tokenizer, run, where=url or str(out), command=runner.command)
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    if url is not None:
        publish_out(out, url)
    return manifest


def summary_line(tot: dict[str, Any], shards: int, resumed: int, seconds: float, out: Path | str) -> str:
    """One line: read, written, rejected by reason, truncated, shards, time."""
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(tot["rejected_by_reason"].items(), key=lambda kv: -kv[1]))
    rate = tot["read"] / seconds if seconds > 0 else 0.0
    return (f"read {tot['read']}, written {tot['written']}, rejected {tot['rejected']}"
            f"{' (' + reasons + ')' if reasons else ''}, truncated {tot['truncated']}; "
            f"{shards} shards{f' ({resumed} resumed)' if resumed else ''} in {seconds:.1f}s "
            f"({rate:.0f} captions/s) -> {out}")


def command_line(args: Any) -> str | None:
    """The command as typed (`posmask SUBCOMMAND ...`), for the card; None when not run from the CLI."""
    import shlex

    argv = getattr(args, "argv", None)
    return shlex.join(["posmask", *argv]) if argv else None


def config_from_args(args: Any) -> PipelineConfig:
    """PipelineConfig from parsed CLI arguments."""
    values = {k: getattr(args, k) for k in PipelineConfig.__dataclass_fields__ if hasattr(args, k)}
    return PipelineConfig(**{**values, "command": command_line(args)})


__all__ = ["PipelineConfig", "run_pipeline"]
