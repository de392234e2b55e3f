"""scripts/vs_vllm_bench.py in-process: the summary joining passes from several calls (one pair on the real CPU
engine: tests/e2e)."""

from __future__ import annotations

import json
import runpy
import sys

import pytest

from tests.helpers import KV_BYTES, MAX_MODEL_LEN, ROOT

SCRIPT = [str(ROOT / "scripts" / "vs_vllm_bench.py"), "--model", "preset:tiny-llama", "--num-prompts", "8",
          "--input-len", "48", "--output-len", "16",
          "--engine", f"--max-model-len {MAX_MODEL_LEN} --kv-cache-memory-bytes {KV_BYTES} --enforce-eager"]


def _script(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """The script as `python scripts/vs_vllm_bench.py ... ARGS` runs it, in this process."""
    monkeypatch.setattr(sys, "argv", [*SCRIPT, *args])
    runpy.run_path(SCRIPT[0], run_name="__main__")


def test_summary_uses_finished_pairs_only_and_the_later_of_a_repeated_pass(monkeypatch, tmp_path):
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
    _script(monkeypatch, "--summarize", str(first), str(second), "--out", str(out))
    s = json.loads(out.read_text())
    assert s["pairs"] == [0, 2]
    assert s["pair_ratios"] == [1.0, 0.9]
    assert s["median_ratio"] == pytest.approx(0.95) and s["ratio_spread"] == [0.9, 1.0]
