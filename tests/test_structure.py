"""The package's shape, as the design notes state it: data flows one way, so the modules' imports
form no cycle; functions stay short enough to read at once; the facade only delegates; importing it
changes nothing of the interpreter's that a user set."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tabgen"
MAX_FUNCTION_LINES = 60
MAX_FACADE_LINES = 300


def _modules() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, at any depth of its code (a deferred import counts)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def test_module_imports_form_no_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        assert name not in trail, f"import cycle: {' -> '.join(trail[trail.index(name):] + [name])}"
        if name not in done:
            for target in sorted(graph[name]):
                visit(target, trail + [name])
            done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_functions_are_short_and_the_facade_small():
    long = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in PACKAGE.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
    assert len((PACKAGE / "synthesizer.py").read_text().splitlines()) <= MAX_FACADE_LINES


def test_importing_the_package_leaves_the_collector_as_it_found_it():
    for before in ("gc.enable()", "gc.disable()"):
        code = f"import gc; {before}; was = gc.isenabled(); import tabgen; assert gc.isenabled() == was"
        subprocess.run([sys.executable, "-c", code], check=True)
