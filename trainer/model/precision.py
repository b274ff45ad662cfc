"""Full precision where a number decides a result: the ITC similarities and the ITM / MLM heads run in
float32 whatever the autocast, in training and in evaluation alike. bf16 keeps 8 bits of mantissa: near-equal
scores round to ties, and at temperature 0.07 an ITC logit is off by up to 0.02. The encoders keep bf16."""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor


def no_autocast(x: Tensor) -> contextlib.AbstractContextManager[Any]:
    """Autocast off on the device type of `x` (operations inside run in the dtype of their inputs)."""
    return torch.autocast(x.device.type, enabled=False)


def similarity(a: Tensor, b: Tensor) -> Tensor:
    """`a @ b.T` in float32 ([Na,E] x [Nb,E] -> [Na,Nb]), also under a bf16 autocast."""
    with no_autocast(a):
        return a.float() @ b.float().T
