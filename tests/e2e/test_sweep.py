"""`sweep` on the real CPU engine: killed and resumed, a hung point, gmu itself, a request-rate axis (the analysis
and the H100 sweep re-rendered: tests/unit/test_sweep.py)."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import GIB, KV_ARGS, ROOT, descendants, gmu_for, require_memory, run_cli, wait_for_engine, wait_gone

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.engine
def test_cpu_sweep_kill_resume_report(tmp_path):
    """A sweep killed mid-point resumes where it stopped, in one long-lived worker that a failed point renews;
    then runs nothing new, re-renders its report, refuses another workload; a point in a fresh process agrees."""
    out = tmp_path / "sweep"
    workload = ["--num-prompts", "8", "--input-len", "32", "--output-len", "8", "--warmup", "1"]
    # 256 KiB holds 128 tokens, less than one request of either max_model_len: those two points are refused in
    # the worker before any engine start (a max_model_len above the model's limit is refused for the whole grid)
    args = ["sweep", "--output-dir", str(out), "--kv-cache-memory-bytes", "32MiB,256KiB,64MiB",
            "--max-model-len", "256,512", *workload, "--target-concurrency", "1000"]
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
    small, tiny, big = "kvb-33554432", "kvb-262144", "kvb-67108864"
    assert [k for k, r in rows.items() if r["status"] == "failed"] == [f"{tiny}_mml-256", f"{tiny}_mml-512"]
    assert "not enough memory for the KV cache" in rows[f"{tiny}_mml-256"]["error"]
    for mml in (256, 512):  # 32 and 64 MiB at 2,048 bytes a token: 16,384 and 32,768 tokens
        assert rows[f"{small}_mml-{mml}"]["kv_capacity_tokens"] == 16_384
        assert rows[f"{big}_mml-{mml}"]["kv_capacity_tokens"] == 32_768
    for kv in (small, big):  # doubling max_model_len halves max concurrency
        assert rows[f"{kv}_mml-256"]["max_concurrency"] == 2 * rows[f"{kv}_mml-512"]["max_concurrency"]
    assert s["analysis"]["kv_grows_with_sequence_length"]["holds"] is True
    assert s["analysis"]["target_concurrency"] and s["analysis"]["throughput_knee"]
    # test_one_worker_runs_successive_points_and_a_failure_gets_a_fresh_one, merged here: the resumed sweep ran
    # its points in one long-lived worker (vLLM imported once); the refused points (256 KiB) ended their worker and
    # the next point got a fresh one; every point records where its time went
    first, after_failure, reused = (rows[k]["startup_breakdown"] for k in (f"{small}_mml-512", f"{big}_mml-256",
                                                                          f"{big}_mml-512"))
    for b in (first, after_failure, reused):
        assert set(b) == {"handover_s", "import_vllm_s", "engine_init_s", "weights_load_s", "torch_compile_s",
                          "cuda_graph_s", "warmup_s", "timed_s", "close_s", "other_s", "point_s"}
        assert b["point_s"] > b["engine_init_s"] > 0 and b["timed_s"] > 0 and b["close_s"] >= 0
    # a fresh worker imports vLLM as the engine starts; the worker's second engine finds it imported
    assert first["import_vllm_s"] > 1.0 and after_failure["import_vllm_s"] > 1.0
    assert reused["import_vllm_s"] < 0.5 and reused["handover_s"] < 1.0
    assert s["analysis"]["startup_breakdown"]["points"] == 4  # the four that ran, the killed run's first among them
    assert "Time per point (mean of 4)" in (out / "summary.md").read_text()
    assert not list((out / "points").glob("*.error"))
    # every started engine's log is kept beside its point; a refused point started none and says why on stderr
    for key in (f"{small}_mml-256", f"{small}_mml-512", f"{big}_mml-256", f"{big}_mml-512"):
        assert "Initializing a V1 LLM engine" in (out / "points" / f"{key}.log").read_text()
    for mml in (256, 512):
        assert not (out / "points" / f"{tiny}_mml-{mml}.log").exists()
        assert "engine_log" not in json.loads((out / "points" / f"{tiny}_mml-{mml}.json").read_text())
    assert f"{tiny}_mml-256: failed: not enough memory for the KV cache" in p.stderr, p.stderr[-2000:]
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
    # 6) --fresh-process-per-point: a point in a process of its own gives the same figures, after a longer hand-over
    fresh = tmp_path / "fresh"
    p = run_cli("sweep", "--output-dir", str(fresh), "--kv-cache-memory-bytes", "32MiB", "--max-model-len", "256",
                *workload, "--fresh-process-per-point", timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    row = json.loads((fresh / "summary.json").read_text())["rows"][0]
    assert row["kv_capacity_tokens"] == rows[f"{small}_mml-256"]["kv_capacity_tokens"]
    assert row["startup_breakdown"]["handover_s"] > reused["handover_s"]  # a process to start and import into


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


@pytest.mark.slow
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


@pytest.mark.slow
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
