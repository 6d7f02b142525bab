"""What `pip install newsmon` promises: every library the code imports is a declared dependency
(not one that merely arrives with another), and the only import name is ``newsmon``."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from tests.paths import ROOT
from tests.test_architecture import modules


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_levels() -> dict[str, str]:
    """Top-level import names of everything the package imports (also inside functions), with
    one module that imports each."""
    found: dict[str, str] = {}
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], module)
    return found


def test_every_imported_library_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        _normal(re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0]) for d in project["dependencies"]
    }
    owners = packages_distributions()
    missing = {}
    for name, module in imported_top_levels().items():
        if name in sys.stdlib_module_names or name in ("newsmon", "__future__"):
            continue
        dists = {_normal(d) for d in owners.get(name, [name])}
        if not dists & declared:
            missing[name] = f"{module} (from {', '.join(sorted(dists))})"
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_one_import_name() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["packages"]["find"]["include"] == ["newsmon*"]
    for folder in ("extractors", "warehouse", "flows", "config"):
        link = ROOT / "newsmon" / folder
        assert link.is_symlink() and link.resolve() == ROOT / folder, folder
