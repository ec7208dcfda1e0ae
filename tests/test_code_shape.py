"""The shape the code keeps: small functions and modules, and no import cycles
between the modules of one package (what the redesign issue set as its bar)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in ROOT.glob("**/src/*") if (p / "__init__.py").exists())
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500


def _modules(package: Path) -> list[Path]:
    return sorted(package.rglob("*.py"))


def test_there_are_packages_to_check() -> None:
    names = {p.name for p in PACKAGES}
    assert {"chat_persistence", "chat_persistence_memory", "chat_persistence_postgres"} <= names


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_no_function_is_longer_than_the_limit(package: Path) -> None:
    long: list[str] = []
    for module in _modules(package):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - start + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert long == []


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_no_module_is_longer_than_the_limit(package: Path) -> None:
    long = [
        f"{m.relative_to(ROOT)} ({n})"
        for m in _modules(package)
        if (n := len(m.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert long == []


def _module_name(package: Path, module: Path) -> str:
    parts = [package.name, *module.relative_to(package).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(package: Path, module: Path) -> set[str]:
    """The modules of ``package`` that ``module`` imports, at any depth of its code
    (lazy imports inside functions count too: they still make a cycle)."""
    name = _module_name(package, module)
    is_init = module.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_init else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c.split(".")[0] == package.name)
    return found


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_no_two_modules_of_a_package_import_each_other(package: Path) -> None:
    modules = {_module_name(package, m): m for m in _modules(package)}
    graph = {
        name: {t for t in _imports(package, path) if t in modules and t != name}
        for name, path in modules.items()
    }
    # The package's __init__ re-exports its modules; a module importing a name from
    # its own package's __init__ is an import of the module that defines it.
    graph.pop(package.name, None)
    for edges in graph.values():
        edges.discard(package.name)
    cycles: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []
