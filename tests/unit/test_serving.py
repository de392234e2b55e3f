"""Serving commands that need no server: one line when the server is down, importing other tools' results and
hand figures, the `vllm serve` command serve-preset builds, explain-gap's check of a saved serving result (the CLI
in-process; a real `vllm serve`: tests/e2e)."""

import json
import socket

import pytest

from tests.helpers import RESULTS, cli

KEY = "sk-test-0123456789-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_one_line(capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    rc, _, err = cli(capsys, "serve-probe", "--base-url", f"http://127.0.0.1:{_free_port()}", "--served-model-name",
                     "preset:tiny-llama", "--tokenizer", "preset:tiny-llama", "--num-prompts", "8", "--input-len",
                     "32", "--output-len", "16", "--warmup", "1")
    assert rc == 2 and err.startswith("error: cannot reach") and err.count("\n") == 1


def test_import_vllm_bench_and_hand_figures(capsys, tmp_path):
    bench = {"backend": "vllm", "model_id": "m", "duration": 2.0, "completed": 2, "total_input_tokens": 20,
             "total_output_tokens": 8, "request_throughput": 1.0, "output_throughput": 4.0,
             "total_token_throughput": 14.0, "max_concurrency": 2, "input_lens": [10, 10], "output_lens": [4, 4],
             "ttfts": [0.1, 0.2], "itls": [[0.01, 0.02, 0.03], [0.01, 0.01, 0.01]]}
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    (tmp_path / "hand.yaml").write_text("name: report\nruns:\n  - {concurrency: 1, ttft_s: 0.36, "
                                        "output_tokens_per_s: 39.10}\n  - {concurrency: 10, ttft_s: 0.39, "
                                        "output_tokens_per_s: 355, total_output_tokens: 5130}\n")
    out = tmp_path / "imp"
    assert cli(capsys, "import", str(tmp_path / "bench.json"), "--output-dir", str(out))[0] == 0
    assert cli(capsys, "import", str(tmp_path / "hand.yaml"), "--output-dir", str(out))[0] == 0
    b = json.loads((out / "bench-imported.json").read_text())
    assert b["mode"] == "imported" and b["latency"]["ttft_ms"]["p50"] == pytest.approx(150.0)
    assert b["requests"][0]["tpot_ms"] == pytest.approx(20.0) and b["requests"][0]["e2e_ms"] == pytest.approx(160.0)
    h10 = json.loads((out / "report-c10.json").read_text())
    assert h10["latency"]["ttft_ms"]["mean"] == pytest.approx(390.0) and h10["latency"]["ttft_ms"]["p50"] is None
    assert h10["throughput"]["output_tokens_per_s"] == 355 and h10["workload"]["total_output_tokens"] == 5130
    assert h10["throughput"]["total_tokens_per_s"] is None and h10["workload"]["temperature"] is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - {concurency: 1}\n")
    rc, _, err = cli(capsys, "import", str(bad), "--output-dir", str(out))
    assert rc == 2 and "unknown keys ['concurency']" in err


def test_explain_gap_refuses_a_saved_result_of_another_workload(capsys):
    """A saved serve-probe result (the committed H100 one: seed prompts, 20 requests at concurrency 10, 512 tokens
    each) explains only its own workload, and only its own concurrency level."""
    saved = str(RESULTS / "h100-offline-vs-serving" / "serving-c10.json.gz")
    same = ["--num-prompts", "20", "--prompts", "prompts/seed.txt"]
    rc, _, err = cli(capsys, "explain-gap", "--serving-result", saved, "--concurrency", "10", *same,
                     "--output-len", "64")
    assert rc == 2 and "is not this workload: output_len 512 (here 64)" in err
    assert err.count("\n") == 1
    rc, _, err = cli(capsys, "explain-gap", "--serving-result", saved, "--concurrency", "10,20", *same,
                     "--output-len", "512")
    assert rc == 2 and "concurrency 20 has no --serving-result: pass --base-url" in err


def test_serve_preset_passes_further_flags_through(capsys):
    rc, out, err = cli(capsys, "serve-preset", "tiny-llama", "--port", "8123", "--api-key", "sk-123456",
                       "--print-command", "--served-model-name", "gpt-4o", "--max-num-seqs", "64")
    assert rc == 0, err
    cmd = out.split()
    assert cmd[-4:] == ["--served-model-name", "gpt-4o", "--max-num-seqs", "64"]  # after the preset's own name
    assert "sk-123456" not in out and "<key>" in cmd
