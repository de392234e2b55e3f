"""`sweep` without an engine: pure analysis on rows, the H100 sweep re-rendered, a bad grid refused (a real CPU
sweep killed and resumed: tests/e2e)."""

import shutil

import pytest

from offline_bench.analysis.sweep import analyze
from offline_bench.core.config import RunConfig
from offline_bench.core.errors import BenchError
from offline_bench.measure.sweep import parse_list
from offline_bench.report.plots import write_summary
from offline_bench.results.sweep import PointRow, SweepSpec, point_key
from tests.helpers import ROOT, cli

PNG = b"\x89PNG\r\n\x1a\n"


def test_parse_list_types_and_errors():
    assert parse_list("gpu_memory_utilization", "0.5, 0.9") == [0.5, 0.9]
    assert parse_list("max_model_len", "2048,8192") == [2048, 8192]
    assert parse_list("kv_cache_dtype", "auto,fp8") == ["auto", "fp8"]
    with pytest.raises(BenchError, match="not a number"):
        parse_list("max_model_len", "2k")
    with pytest.raises(BenchError, match="twice"):
        parse_list("max_model_len", "512,512")


def test_point_key_is_readable_and_stable():
    assert point_key({"gpu_memory_utilization": 0.5, "max_model_len": 2048}) == "gmu-0.5_mml-2048"
    assert point_key({}) == "base"


def _row(g, mml, cap, tput, block=16):
    blocks = cap // block
    mc = round(blocks / -(-mml // block), 2)
    return PointRow(key=point_key({"gpu_memory_utilization": g, "max_model_len": mml}),
                    settings={"gpu_memory_utilization": g, "max_model_len": mml}, status="ok",
                    kv_capacity_tokens=cap, max_concurrency=mc, output_tokens_per_s=tput)


def test_analysis_knee_kv_rule_and_target():
    spec = SweepSpec(base=RunConfig(), grid={"gpu_memory_utilization": [0.5, 0.7, 0.9], "max_model_len": [2048]},
                     target_concurrency=100)
    rows = [_row(0.5, 2048, 100_000, 5000), _row(0.7, 2048, 200_000, 9900), _row(0.9, 2048, 300_000, 10_000)]
    a = analyze(spec, rows)
    assert a["kv_grows_with_sequence_length"]["holds"] is True
    knee = a["throughput_knee"][0]
    assert knee["knee_gpu_memory_utilization"] == 0.7 and "knee at gmu 0.7" in knee["text"]
    t = a["target_concurrency"][0]
    # max_concurrency 48.83 / 97.66 / 146.48 is linear in gmu: 100 requests need 0.5 + 51.17 / 244.1 = 0.7096
    assert t["smallest_gmu_in_grid"] == 0.9 and t["interpolated_gmu"] == pytest.approx(0.7096, abs=1e-3)
    rising = analyze(spec, [_row(0.5, 2048, 100_000, 5000), _row(0.9, 2048, 300_000, 9000)])
    assert rising["throughput_knee"][0]["knee_gpu_memory_utilization"] is None
    assert "no knee inside the grid" in rising["throughput_knee"][0]["text"]


def test_h100_sweep_rerenders(tmp_path):
    """The recorded H100 sweep re-renders from its points alone: table, analysis and valid PNGs."""
    d = tmp_path / "sw"
    shutil.copytree(ROOT / "docs" / "results" / "h100-sweep", d)
    shutil.rmtree(d / "plots", ignore_errors=True)  # drawn at the site build, not committed
    summary = write_summary(d)
    assert len(summary.rows) == 9 and all(r.status == "ok" for r in summary.rows)
    caps = {r.settings["gpu_memory_utilization"]: r.kv_capacity_tokens for r in summary.rows}
    assert caps[0.5] < caps[0.7] < caps[0.9]
    assert summary.analysis["kv_grows_with_sequence_length"]["holds"] is True
    for name in summary.analysis["plots"]["files"]:
        assert (d / name).read_bytes()[:8] == PNG


def test_sweep_refuses_gmu_outside_0_1(capsys, tmp_path):
    rc, _, err = cli(capsys, "sweep", "--gpu-memory-utilization", "0.2,1.5", "--output-dir", str(tmp_path / "sw"))
    assert rc == 2 and "outside (0, 1]" in err
