"""The log-scale loss plot of a run (MLM, ITC, ITM against step), drawn with matplotlib Agg."""
from __future__ import annotations

from pathlib import Path

from trainer.metrics import read_metrics


def plot_losses(metrics_path: str | Path, out_path: str | Path, title: str = "") -> Path | None:
    """Write the plot to out_path (atomically); None if there are no records yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shards.atomic import atomic_path

    records = read_metrics(metrics_path)
    if not records:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in records]
    for key in ("mlm", "itc", "itm"):
        values = [max(r[key], 1e-6) for r in records]
        if any(r[key] > 0 for r in records):
            ax.plot(steps, values, label=key.upper())
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out_path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=100)
    plt.close(fig)
    return out
