"""Issue 30: predictions moved to another GPU and KV dtype, MoE memory, expected errors attached, checked on the
committed H100 and H200 measurements (pure logic; the CLI in-process)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import gpu_spec
from offline_bench.model.presets import resolve_model
from offline_bench.predict import accuracy
from offline_bench.predict.plan import activation_gib, moe_workspace_elements, plan_point
from offline_bench.predict.replay import Calibrated, graph_limit, predict
from offline_bench.predict.stepmodel import StepModel, fit
from offline_bench.predict.transfer import as_model, move, split
from offline_bench.results.plan import PlanSettings
from offline_bench.results.run import RunResult, StepTrace
from offline_bench.serving.probe import in_flight_cap
from tests.helpers import ROOT, cli

RESULTS = ROOT / "docs" / "results"
CALIBRATION = RESULTS / "h100-predict" / "calibration.json.gz"
H200_RUNS = [RESULTS / "h200-smoke" / "smoke-run.json.gz", RESULTS / "h200-smoke-29" / "smoke-run.json.gz"]


def _model(**kw: float) -> StepModel:
    base = dict(fixed_ms=6.0, per_prefill_token_ms=0.02, per_kv_token_ms=5e-5, per_decode_token_ms=0.02,
                steps_fitted=100, total_error_pct=0.0, median_step_error_pct=1.0)
    return StepModel(**{**base, **kw})


def test_split_and_move_scale_each_term_by_what_limits_it() -> None:
    h100, h200 = gpu_spec("h100-sxm"), gpu_spec("h200")
    kv_bytes = 131072  # Llama-3.1-8B, bf16
    s = split(_model(), h100, weights_read_ms=4.5, kv_bytes_per_token_gpu=kv_bytes)
    assert s.host_ms == pytest.approx(1.5) and s.weights_read_ms == 4.5
    assert s.per_kv_read_ms == pytest.approx(kv_bytes / 3350e9 * 1e3)
    assert s.per_kv_read_ms + s.per_kv_math_ms == pytest.approx(5e-5)
    m = move(s, h100, h200)
    bw = 3350 / 4800
    assert m.host_ms == s.host_ms and m.weights_read_ms == pytest.approx(4.5 * bw)
    assert m.per_kv_read_ms == pytest.approx(s.per_kv_read_ms * bw)
    assert m.per_kv_math_ms == s.per_kv_math_ms  # same dense bf16 rate on both
    a100 = move(s, h100, gpu_spec("a100-80gb"))
    assert a100.per_prefill_token_ms == pytest.approx(0.02 * 989 / 312)
    assert a100.per_decode_token_ms == pytest.approx(0.02 * 989 / 312)
    moved = as_model(m, _model())
    assert moved.fixed_ms == pytest.approx(1.5 + 4.5 * bw)
    assert moved.step_ms(0, 1000, 10) < _model().step_ms(0, 1000, 10)
    # a smaller KV dtype halves only the read share of the KV cost
    half = moved.model_copy(update={"kv_scale": 0.5})
    read = moved.per_kv_token_ms * moved.kv_read_share
    assert moved.step_ms(0, 1000) - half.step_ms(0, 1000) == pytest.approx(0.5 * read * 1000)


def _trace(steps: list[tuple[int, int, int, float]]) -> StepTrace:
    """A recorded run from (prompt tokens, decoding requests, their KV tokens, step ms) per step."""
    ts, t = [], 0.0
    for *_, ms in steps:
        t += ms / 1000
        ts.append(t)
    n = len(ts)
    return StepTrace(source="iteration_details", t_s=ts, exec_ms=[None] * n, ctx_reqs=[0] * n, out_tokens=[0] * n,
                     first_tokens=[0] * n, running=[None] * n, waiting=[None] * n, kv_usage_pct=[None] * n,
                     ctx_tokens=[s[0] for s in steps], gen_reqs=[s[1] for s in steps],
                     decode_ctx_tokens=[s[2] for s in steps])


def test_fit_separates_the_per_decode_token_cost_by_the_prompt_tokens_cost() -> None:
    # one batch size (a batch run): 4 ms fixed (given), 0.02 ms a prompt token, 0.01 ms a decoded token
    # (decode_share 0.5), 4e-5 ms a KV token
    rows = [(4096 if i % 10 == 0 else 0, 200, 200 * (500 + i)) for i in range(120)]
    steps = _trace([(c, n, kv, 4 + 0.02 * c + 0.01 * n + 4e-5 * kv) for c, n, kv in rows])
    m = fit(steps, weights_read_ms=4.0, decode_share=0.5)
    assert m.per_prefill_token_ms == pytest.approx(0.02, rel=0.02)
    assert m.per_decode_token_ms == pytest.approx(0.01, rel=0.02)
    assert m.per_kv_token_ms == pytest.approx(4e-5, rel=0.02)


@pytest.fixture(scope="module")
def cal() -> Calibrated:
    return Calibrated(CALIBRATION)


@pytest.mark.parametrize("path", H200_RUNS, ids=lambda p: p.parent.name)
def test_predict_on_the_h200_from_the_h100_run(cal: Calibrated, path: Path) -> None:
    r = RunResult.load(path)
    p = predict(cal, {}, gpu="h200")
    assert "H200" in r.environment.gpu_name and p.environment.gpu_name.startswith("h200 (predicted from")
    assert abs(p.kv_cache.capacity_tokens / r.kv_cache.capacity_tokens - 1) < 0.005  # from the H200's memory
    assert abs(p.throughput.output_tokens_per_s / r.throughput.output_tokens_per_s - 1) < 0.08
    assert abs(p.latency.tpot_ms.p50 / r.latency.tpot_ms.p50 - 1) < 0.10
    assert p.prediction["gpu"] == {"from": "h100-sxm", "to": "h200", "split_from": cal.split.model_dump()}
    assert any("moved from h100-sxm to h200" in n for n in p.notes)
    assert p.prediction["expected_error"]["kinds"] == ["other-gpu"]


def test_predict_fp8_kv_costs_its_dequantisation(cal: Calibrated) -> None:
    """#14's fp8 point was +15.8% on output tokens/s (KV cost scaled by bytes alone)."""
    r = RunResult.load(RESULTS / "h100-predict" / "measured" / "kv-fp8.json.gz")
    p = predict(cal, {"kv_cache_dtype": "fp8"})
    assert abs(p.throughput.output_tokens_per_s / r.throughput.output_tokens_per_s - 1) < 0.05


def test_predict_same_gpu_is_unchanged_and_unknown_gpu_is_refused(cal: Calibrated) -> None:
    assert cal.on_gpu("h100-sxm")[1] is None and cal.on_gpu(None)[0] is cal.steps
    foreign = cal.result.model_copy(deep=True)
    foreign.environment.gpu_name = "Some Accelerator"
    other = Calibrated(CALIBRATION, result=foreign)
    with pytest.raises(BenchError, match="not in the GPU table"):
        predict(other, {}, gpu="h200")


def test_predict_cli_on_another_gpu_prints_the_expected_error(capsys) -> None:
    rc, out, err = cli(capsys, "predict", "--from", str(CALIBRATION), "--gpu", "h200", "--num-prompts", "100")
    assert rc == 0, err
    assert "h200 (predicted from NVIDIA H100" in out and "expected error" in out and "other-gpu" in out
    rc, _, err = cli(capsys, "predict", "--from", str(CALIBRATION), "--gpu", "h900")
    assert rc == 2 and "--gpu" in err and "h200" in err and len(err.strip().splitlines()) == 1


def test_moe_activation_counts_the_fused_moe_workspace() -> None:
    info = resolve_model("preset:qwen3-30b-a3b").info
    assert moe_workspace_elements(info, 1) == 8 * (max(2 * 768, 2048) + 768)
    # the two MoE starts measured (H200): 3.21 GiB of profiled activation at 16,384 batched tokens, 2.41 at 4,096
    assert activation_gib(info, 16384, 1) == pytest.approx(3.21, abs=0.01)
    assert activation_gib(info, 4096, 1) == pytest.approx(2.41, abs=0.01)
    assert moe_workspace_elements(info, 2) == 8 * (max(768, 2048) + 384)
    assert activation_gib(info, 16384, 1) > activation_gib(info, 4096, 1)
    row = plan_point(info, PlanSettings(gpu_memory_utilization=0.9, max_model_len=4096), "cuda", 139.8)
    assert row.fits and row.expected_kv_kind == "model-moe"
    dense = plan_point(resolve_model("preset:llama-3.1-8b").info,
                       PlanSettings(gpu_memory_utilization=0.9, max_model_len=4096), "cuda", 139.8)
    assert dense.expected_kv_kind == "model-dense" and dense.expected_kv_error_pct is not None


def test_expected_error_is_the_worst_of_the_kinds_a_prediction_makes() -> None:
    assert accuracy.kinds_of({}, False, 0, False) == []
    kinds = accuracy.kinds_of({"gpu_memory_utilization": 0.5, "kv_cache_dtype": "fp8"}, True, 3, True)
    assert kinds == ["other-gpu", "kv-dtype", "preempting", "memory", "workload"]
    table = accuracy.table()["kinds"]
    e = accuracy.expected(["memory", "preempting"])
    assert e["output_tokens_per_s_pct"] == max(table[k]["output_tokens_per_s"] for k in ("memory", "preempting"))
    assert "within" in accuracy.sentence(e) and "prediction-accuracy.md" in accuracy.sentence(e)
    assert set(accuracy.expected(["workload", "kv-dtype"])["points"]) == {"workload", "kv-dtype"}


def test_accuracy_files_match_the_committed_results(monkeypatch, capsys) -> None:
    """docs/results/prediction-accuracy.md and accuracy.json are what the script computes from the results."""
    monkeypatch.setattr(sys, "argv", ["prediction_accuracy.py", "--check"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "scripts" / "prediction_accuracy.py"), run_name="__main__")
    assert done.value.code == 0, capsys.readouterr().err
    data = json.loads((ROOT / "offline_bench" / "predict" / "accuracy.json").read_text())
    assert {"other-gpu", "preempting", "memory"} <= set(data["kinds"]) and "model-dense" in data["kv"]


def test_serve_probe_under_a_rate_has_no_in_flight_cap_unless_given() -> None:
    assert in_flight_cap(None, None, 200) == 1
    assert in_flight_cap(None, 20.0, 200) == 200  # as vllm bench serve --request-rate 20
    assert in_flight_cap(16, 20.0, 200) == 16


def test_plan_calibrated_on_the_h100_gives_the_h200s_kv_cache(capsys) -> None:
    rc, out, err = cli(capsys, "plan", "--model", "preset:llama-3.1-8b", "--calibrate", str(CALIBRATION), "--gpu",
                       "h200", "--gpu-memory-utilization", "0.9", "--max-model-len", "4096", "--format", "json")
    assert rc == 0, err
    (row,) = json.loads(out)["rows"]
    measured = RunResult.load(H200_RUNS[0]).kv_cache.capacity_tokens
    assert row["basis"] == "calibrated" and row["gpu_total_gib"] == 139.8
    assert abs(row["kv_cache_tokens"] / measured - 1) < 0.005 and row["expected_kv_kind"] == "calibrated"


def test_fit_prices_decode_steps_above_the_largest_cuda_graph_apart() -> None:
    # 300 decoding requests (captured) then 600 (above a 512-token graph: 10 ms more a step)
    rows = [(4096 if i % 20 == 0 else 0, 600 if i < 80 else 300) for i in range(160)]
    steps = _trace([(c, n, n * (500 + i), 4 + 0.02 * c + 4e-5 * n * (500 + i) + (10.0 if c == 0 and n > 512 else 0.0))
                    for i, (c, n) in enumerate(rows)])
    m = fit(steps, weights_read_ms=4.0, graph_tokens=512)
    assert m.uncaptured_ms == pytest.approx(10.0, rel=0.05) and m.per_kv_token_ms == pytest.approx(4e-5, rel=0.05)
    assert m.step_ms(0, 300_000, 600, True) - m.step_ms(0, 300_000, 600) == pytest.approx(m.uncaptured_ms)
    assert fit(steps, weights_read_ms=4.0).uncaptured_ms is None  # no graph size known: one regime


def test_graph_limit_follows_vllms_default() -> None:
    assert graph_limit({"max_num_seqs": 1024}) == 512 and graph_limit({"max_num_seqs": 128}) == 256
    assert graph_limit({"max_num_seqs": 1024, "enforce_eager": True}) == 0
    assert graph_limit({"max_num_seqs": 4, "device": "cpu"}) == 0


def test_a_calibration_above_the_graphs_predicts_the_preempting_h200_point() -> None:
    """The H200's 1000-request run (decode batches of 1000, above the 512-token graphs) predicts gmu 0.5 (247
    preemptions, batches of 550-850) on the same GPU."""
    cal = Calibrated(RESULTS / "h200-predict" / "measured" / "gmu-0.9.json.gz")
    assert cal.steps.graph_tokens == 512 and (cal.steps.uncaptured_ms or 0) > 1.0
    r = RunResult.load(RESULTS / "h200-predict" / "measured" / "gmu-0.5.json.gz")
    p = predict(cal, {"gpu_memory_utilization": 0.5})
    assert abs(p.kv_cache.preemptions - r.kv_cache.preemptions) <= 2
    assert abs(p.throughput.output_tokens_per_s / r.throughput.output_tokens_per_s - 1) < 0.05


def test_a_prediction_above_graphs_the_calibration_never_ran_says_so(cal: Calibrated) -> None:
    p = predict(cal, {}, num_prompts=1000, gpu="h200")
    assert "uncaptured" in p.prediction["expected_error"]["kinds"]
    assert any("largest CUDA graph (512 tokens)" in n for n in p.notes)
    assert "uncaptured" not in predict(cal, {}, gpu="h200").prediction["expected_error"]["kinds"]


def test_replay_on_an_arrival_schedule_waits_for_each_request() -> None:
    from offline_bench.predict.schedsim import simulate

    reqs = [(64, 8)] * 4
    sim = simulate(reqs, num_blocks=100, block_size=16, max_num_batched_tokens=512, max_num_seqs=8,
                   max_model_len=256, step_ms=lambda p, kv, *_: 1.0, arrivals_s=[0.0, 1.0, 2.0, 3.0])
    assert [r.arrival_s for r in sim.requests] == [0.0, 1.0, 2.0, 3.0]
    assert all(r.first_s >= r.arrival_s for r in sim.requests)
    assert sim.duration_s == pytest.approx(3.0 + 8 * 0.001)  # idle between arrivals, 8 steps for the last
    capped = simulate(reqs, num_blocks=100, block_size=16, max_num_batched_tokens=512, max_num_seqs=8,
                      max_model_len=256, step_ms=lambda p, kv, *_: 1.0, arrivals_s=[0.0] * 4, concurrency=1)
    assert capped.duration_s == pytest.approx(4 * 8 * 0.001)  # one in flight at a time


def test_predict_at_a_request_rate_matches_the_h100_rate_runs_throughput(cal: Calibrated) -> None:
    r = RunResult.load(RESULTS / "h100-rate" / "offline-r20.json.gz")
    w, first = r.workload, [q for q in r.requests if q.repeat == 0]
    p = predict(cal, {}, num_prompts=len(first), input_len=sorted(q.input_tokens for q in first)[len(first) // 2],
                output_len=sorted(q.output_tokens for q in first)[len(first) // 2], request_rate=w.request_rate,
                burstiness=w.burstiness or 1.0, seed=w.seed or 0)
    assert p.workload.request_rate == 20.0 and "rate" in p.prediction["expected_error"]["kinds"]
    assert abs(p.throughput.output_tokens_per_s / r.throughput.output_tokens_per_s - 1) < 0.05
