"""Pure logic of the serving side: the server's /metrics and /server_info read, explain-gap's ladder with an
arrival rate, and the chat scenarios' table (no server, no engine)."""

from __future__ import annotations

import pytest

from offline_bench.analysis.gap import check_serving_result
from offline_bench.core.config import EngineConfig, WorkloadConfig
from offline_bench.core.errors import BenchError
from offline_bench.measure.gap import ladder
from offline_bench.results.run import KVCache, RunResult
from offline_bench.serving.metrics import MetricsSampler, parse_metrics, server_limits
from offline_bench.serving.probe import ProbeConfig, StreamResult, serving_result
from offline_bench.workloads.scenarios import scenario_rows, scenario_workload

METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
vllm:num_requests_waiting{engine="0",model_name="m"} 7.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75
vllm:num_preemptions_total{engine="0",model_name="m"} 4.0
vllm:num_preemptions_created{engine="0",model_name="m"} 1.7e9
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 250.0
vllm:cache_config_info{block_size="16",num_gpu_blocks="100"} 1.0
"""


def test_parse_metrics_sums_engines_and_averages_kv_use():
    v = parse_metrics(METRICS)
    assert v == {"running": 5.0, "waiting": 7.0, "kv_usage": 50.0, "preemptions": 4.0, "prefix_queries": 1000.0,
                 "prefix_hits": 250.0}  # counters' _created lines are not counts
    assert parse_metrics("# nothing\nother_metric 1\n") == {}


def test_sampler_fills_timeline_and_counter_deltas():
    s = MetricsSampler("http://x/metrics", {})
    s.samples = [(9.9, {"running": 0, "waiting": 0, "kv_usage": 0.0, "preemptions": 2, "prefix_queries": 100,
                        "prefix_hits": 10}),
                 (10.3, {"running": 4, "waiting": 6, "kv_usage": 80.0, "preemptions": 5, "prefix_queries": 300,
                         "prefix_hits": 60}),
                 (10.6, {"running": 1, "waiting": 0, "kv_usage": 10.0, "preemptions": 5, "prefix_queries": 400,
                         "prefix_hits": 110})]
    tl = s.timeline(t0=10.0)
    assert [(p.t_s, p.running, p.waiting, p.kv_usage_pct, p.preemptions) for p in tl] == [
        (0.3, 4, 6, 80.0, 3), (0.6, 1, 0, 10.0, 3)]
    kv = KVCache(**dict.fromkeys(KVCache.model_fields))
    s.fill_kv_cache(kv)
    assert (kv.peak_usage_pct, kv.preemptions, kv.prefix_cache_queries, kv.prefix_cache_hits) == (80.0, 3, 300, 100)
    assert kv.prefix_cache_hit_rate == pytest.approx(1 / 3)


def test_server_limits_from_json_or_text():
    as_json = {"vllm_config": {"scheduler_config": {"max_num_seqs": 128, "max_num_batched_tokens": 2048},
                               "model_config": {"max_model_len": 1024}}}
    assert server_limits(as_json) == {"max_num_seqs": 128, "max_num_batched_tokens": 2048, "max_model_len": 1024}
    as_text = {"vllm_config": "model='m', max_model_len=4096, max_num_seqs=256, max_num_batched_tokens=8192"}
    assert server_limits(as_text) == {"max_num_seqs": 256, "max_num_batched_tokens": 8192, "max_model_len": 4096}
    assert server_limits({"detail": "Not Found"}) == {} and server_limits(None) == {}
    one = {"system_env": {"nvidia_gpu_models": "NVIDIA H100 80GB HBM3"}}
    two = {"system_env": {"nvidia_gpu_models": "GPU 0: NVIDIA H100 80GB HBM3\nGPU 1: NVIDIA H100 80GB HBM3"}}
    assert server_limits(one) == server_limits(two) == {"gpu_name": "NVIDIA H100 80GB HBM3"}
    assert server_limits({"system_env": {"nvidia_gpu_models": None}}) == {}
    # the server's GPUs (serve-probe's energy and GPU-hour cost count them)
    par = {"vllm_config": {"parallel_config": {"tensor_parallel_size": 2, "pipeline_parallel_size": 1}}}
    assert server_limits(par) == {"tensor_parallel_size": 2, "pipeline_parallel_size": 1}
    assert server_limits({"vllm_config": "tensor_parallel_size=4, data_parallel_size=2"}) == {
        "tensor_parallel_size": 4, "data_parallel_size": 2}


def _probe_cfg(rate: float | None) -> ProbeConfig:
    return ProbeConfig("http://127.0.0.1:1", "m", workload=WorkloadConfig(num_prompts=8, request_rate=rate))


def test_gap_ladder_ends_on_the_serving_arrival_schedule():
    steps = ladder(_probe_cfg(20.0), EngineConfig(), {})
    assert steps[-1][0].startswith("+ the serving arrival schedule (20 req/s, burstiness 1)")
    assert steps[-1][1]["concurrency"] is True and not any(s["concurrency"] for _, s in steps[:-1])
    assert ladder(_probe_cfg(None), EngineConfig(), {})[-1][0].startswith("+ the same number of requests in flight")


def test_gap_refuses_a_saved_result_at_another_rate():
    r = serving_result(_probe_cfg(20.0), 8, [StreamResult(True, None, 16, 8, 0.0, 0.01, 0.1, [0.01] * 7, "length")],
                       1.0)
    check_serving_result(r, "s.json", 8, None, _probe_cfg(20.0).workload)  # the same schedule: accepted
    with pytest.raises(BenchError, match=r"request_rate 20.0 \(here 5.0\)"):
        check_serving_result(r, "s.json", 8, None, _probe_cfg(5.0).workload)


def _scenario_result() -> RunResult:
    wl, _, timed = scenario_workload("chat-10", warmup=0)
    cfg = ProbeConfig("http://127.0.0.1:1", "gpt-4o", chat=True, workload=wl)
    streams = [StreamResult(True, None, 30, 100 + i, 0.0, 0.05, 1.05, [], "length") for i in range(len(timed))]
    return serving_result(cfg, len(timed), streams, 2.0)


def test_scenario_rows_per_stream_and_in_all():
    r = _scenario_result()
    rows = scenario_rows(r)
    assert len(rows) == 11 and rows[-1]["stream"] == "all"
    assert rows[0]["output_tokens_per_s"] == pytest.approx(100 / 1.05)
    assert rows[0]["decode_tokens_per_s"] == pytest.approx(99 / 1.0)
    assert rows[-1]["total_tokens"] == sum(30 + 100 + i for i in range(10))
    assert rows[-1]["output_tokens_per_s"] == pytest.approx(sum(100 + i for i in range(10)) / 2.0)
    with pytest.raises(BenchError, match="choose one of chat-1, chat-10"):
        scenario_workload("seed-3", warmup=0)
