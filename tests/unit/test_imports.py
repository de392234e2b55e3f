"""Reading and reporting results needs neither vLLM, torch nor httpx, nor the packages that measure (engine, serving,
measure): `report` and `compare` run on a machine without vLLM. Checked on the import graph (every import
statement, in functions too, as tests/unit/test_structure.py reads it) and in a fresh interpreter (sys.modules)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "offline_bench"
ROOTS = ("results", "report")  # every module of these packages
FORBIDDEN_PACKAGES = ("engine", "serving", "measure")
FORBIDDEN_EXTERNAL = ("vllm", "torch", "httpx")

# The real process start: tests/unit/conftest.py replaces it in every test (a unit test starts no process); the
# fresh interpreter below is the one exception, asked for on purpose (~1 s).
_START_PROCESS = subprocess.Popen._execute_child


def _modules() -> dict[str, tuple[ast.Module, bool]]:
    """Dotted name below offline_bench -> (parsed module, is a package's __init__)."""
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        if is_init and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = (ast.parse(p.read_text()), is_init)
    return out


def _absolute(node: ast.ImportFrom, module: str, is_init: bool) -> str:
    """The module an ImportFrom names, relative imports resolved (offline_bench.x.y)."""
    if not node.level:
        return node.module or ""
    package = ["offline_bench", *module.split(".")][:None if is_init else -1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, tree: ast.Module, is_init: bool, known: set[str]) -> tuple[set[str], set[str]]:
    """(offline_bench modules, other top-level packages) this module imports, at any depth of its code."""
    inner, outer = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_init)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.split(".")[0] != "offline_bench":
                outer.add(name.split(".")[0])
                continue
            sub = name.removeprefix("offline_bench").lstrip(".") or "__init__"
            while sub not in known and "." in sub:
                sub = sub.rsplit(".", 1)[0]
            inner.add(sub)
    return inner & known, outer


def test_results_and_report_reach_no_engine_on_the_import_graph():
    mods = _modules()
    edges = {name: _imports(name, tree, is_init, set(mods)) for name, (tree, is_init) in mods.items()}
    seen: dict[str, str] = {m: m for m in mods if m.split(".")[0] in ROOTS}  # module -> one module importing it
    todo = list(seen)
    while todo:
        m = todo.pop()
        for dep in edges[m][0] - seen.keys():
            seen[dep] = m
            todo.append(dep)
    bad = sorted(f"{seen[m]} imports {m}" for m in seen if m.split(".")[0] in FORBIDDEN_PACKAGES)
    bad += sorted(f"{m} imports {x}" for m in seen for x in edges[m][1] if x in FORBIDDEN_EXTERNAL)
    assert not bad, "results/report reach what they must not: " + "; ".join(bad[:8])


FRESH = """
import importlib, pkgutil, sys
for name in {roots!r}:
    pkg = importlib.import_module("offline_bench." + name)
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(m.name)
print("\\n".join(sorted(k for k in sys.modules if k.split(".")[0] in {external!r}
                        or k.split(".")[:2] in [["offline_bench", p] for p in {packages!r}])))
"""


def test_results_and_report_import_no_engine_in_a_fresh_interpreter(monkeypatch):
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _START_PROCESS)  # this test's one process
    code = FRESH.format(roots=ROOTS, external=FORBIDDEN_EXTERNAL, packages=FORBIDDEN_PACKAGES)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=PACKAGE.parent)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [], "importing results/report imported: " + " ".join(p.stdout.split()[:8])
