"""`run` as users run it, in a process of its own: a real engine from start to table, and an engine that cannot
start (levels in one engine, on the session engine: tests/engine/test_cli.py; bad input: tests/unit)."""

import json

import pytest

from offline_bench.results.run import RunResult
from tests.helpers import KV_ARGS, run_cli


@pytest.mark.engine
def test_run_end_to_end_writes_json_and_table(tmp_path):
    """The whole round trip on an engine of its own settings (prefix caching off): result file, table, the
    engine's log; 4 shared prefixes of 256 tokens, 2 requests each, 4 in flight: without prefix caching, no prompt
    token is found cached."""
    out = tmp_path / "r.json"
    log = tmp_path / "engine.log"
    p = run_cli("run", "--max-model-len", "512", *KV_ARGS, "--no-enable-prefix-caching", "--num-prompts", "8",
                "--input-len", "32", "--output-len", "8", "--prefix-len", "256", "--num-prefixes", "4",
                "--concurrency", "4", "--warmup", "1", "--output", str(out), "--save-log", str(log))
    assert p.returncode == 0, p.stderr[-2000:]
    data = json.loads(out.read_text())
    for key in ("schema_version", "tool_version", "created_at", "environment", "engine_args", "workload",
                "startup", "kv_cache", "memory", "throughput", "latency", "timeline", "requests"):
        assert key in data, key
    assert data["workload"]["total_output_tokens"] == 64
    assert "output_tokens_per_s" in p.stdout and "KV cache" in p.stdout
    assert "KV cache size" in log.read_text()
    # test_prefix_caching_off_finds_nothing, merged here
    r = RunResult.load(out)
    assert r.engine_args["resolved"]["enable_prefix_caching"] is False
    assert r.workload.prefix_len == 256 and all(q.input_tokens == 256 + 32 for q in r.requests)
    assert r.kv_cache.prompt_cache_hit_rate == 0


@pytest.mark.engine
def test_kv_cache_too_small_one_line(tmp_path):
    p = run_cli("run", "--gpu-memory-utilization", "0.02", "--num-prompts", "2", "--output",
                str(tmp_path / "r.json"), timeout=300)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.startswith("error: not enough memory for the KV cache") and p.stderr.count("\n") == 1
    assert not (tmp_path / "r.json").exists()
