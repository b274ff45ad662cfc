"""Grid files (TOML): the runs of a study, refused in one line naming the file and the entry when wrong.

    [defaults]              # any `posmask pretrain` option, plus tasks = [...], probe, eval
    max_steps = 400
    tasks = ["retrieval", "valse", "vqa"]
    [defaults.eval]         # any `posmask eval` option, for every task ...
    k = 16
    [defaults.eval.vqa]     # ... or for one task (e.g. its own data and images)
    vqa_epochs = 2
    [preset.tiny]           # what changes when the study runs at a preset (PRESET=tiny), eval included
    max_steps = 400
    [[run]]
    name = "DET-0.7"        # unique within the grid; the run folder is OUT/runs/NAME[-seedK]
    pos = "DET"
    ratio = 0.7

Option names are the flags' with underscores (`max_steps` for `--max-steps`); `true` turns a switch on.
Precedence: `[defaults]` < `[preset.NAME]` < the `[[run]]` entry < the study's command line.
"""
from __future__ import annotations

import argparse
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolbox.errors import UserError
from trainer.run_dir import EVAL_TASKS

GRIDS_DIR = Path(__file__).resolve().parents[1] / "grids"
STUDY_KEYS = ("tasks", "probe", "eval")  # what a grid may say besides `posmask pretrain` options
RUNNER_OWNED = ("run", "gpus", "nproc", "cpu", "config", "nnodes", "node_rank", "master_addr", "master_port")
"""Set by the study runner, per run (trainer.cli.RUNNER_OPTIONS and the run folder)."""
EVAL_RUNNER_OWNED = ("run_dir", "tasks", "out", "gpus", "master_port")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=>@-]*")


@dataclass(frozen=True)
class Entry:
    """One `[[run]]` with the defaults applied: pretrain options, tasks and eval options."""

    name: str
    options: dict[str, Any]
    tasks: tuple[str, ...]
    eval_options: dict[str, Any] = field(default_factory=dict)  # every task
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # one task each


@dataclass(frozen=True)
class Grid:
    path: Path
    entries: tuple[Entry, ...]


def grid_path(spec: str) -> Path:
    """A grid name from grids/ (`thesis`, `demo`) or a path to a TOML file."""
    path = Path(spec)
    if not path.suffix and not path.exists():
        path = GRIDS_DIR / f"{spec}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in GRIDS_DIR.glob("*.toml")))
        raise UserError(f"GRID {spec}: no such grid file (built-in grids: {known})")
    return path


@dataclass(frozen=True)
class Command:
    """A `posmask` subcommand's options as a grid names them: `required` is what a parse needs besides them."""

    add_arguments: Callable[[argparse.ArgumentParser], None]
    required: tuple[str, ...] = ()

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
        self.add_arguments(parser)
        return parser

    def defaults(self) -> dict[str, Any]:
        """Every option by dest name, with its default."""
        return vars(self.parser().parse_args(list(self.required)))

    def parse(self, where: str, options: Mapping[str, Any]) -> argparse.Namespace:
        """`options` parsed as the command line would parse them; a bad value is one line naming `where`."""
        defaults = self.defaults()
        for key, value in options.items():
            if isinstance(defaults.get(key), bool) and not isinstance(value, bool):
                raise UserError(f"{where}: {key} must be true or false (got {value!r})")
            if isinstance(value, (dict, list)):
                raise UserError(f"{where}: {key} must be a single value (got {value!r})")
        try:
            return self.parser().parse_args([*self.required, *to_argv(options)])
        except argparse.ArgumentError as err:
            raise UserError(f"{where}: {err}") from None


def pretrain_command() -> Command:
    from trainer.cli import add_arguments

    return Command(add_arguments)


def eval_command() -> Command:
    from evaluation.cli_eval import add_arguments

    return Command(add_arguments, ("--run", "RUN"))


def to_argv(options: Mapping[str, Any]) -> list[str]:
    """`--flag value` for each option, the flag being the option's name with dashes (switches, given as true or
    false: the bare flag when true)."""
    argv: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag] if value else []
        else:
            argv += [flag, str(value)]
    return argv


def _check_keys(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(sorted(allowed))}")


def _eval_tables(where: str, table: Mapping[str, Any], command: Command
                 ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The `eval` table: options for every task, and per-task sub-tables."""
    allowed = set(command.defaults()) - set(EVAL_RUNNER_OWNED)
    common = {k: v for k, v in table.items() if k not in EVAL_TASKS}
    _check_keys(f"{where}.eval", common, allowed)
    command.parse(f"{where}.eval", common)
    per_task = {}
    for task in EVAL_TASKS:
        sub = table.get(task, {})
        if not isinstance(sub, dict):
            raise UserError(f"{where}.eval.{task}: must be a table of `posmask eval` options")
        _check_keys(f"{where}.eval.{task}", sub, allowed)
        command.parse(f"{where}.eval.{task}", sub)
        per_task[task] = dict(sub)
    return common, per_task


def _tasks(where: str, table: Mapping[str, Any]) -> tuple[str, ...]:
    tasks = table.get("tasks", list(EVAL_TASKS[:3]))
    if not isinstance(tasks, list) or any(t not in EVAL_TASKS for t in tasks):
        raise UserError(f"{where}: tasks must be a list of {', '.join(EVAL_TASKS)} (got {tasks!r})")
    if table.get("probe") and "probe" not in tasks:
        tasks = tasks + ["probe"]
    return tuple(dict.fromkeys(tasks))


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`, the `eval` tables merged key by key (and their task sub-tables too)."""
    merged = {**base, **top}
    if "eval" in base or "eval" in top:
        evals = {**base.get("eval", {}), **top.get("eval", {})}
        for task in EVAL_TASKS:
            if task in base.get("eval", {}) or task in top.get("eval", {}):
                evals[task] = {**base.get("eval", {}).get(task, {}), **top.get("eval", {}).get(task, {})}
        merged["eval"] = evals
    return merged


def load_grid(spec: str, preset: str | None = None) -> Grid:
    """Read and check a grid; `preset` (the command line's PRESET) selects its `[preset.NAME]` table."""
    path = grid_path(spec)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UserError(f"{path}: not a readable TOML grid ({err})") from None
    pretrain, evaluate = pretrain_command(), eval_command()
    allowed = (set(pretrain.defaults()) - set(RUNNER_OWNED)) | set(STUDY_KEYS)
    _check_keys(str(path), data, {"defaults", "preset", "run"})
    defaults, presets, runs = data.get("defaults", {}), data.get("preset", {}), data.get("run", [])
    if not isinstance(defaults, dict) or not isinstance(presets, dict) or not isinstance(runs, list) or not runs:
        raise UserError(f"{path}: needs at least one [[run]] entry ([defaults] and [preset.NAME] are optional)")
    _check_keys(f"{path} [defaults]", defaults, allowed)
    for name, table in presets.items():
        if not isinstance(table, dict):
            raise UserError(f"{path} [preset.{name}]: must be a table of options")
        _check_keys(f"{path} [preset.{name}]", table, allowed - {"preset"})
    entries, seen = [], set()
    for number, run in enumerate(runs, start=1):
        name = run.get("name") if isinstance(run, dict) else None
        where = f"{path} [[run]] #{number}" + (f" {name!r}" if name else "")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise UserError(f"{where}: needs a name (letters, digits and _.+=>@-)")
        if name in seen:
            raise UserError(f"{where}: duplicate name {name!r}")
        seen.add(name)
        _check_keys(where, run, allowed | {"name"})
        chosen = preset or run.get("preset") or defaults.get("preset")
        merged = _merge(_merge(defaults, presets.get(chosen, {})), {k: v for k, v in run.items() if k != "name"})
        if preset:
            merged["preset"] = preset
        common, per_task = _eval_tables(where, merged.get("eval", {}), evaluate)
        options = {k: v for k, v in merged.items() if k not in STUDY_KEYS}
        pretrain.parse(where, options)
        if "pos" not in options and "curriculum" not in options:
            raise UserError(f"{where}: needs pos (e.g. pos = \"DET\")")
        entries.append(Entry(name, options, _tasks(where, merged), common, per_task))
    return Grid(path, tuple(entries))
