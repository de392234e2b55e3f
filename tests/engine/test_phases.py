"""`phases` on the session's CPU engine, and a `run` there has no % of ceiling (the % on a known GPU:
tests/unit/test_phases.py)."""

import json

import pytest

from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import GPUS
from offline_bench.measure.phases import run_phases
from offline_bench.report.formats import render
from offline_bench.report.plots import plot
from offline_bench.results.phases import PhasesResult


def test_phases_rows_for_each_batch_and_length(engine, tmp_path):
    r = run_phases(engine, [1, 4], [32, 64], 8, GPUS["h100-sxm"])
    assert r.mode == "phases"
    keys = {(x.phase, x.batch_size, x.input_len) for x in r.rows}
    assert keys == {(p, b, n) for p in ("prefill", "decode") for b in (1, 4) for n in (32, 64)}
    for x in r.rows:
        assert x.latency_ms > 0 and x.tokens_per_s > 0 and x.ceiling_tokens_per_s > 0
        if x.phase == "prefill":
            assert x.tokens_per_s == pytest.approx(x.batch_size * x.input_len / (x.latency_ms / 1000))
        else:
            assert x.tokens_per_s == pytest.approx(x.batch_size / (x.latency_ms / 1000))
            assert x.context_tokens == x.input_len + 4
    r.save(tmp_path / "p.json")
    again = PhasesResult.model_validate(json.loads((tmp_path / "p.json").read_text()))
    assert again == r
    plot(r, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert "% of ceiling" in render("phases", "table", r)


def test_phases_refuse_batches_above_max_num_seqs(engine):
    with pytest.raises(BenchError, match="raise --max-num-seqs"):
        run_phases(engine, [100_000], [16], 4, None)


def test_run_on_cpu_has_no_roofline(engine):
    from offline_bench.core.config import EngineConfig, RunConfig, WorkloadConfig
    from offline_bench.measure.runner import run_benchmark

    r = run_benchmark(RunConfig(engine=EngineConfig(max_model_len=512),
                                workload=WorkloadConfig(num_prompts=2, input_len=16, output_len=4, warmup=0)),
                      engine=engine)
    assert r.roofline is None  # no GPU, no ceiling: unknown, never guessed


def test_phases_skip_decode_rows_the_kv_cache_cannot_hold(engine, monkeypatch):
    # a KV cache of 50 tokens: batch 4 x (16 + 8) would be preempted mid-decode, so that row is not run
    real = engine.kv_capacity()
    monkeypatch.setattr(engine, "kv_capacity", lambda: {**real, "capacity_tokens": 50})
    r = run_phases(engine, [1, 4], [16], 8, None)
    rows = {(x.phase, x.batch_size): x for x in r.rows}
    assert rows[("decode", 1)].tokens_per_s > 0 and rows[("decode", 1)].note is None
    skipped = rows[("decode", 4)]
    assert skipped.tokens_per_s is None and "exceed the KV cache (50 tokens)" in skipped.note
    assert rows[("prefill", 4)].tokens_per_s > 0 and "in waves" in rows[("prefill", 4)].note
    assert "not run: 4 x 24 tokens" in render("phases", "table", r)
