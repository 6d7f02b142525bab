"""The house rules of docs/architecture.md, checked on the source: layers point one way, no module
imports itself back in a circle, one import name, no module over 600 lines.

Every import counts, also those inside functions (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.paths import ROOT

# bottom to top; a module may import its own layer and the layers below it, never above
LAYERS: tuple[tuple[str, ...], ...] = (
    ("newsmon.core",),
    ("newsmon.extractors", "newsmon.channels"),
    ("newsmon.warehouse",),
    ("newsmon.flows",),
    (
        "newsmon.learn",
        "newsmon.feedlist",
        "newsmon.prefect_server",
        "newsmon.cli",
        "newsmon.web",
    ),
)
# the design's top-level folders are newsmon's subpackages (the links in newsmon/)
FOLDERS = {"newsmon": "newsmon", "extractors": "newsmon.extractors"}
FOLDERS |= {"warehouse": "newsmon.warehouse", "flows": "newsmon.flows"}
MAX_LINES = 600


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if any((ROOT / folder).joinpath(*parts[:i]).is_symlink() for i in range(1, len(parts))):
                continue  # newsmon/extractors/... is the extractors/ folder, counted once
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def imports(path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(module, line) for each import of our own code, resolved to the module file it names."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in FOLDERS:
                target = name
                while target not in known and "." in target:
                    target = target.rpartition(".")[0]
                yield target, node.lineno
                if isinstance(node, ast.ImportFrom):
                    break  # "from pkg import mod" counts as pkg.mod alone


def layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def graph() -> dict[str, set[str]]:
    found = modules()
    return {
        module: {target for target, _ in imports(path, set(found)) if target != module}
        for module, path in found.items()
    }


def test_layers_point_one_way() -> None:
    found = modules()
    wrong = []
    for module, path in found.items():
        if module == "newsmon":
            continue
        for target, line in imports(path, set(found)):
            if target != "newsmon" and layer(target) > layer(module):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {target}")
    assert not wrong, "imports against the layers (docs/architecture.md):\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, [*stack, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_one_import_name_and_small_modules() -> None:
    found = modules()
    foreign = [
        f"{path.relative_to(ROOT)}:{line}: {target}"
        for path in [*found.values(), *ROOT.joinpath("tests").rglob("*.py")]
        for target, line in imports(path, set(found))
        if not target.startswith("newsmon")
    ]
    assert not foreign, "import our code as newsmon.*, not by its folder:\n" + "\n".join(foreign)
    long = {
        str(path.relative_to(ROOT)): n
        for path in found.values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by what they do): {long}"


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    """The checks above are not vacuous: a stage importing the warehouse is seen."""
    stage = tmp_path / "stage.py"
    stage.write_text("def f():\n    from newsmon.warehouse import store\n")
    found = set(modules())
    (target, _line), *_ = imports(stage, found)
    assert target == "newsmon.warehouse.store"
    assert layer(target) > layer("newsmon.extractors.fetch")
    assert len(graph()) > 60
