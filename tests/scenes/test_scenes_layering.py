"""The layering of the design: `scenes/` and `pipeline/` import, of our packages, only `shards` (and themselves)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = {"shards", "pipeline", "scenes", "trainer", "evaluation", "posmask_cli"}


def our_imports(package: str) -> dict[str, set[str]]:
    """{module file: our top-level packages it imports} for every module of `package`."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO))] = names & OURS
    return found


@pytest.mark.parametrize("package", ["scenes", "pipeline"])
def test_imports_only_shards(package: str) -> None:
    wrong = {module: names - {package, "shards"} for module, names in our_imports(package).items()}
    assert not {module: names for module, names in wrong.items() if names}
