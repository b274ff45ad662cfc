"""Grid files: the built-in grids load; a bad grid is refused in one line naming the file and the entry."""
from __future__ import annotations

from pathlib import Path

import pytest

from toolbox.errors import UserError
from study.grid import load_grid
from study.plan import Settings, plan_jobs

GOOD = '''
[defaults]
preset = "tiny"
max_steps = 5
tasks = ["retrieval", "valse"]
[defaults.eval]
k = 4
[preset.thesis]
max_steps = 50
[[run]]
name = "DET-0.7"
pos = "DET"
ratio = 0.7
[[run]]
name = "albef"
pos = "random"
albef = true
[run.eval.valse]
batch_size = 4
'''


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return str(path)


def test_builtin_grids() -> None:
    thesis = load_grid("thesis", "tiny")
    names = [e.name for e in thesis.entries]
    assert len(names) == 17 and names[-3:] == ["random-0.15", "none", "albef"]
    assert sum(e.options.get("ratio") == 0.7 for e in thesis.entries) == 9
    assert {e.options["preset"] for e in thesis.entries} == {"tiny"}
    assert thesis.entries[0].options["max_steps"] == 400 and thesis.entries[0].eval_options["k"] == 16
    assert "max_steps" not in load_grid("thesis").entries[0].options  # the thesis preset trains its 10 epochs
    assert [e.name for e in load_grid("demo").entries] == ["none", "random-0.15", "NOUN-0.7"]


def test_precedence_and_plan(tmp_path: Path) -> None:
    grid = load_grid(write(tmp_path, GOOD), "thesis")
    det, albef = grid.entries
    assert det.options == {"preset": "thesis", "max_steps": 50, "pos": "DET", "ratio": 0.7}
    assert albef.task_options["valse"] == {"batch_size": 4} and albef.eval_options == {"k": 4}
    jobs = plan_jobs(grid, Settings(out=tmp_path / "s", seeds=2, shards="data/x", max_steps=3,
                                    data="retrieval:r.json;valse:v"))
    assert [j.name for j in jobs] == ["DET-0.7-seed1", "DET-0.7-seed2", "albef-seed1", "albef-seed2"]
    assert [j.seed for j in jobs[:2]] == [42, 43]
    pretrain, retrieval, valse = jobs[3].steps
    assert pretrain.argv[:2] == ["pretrain", "--config"] and pretrain.config.albef and pretrain.config.seed == 43
    assert pretrain.config.max_steps == 3 and pretrain.config.run == str(tmp_path / "s" / "runs" / "albef-seed2")
    assert pretrain.config_path == tmp_path / "s" / "plans" / "albef-seed2.json"  # the command line wins above
    assert retrieval.argv[retrieval.argv.index("--data") + 1] == "r.json"
    assert valse.argv[valse.argv.index("--data") + 1] == "v" and "--batch-size" in valse.argv


def test_a_study_in_parts_plans_the_same_runs_as_the_whole(tmp_path: Path) -> None:
    """`--seed-from K`: the runs numbered K.. of each entry, named and seeded as in the whole study."""
    grid = load_grid(write(tmp_path, GOOD), "thesis")
    whole = plan_jobs(grid, Settings(out=tmp_path / "s", seeds=3, shards="data/x"))
    part = plan_jobs(grid, Settings(out=tmp_path / "s", seeds=1, seed_from=3, shards="data/x"))
    assert [j.name for j in part] == ["DET-0.7-seed3", "albef-seed3"]
    same = {j.name: j for j in whole}
    for job in part:
        assert job.seed == same[job.name].seed and job.config == same[job.name].config
        assert [s.argv for s in job.steps[1:]] == [s.argv for s in same[job.name].steps[1:]]
    assert [j.name for j in plan_jobs(grid, Settings(out=tmp_path / "s", seeds=2, seed_from=1, shards="data/x"))] == [
        "DET-0.7-seed1", "DET-0.7-seed2", "albef-seed1", "albef-seed2"]


@pytest.mark.parametrize("change,message", [
    ('max_steps = 5', None),
    ('maxsteps = 5', "unknown key 'maxsteps'"),
    ('[[run]]\nname = "DET-0.7"\npos = "NOUN"', "duplicate name 'DET-0.7'"),
    ('[[run]]\nname = "foo"\npos = "FOO"', "unknown POS 'FOO'"),
    ('[[run]]\nname = "big"\npos = "DET"\nratio = 1.5', "outside (0, 1]"),
    ('[[run]]\nname = "x"\npos = "DET"\nmax_steps = "many"', "invalid int value: 'many'"),
    ('[[run]]\nname = "x"\npos = "DET"\nalbef = 1', "albef must be true or false"),
    ('[[run]]\nname = "x"\npos = "DET"\naugment = "flip"', "invalid choice: 'flip'"),
    ('[[run]]\nname = "x"\npos = "DET"\ntasks = ["retrieval", "nope"]', "tasks must be a list of"),
    ('[[run]]\nname = "x"\npos = "DET"\n[run.eval]\nkk = 3', "unknown key 'kk'"),
    ('[[run]]\npos = "DET"', "needs a name"),
])
def test_bad_grids_are_refused_in_one_line(tmp_path: Path, change: str, message: str | None) -> None:
    text = GOOD.replace("max_steps = 5", change) if change.startswith("max") else GOOD + change + "\n"
    path = write(tmp_path, text)
    settings = Settings(out=tmp_path / "s", shards="data/x")
    if message is None:
        assert len(plan_jobs(load_grid(path), settings)) == 2
        return
    with pytest.raises(UserError) as err:
        plan_jobs(load_grid(path), settings)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_plan_prints_every_job_and_its_cost_and_trains_nothing(study_grid: Path, study_shards: Path,
                                                               tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "s"
    command = [sys.executable, "-m", "posmask_cli", "study", "--grid", str(study_grid), "--shards", str(study_shards),
               "--out", str(out), "--seeds", "2", "--plan"]
    repo = Path(__file__).resolve().parents[2]
    plain = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr[-2000:]
    lines = plain.stdout.splitlines()
    jobs = [ln for ln in lines if ": 5 steps x 1 x batch 8" in ln]
    assert len(jobs) == 6 and all("pretrain to run" in ln and "eval:retrieval to run" in ln for ln in jobs)
    assert "(80 samples per epoch)" in jobs[0] and "No projection: give --samples-per-s" in plain.stdout
    priced = subprocess.run(command + ["--samples-per-s", "0.01"], cwd=repo, capture_output=True, text=True,
                            timeout=300)
    # 5 steps x batch 8 at 0.01 samples/s: 4,000 s a run, 6 runs one at a time
    assert "Pre-training left: 6 runs, 6.7 device-hours, about 6.7 h of wall time" in priced.stdout
    assert "given with --samples-per-s" in priced.stdout and "pre-training 1.11 h on 1 device(s)" in priced.stdout
    assert not out.exists()  # nothing trained, nothing written
