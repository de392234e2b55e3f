"""`startup` on the log of the session's real CPU engine (the H100 logs and the command: tests/unit)."""

import pytest

from offline_bench.report.formats import render
from offline_bench.results.startup import parse_startup


def test_cpu_engine_log(engine):
    """The log of this session's real CPU engine: the CPU build's KV lines are read."""
    text = engine.log_text()
    facts = parse_startup(text)
    cap = engine.kv_capacity()
    assert facts["kv_cache_tokens"] == cap["capacity_tokens"]
    assert facts["max_concurrency"] == pytest.approx(cap["max_concurrency"], abs=0.01)
    assert facts["kv_cache_gib"] == pytest.approx(cap["capacity_gib"], abs=0.01)
    assert facts["cpu_memory_gib"] > 0 and facts["init_engine_s"] > 0
    out = render("startup", "table", text)
    assert "kv_cache_tokens" in out and "GPU total unknown" in out
