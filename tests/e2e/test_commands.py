"""Every command that needs no engine, once in a process of its own as a user runs it (`python -m offline_bench`):
exit status 0 and its output, and one bad input and one usage error with their status 2. The commands' behaviour
is tested in-process in tests/unit; `run`, `sweep`, `serve-preset`, `serve-probe` and `explain-gap` make their
round trips with an engine or a server (tests/e2e/test_cli.py, test_sweep.py, test_serving.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import FIXTURES, ROOT, run_cli

R = "docs/results"
H100_LOG = str(FIXTURES / "h100-vllm0.26-llama8b-startup.log")


@pytest.mark.parametrize("args,shown", [
    (["presets"], "preset:tiny-llama"),
    (["roofline", "--model", "preset:llama-3.1-8b", "--gpu", "h100-sxm"], "weight_bytes"),
    (["plan", "--model", "preset:llama-3.1-8b", "--gpu", "h100-sxm", "--gpu-memory-utilization", "0.9"],
     "KV tokens"),
    (["predict", "--from", f"{R}/h100-predict/calibration.json.gz", "--gpu-memory-utilization", "0.6"], "PREDICTED"),
    (["compare", f"{R}/h100-run/run-1000x512-256.json.gz", f"{R}/h100-run/run-10x64-512.json"], "output_tokens_per_s"),
    (["scaling", f"{R}/2gpu-parallel/h200-tp1.json.gz", f"{R}/2gpu-parallel/h200-tp2.json.gz"], "TP=2"),
    (["startup", H100_LOG], "kv_cache_tokens"),
], ids=lambda v: v[0] if isinstance(v, list) else None)
def test_each_command_round_trips_in_a_process(args, shown):
    p = run_cli(*args, timeout=120)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert shown in p.stdout, p.stdout[-2000:]


def test_commands_that_write_files_round_trip_in_a_process(tmp_path):
    """startup from standard input, import, report (sweep --report: tests/e2e/test_sweep.py)."""
    p = subprocess.run([sys.executable, "-m", "offline_bench", "startup", "-", "--format", "json"],
                       input=(FIXTURES / "h100-vllm0.26-llama8b-startup.log").read_bytes(), capture_output=True,
                       cwd=ROOT, timeout=120)
    assert p.returncode == 0 and b'"kv_cache_tokens": 444528' in p.stdout, p.stderr[-2000:]
    (tmp_path / "hand.yaml").write_text("name: hand\nruns:\n  - {concurrency: 10, output_tokens_per_s: 355}\n")
    p = run_cli("import", str(tmp_path / "hand.yaml"), "--output-dir", str(tmp_path), timeout=120)
    assert p.returncode == 0 and (tmp_path / "hand-c10.json").exists(), p.stderr[-2000:]
    p = run_cli("report", f"{R}/h100-run/run-1x128-512.json", "--output", str(tmp_path / "r.html"), timeout=120)
    assert p.returncode == 0 and "HTML report written to" in p.stderr, p.stderr[-2000:]
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_bad_input_and_usage_errors_exit_2_in_a_process():
    p = run_cli("compare", "README.md", timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("error: cannot read result 'README.md'"), p.stderr[-2000:]
    assert p.stderr.count("\n") == 1
    p = run_cli("runn", timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("Usage: offline-bench"), p.stderr[-2000:]
