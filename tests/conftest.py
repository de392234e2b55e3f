"""Shared fixtures. One CPU engine (tiny-llama) serves every engine test: its start costs ~25 s."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
MAX_MODEL_LEN = 512
# On the CPU build gmu is the share of the machine's RAM each engine reserves for its KV cache; several engines
# run at once in these tests (the session's, a server, sweep points), so each takes a small share.
GMU = 0.1


@pytest.fixture(scope="session")
def engine():
    from offline_bench.config import EngineConfig
    from offline_bench.engine import Engine

    eng = Engine(EngineConfig(model="preset:tiny-llama", max_model_len=MAX_MODEL_LEN, gpu_memory_utilization=GMU))
    yield eng
    eng.close()


def run_cli(*args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed console script's code path, in a fresh process (as a user runs it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "offline_bench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, env=env)
