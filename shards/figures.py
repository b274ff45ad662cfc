"""Matplotlib figures without a display, saved atomically and reproducibly (the project's plots share this)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from shards.atomic import atomic_path

log = logging.getLogger(__name__)


def pyplot() -> Any:
    """`matplotlib.pyplot` on the Agg backend (works on a headless machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write `fig` as a 100 dpi PNG atomically and close it; no software stamp, so the same data gives the same bytes."""
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    pyplot().close(fig)
    log.debug("wrote %s", out)
    return out
