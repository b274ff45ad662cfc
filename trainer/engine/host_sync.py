"""Counting the operations that make the host wait for the device: on CUDA each one stalls the step until the GPU
has caught up, so the training step's hot path must have none between log steps (the log step reads its window
once). On a CPU the same operations run without waiting, which is what lets a CPU test count them:

    with HostSyncCounter() as syncs:
        one_training_step()
    assert not syncs.events, syncs.summary()

It sees `.item()` / `float(t)` / `bool(t)` (`_local_scalar_dense`, `is_nonzero`), `nonzero`, `masked_select`,
boolean-mask indexing and assignment, `unique`, `repeat_interleave` without an output size, `equal`, and copies
from a CUDA tensor to the host. On a CPU every tensor counts (a CPU test stands in for the device); given a CUDA
`device`, only calls on that device's tensors count (AdamW's non-fused step counters, say, live on the host and
cost no wait). Not seen: a blocking host-to-device copy (`torch.tensor(x, device="cuda")`), which
the dispatcher shows as an ordinary copy; create such tensors on the host and move them with non_blocking=True.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
_ALWAYS = {"_local_scalar_dense": "item", "is_nonzero": "bool", "nonzero": "nonzero", "masked_select": "masked_select",
           "unique_dim": "unique", "_unique": "unique", "_unique2": "unique", "unique_consecutive": "unique",
           "equal": "equal"}
_INDEXING = {"index", "index_put", "index_put_", "_index_put_impl_"}


def _is_boolean_index(indices: Any) -> bool:
    return any(isinstance(t, torch.Tensor) and t.dtype in (torch.bool, torch.uint8) for t in indices or ())


def sync_kind(func: Any, args: tuple, kwargs: dict) -> str | None:
    """The kind of host sync an aten call makes ('item', 'nonzero', 'boolean index', ...), or None."""
    name = func.overloadpacket.__name__
    if name in _ALWAYS:
        return _ALWAYS[name]
    if name in _INDEXING and len(args) > 1 and _is_boolean_index(args[1]):
        return "boolean index"
    if name == "repeat_interleave" and kwargs.get("output_size") is None and isinstance(args[0], torch.Tensor) \
            and len(args) == 1:
        return "repeat_interleave"
    if name in ("_to_copy", "copy_"):
        source = args[1] if name == "copy_" else args[0]
        target = args[0].device if name == "copy_" else kwargs.get("device")
        if isinstance(source, torch.Tensor) and source.device.type == "cuda" and \
                target is not None and torch.device(target).type == "cpu":
            return "device to host copy"
    return None


def _on(device_type: str, args: Any) -> bool:
    """Whether any tensor among `args` (nested in lists and tuples) is on a device of `device_type`."""
    if isinstance(args, torch.Tensor):
        return args.device.type == device_type
    return isinstance(args, (list, tuple)) and any(_on(device_type, a) for a in args)


class HostSyncCounter(TorchDispatchMode):
    """A dispatch mode that records every host-syncing aten call made inside it (see module doc)."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.device = None if device is None or torch.device(device).type == "cpu" else torch.device(device).type
        self.events: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        kind = sync_kind(func, args, kwargs)
        if kind is not None and (self.device is None or kind == "device to host copy" or _on(self.device, args)):
            self.events.append(f"{kind} ({func.overloadpacket.__name__})")
        return func(*args, **kwargs)

    def summary(self) -> str:
        """'N host syncs: 3x item (_local_scalar_dense), ...' or 'no host sync'."""
        if not self.events:
            return "no host sync"
        counts = Counter(self.events)
        return f"{len(self.events)} host syncs: " + ", ".join(f"{n}x {kind}" for kind, n in counts.most_common())


__all__ = ["HostSyncCounter", "sync_kind"]
