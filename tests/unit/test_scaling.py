"""`scaling` over results measured on GPUs (docs/results): per-GPU efficiency against the baseline run, and the
batch-1 decode step of a TP group against its memory-bound floor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline_bench.analysis.scaling import layout, scaling_report
from offline_bench.core.errors import BenchError
from offline_bench.predict.stepmodel import full_batch_decode_step
from offline_bench.report.formats import render
from offline_bench.report.inputs import load_items
from offline_bench.results.run import RunResult, StepTrace, read_text
from tests.helpers import ROOT, cli

PAR = ROOT / "docs" / "results" / "2gpu-parallel"
TP1, TP2, DP2, H100 = (str(PAR / f"{n}.json.gz") for n in ("h200-tp1", "h200-tp2", "h200-dp2", "h100-tp1"))
PHASES = str(ROOT / "docs" / "results" / "70b-tp" / "phases-70b-tp2.json")


def test_layout_names():
    assert layout(1, 1, 1) == "1 GPU"
    assert layout(2, 1, 1) == "TP=2"
    assert layout(2, 1, 2) == "DP=2 x TP=2"
    assert layout(1, 2, 1, "ray") == "PP=2 (ray)"


def test_runs_against_the_run_on_the_fewest_gpus():
    report = scaling_report(load_items([TP2, DP2, TP1]))
    assert report.baseline == "2gpu-parallel/h200-tp1"  # the 1-GPU run, though given last
    rows = {r.result.split("/")[1]: r for r in report.runs}
    out = {name: RunResult.load(path).throughput.output_tokens_per_s
           for name, path in (("h200-tp1", TP1), ("h200-tp2", TP2), ("h200-dp2", DP2))}
    assert [rows[n].gpus for n in ("h200-tp1", "h200-tp2", "h200-dp2")] == [1, 2, 2]
    assert rows["h200-tp2"].layout == "TP=2" and rows["h200-dp2"].layout == "DP=2"
    for name in ("h200-tp2", "h200-dp2"):
        assert rows[name].speedup == pytest.approx(out[name] / out["h200-tp1"])
        assert rows[name].efficiency_pct == pytest.approx(100 * out[name] / 2 / out["h200-tp1"])
    assert rows["h200-tp1"].efficiency_pct == pytest.approx(100)
    # TP=2 holds one KV pool; DP=2 two, counted together
    dp = json.loads(read_text(DP2))["parallel"]
    assert rows["h200-dp2"].kv_capacity_tokens_total == sum(dp["kv_capacity_tokens_per_replica"])
    assert report.warnings == []  # one workload, one card: nothing differs but the layout


def test_a_run_on_another_card_is_flagged():
    report = scaling_report(load_items([TP1, H100]), baseline=TP1)
    assert [w for w in report.warnings if "GPU differs" in w] == [
        "2gpu-parallel/h100-tp1 vs 2gpu-parallel/h200-tp1: GPU differs: NVIDIA H100 80GB HBM3 vs NVIDIA H200"]


def test_decode_step_against_the_tp_groups_floor():
    data = json.loads(Path(PHASES).read_text())
    row = next(r for r in data["rows"] if r["phase"] == "decode" and r["batch_size"] == 1)
    (d,) = scaling_report(load_items([PHASES])).decode
    floor = 1000 / row["ceiling_tokens_per_s"]
    assert d.layout == "TP=2" and d.gpus == 2 and d.step_ms == pytest.approx(row["latency_ms"])
    assert d.floor_ms == pytest.approx(floor)
    assert d.gap_ms == pytest.approx(row["latency_ms"] - floor) and d.gap_ms > 0
    assert d.allreduces_per_step == 2 * 80  # the 70B preset: 80 layers, two all-reduces each
    assert d.gap_per_allreduce_us == pytest.approx(1000 * d.gap_ms / 160)
    assert [x.batch_size for x in scaling_report(load_items([PHASES]), batch_sizes=(1, 128)).decode] == [1, 128]


def test_scaling_cli(capsys, tmp_path):
    rc, out, err = cli(capsys, "scaling", TP1, TP2, PHASES, "--format", "md")
    assert rc == 0, err
    assert "| 2gpu-parallel/h200-tp2 | TP=2" in out and "gap per all-reduce us" in out
    rc, out, _ = cli(capsys, "scaling", TP1, TP2, "--format", "json")
    assert [r["layout"] for r in json.loads(out)["runs"]] == ["1 GPU", "TP=2"]
    serving = str(ROOT / "docs" / "results" / "h100-offline-vs-serving" / "serving-c64.json.gz")
    for args, line in (
        ([TP1, serving], f"error: '{serving}' is not an offline `run` or `phases` result (a serving result): "
                         "scaling compares offline runs (throughput) and phases results (decode step)"),
        ([TP1, "--baseline", TP2], f"error: --baseline {TP2} is not one of the offline runs given"),
        ([str(tmp_path / "none.json")], f"error: '{tmp_path / 'none.json'}' does not exist: give result files "
                                         "(JSON) or directories of them"),
    ):
        rc, _, err = cli(capsys, "scaling", *args)
        assert rc != 0 and err.strip().splitlines() == [line], err


def test_a_sweep_is_refused_in_one_line():
    sweep = str(ROOT / "docs" / "results" / "70b-tp")
    with pytest.raises(BenchError) as e:
        scaling_report(load_items([sweep]))
    assert str(e.value) == (f"'{sweep}' is not an offline `run` or `phases` result (a sweep result): scaling "
                            "compares offline runs (throughput) and phases results (decode step)")


def test_the_70b_sweep_points_at_tp2_and_tp4_keep_apart_and_warn_that_the_cards_differ():
    """The same point of two sweeps (TP=2 on 2 x H200, TP=4 on 4 x H100) has the same file name: the labels take
    one more folder; the per-GPU efficiency is the measured ratio, with the card difference said next to it."""
    res = ROOT / "docs" / "results"
    tp2, tp4 = (str(res / d / "points" / "gmu-0.9_mml-8192.json.gz") for d in ("70b-tp", "70b-tp4"))
    report = scaling_report(load_items([tp4, tp2]))
    assert [r.result for r in report.runs] == ["70b-tp4/points/gmu-0.9_mml-8192", "70b-tp/points/gmu-0.9_mml-8192"]
    assert report.baseline == "70b-tp/points/gmu-0.9_mml-8192"
    out2, out4 = (RunResult.load(p).throughput.output_tokens_per_s for p in (tp2, tp4))
    assert report.runs[0].efficiency_pct == pytest.approx(100 * (out4 / 4) / (out2 / 2))
    assert any("GPU differs: NVIDIA H100 80GB HBM3 vs NVIDIA H200" in w for w in report.warnings), report.warnings


def _trace(steps: list[tuple[float, int, int]]) -> StepTrace:
    """(gap ms, prompt tokens, decoding requests) per step -> a StepTrace."""
    t, ts = 0.0, []
    for gap, _, _ in steps:
        t += gap / 1000
        ts.append(t)
    n = len(steps)
    return StepTrace(source="iteration_details", t_s=ts, exec_ms=[None] * n, ctx_tokens=[s[1] for s in steps],
                     ctx_reqs=[int(s[1] > 0) for s in steps], gen_reqs=[s[2] for s in steps], out_tokens=[0] * n,
                     first_tokens=[0] * n, decode_ctx_tokens=[0] * n, running=[None] * n, waiting=[None] * n,
                     kv_usage_pct=[None] * n)


def test_full_batch_decode_step_takes_pure_decode_steps_near_the_largest_batch():
    # a prefill, 10 decode steps of 100 requests (10-12 ms), one mixed step, then the batch draining to 40
    steps = [(50.0, 512, 0)] + [(10.0 + i % 3, 0, 100) for i in range(10)] + [(30.0, 256, 100)]
    steps += [(5.0, 0, 40)] * 5
    assert full_batch_decode_step(_trace(steps)) == (11.0, 100.0, 10)
    assert full_batch_decode_step(_trace(steps[:6])) is None  # fewer than 8 such steps: no figure
    assert full_batch_decode_step(_trace([(50.0, 512, 0)] * 9)) is None  # no decode at all


def test_scaling_shows_the_full_batch_decode_step_per_request_of_each_engine():
    """The 8B on 4 x H100: a TP=4 engine at ~1000 requests steps about as long per request as a DP replica's at
    ~500 -- the column that says why DP=2 x TP=2 gave more than TP=4 (docs/results/70b-tp.md)."""
    res = ROOT / "docs" / "results"
    dp, tp4 = (str(res / "70b-tp4" / f) for f in ("dp2tp2-8b.json.gz", "tp4-8b.json.gz"))
    report = scaling_report(load_items([dp, tp4, TP2]))
    rows = {r.result: r for r in report.runs}
    for name, path in (("70b-tp4/dp2tp2-8b", dp), ("70b-tp4/tp4-8b", tp4)):
        step = full_batch_decode_step(RunResult.load(path).steps)
        assert (rows[name].full_batch_step_ms, rows[name].full_batch_requests) == step[:2]
        assert rows[name].us_per_request == pytest.approx(1000 * step[0] / step[1])
    assert rows["70b-tp4/tp4-8b"].full_batch_requests > 1.5 * rows["70b-tp4/dp2tp2-8b"].full_batch_requests
    assert rows["2gpu-parallel/h200-tp2"].full_batch_step_ms is None  # recorded before steps were kept
    header = [h.strip() for h in render("scaling", "md", report).splitlines()[0].split("|")]
    assert header[-4:-1] == ["decode step ms", "at batch", "us per request"]


def test_scaling_reads_the_gzipped_ray_and_mp_runs_and_names_the_backend(capsys):
    """The Ray-vs-mp runs on 2 x H200 (docs/results/ray-2node.md) are kept gzipped: `scaling` reads them, marks
    the Ray layouts and takes efficiencies against the --baseline path given."""
    seq = ROOT / "docs" / "results" / "ray-2node" / "h200-seq"
    paths = sorted(str(p) for p in seq.glob("pass*/*.json.gz"))
    base = str(seq / "pass1" / "tp2-mp.json.gz")
    report = scaling_report(load_items(paths), baseline=base)
    assert report.baseline == "pass1/tp2-mp"
    rows = {r.result: r for r in report.runs}
    assert len(rows) == len(paths) == 9
    base_out = RunResult.load(Path(base)).throughput.output_tokens_per_s
    for path in paths:
        r = RunResult.load(Path(path))
        name = "/".join(Path(path).parts[-2:]).removesuffix(".json.gz")
        ray = r.parallel["executor_backend"] == "ray"
        assert rows[name].layout.endswith("(ray)") == ray
        assert rows[name].efficiency_pct == pytest.approx(100 * r.throughput.output_tokens_per_s / base_out)
        if ray:  # the placement really spanned two Ray nodes, one GPU on each
            assert r.parallel["ray"]["placement_nodes"] == 2
            assert sorted(r.parallel["ray"]["gpus_per_node"].values()) == [1.0, 1.0]
    rc, out, err = cli(capsys, "scaling", *paths, "--baseline", base, "--format", "csv")
    assert rc == 0, err
    assert sum("(ray)" in line for line in out.splitlines()) == 4
