"""`sweep`: pure analysis on rows, the H100 sweep re-rendered, and a real CPU sweep killed and resumed."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from offline_bench.analysis.sweep import analyze
from offline_bench.core.config import RunConfig
from offline_bench.core.errors import BenchError
from offline_bench.measure.sweep import parse_list
from offline_bench.report.plots import write_summary
from offline_bench.results.sweep import PointRow, SweepSpec, point_key
from tests.conftest import (
    GIB,
    KV_ARGS,
    ROOT,
    descendants,
    gmu_for,
    require_memory,
    run_cli,
    wait_for_engine,
    wait_gone,
)

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
    args = ["sweep", "--output-dir", str(out), "--kv-cache-memory-bytes", "32MiB,64MiB",
            "--max-model-len", "256,512,4096", "--num-prompts", "8", "--input-len", "32", "--output-len", "8",
            "--warmup", "1", "--target-concurrency", "1000"]
    # 1) start, let one point finish, then kill the sweep outright while the next point's engine runs
    proc = subprocess.Popen([sys.executable, "-m", "offline_bench", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = out / "points" / "kvb-33554432_mml-256.json"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert first.exists(), "the first point never finished"
    started = wait_for_engine(proc.pid)  # the point process, its watchdog, the engine core and worker
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_gone(started) == [], "processes of the killed sweep are still running"
    for f in (out / "points").glob("*.json"):
        json.loads(f.read_text())  # every file there is whole
    kept = {f.name: f.stat().st_mtime_ns for f in (out / "points").glob("*.json")}
    # 2) the same command resumes and finishes; the impossible points are recorded as failed
    p = run_cli(*args, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    for name, mtime in kept.items():
        assert (out / "points" / name).stat().st_mtime_ns == mtime, f"{name} was run again"
    s = json.loads((out / "summary.json").read_text())
    rows = {r["key"]: r for r in s["rows"]}
    assert len(rows) == 6
    small, big = "kvb-33554432", "kvb-67108864"
    assert [k for k, r in rows.items() if r["status"] == "failed"] == [f"{small}_mml-4096", f"{big}_mml-4096"]
    assert "above the model's limit" in rows[f"{small}_mml-4096"]["error"]
    for mml in (256, 512):  # 32 and 64 MiB at 2,048 bytes a token: 16,384 and 32,768 tokens
        assert rows[f"{small}_mml-{mml}"]["kv_capacity_tokens"] == 16_384
        assert rows[f"{big}_mml-{mml}"]["kv_capacity_tokens"] == 32_768
    for kv in (small, big):  # doubling max_model_len halves max concurrency
        assert rows[f"{kv}_mml-256"]["max_concurrency"] == 2 * rows[f"{kv}_mml-512"]["max_concurrency"]
    assert s["analysis"]["kv_grows_with_sequence_length"]["holds"] is True
    assert s["analysis"]["target_concurrency"] and s["analysis"]["throughput_knee"]
    for name in ("kv_capacity_vs_gmu", "max_concurrency_vs_max_model_len", "output_tokens_per_s_vs_gmu",
                 "ttft_p99_vs_gmu"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == PNG
    assert (out / "summary.csv").read_text().startswith("kv_cache_memory_bytes,max_model_len,status")
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


def test_sweep_refuses_gmu_outside_0_1(tmp_path):
    p = run_cli("sweep", "--gpu-memory-utilization", "0.2,1.5", "--output-dir", str(tmp_path / "sw"), timeout=60)
    assert p.returncode == 2 and "outside (0, 1]" in p.stderr


@pytest.mark.engine
def test_hung_point_is_killed_and_recorded(tmp_path):
    out = tmp_path / "sw"
    proc = subprocess.Popen([sys.executable, "-m", "offline_bench", "sweep", "--output-dir", str(out),
                             "--max-model-len", "256,512", *KV_ARGS, "--num-prompts", "2", "--timeout-per-point", "2"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: dict[int, object] = {}
    while proc.poll() is None:  # every process the sweep started, as they come and go
        seen.update({p.pid: p for p in descendants(proc.pid)})
        time.sleep(0.2)
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all("timed out after 2 s" in r["error"] for r in rows)
    assert seen and wait_gone(list(seen.values()), timeout=10) == []


@pytest.mark.engine
def test_gpu_memory_utilization_moves_capacity(tmp_path):
    """gmu itself: on the CPU build it is a share of the NUMA node's RAM, so the two values are derived from the
    node's size to give about 128 MiB and 384 MiB of KV cache; the larger share must hold more tokens."""
    require_memory(GIB, "two gmu-sized engines")
    low, high = gmu_for(128 * 2**20), gmu_for(384 * 2**20)
    out = tmp_path / "sw"
    p = run_cli("sweep", "--output-dir", str(out), "--gpu-memory-utilization", f"{low},{high}", "--max-model-len",
                "512", "--num-prompts", "4", "--input-len", "16", "--output-len", "4", "--warmup", "0", timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"], [r["error"] for r in rows]
    caps = [r["kv_capacity_tokens"] for r in rows]
    assert 0 < caps[0] < caps[1], caps


@pytest.mark.engine
def test_sweep_over_request_rate_with_goodput(tmp_path):
    """--request-rate is an axis like the engine's: each point follows its seeded schedule; the summary gains the
    goodput columns and the rate plots."""
    out = tmp_path / "rates"
    p = run_cli("sweep", "--output-dir", str(out), *KV_ARGS, "--max-model-len", "512", "--request-rate", "20,inf",
                "--num-prompts", "8", "--input-len", "16", "--output-len", "8", "--warmup", "0",
                "--goodput", "e2e:600000", timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["rows"]
    assert [r["key"] for r in rows] == ["rr-20.0", "rr-inf"] and [r["status"] for r in rows] == ["ok", "ok"]
    assert all(r["good_requests_pct"] == 100.0 and r["goodput_requests_per_s"] > 0 for r in rows)
    paced = json.loads((out / "points" / "rr-20.0.json").read_text())
    at_once = json.loads((out / "points" / "rr-inf.json").read_text())
    assert paced["workload"]["request_rate"] == 20.0 and paced["latency"]["arrival_lateness_ms"]["count"] == 8
    assert at_once["workload"]["request_rate"] is None and at_once["latency"]["arrival_lateness_ms"] is None
    header = (out / "summary.md").read_text().splitlines()[2]
    assert header.startswith("| request_rate") and "goodput_requests_per_s" in header
    assert (out / "plots" / "goodput_vs_rate.png").read_bytes()[:8] == PNG
    bad = run_cli("sweep", "--output-dir", str(tmp_path / "x"), "--request-rate", "5,0")
    assert bad.returncode == 2 and "--request-rate takes positive numbers" in bad.stderr


@pytest.mark.engine
def test_one_worker_runs_successive_points_and_a_failure_gets_a_fresh_one(tmp_path):
    """Points run in one long-lived worker (vLLM imported once); a failed point ends its worker and the next point
    gets a fresh one; every point records where its time went. --fresh-process-per-point gives the same figures."""
    out = tmp_path / "sw"
    common = [*KV_ARGS, "--num-prompts", "4", "--input-len", "16", "--output-len", "4", "--warmup", "1"]
    p = run_cli("sweep", "--output-dir", str(out), "--max-model-len", "256,4096,512,384", *common, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    rows = {r["key"]: r for r in s["rows"]}
    assert rows["mml-4096"]["status"] == "failed" and "above the model's limit" in rows["mml-4096"]["error"]
    first, after_failure, reused = (rows[f"mml-{m}"]["startup_breakdown"] for m in (256, 512, 384))
    for b in (first, after_failure, reused):
        assert set(b) == {"handover_s", "import_vllm_s", "engine_init_s", "weights_load_s", "torch_compile_s",
                          "cuda_graph_s", "warmup_s", "timed_s", "close_s", "other_s", "point_s"}
        assert b["point_s"] > b["engine_init_s"] > 0 and b["timed_s"] > 0 and b["close_s"] >= 0
    # a fresh worker imports vLLM as the engine starts; the worker's second engine finds it imported
    assert first["import_vllm_s"] > 1.0 and after_failure["import_vllm_s"] > 1.0
    assert reused["import_vllm_s"] < 0.5 and reused["handover_s"] < 1.0
    assert s["analysis"]["startup_breakdown"]["points"] == 3
    assert "Time per point (mean of 3)" in (out / "summary.md").read_text()
    assert not list((out / "points").glob("*.error"))
    # every started engine's log is kept beside its point; the refused point started none and says why on stderr
    for m in (256, 512, 384):
        assert "Initializing a V1 LLM engine" in (out / "points" / f"mml-{m}.log").read_text()
    assert not (out / "points" / "mml-4096.log").exists()
    assert "engine_log" not in json.loads((out / "points" / "mml-4096.json").read_text())
    assert "mml-4096: failed: --max-model-len" in p.stderr, p.stderr[-2000:]
    fresh = tmp_path / "fresh"
    p = run_cli("sweep", "--output-dir", str(fresh), "--max-model-len", "256", *common, "--fresh-process-per-point",
                timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    row = json.loads((fresh / "summary.json").read_text())["rows"][0]
    assert row["kv_capacity_tokens"] == rows["mml-256"]["kv_capacity_tokens"]
    assert row["startup_breakdown"]["handover_s"] > reused["handover_s"]  # a process to start and import into
