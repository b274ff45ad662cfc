"""Matplotlib figures without a display, saved atomically and reproducibly (the project's plots share this)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from toolbox.atomic import atomic_path

log = logging.getLogger(__name__)


def pyplot() -> Any:
    """`matplotlib.pyplot` on the Agg backend (works on a headless machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


METADATA: dict[str, dict[str, None]] = {"png": {"Software": None},
                                        "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def save_figure(fig: Any, *paths: str | os.PathLike[str]) -> Path:
    """Write `fig` to each path in the format its suffix names (PNG at 100 dpi, PDF) atomically, then close
    it; no software or date stamp, so the same data gives the same bytes. Returns the first path."""
    outs = [Path(p) for p in paths]
    for out in outs:
        fmt = out.suffix.lstrip(".").lower()
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt, dpi=100, metadata=METADATA.get(fmt))
        log.debug("wrote %s", out)
    pyplot().close(fig)
    return outs[0]

