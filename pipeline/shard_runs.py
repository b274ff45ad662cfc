"""How the pending shards get made: in this process (one local worker), or one Ray task each (a local Ray, watched
by `pipeline.reaper`, or a cluster), with a progress bar; failures become one line naming the shard."""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any, TypeVar

from pipeline.items import ChunkSpec, ShardResult
from pipeline.worker import process_shard
from toolbox.errors import UserError

log = logging.getLogger(__name__)
TASK_RETRIES = 3
T = TypeVar("T")
Task = Callable[[ChunkSpec, Any], ShardResult]  # one output shard from its chunk and the command's task config


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


def in_process(cfg: Any, address: str | None) -> bool:
    """One local worker and no Ray running: the shards are made in this process (Ray would add its start-up,
    about 6 s, and nothing else)."""
    ray = sys.modules.get("ray")
    return address is None and cfg.workers == 1 and not (ray is not None and ray.is_initialized())


def run_tasks(pending: list[ChunkSpec], task_cfg: Any, cfg: Any, results: dict[int, ShardResult],
              total_chunks: list[ChunkSpec], task: Task = process_shard) -> None:
    """Make every pending shard with `task` (in this process, or one Ray task each), with a progress bar.
    `cfg`: the command's settings (`workers`, `ray_address`, `progress`: a PipelineConfig, a RetokenizeConfig)."""
    from toolbox.progress import Progress

    address = cfg.ray_address if cfg.ray_address is not None else os.environ.get("RAY_ADDRESS") or None
    finished = (inline_results(pending, task_cfg, total_chunks, task) if in_process(cfg, address)
                else ray_results(pending, task_cfg, cfg.workers, total_chunks, address, task))
    known = all(spec.n_items is not None for spec in total_chunks)
    total = sum(spec.n_items or 0 for spec in total_chunks) if known else None
    with closing(finished), Progress(total, desc=getattr(cfg, "verb", "tag-shards"), unit="cap", terminal=cfg.progress,
                                     initial=sum(r.read for r in results.values())) as bar:
        for result in finished:
            results[result.index] = result
            log.debug("%s: %d written, %d rejected in %.1fs", result.name, result.samples, len(result.rejects),
                      result.seconds)
            bar.set_postfix(shards=f"{len(results)}/{len(total_chunks)}")
            bar.update(result.read)


def inline_results(pending: list[ChunkSpec], task_cfg: Any, total_chunks: list[ChunkSpec],
                   task: Task = process_shard) -> Iterator[ShardResult]:
    """The shards made one after the other in this process (a failure stops the run; a re-run resumes)."""
    from pipeline.sources import img2dataset

    if total_chunks[0].path is not None:
        plan_tars(total_chunks, [inline_call(spec.name, img2dataset.tar_keys, spec.path, spec.source)
                                 for spec in total_chunks])
    for spec in pending:
        yield inline_call(spec.name, task, spec, task_cfg)


def inline_call(name: str, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` for shard `name`; bad input and I/O errors become one line naming the shard."""
    try:
        return function(*args)
    except UserError as err:
        raise UserError(f"shard {name}: {err}") from None
    except OSError as err:
        raise UserError(f"shard {name} failed: {err}; re-run to resume") from None
    except Exception as err:  # noqa: BLE001 - as the Ray path reports a failed task: one line naming the shard
        last = (str(err).strip().splitlines() or [type(err).__name__])[-1][:300]
        raise UserError(f"shard {name} failed: {type(err).__name__}: {last}; re-run to resume") from None


def ray_results(pending: list[ChunkSpec], task_cfg: Any, workers: int, total_chunks: list[ChunkSpec],
                address: str | None, task: Task = process_shard) -> Iterator[ShardResult]:
    """One Ray task per pending shard (a bounded number in flight, retried on worker failure), as they finish.
    A local Ray started here is watched by `pipeline.reaper` (Linux), so that a driver killed hard leaves none of it."""
    import ray

    from pipeline.orchestrate import init_ray
    from pipeline.reaper import Reaper

    reaper = Reaper() if address is None and not ray.is_initialized() and os.path.isdir("/proc") else None
    started_ray = False
    try:
        started_ray = init_ray(workers, address)
        if total_chunks[0].path is not None:  # img2dataset: a header pre-pass makes keys unique across tars
            plan_tars(total_chunks, ray_map(total_chunks))
        remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=[OSError])(task)
        cfg_ref = ray.put(task_cfg)
        in_flight: dict[Any, ChunkSpec] = {}
        queue = list(pending)
        window = max(2, 2 * int(ray.cluster_resources().get("CPU", workers)))
        while queue or in_flight:
            while queue and len(in_flight) < window:
                spec = queue.pop(0)
                in_flight[remote.remote(spec, cfg_ref)] = spec
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                spec = in_flight.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as err:
                    raise shard_failure(spec.name, err) from None
    finally:
        if started_ray:
            ray.shutdown()
        if reaper is not None:
            reaper.release()


def ray_map(chunks: list[ChunkSpec]) -> list[Any]:
    """`img2dataset.tar_keys` of every input tar, one Ray task per tar."""
    import ray

    from pipeline.sources import img2dataset

    remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=[OSError])(img2dataset.tar_keys)
    refs = [remote.remote(spec.path, spec.source) for spec in chunks]
    scans = []
    for spec, ref in zip(chunks, refs):
        try:
            scans.append(ray.get(ref))
        except ray.exceptions.RayError as err:
            raise shard_failure(spec.name, err) from None
    return scans


def plan_tars(chunks: list[ChunkSpec], scans: list[Any]) -> None:
    """`img2dataset.plan` all chunks from the headers of every input tar (finished ones too: a pending tar
    must know the keys of every earlier tar)."""
    from pipeline.sources import img2dataset

    img2dataset.plan(chunks, scans)
    log.info("read the headers of %d input tars: %d inputs, %d keys also in an earlier tar",
             len(chunks), sum(s.inputs for s in scans), sum(len(spec.taken) for spec in chunks))
