"""The samples a run read against the samples its shards should hold: a truncated copy of a shard (a failed copy
to a node) is read to where it breaks off, the stream goes on, and nothing else would say so.

The streams report every shard a consumer finishes (`ShardStream`'s `shards_read`: samples read, samples the
manifest lists). `ReadCount` keeps, per rank, the shards finished in the current epoch (by pass and shard, so a
resumed stream that reads them again counts them once) and the run's totals; it lives in the loop state, so it is
checkpointed and resumed with the run. `totals` and `close_epoch` sum over ranks (collectives: every rank calls
them at the same step).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from trainer.engine.distributed import all_reduce_sum

log = logging.getLogger(__name__)


def fresh_reads() -> dict[str, Any]:
    """The loop state's `reads` entry of a new run."""
    return {"epoch": 0, "shards": {}, "read": 0, "expected": 0}


class ReadCount:
    """This rank's count of samples read against samples expected (see module doc), kept in `state`."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def add(self, epoch: int, finished: Mapping[str, Any]) -> None:
        """Count the shards a batch reports finished (`{"PASS:URL": (read, expected)}`), each once per epoch."""
        state = self.state
        if state["epoch"] != epoch:
            state.update(epoch=epoch, shards={})
        for key, (read, expected) in finished.items():
            if key in state["shards"]:
                continue
            state["shards"][key] = [int(read), int(expected)]
            state["read"] += int(read)
            state["expected"] += int(expected)
            if read < expected:
                log.warning("shard %s: read %d of the %d samples its manifest lists (epoch %d, pass %s); a damaged "
                            "copy?", key.split(":", 1)[1], read, expected, epoch, key.split(":", 1)[0])

    def totals(self, device: torch.device) -> dict[str, int]:
        """The run's samples read, expected and short, over all ranks."""
        read, expected = _summed([self.state["read"], self.state["expected"]], device)
        return {"samples_read": read, "samples_expected": expected, "samples_short": expected - read}

    def close_epoch(self, epoch: int, device: torch.device) -> dict[str, int]:
        """The record of `epoch` (its finished shards), over all ranks."""
        shards = self.state["shards"].values() if self.state["epoch"] == epoch else []
        read, expected = _summed([sum(r for r, _ in shards), sum(x for _, x in shards)], device)
        return {"epoch": epoch, "samples_read": read, "samples_expected": expected, "samples_short": expected - read}


def _summed(values: list[int], device: torch.device) -> list[int]:
    return [int(v) for v in all_reduce_sum(torch.tensor(values, dtype=torch.float64, device=device)).tolist()]


__all__ = ["ReadCount", "fresh_reads"]
