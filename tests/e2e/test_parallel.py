"""Beyond one GPU on the CPU build: data parallel replicas and tensor parallel, each a `run` in a process of its
own (the one-line errors: tests/unit/test_parallel.py)."""

import json

import pytest

from tests.helpers import KV_ARGS, run_cli

SMALL = ["--max-model-len", "512", *KV_ARGS, "--num-prompts", "8", "--input-len", "16",
         "--output-len", "8", "--warmup", "1"]


@pytest.mark.slow
@pytest.mark.engine
def test_data_parallel_two_replicas(tmp_path):
    out = tmp_path / "dp.json"
    p = run_cli("run", *SMALL, "--data-parallel-size", "2", "--output", str(out), timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    par = r["parallel"]
    assert par["data_parallel_size"] == 2 and len(par["replicas"]) == 2
    assert [x["num_prompts"] for x in par["replicas"]] == [4, 4]
    assert r["workload"]["num_prompts"] == 8 and r["workload"]["total_output_tokens"] == 64
    assert sorted({q["replica"] for q in r["requests"]}) == [0, 1]
    assert par["kv_capacity_tokens_total"] == sum(par["kv_capacity_tokens_per_replica"])
    assert r["throughput"]["output_tokens_per_s"] == pytest.approx(64 / r["throughput"]["duration_s"], rel=1e-6)
    assert r["engine_args"]["data_parallel_size"] == 2


@pytest.mark.slow
@pytest.mark.engine
def test_tensor_parallel_two_on_cpu(tmp_path):
    """The CPU build runs TP=2 when each worker gets its own core (set automatically)."""
    out = tmp_path / "tp.json"
    p = run_cli("run", *SMALL, "--tensor-parallel-size", "2", "--output", str(out), timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["engine_args"]["resolved"]["tensor_parallel_size"] == 2
    assert r["parallel"]["world_size"] == 2 and r["parallel"]["env"]["VLLM_CPU_OMP_THREADS_BIND"] == "0|1"
    assert r["workload"]["total_output_tokens"] == 64
