"""Who may import whom: the layout table of DESIGN.md and the README, checked on every import statement of every
package (those inside functions too). toolbox <- shards <- {pipeline, scenes, trainer} <- evaluation (core <- tasks
<- report) <- captioning <- study <- posmask_cli; tests may import everything."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TASKS = {"evaluation.retrieval", "evaluation.valse", "evaluation.vqa", "evaluation.probe"}
BELOW_EVALUATION = {"toolbox", "shards", "trainer"}

# A unit (a package, or a room of one) and what it may import besides itself. A module belongs to the longest unit
# that holds it: `trainer.engine` is the engine alone, `trainer` the rest of the trainer.
MAY_IMPORT: dict[str, set[str]] = {
    "toolbox": set(),
    "shards": {"toolbox"},
    "pipeline": {"toolbox", "shards"},
    "scenes": {"toolbox", "shards"},
    "trainer": {"toolbox", "shards"},
    "trainer.engine": {"toolbox", "trainer.run_dir"},  # the one run engine: of the trainer, the run-folder contract
    "evaluation.core": BELOW_EVALUATION,
    **{task: BELOW_EVALUATION | {"evaluation.core"} for task in TASKS},  # no task imports another
    "evaluation.report": BELOW_EVALUATION | {"evaluation.core"} | TASKS,
    "evaluation": BELOW_EVALUATION,  # its top: the commands `posmask eval` and `posmask report`, over every room
    "captioning": BELOW_EVALUATION | {"evaluation.core"},
    "study": {"toolbox", "shards", "pipeline", "scenes", "trainer", "evaluation", "captioning"},
    "posmask_cli": {"toolbox", "shards", "pipeline", "scenes", "trainer", "evaluation", "captioning", "study"},
}

# Imports that cross the table, each on purpose: (importing module, imported module) -> why.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("captioning.metrics", "pipeline.tagger"):
        "the SCST probe tags generated captions (nouns, POS patterns) with the same spaCy tagger as the shards",
    ("captioning.vizer.grounding", "scenes.world"):
        "ViZer's grounding table scores shape and colour mentions against the scenes' own vocabulary",
    ("captioning.scst.report", "evaluation.report.tables"):
        "the SCST probe's tables are written by the report's one Markdown / CSV / LaTeX writer",
    ("captioning.vizer.report", "evaluation.report.tables"):
        "ViZer's tables are written by the report's one Markdown / CSV / LaTeX writer",
}


def ours(name: str) -> bool:
    return name.split(".")[0] in MAY_IMPORT


def unit_of(module: str) -> str:
    """The longest unit of the table that holds `module`."""
    units = [u for u in MAY_IMPORT if module == u or module.startswith(u + ".")]
    assert units, f"{module} is in no unit of the layering table: give its package a row"
    return max(units, key=len)


def within(module: str, unit: str) -> bool:
    return module == unit or module.startswith(unit + ".")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def our_modules() -> list[Path]:
    """Every Python file of the project's packages and the console entry point (not the tests)."""
    packages = sorted(p.parent for p in REPO.glob("*/__init__.py") if p.parent.name != "tests")
    return [REPO / "posmask_cli.py"] + [path for package in packages for path in sorted(package.rglob("*.py"))]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for each of our modules that `path` imports; `from a import b` names `a.b` when
    that is a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.relative_to(REPO)}:{node.lineno}: a relative import"
            found += [(node.lineno, f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module)
                      for a in node.names]
    return [(line, name) for line, name in found if ours(name)]


@functools.cache
def edges() -> list[tuple[str, int, str]]:
    """(importing module, line, imported module) for every import between two units."""
    return [(module_name(path), line, name) for path in our_modules() for line, name in imports_of(path)
            if unit_of(name) != unit_of(module_name(path))]


def allowed(importer: str, imported: str) -> bool:
    unit = unit_of(importer)
    return within(imported, unit) or any(within(imported, other) for other in MAY_IMPORT[unit])


def test_every_package_and_every_room_of_evaluation_has_a_row() -> None:
    for path in our_modules():
        unit_of(module_name(path))
    rooms = {f"evaluation.{p.parent.name}" for p in (REPO / "evaluation").glob("*/__init__.py")}
    assert rooms == TASKS | {"evaluation.core", "evaluation.report"}
    assert {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"} <= set(MAY_IMPORT)


@pytest.mark.parametrize("unit", sorted(MAY_IMPORT))
def test_imports_follow_the_table(unit: str) -> None:
    wrong = [f"{importer}:{line} imports {imported}" for importer, line, imported in edges()
             if unit_of(importer) == unit and not allowed(importer, imported)
             and (importer, imported) not in EXCEPTIONS]
    assert not wrong, f"{unit} may import only {sorted(MAY_IMPORT[unit])}: {wrong}"


def test_every_exception_is_still_needed() -> None:
    crossing = {(importer, imported) for importer, _, imported in edges() if not allowed(importer, imported)}
    assert not set(EXCEPTIONS) - crossing, "an exception the code no longer needs: remove it"
