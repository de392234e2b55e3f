import csv
import io
import json

import pytest

from offline_bench.core.errors import BenchError
from offline_bench.report.formats import render
from offline_bench.results.run import RunResult
from tests.helpers import ROOT

H100_RUN = ROOT / "docs" / "results" / "h100-run" / "run-1x128-512.json"


def test_h100_result_round_trips(tmp_path):
    r = RunResult.load(H100_RUN)
    out = tmp_path / "again.json"
    r.save(out)
    assert RunResult.load(out) == r
    assert not list(tmp_path.glob(".again.json.*"))  # no temporary left behind


def test_version_mismatch_is_one_line(tmp_path):
    data = json.loads(H100_RUN.read_text())
    data["schema_version"] = 99
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(BenchError, match="schema_version 99"):
        RunResult.load(bad)


@pytest.mark.parametrize("fmt", ["table", "md", "csv", "json"])
def test_render_formats(fmt):
    r = RunResult.load(H100_RUN)
    text = render("run", fmt, r)
    if fmt == "json":
        assert json.loads(text)["throughput"]["output_tokens_per_s"] == r.throughput.output_tokens_per_s
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:3] == ["section", "metric", "value"]
        assert any(row[1] == "ttft_ms" for row in rows)
    else:
        assert "output_tokens_per_s" in text and "ttft_ms" in text and "NVIDIA H100" in text


def test_parse_cache_config_info():
    from offline_bench.serving.probe import parse_cache_config_info

    text = ('# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n'
            'vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",engine="0",'
            'gpu_memory_utilization="0.9",num_gpu_blocks="27783",num_cpu_blocks="None"} 1.0\n')
    assert parse_cache_config_info(text) == {"block_size": 16, "num_gpu_blocks": 27783, "enable_prefix_caching": True,
                                             "gpu_memory_utilization": 0.9, "cache_dtype": "auto"}
    assert parse_cache_config_info("vllm:num_requests_running 0.0\n") == {}


def test_environment_counts_only_the_visible_gpus(monkeypatch):
    from offline_bench.core import environment

    gpus = [("NVIDIA H200", 140.4, "580"), ("NVIDIA H100 80GB HBM3", 79.6, "580")]
    monkeypatch.setattr(environment, "nvidia_smi", lambda: gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    e = environment.capture_environment()
    assert (e.gpu_count, e.gpu_name, e.gpu_memory_gib, e.device) == (1, "NVIDIA H100 80GB HBM3", 79.6, "cuda")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert environment.capture_environment().gpu_count == 2
