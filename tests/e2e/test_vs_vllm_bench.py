"""scripts/vs_vllm_bench.py: offline-bench against `vllm bench throughput` on identical tokens, on the real CPU
engine (one pair), summarized again from its passes (the summary of passes from several calls:
tests/unit/test_vs_vllm_bench.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import KV_BYTES, MAX_MODEL_LEN, ROOT

SCRIPT = [sys.executable, str(ROOT / "scripts" / "vs_vllm_bench.py"), "--model", "preset:tiny-llama",
          "--num-prompts", "8", "--input-len", "48", "--output-len", "16",
          "--engine", f"--max-model-len {MAX_MODEL_LEN} --kv-cache-memory-bytes {KV_BYTES} --enforce-eager"]


@pytest.mark.slow
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
