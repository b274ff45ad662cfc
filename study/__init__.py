"""`posmask study`: a whole grid of runs (grids/*.toml) pre-trained, evaluated and reported, resumably.

Modules: `grid` (the TOML format, refused in one line), `plan` (jobs and their steps, each a `posmask` command
line; each run's typed config), `steps` (one job's steps as subprocesses, each skipped when complete), `runner`
(scheduling on this node, several GPUs or a Ray cluster), `cost` (what a study will cost, `--plan`), `study` (one
study end to end) and `cli` (the command).
"""
