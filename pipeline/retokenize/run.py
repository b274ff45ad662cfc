"""The retokenize driver: check the input output (manifest, shard sizes), load the tokenizer once to record it,
then tag-shards' own driver (`pipeline.orchestrate.run_output`) makes one output shard per input shard."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pipeline.items import ChunkSpec
from pipeline.orchestrate import run_output
from pipeline.retokenize.pieces import load_fast_tokenizer, tokenizer_info
from pipeline.retokenize.worker import RetokenizeTask, retokenize_shard
from toolbox.errors import UserError
from toolbox.urls import is_remote
from shards.manifest import read_manifest, shard_urls
from shards.schema import SCHEMA_VERSION
from shards.verify import check_shards

log = logging.getLogger(__name__)


@dataclass
class RetokenizeConfig:
    """Everything `posmask retokenize` was asked to do."""

    shards: str  # the input: a tag-shards output, a folder or a URL of one
    tokenizer: str  # a Hugging Face fast tokenizer: a local folder or a name in the local cache
    out: str | Path
    workers: int = 2
    max_len: int | None = None  # None: the input's
    ray_address: str | None = None
    overwrite: bool = False
    progress: bool | None = None
    stage: Path | None = None
    command: str | None = None
    verb: ClassVar[str] = "retokenize"  # the progress line's name


def run_retokenize(cfg: RetokenizeConfig) -> dict[str, Any]:
    """Retokenize end to end; returns the output's manifest (with a `summary` line under `run`)."""
    started = time.perf_counter()
    if cfg.workers < 1:
        raise UserError(f"--workers must be at least 1 (got {cfg.workers})")
    source = cfg.shards if is_remote(cfg.shards) else str(Path(cfg.shards).resolve())
    manifest = read_manifest(source)
    urls = shard_urls(source, manifest)
    found = check_shards(urls, manifest["shards"])
    if found.damaged:
        raise UserError(f"--shards {cfg.shards}: damaged shard: {found.damaged[0]}; copy it again")
    name = str(Path(cfg.tokenizer).resolve()) if Path(cfg.tokenizer).is_dir() else cfg.tokenizer
    tokenizer = tokenizer_info(load_fast_tokenizer(name), cfg.tokenizer)
    max_len = cfg.max_len or int((manifest.get("config") or {}).get("max_len") or 64)
    if max_len < 3:
        raise UserError(f"--max-len must be at least 3 (got {max_len})")
    input_config = manifest.get("config") or {}
    config = {"schema_version": SCHEMA_VERSION, "retokenize": True, "name": input_config.get("name"),
              "source": input_config.get("source"), "max_len": max_len,
              "input": {"shards": [[e["file"], e.get("sha256")] for e in manifest["shards"]],
                        "tokenizer": (manifest.get("tokenizer") or {}).get("vocab_sha256"), "config": input_config},
              "tokenizer": {k: tokenizer[k] for k in ("name", "vocab_sha256", "tokenizer_sha256")}}
    label = str(input_config.get("source") or "retokenized")
    chunks = [ChunkSpec(index=i, name=entry["file"], source=label, url=url, n_items=int(entry.get("samples", 0)))
              for i, (url, entry) in enumerate(zip(urls, manifest["shards"]))]

    def task_config(out: Path) -> RetokenizeTask:
        return RetokenizeTask(out=str(out), tokenizer=name, max_len=max_len, tagger=manifest.get("tagger") or {})

    return run_output(cfg, config, lambda: chunks, retokenize_shard, task_config, tokenizer, started)


__all__ = ["RetokenizeConfig", "run_retokenize"]
