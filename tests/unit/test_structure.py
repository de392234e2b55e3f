"""The package's shape: subpackages in one layer order, no import cycle (in-function imports included), short
functions, in-function imports only for heavy or optional packages, vLLM and torch only in `engine`."""

from __future__ import annotations

import ast
from pathlib import Path

from offline_bench import LAYERS

PACKAGE = Path(__file__).resolve().parents[2] / "offline_bench"
MAX_LINES = 60
# imported inside functions on purpose: heavy to import, or optional; each such line says why
LAZY = {"vllm", "torch", "matplotlib", "prometheus_client", "transformers", "huggingface_hub", "yaml", "ray",
        "pynvml"}  # pynvml: optional (offline-bench[gpu]), absent on the CPU build
ENGINE_ONLY = {"vllm", "torch"}
TOP_LEVEL = {"__init__", "__main__"}  # the public API and `python -m`: above every layer


def _modules() -> dict[str, ast.Module]:
    """Dotted name below offline_bench (e.g. 'results.run', 'results' for its __init__) -> parsed module."""
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = ast.parse(p.read_text())
    return out


def _imports(tree: ast.Module, known: set[str]) -> set[str]:
    """Every offline_bench module this one imports, at any depth of the code."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "offline_bench":
            base = node.module.removeprefix("offline_bench").lstrip(".")
            for a in node.names:
                sub = f"{base}.{a.name}" if base else a.name
                out.add(sub if sub in known else base or "__init__")
        elif isinstance(node, ast.Import):
            out |= {a.name.removeprefix("offline_bench.") for a in node.names if a.name.startswith("offline_bench.")}
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(tree, set(mods)) - {name} for name, tree in mods.items()}


def _layer(module: str) -> int:
    top = module.split(".")[0]
    return len(LAYERS) if top in TOP_LEVEL else LAYERS.index(top)


def test_every_module_lives_in_a_layer():
    stray = [m for m in _modules() if m.split(".")[0] not in (*LAYERS, *TOP_LEVEL)]
    assert stray == [], f"modules outside the layers {LAYERS}: {stray}"


def test_no_package_imports_one_above_it():
    upward = [f"{m} ({LAYERS[_layer(m)] if _layer(m) < len(LAYERS) else m}) imports {d}"
              for m, deps in _graph().items() for d in deps if _layer(d) > _layer(m)]
    assert upward == [], "a package imports one above it in " + " < ".join(LAYERS)


def test_no_import_cycle():
    graph = _graph()
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


def _external_imports(tree: ast.Module, in_functions: bool) -> list[str]:
    found = []
    for fn in ast.walk(tree):
        if in_functions and not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append(node.module)
            elif isinstance(node, ast.Import):
                found += [a.name for a in node.names]
        if not in_functions:
            break
    return found


def test_in_function_imports_only_for_heavy_packages():
    found = [f"{name}: {mod}" for name, tree in _modules().items()
             for mod in _external_imports(tree, in_functions=True) if mod.split(".")[0] not in LAZY]
    assert found == []


def test_only_the_engine_package_imports_vllm_or_torch():
    found = [f"{name}: {mod}" for name, tree in _modules().items() if name.split(".")[0] != "engine"
             for mod in _external_imports(tree, in_functions=False) if mod.split(".")[0] in ENGINE_ONLY]
    assert found == []


def test_only_the_report_package_draws():
    """Charts and PNG plots are drawn in one place (report/): matplotlib is imported nowhere else."""
    found = [name for name, tree in _modules().items() if name.split(".")[0] != "report"
             and any(m.split(".")[0] == "matplotlib" for m in _external_imports(tree, in_functions=False))]
    assert found == []
