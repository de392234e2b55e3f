"""The public API: a small set of names in `offline_bench`, resolved lazily (importing the package imports no
subpackage but core.version), and the scripts/ use it rather than internals."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import offline_bench

ROOT = Path(__file__).resolve().parents[2]


def test_every_public_name_resolves():
    for name in offline_bench.__all__:
        assert getattr(offline_bench, name) is not None, name
    assert offline_bench.load_result.__module__ == "offline_bench.results.load"


def test_an_unknown_name_is_an_attribute_error():
    try:
        offline_bench.no_such_thing  # noqa: B018 - the access is the test
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("an unknown attribute resolved")


def test_the_package_itself_imports_no_subpackage():
    source = (ROOT / "offline_bench" / "__init__.py").read_text()
    imported = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.module}
    assert {m for m in imported if m.startswith("offline_bench")} == {"offline_bench.core.version"}
    assert "offline_bench" in sys.modules


def test_scripts_use_the_public_api():
    internal = []
    for script in sorted((ROOT / "scripts").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("offline_bench."):
                internal.append(f"{script.name}: from {node.module} import ...")
    assert internal == []


def test_public_names_do_not_shadow_subpackages():
    """`from offline_bench import X` returns the subpackage X once it is imported: no API name may be one."""
    assert not set(offline_bench.__all__) & set(offline_bench.LAYERS)
