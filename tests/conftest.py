"""Shared fixtures, and the markers every test gets.

Tiers (directories): tests/unit (no engine, no process: `scripts/test.sh --fast`), tests/engine (the one session
CPU engine, `engine` below: its start costs ~25 s), tests/e2e (real processes: the CLI round trips, the server,
Ray, the browser, sweeps, signals). Each test is marked with its tier, and with what it uses: `engine` (the
session engine, an engine of its own, or a server's), `server`, `ray`, `browser`.

Every test engine sizes its KV cache in bytes (tests/helpers.py says why); the memory check below needs the KV of
ENGINES_AT_ONCE engines to be free on NUMA node 0 before an engine test starts, and nothing beyond that.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import (  # noqa: F401 - re-exported: tests import these from tests.conftest too
    ENGINES_AT_ONCE,
    FIXTURES,
    GIB,
    KV,
    KV_ARGS,
    KV_BYTES,
    MAX_MODEL_LEN,
    RESULTS,
    ROOT,
    cli,
    descendants,
    error_line,
    gmu_for,
    node_memory,
    one_error_line,
    require_memory,
    run_cli,
    wait_for_engine,
    wait_gone,
)

TESTS = Path(__file__).parent
TIERS = ("unit", "engine", "e2e")
# a test that uses one of these fixtures (directly or through another fixture) gets these markers (a server runs
# an engine: the memory check below covers it too)
FIXTURE_MARKERS = {"engine": ("engine",), "server": ("server", "engine"), "ray_head": ("ray",),
                   "browser": ("browser",)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier and what it uses, and run the tiers in order, unit first (a broken unit test
    shows in the first minute; the session engine then serves tests/engine and the e2e tests that ask for it)."""
    for item in items:
        try:
            tier = Path(item.path).relative_to(TESTS).parts[0]
        except ValueError:
            tier = None
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: every test lives in a tier directory, tests/{{{','.join(TIERS)}}}")
        item.add_marker(tier)
        for fixture, markers in FIXTURE_MARKERS.items():
            if fixture in item.fixturenames:
                for marker in markers:
                    item.add_marker(marker)
    items.sort(key=lambda item: TIERS.index(Path(item.path).relative_to(TESTS).parts[0]))  # stable: file order kept


@pytest.fixture(autouse=True)
def _engine_memory(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("engine"):
        require_memory(ENGINES_AT_ONCE * KV_BYTES, request.node.name)


@pytest.fixture(scope="session")
def engine():
    """The session's CPU engine (tiny-llama, MAX_MODEL_LEN, a KV cache of KV_BYTES), shared by every test that
    asks for it; tests/unit/conftest.py refuses it."""
    from offline_bench.core.config import EngineConfig
    from offline_bench.engine.llm import Engine

    eng = Engine(EngineConfig(model="preset:tiny-llama", max_model_len=MAX_MODEL_LEN, kv_cache_memory_bytes=KV_BYTES))
    yield eng
    eng.close()
