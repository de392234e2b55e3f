"""`tune`'s search on committed calibration data (the H200 8B run of docs/results/h200-predict), its answer's
parts, its one-line refusals, and the replay's decode stretches against stepping one by one. The engine path
(--verify) is tested in tests/e2e/test_predict.py."""

from __future__ import annotations

import json
import random

import pytest

from offline_bench.core.gpus import gpu_spec
from offline_bench.measure import tune as verify_mod
from offline_bench.measure.tune import base_config, judge, verify_workload
from offline_bench.predict import schedsim
from offline_bench.predict.basis import Basis, from_calibration, from_reference, reference, reference_terms
from offline_bench.predict.replay import Calibrated, predict
from offline_bench.predict.tune import TuneGrid, TuneWorkload, tune
from offline_bench.report.formats import render
from offline_bench.results.load import load, load_as
from offline_bench.results.tune import TuneResult
from tests.helpers import RESULTS, cli, one_error_line

H200 = RESULTS / "h200-predict" / "measured" / "gmu-0.9.json.gz"
BATCH = [(512, 256)] * 1000


@pytest.fixture(scope="module")
def cal() -> Calibrated:
    return Calibrated(H200)


@pytest.fixture(scope="module")
def basis(cal: Calibrated) -> Basis:
    return from_calibration(cal, None)


@pytest.fixture(scope="module")
def closed(basis: Basis) -> TuneResult:
    grid = TuneGrid(max_model_len=[1024, 4096], gpu_memory_utilization=[0.5, 0.9], max_num_seqs=[256, 1024],
                    max_num_batched_tokens=[2048, 8192])
    return tune(basis, TuneWorkload(BATCH), grid, workers=1)


def test_each_setting_is_what_predict_answers_for_it(cal: Calibrated, closed: TuneResult) -> None:
    """Shared replays (max_model_len, a cache larger than the workload holds) change no figure."""
    assert closed.settings_searched == 16 and closed.simulations < 16
    for row in closed.rows:
        s = row.setting
        p = predict(cal, {"gpu_memory_utilization": s.gpu_memory_utilization, "max_model_len": s.max_model_len,
                          "max_num_seqs": s.max_num_seqs, "max_num_batched_tokens": s.max_num_batched_tokens},
                    num_prompts=1000, input_len=512, output_len=256)
        assert row.output_tokens_per_s == pytest.approx(p.throughput.output_tokens_per_s, rel=1e-6)
        assert row.ttft_ms["p99"] == pytest.approx(p.latency.ttft_ms.p99, rel=1e-6)
        assert row.preemptions == p.kv_cache.preemptions and row.kv_cache_tokens == p.kv_cache.capacity_tokens


def test_ranking_frontier_regions_and_commands(closed: TuneResult) -> None:
    ranked = closed.ranked
    assert [r.rank for r in ranked] == list(range(1, 17)) and all(r.status == "ok" for r in ranked)
    best = ranked[0]
    assert best.output_tokens_per_s == max(r.output_tokens_per_s for r in closed.rows)
    q = "p99"
    for f in (r for r in closed.rows if r.pareto):  # nothing beats a frontier row on both axes
        assert not any(r.output_tokens_per_s > f.output_tokens_per_s and r.ttft_ms[q] < f.ttft_ms[q]
                       for r in closed.rows)
    preempting = [g for g in closed.regions if g.status == "preempts"]
    assert preempting and preempting[0].spans["gpu_memory_utilization"] == [0.5]
    assert preempting[0].count == sum(1 for r in closed.rows if r.preemptions)
    assert f"--max-num-seqs {best.setting.max_num_seqs}" in closed.recommended["vllm serve"]
    assert closed.recommended["vllm serve"].startswith("offline-bench serve-preset llama-3.1-8b ")
    assert closed.answer.startswith("Best of 16 settings: ")
    assert best.expected_error["kinds"] and best.expected_error["output_tokens_per_s_pct"] > 0


def test_an_slo_no_setting_meets_is_an_answer(basis: Basis) -> None:
    t = tune(basis, TuneWorkload(BATCH[:200], request_rate=20.0), TuneGrid(
        max_model_len=[1024], gpu_memory_utilization=[0.9], max_num_seqs=[64, 256], max_num_batched_tokens=[8192]),
        slo={"ttft_ms": 1.0, "tpot_ms": 50.0}, workers=1)
    assert all(r.status == "slo" for r in t.rows)
    closest = t.ranked[0]
    assert max(closest.slo_miss_pct.values()) == min(max(r.slo_miss_pct.values()) for r in t.rows)
    assert t.answer.startswith("No setting meets every SLO; the closest") and "TTFT p99 1 ms by" in t.answer
    assert t.regions[0].status == "slo" and t.recommended  # the closest's command lines


def test_data_parallel_layouts_and_the_fewest_gpus(basis: Basis) -> None:
    grid = TuneGrid(max_model_len=[1024], gpu_memory_utilization=[0.9], max_num_seqs=[256],
                    max_num_batched_tokens=[8192], layouts=[(1, 1), (1, 2)])
    t = tune(basis, TuneWorkload(BATCH[:400], request_rate=60.0), grid, slo={"ttft": 2000.0}, objective="gpus",
             workers=1)
    one, two = sorted(t.rows, key=lambda r: r.setting.gpus)
    assert two.setting.data_parallel_size == 2 and two.ttft_ms["p99"] < one.ttft_ms["p99"]
    assert t.ranked[0].setting.gpus == min(r.setting.gpus for r in t.rows if r.status == "ok")


def test_the_cost_objective_ranks_tokens_per_gpu_and_prices_them(basis: Basis) -> None:
    grid = TuneGrid(max_model_len=[1024], gpu_memory_utilization=[0.9], max_num_seqs=[256],
                    max_num_batched_tokens=[8192], layouts=[(1, 1), (1, 2)])
    t = tune(basis, TuneWorkload(BATCH[:400]), grid, objective="cost", workers=1, gpu_hour_usd=3.5)
    per_gpu = {r.setting.gpus: r.output_tokens_per_s / r.setting.gpus for r in t.rows}
    assert t.ranked[0].setting.gpus == max(per_gpu, key=per_gpu.get)
    for r in t.rows:  # $/M tokens = GPUs x $/h / (tok/s x 3600) x 1e6
        assert r.usd_per_million_output_tokens == pytest.approx(3.5 * r.setting.gpus / r.output_tokens_per_s
                                                                / 3600 * 1e6)
    assert "per million output tokens" in t.answer and "$/M out tok" in render("tune", "md", t)


def test_rendered_in_every_format_and_loaded_back(tmp_path, closed: TuneResult) -> None:
    md = render("tune", "md", closed)
    assert "Pareto frontier" in md and "Rejected and preempting regions" in md and "Recommended" in md
    assert json.loads(render("tune", "json", closed))["kind"] == "tune"
    path = tmp_path / "tune.json"
    closed.save(str(path))
    assert load(path) == closed


def test_decode_stretches_replay_exactly_what_single_steps_do() -> None:
    rng = random.Random(3)
    reqs = [(rng.randint(16, 600), rng.randint(1, 300)) for _ in range(300)]
    arrivals = sorted(rng.uniform(0, 5) for _ in reqs)

    def step(prefill: int, kv: int, decoding: int, uncaptured: bool) -> float:
        return 2.0 + 0.01 * prefill + 2e-5 * kv + 0.003 * decoding + (1.5 if uncaptured else 0.0)

    for blocks, arr, conc in ((4000, None, None), (300, None, None), (500, arrivals, None), (900, None, 64)):
        a, b = (schedsim.simulate(reqs, blocks, 16, 2048, 128, 1024, step, concurrency=conc, arrivals_s=arr,
                                  graph_tokens=96, fast=fast) for fast in (False, True))
        assert (a.steps, a.preemptions, a.uncaptured_decode_steps, a.peak_usage_pct) == \
            (b.steps, b.preemptions, b.uncaptured_decode_steps, b.peak_usage_pct)
        assert a.duration_s == pytest.approx(b.duration_s, rel=1e-9)
        for x, y in zip(a.requests, b.requests):
            assert (x.first_s, x.finish_s, x.preemptions) == pytest.approx((y.first_s, y.finish_s, y.preemptions))


def test_the_cli_answers_and_refuses_in_one_line(capsys, tmp_path) -> None:
    args = ["tune", "--calibrate", str(H200), "--max-num-seqs", "256", "--max-num-batched-tokens", "8192",
            "--num-prompts", "300"]
    rc, out, err = cli(capsys, *args, "--gpu-memory-utilization", "0.6,0.9", "--format", "json", "--output",
                       str(tmp_path / "t.json"))
    assert rc == 0, err
    assert json.loads(out)["settings_searched"] == 2 and load(tmp_path / "t.json").kind == "tune"
    for bad, words in ((["--max-model-len", "512"], "shorter than the workload's longest request (768 tokens)"),
                       (["--objective", "goodput"], "--objective goodput needs SLOs"),
                       (["--objective", "gpus", "--goodput", "ttft:500"], "--objective gpus needs --request-rate"),
                       (["--model", "preset:tiny-llama"], "is a run of preset:llama-3.1-8b, not preset:tiny-llama"),
                       (["--gpu-memory-utilization", "0.5,1.5"], "--gpu-memory-utilization"),
                       (["--gpu-hour-cost", "h100-sxm=2.49"], "--gpu-hour-cost has no price for h200: add h200=USD")):
        rc, _, err = cli(capsys, *args, *bad)
        assert words in one_error_line(rc, err)


def test_the_reference_is_the_h200_calibration_and_reproduces_it(basis: Basis) -> None:
    """reference.json is what `reference_terms` makes of the committed H200 run (it cannot go stale), and scaled to
    that run's own model and GPU it gives back that run's step cost and, through the model-based KV plan, its
    answers within the plan's error."""
    terms = json.loads(json.dumps(reference_terms(Calibrated(H200))))
    assert reference() == {**terms, "source": "docs/results/h200-predict/measured/gmu-0.9.json.gz"}
    ref = from_reference("preset:llama-3.1-8b", basis.info, gpu_spec("h200"))
    assert ref.reference and not ref.gpu_moved and ref.calibration is None
    for term in ("fixed_ms", "per_prefill_token_ms", "per_kv_token_ms", "per_decode_token_ms", "uncaptured_ms"):
        assert getattr(ref.steps, term) == pytest.approx(getattr(basis.steps, term), rel=1e-3), term
    grid = TuneGrid(max_model_len=[1024], gpu_memory_utilization=[0.5, 0.9], max_num_seqs=[256, 1024],
                    max_num_batched_tokens=[8192])
    a, b = (tune(x, TuneWorkload(BATCH), grid, workers=1) for x in (basis, ref))
    for x, y in zip(a.rows, b.rows):
        assert y.output_tokens_per_s == pytest.approx(x.output_tokens_per_s, rel=0.02)
    assert b.ranked[0].expected_error["unmeasured"] == ["reference"] and "No calibration run" in b.notes[0]


def test_without_a_calibration_the_model_and_gpu_are_needed(capsys) -> None:
    assert "without --calibrate, give --model, --input-len and --output-len" in one_error_line(
        *cli(capsys, "tune", "--model", "preset:llama-3.1-8b")[::2])
    rc, out, err = cli(capsys, "tune", "--model", "preset:qwen3-30b-a3b", "--gpu", "h100-sxm", "--input-len", "512",
                       "--output-len", "256", "--num-prompts", "200", "--max-num-seqs", "256",
                       "--gpu-memory-utilization", "0.9", "--format", "json")
    assert rc == 0, err
    t = json.loads(out)
    assert t["gpu"] == "h100-sxm" and t["basis"].startswith("reference calibration")
    assert sorted(r["rank"] for r in t["rows"]) == [1, 2, 3, 4]


def test_each_data_parallel_size_replays_its_own_share(basis: Basis) -> None:
    """Replicas replay every dp-th request: DP 5 and DP 6 of 20 requests differ, and each equals a search of its
    layout alone (no replay shared across sizes)."""
    wl = TuneWorkload([(512, 256)] * 19 + [(2000, 48)], request_rate=4.0)
    one = dict(max_model_len=[4096], gpu_memory_utilization=[0.9], max_num_seqs=[256], max_num_batched_tokens=[8192])
    together = tune(basis, wl, TuneGrid(**one, layouts=[(1, d) for d in range(1, 9)]), workers=1)
    for row in together.rows:
        alone = tune(basis, wl, TuneGrid(**one, layouts=[(1, row.setting.data_parallel_size)]), workers=1).rows[0]
        assert (row.output_tokens_per_s, row.ttft_ms, row.preemptions) == \
            (alone.output_tokens_per_s, alone.ttft_ms, alone.preemptions)
    assert together.simulations == 8


def test_a_cache_of_exactly_one_request_would_not_start(basis: Basis) -> None:
    """vLLM keeps one block back: 48 blocks cannot hold a 48-block request (the plan alone would say it fits)."""
    t = tune(basis, TuneWorkload([(512, 256)] * 50), TuneGrid(max_model_len=[768], kv_cache_memory_bytes=[
        48 * 16 * 131072, 4 * 2**30], max_num_seqs=[256], max_num_batched_tokens=[8192]), workers=1)
    small, big = sorted(t.rows, key=lambda r: r.setting.kv_cache_memory_bytes)
    assert small.status == "no-start" and "vLLM keeps one back" in small.reason and big.status == "ok"
    assert t.regions[0].reason == "the cache cannot hold the workload's longest request"


def test_verify_runs_the_workload_that_was_predicted(cal: Calibrated) -> None:
    wl = TuneWorkload([(512, 256)] * 40, request_rate=None, concurrency=8)
    w = verify_workload(cal, wl, None, None, 2)
    base = base_config(cal.result.model, cal.result.engine_args, w, {"ttft_ms": 500.0}, wl.concurrency)
    assert base.concurrency == 8 and base.workload.num_prompts == 40 and base.workload.repeats == 2
    assert (base.workload.input_len, base.workload.output_len) == (512, 256)
    assert base.engine.model == "preset:llama-3.1-8b" and base.engine.load_format == "dummy"


@pytest.mark.parametrize(("name", "contradicted"), [
    ("tune-closed", []), ("tune-r20", ["rank 121 (TTFT p99 11,733.0 ms against 500)"])])
def test_verify_names_settings_predicted_to_meet_the_slos_that_missed_them(monkeypatch, name, contradicted) -> None:
    """The H200 verifies (docs/results/tune-h200.md) judged again: both answers stand; at 20 req/s max_num_seqs 48
    was predicted to meet TTFT p99 500 ms and measured 11.7 s, and the verdict says so."""
    t = load_as(RESULTS / "tune-h200" / f"{name}.json.gz", "tune", "test")
    monkeypatch.setattr(verify_mod, "_ci_half", lambda path, key: t.verify["noise_ci95"])  # the runs' own CI
    v = judge(t, [r for r in t.ranked if r.measured])
    assert v["stands"] is True and v["measured_best_rank"] == t.verify["measured_best_rank"]
    assert v["contradicted"] == contradicted and v["verdict"].startswith(t.verify["verdict"])
    assert ("missed them as measured: rank 121" in v["verdict"]) == bool(contradicted)
