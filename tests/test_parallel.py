"""Beyond one GPU on the CPU build: data parallel replicas, tensor parallel, and the one-line errors."""

import json
import sys
import types

import pytest

from offline_bench.core.config import EngineConfig
from offline_bench.core.errors import BenchError
from offline_bench.engine.parallel import check_parallel, connect_ray, engine_env_and_kwargs
from offline_bench.model.info import ModelInfo
from offline_bench.model.presets import preset_config
from tests.conftest import KV_ARGS, run_cli

TINY = ModelInfo.from_config(preset_config("tiny-llama"))
SMALL = ["--max-model-len", "512", *KV_ARGS, "--num-prompts", "8", "--input-len", "16",
         "--output-len", "8", "--warmup", "1"]


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


@pytest.mark.parametrize("args,fragment", [
    (["--tensor-parallel-size", "3"], "does not divide the model's 4 attention heads"),
    (["--distributed-executor-backend", "slurm"], "use mp or ray"),
    (["--compilation-config", "{bad"], "--compilation-config is not valid JSON"),
])
def test_parallel_bad_input_one_line(args, fragment):
    p = run_cli("run", *args, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and fragment in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1


def test_ray_missing_or_unreachable(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # not installed
    with pytest.raises(BenchError, match=r"Ray is not installed: pip install 'offline-bench\[ray\]'"):
        connect_ray("10.0.0.1:6379")
    fake = types.SimpleNamespace(is_initialized=lambda: False,
                                 init=lambda **kw: (_ for _ in ()).throw(ConnectionError("no cluster there")))
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(BenchError, match="cannot reach the Ray cluster at head:6379: no cluster there"):
        connect_ray("head:6379")


def test_more_gpus_than_visible(monkeypatch):
    monkeypatch.setattr("offline_bench.engine.parallel.visible_gpus", lambda: ["0", "1"])
    with pytest.raises(BenchError, match="needs 4 GPUs but 2 are visible"):
        check_parallel(EngineConfig(tensor_parallel_size=2, data_parallel_size=2), TINY)
    check_parallel(EngineConfig(tensor_parallel_size=2), TINY)  # fits


def test_safe_allreduce_settings():
    env, kwargs = engine_env_and_kwargs(EngineConfig(safe_allreduce=True, tensor_parallel_size=2,
                                                     compilation_config={"cudagraph_mode": "FULL"}), on_gpu=True)
    assert env == {"VLLM_FLASHINFER_ALLREDUCE_BACKEND": "trtllm"}
    assert kwargs["compilation_config"] == {"cudagraph_mode": "FULL", "pass_config": {"fuse_allreduce_rms": False}}
