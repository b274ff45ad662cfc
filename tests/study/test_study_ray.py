"""`posmask study` on a Ray cluster: a head and a worker started with `ray start` (token authentication),
two tiny runs at once, one Ray task each."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ray_cluster import local_ray_cluster
from study_grids import DEFAULTS, DET_07
from trainer.engine.metrics import read_metrics

REPO = Path(__file__).resolve().parents[2]
TWO = DEFAULTS.replace("max_steps = 5", "max_steps = 30") + DET_07 + '''
[[run]]
name = "none"
pos = "none"
'''


@pytest.mark.slow
def test_study_on_a_two_node_ray_cluster(study_shards: Path, tiny_eval: Path, tmp_path: Path) -> None:
    grid = tmp_path / "two.toml"
    grid.write_text(TWO)
    out = tmp_path / "study"
    with local_ray_cluster(tmp_path, nodes=2) as env:
        result = subprocess.run([sys.executable, "-m", "posmask_cli", "study", "--grid", str(grid), "--shards",
                                 str(study_shards), "--data", str(tiny_eval), "--out", str(out)],
                                cwd=REPO, env=env | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                                timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    spans = []
    for name in ("DET-0.7", "none"):
        times = [r["time"] for r in read_metrics(out / "runs" / name / "metrics.jsonl")]
        assert len(times) == 30 and (out / "runs" / name / "eval" / "retrieval.json").is_file()
        spans.append((min(times), max(times)))
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1  # the two runs trained at the same time ...
    nodes = {line.split(" on node ")[1].split()[0] for line in result.stderr.splitlines() if "pretrain: done" in line}
    assert len(nodes) == 2  # ... one on each node
    assert (out / "report" / "retrieval.md").is_file()
