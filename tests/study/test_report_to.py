"""REPORT_TO in a study: `--report-to tensorboard` reaches every run's pre-training config and its VQA fine-tune's
command, so one `tensorboard --logdir OUT` shows every run (their events live in OUT/runs/NAME)."""
from __future__ import annotations

from pathlib import Path

from study.grid import load_grid
from study.plan import Settings, plan_jobs


def test_report_to_reaches_pretraining_and_the_vqa_fine_tune(tmp_path: Path) -> None:
    grid = load_grid("demo", "tiny")
    jobs = plan_jobs(grid, Settings(out=tmp_path / "s", shards="data/x", tasks=("retrieval", "vqa"),
                                    report_to="tensorboard"))
    for job in jobs:
        pretrain, retrieval, vqa = job.steps
        assert pretrain.config.report_to == "tensorboard"
        assert Path(pretrain.config.run).parent == tmp_path / "s" / "runs"
        assert vqa.argv[vqa.argv.index("--report-to") + 1] == "tensorboard" and "--report-to" not in retrieval.argv
    quiet = plan_jobs(grid, Settings(out=tmp_path / "q", shards="data/x", tasks=("vqa",)))
    assert all(j.config.report_to == "none" and "--report-to" not in j.steps[1].argv for j in quiet)
