"""`plan` and `predict`: pure logic on the committed H100 measurements, and the CLI in-process (the CPU engine
end to end: tests/e2e)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline_bench.model.presets import resolve_model
from offline_bench.predict.plan import calibration_from_result, plan_point
from offline_bench.predict.replay import Calibrated, predict
from offline_bench.predict.schedsim import simulate
from offline_bench.predict.stepmodel import fit
from offline_bench.results.plan import PlanSettings
from offline_bench.results.run import RunResult, StepTrace, read_text
from tests.helpers import ROOT, cli

H100 = ROOT / "docs" / "results" / "h100-predict"
CALIBRATION = H100 / "calibration.json.gz"
MEASURED = sorted((H100 / "measured").glob("*.json*")) + sorted((ROOT / "docs/results/h100-sweep/points").glob("*"))
SETTINGS = ("gpu_memory_utilization", "max_model_len", "max_num_batched_tokens", "max_num_seqs",
            "tensor_parallel_size")


def _settings(r: RunResult) -> PlanSettings:
    res = r.engine_args["resolved"]
    return PlanSettings(kv_cache_dtype=r.engine_args.get("kv_cache_dtype", "auto"), **{k: res[k] for k in SETTINGS})


# ---------------------------------------------------------------- plan: vLLM's arithmetic on measured H100 starts


@pytest.mark.parametrize("path", MEASURED, ids=lambda p: p.stem)
def test_plan_model_alone_within_one_percent_of_h100(path: Path) -> None:
    r = RunResult.load(path)
    info = resolve_model(r.model).info
    row = plan_point(info, _settings(r), "cuda", 79.18)
    assert row.fits and row.basis == "model"
    assert abs(row.kv_cache_tokens / r.kv_cache.capacity_tokens - 1) < 0.01, (row.kv_cache_tokens,
                                                                             r.kv_cache.capacity_tokens)


def test_plan_calibrated_within_a_fifth_of_a_percent_when_gmu_moves() -> None:
    cal_data = json.loads(read_text(CALIBRATION))
    info = resolve_model(cal_data["model"]).info
    calib = calibration_from_result(cal_data, str(CALIBRATION), info)
    own = plan_point(info, calib.settings, "cuda", calib.total_gib, calib)
    assert own.kv_cache_tokens == cal_data["kv_cache"]["capacity_tokens"]  # its own start, exactly
    checked = 0
    for path in MEASURED:
        r = RunResult.load(path)
        s = _settings(r)
        if r.model != cal_data["model"] or s.kv_cache_dtype != "auto" or s.max_num_batched_tokens != 16384:
            continue
        row = plan_point(info, s, "cuda", calib.total_gib, calib)
        assert row.basis == "calibrated"
        assert abs(row.kv_cache_tokens / r.kv_cache.capacity_tokens - 1) < 0.002, path.name
        checked += 1
    assert checked >= 10


def test_plan_refuses_what_would_not_start() -> None:
    info = resolve_model("preset:llama-3.1-70b").info
    row = plan_point(info, PlanSettings(gpu_memory_utilization=0.9, max_model_len=8192), "cuda", 79.18)
    assert not row.fits and "no memory left for the KV cache" in row.reason and "--tensor-parallel-size" in row.reason
    info8 = resolve_model("preset:llama-3.1-8b").info
    row = plan_point(info8, PlanSettings(gpu_memory_utilization=0.22, max_model_len=131072), "cuda", 79.18)
    assert not row.fits and "lower --max-model-len" in row.reason


def test_plan_cli_grid_and_bad_input(capsys) -> None:
    args = ["plan", "--model", "preset:llama-3.1-8b", "--gpu", "h100-sxm", "--gpu-memory-utilization",
            "0.5,0.8,0.9,0.95", "--max-model-len", "4096,16384", "--kv-cache-dtype", "auto,fp8", "--format", "json"]
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["kind"] == "plan"
    rows = doc["rows"]
    assert len(rows) == 16 and all(r["fits"] for r in rows)
    by = {(r["gpu_memory_utilization"], r["max_model_len"], r["kv_cache_dtype"]): r for r in rows}
    assert by[(0.9, 4096, "fp8")]["kv_cache_tokens"] == pytest.approx(2 * by[(0.9, 4096, "auto")]["kv_cache_tokens"],
                                                                      abs=16)
    assert by[(0.9, 16384, "auto")]["max_concurrency"] == pytest.approx(by[(0.9, 4096, "auto")]["max_concurrency"] / 4,
                                                                        rel=1e-3)
    assert by[(0.8, 4096, "auto")]["gpu_total_gib"] == 79.18  # the usable total, not 74.5
    for bad, says in ((["--gpu-memory-utilization", "1.5"], "outside (0, 1]"),
                      (["--max-model-len", "200000"], "above the model's limit"),
                      (["--calibrate", "/nonexistent.json"], "cannot read")):
        rc, _, err = cli(capsys, "plan", "--model", "preset:llama-3.1-8b", "--gpu", "h100-sxm", *bad)
        assert rc == 2 and says in err and len(err.strip().splitlines()) == 1, err
    rc, _, err = cli(capsys, "plan", "--model", "preset:qwen3-8b", "--calibrate", str(CALIBRATION))
    assert rc == 2 and "is a run of preset:llama-3.1-8b" in err, err


def test_plan_refuses_layouts_it_does_not_describe(capsys, tmp_path: Path) -> None:
    base = json.loads((ROOT / "offline_bench/model/configs/llama-3.1-8b/config.json").read_text())
    for name, extra, says in (("mla", {"kv_lora_rank": 512}, "MLA"),
                              ("swa", {"sliding_window": 4096, "use_sliding_window": True}, "sliding-window"),
                              ("moe-shared", {"num_experts": 64, "num_experts_per_tok": 8, "moe_intermediate_size":
                                              1408, "shared_expert_intermediate_size": 5632}, "shared experts")):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({**base, **extra}))
        rc, _, err = cli(capsys, "plan", "--model", str(d), "--gpu", "h100-sxm", "--max-model-len", "4096")
        assert rc == 2 and says in err and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------- the step model and the scheduler replay


def test_step_model_recovers_known_costs() -> None:
    # a synthetic trace: 10 ms fixed, 0.02 ms per prompt token, 5e-5 ms per KV token
    t, rows = 0.0, {"ctx_tokens": [], "gen_reqs": [], "decode_ctx_tokens": []}
    ts = []
    for i in range(200):
        ctx = 4096 if i % 10 == 0 else 0
        n = 16 + (i * 7) % 400
        kv = n * 600
        t += (10 + 0.02 * ctx + 5e-5 * kv) / 1000
        ts.append(t)
        rows["ctx_tokens"].append(ctx)
        rows["gen_reqs"].append(n)
        rows["decode_ctx_tokens"].append(kv)
    n = len(ts)
    steps = StepTrace(source="iteration_details", t_s=ts, exec_ms=[None] * n, ctx_reqs=[0] * n, out_tokens=[0] * n,
                      first_tokens=[0] * n, running=[None] * n, waiting=[None] * n, kv_usage_pct=[None] * n, **rows)
    m = fit(steps)
    assert m.fixed_ms == pytest.approx(10, rel=0.02)
    assert m.per_kv_token_ms == pytest.approx(5e-5, rel=0.05)
    assert m.per_prefill_token_ms == pytest.approx(0.02, rel=0.05)
    assert abs(m.total_error_pct) < 1


def test_scheduler_replay_preempts_when_blocks_run_out() -> None:
    reqs = [(100, 50)] * 12
    roomy = simulate(reqs, num_blocks=200, block_size=16, max_num_batched_tokens=512, max_num_seqs=8,
                     max_model_len=256, step_ms=lambda p, kv, *_: 1.0 + 0.01 * p)
    assert roomy.preemptions == 0 and all(r.generated == 50 for r in roomy.requests)
    assert max(r.first_s for r in roomy.requests[:8]) < min(r.first_s for r in roomy.requests[8:])  # max_num_seqs
    tight = simulate(reqs, num_blocks=25, block_size=16, max_num_batched_tokens=512, max_num_seqs=8,
                     max_model_len=256, step_ms=lambda p, kv, *_: 1.0 + 0.01 * p)
    assert tight.preemptions > 0 and all(r.generated == 50 for r in tight.requests)
    assert tight.peak_usage_pct == 100.0
    assert tight.duration_s > roomy.duration_s  # recomputation costs time
    with pytest.raises(ValueError, match="more KV blocks"):
        simulate([(400, 100)], num_blocks=10, block_size=16, max_num_batched_tokens=512, max_num_seqs=8,
                 max_model_len=512, step_ms=lambda p, kv, *_: 1.0)


def test_predict_h100_points_from_the_calibration_run() -> None:
    """The committed H100 runs: preemptions and throughput of gmu 0.6 and mnbt 4096 from the gmu 0.9 run."""
    cal = Calibrated(CALIBRATION)
    for name, tol in (("gmu-0.6", 0.05), ("mnbt-4096", 0.05), ("mns-128", 0.05)):
        r = RunResult.load(H100 / "measured" / f"{name}.json.gz")
        res = r.engine_args["resolved"]
        p = predict(cal, {k: res[k] for k in ("gpu_memory_utilization", "max_num_batched_tokens", "max_num_seqs")})
        assert p.mode == "predicted"
        assert abs(p.kv_cache.capacity_tokens / r.kv_cache.capacity_tokens - 1) < 0.002
        assert abs(p.kv_cache.preemptions - r.kv_cache.preemptions) <= max(2, 0.05 * r.kv_cache.preemptions)
        assert abs(p.throughput.output_tokens_per_s / r.throughput.output_tokens_per_s - 1) < tol, name


def test_sweep_predict_only_answers_a_grid(capsys, tmp_path: Path) -> None:
    rc, _, err = cli(capsys, "sweep", "--output-dir", str(tmp_path / "sw"), "--predict-only", "--calibrate",
                     str(CALIBRATION), "--gpu-memory-utilization", "0.5,0.9", "--max-num-seqs", "128,1024")
    assert rc == 0, err
    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())
    rows = summary["rows"]
    assert len(rows) == 4 and all(r["status"] == "ok" and r["mode"] == "predicted" for r in rows)
    by = {(r["settings"]["gpu_memory_utilization"], r["settings"]["max_num_seqs"]): r for r in rows}
    assert by[(0.5, 1024)]["preemptions"] > 0 and by[(0.9, 1024)]["preemptions"] == 0
    assert by[(0.9, 1024)]["output_tokens_per_s"] > by[(0.5, 1024)]["output_tokens_per_s"]
    rc, _, err = cli(capsys, "sweep", "--output-dir", str(tmp_path / "x"), "--predict-only")
    assert rc == 2 and "--calibrate" in err


def test_predict_prints_the_fit_error_its_json_stores(capsys, tmp_path: Path) -> None:
    """The console said "step model fit: 0.00%" (the summed step times, which the fit matches by construction)
    while the JSON held the median step's error."""
    out = tmp_path / "p.json"
    rc, text, err = cli(capsys, "predict", "--from", str(CALIBRATION), "--gpu-memory-utilization", "0.6", "--output",
                        str(out))
    assert rc == 0, err
    sm = RunResult.load(out).prediction["step_model"]
    assert sm["median_step_error_pct"] > 1  # a real fit error, not the sum's ~0
    assert (f"step model fit: {sm['median_step_error_pct']:.2f}% median step error over its {sm['steps_fitted']} "
            "steps") in text
