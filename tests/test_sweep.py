"""`sweep`: pure analysis on rows, the H100 sweep re-rendered, and a real CPU sweep killed and resumed."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from offline_bench.config import RunConfig
from offline_bench.errors import BenchError
from offline_bench.sweep import PointRow, SweepSpec, analyze, parse_list, point_key, write_summary
from tests.conftest import ROOT, run_cli

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
    shutil.rmtree(d / "plots")
    summary = write_summary(d)
    assert len(summary.rows) == 9 and all(r.status == "ok" for r in summary.rows)
    caps = {r.settings["gpu_memory_utilization"]: r.kv_capacity_tokens for r in summary.rows}
    assert caps[0.5] < caps[0.7] < caps[0.9]
    assert summary.analysis["kv_grows_with_sequence_length"]["holds"] is True
    for name in summary.analysis["plots"]["files"]:
        assert (d / name).read_bytes()[:8] == PNG


@pytest.mark.engine
def test_cpu_sweep_kill_resume_report(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "--output-dir", str(out), "--gpu-memory-utilization", "0.05,0.1",
            "--max-model-len", "256,512,4096", "--num-prompts", "8", "--input-len", "32", "--output-len", "8",
            "--warmup", "1", "--target-concurrency", "1000"]
    # 1) start, let one point finish, then kill the sweep outright
    proc = subprocess.Popen([sys.executable, "-m", "offline_bench", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = out / "points" / "gmu-0.05_mml-256.json"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert first.exists(), "the first point never finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(3)
    for f in (out / "points").glob("*.json"):
        json.loads(f.read_text())  # every file there is whole
    assert subprocess.run(["pgrep", "-f", "offline_bench.sweep --point"], capture_output=True).returncode == 1
    kept = {f.name: f.stat().st_mtime_ns for f in (out / "points").glob("*.json")}
    # 2) the same command resumes and finishes; the impossible points are recorded as failed
    p = run_cli(*args, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    for name, mtime in kept.items():
        assert (out / "points" / name).stat().st_mtime_ns == mtime, f"{name} was run again"
    s = json.loads((out / "summary.json").read_text())
    rows = {r["key"]: r for r in s["rows"]}
    assert len(rows) == 6
    assert [k for k, r in rows.items() if r["status"] == "failed"] == ["gmu-0.05_mml-4096", "gmu-0.1_mml-4096"]
    assert "above the model's limit" in rows["gmu-0.05_mml-4096"]["error"]
    for mml in (256, 512):  # capacity rises with gmu
        assert rows[f"gmu-0.1_mml-{mml}"]["kv_capacity_tokens"] > rows[f"gmu-0.05_mml-{mml}"]["kv_capacity_tokens"]
    for g in ("0.05", "0.1"):  # doubling max_model_len halves max concurrency (within block rounding)
        # per token of capacity: on the CPU build each point sizes its KV pool from the RAM free at its start
        a, b = rows[f"gmu-{g}_mml-256"], rows[f"gmu-{g}_mml-512"]
        ratio = (a["max_concurrency"] / a["kv_capacity_tokens"]) / (b["max_concurrency"] / b["kv_capacity_tokens"])
        assert ratio == pytest.approx(2.0, rel=0.01)
    assert s["analysis"]["kv_grows_with_sequence_length"]["holds"] is True
    assert s["analysis"]["target_concurrency"] and s["analysis"]["throughput_knee"]
    for name in ("kv_capacity_vs_gmu", "max_concurrency_vs_max_model_len", "output_tokens_per_s_vs_gmu",
                 "ttft_p99_vs_gmu"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == PNG
    assert (out / "summary.csv").read_text().startswith("gpu_memory_utilization,max_model_len,status")
    # 3) a second invocation runs nothing new
    before = {f.name: f.stat().st_mtime_ns for f in (out / "points").glob("*.json")}
    p = run_cli(*args, timeout=300)
    assert p.returncode == 0 and p.stderr.count("skipped (done)") == 6
    assert before == {f.name: f.stat().st_mtime_ns for f in (out / "points").glob("*.json")}
    # 4) --report re-renders without running anything
    shutil.rmtree(out / "plots")
    (out / "summary.md").unlink()
    p = run_cli("sweep", "--report", str(out), timeout=120)
    assert p.returncode == 0 and (out / "summary.md").exists() and (out / "plots" / "kv_capacity_vs_gmu.png").exists()
    # 5) another workload into the same directory is refused in one line
    p = run_cli(*args[:-2], "--target-concurrency", "1000", "--num-prompts", "9", timeout=120)
    assert p.returncode == 2 and "holds a sweep with other settings" in p.stderr


def test_sweep_needs_output_dir():
    p = run_cli("sweep", "--gpu-memory-utilization", "0.2,1.5", "--output-dir", os.devnull + "x", timeout=60)
    assert p.returncode == 2 and "outside (0, 1]" in p.stderr


@pytest.mark.engine
def test_hung_point_is_killed_and_recorded(tmp_path):
    out = tmp_path / "sw"
    p = run_cli("sweep", "--output-dir", str(out), "--max-model-len", "256,512", "--gpu-memory-utilization", "0.05",
                "--num-prompts", "2",
                "--timeout-per-point", "2", timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all("timed out after 2 s" in r["error"] for r in rows)
    time.sleep(2)
    assert subprocess.run(["pgrep", "-f", "offline_bench.sweep --point"], capture_output=True).returncode == 1
