"""The package's shape: no import cycle (in-function imports included), short functions, in-function imports
only for heavy or optional packages."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

PACKAGE = ROOT / "offline_bench"
MAX_LINES = 60
# imported inside functions on purpose: heavy to import, or optional; each such line says why
LAZY = {"vllm", "torch", "matplotlib", "prometheus_client", "transformers", "huggingface_hub", "yaml", "ray"}


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text()) for p in PACKAGE.glob("*.py")}


def _imports(tree: ast.Module, names: set[str]) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "offline_bench":
            parts = node.module.split(".")
            out |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names if a.name in names}
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("offline_bench.")}
    return out


def test_no_import_cycle():
    mods = _modules()
    graph = {name: _imports(tree, set(mods)) - {name, "__init__", "__main__"} for name, tree in mods.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep):] + [node, dep]))
            if dep not in state:
                visit(dep, path + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement to the end: a command's option declarations do not count."""
    return fn.end_lineno - fn.body[0].lineno + 1


def test_functions_are_short():
    long = [f"{name}.{fn.name}: {_body_lines(fn)} lines"
            for name, tree in _modules().items() for fn in ast.walk(tree)
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(fn) > MAX_LINES]
    assert long == []


def test_in_function_imports_only_for_heavy_packages():
    found = []
    for name, tree in _modules().items():
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    if mod.split(".")[0] not in LAZY:
                        found.append(f"{name}.{fn.name}: {mod}")
    assert found == []
