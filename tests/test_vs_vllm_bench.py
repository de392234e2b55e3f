"""scripts/vs_vllm_bench.py: offline-bench against `vllm bench throughput` on identical tokens, on the real CPU
engine (one pair), and the summary joining passes from several calls."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import KV_BYTES, MAX_MODEL_LEN, ROOT

SCRIPT = [sys.executable, str(ROOT / "scripts" / "vs_vllm_bench.py"), "--model", "preset:tiny-llama",
          "--num-prompts", "8", "--input-len", "48", "--output-len", "16",
          "--engine", f"--max-model-len {MAX_MODEL_LEN} --kv-cache-memory-bytes {KV_BYTES} --enforce-eager"]


@pytest.mark.engine
def test_one_pair_on_identical_tokens_then_summarized_from_its_passes(tmp_path):
    passes, out = tmp_path / "passes.jsonl", tmp_path / "vs.json"
    p = subprocess.run([*SCRIPT, "--pairs", "1", "--passes-out", str(passes), "--out", str(out)],
                       capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:] + p.stdout[-2000:]
    summary = json.loads(out.read_text())
    tool, bench = summary["passes"]
    assert (tool["tool"], bench["tool"]) == ("offline-bench", "vllm bench")  # pair 0 is A then B
    # the same requests in tokens on both sides: every prompt exactly --input-len, every reply --output-len
    assert summary["prompt_tokens_each"] == [48]
    for side in (tool, bench):
        assert (side["prompt_tokens"], side["output_tokens"]) == (8 * 48, 8 * 16)
        assert side["output_tokens_per_s"] > 0 and side["window_s"] > 0
    assert summary["pair_ratios"] == [pytest.approx(tool["output_tokens_per_s"] / bench["output_tokens_per_s"])]
    # each pass was appended as it ended; --summarize rebuilds the same summary from them without an engine
    assert [json.loads(line) for line in passes.read_text().splitlines()] == summary["passes"]
    again = tmp_path / "again.json"
    p = subprocess.run([*SCRIPT, "--summarize", str(passes), "--out", str(again)], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(again.read_text())["median_ratio"] == summary["median_ratio"]


def test_summary_uses_finished_pairs_only_and_the_later_of_a_repeated_pass(tmp_path):
    rows = [{"pair": 0, "tool": "offline-bench", "output_tokens_per_s": 100.0},
            {"pair": 0, "tool": "vllm bench", "output_tokens_per_s": 100.0},
            {"pair": 1, "tool": "vllm bench", "output_tokens_per_s": 50.0},  # cut by a time limit: no partner
            {"pair": 2, "tool": "offline-bench", "output_tokens_per_s": 90.0},
            {"pair": 2, "tool": "vllm bench", "output_tokens_per_s": 80.0},  # repeated in a later call
            {"pair": 2, "tool": "vllm bench", "output_tokens_per_s": 100.0}]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows[:5]))
    second.write_text(json.dumps(rows[5]) + "\n")
    out = tmp_path / "s.json"
    p = subprocess.run([*SCRIPT, "--summarize", str(first), str(second), "--out", str(out)], capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads(out.read_text())
    assert s["pairs"] == [0, 2]
    assert s["pair_ratios"] == [1.0, 0.9]
    assert s["median_ratio"] == pytest.approx(0.95) and s["ratio_spread"] == [0.9, 1.0]
