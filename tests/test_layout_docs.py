"""The layout as documented matches the tree: every package's docstring names each of its modules and rooms, and
the README's layout table has a row for each top-level package, and none for a package that is not there."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for p in REPO.glob("**/__init__.py")
                  if not {"tests", ".venv", "build"} & set(p.relative_to(REPO).parts))


def named(text: str) -> set[str]:
    """What the text names in backticks, a trailing slash (a folder) left off."""
    return {span.rstrip("/") for span in re.findall(r"`([^`\n]+)`", text)}


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_a_package_docstring_names_its_modules(package: Path) -> None:
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8"))) or ""
    modules = {p.stem for p in package.glob("*.py") if p.name != "__init__.py"}
    rooms = {p.parent.name for p in package.glob("*/__init__.py")}
    assert not (modules | rooms) - named(docstring), f"{package.relative_to(REPO)}/__init__.py does not name them"
    folders = {span[:-1] for span in re.findall(r"`([\w/]+/)`", docstring) if "/" not in span[:-1]}
    assert folders <= rooms | {p.name for p in package.iterdir() if p.is_dir()}, "it names a folder that is not there"


def test_the_readme_layout_table_has_a_row_for_each_top_level_package() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("\n## Layout"):]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    folders = {f for row in rows for f in re.findall(r"`(\w+)/`", row.split("|")[1])}
    packages = {p.name for p in PACKAGES if p.parent == REPO}
    assert folders - {"grids", "tests", "docs"} == packages
