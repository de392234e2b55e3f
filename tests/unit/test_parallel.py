"""Beyond one GPU, without an engine: the one-line errors, Ray missing or unreachable, GPUs counted, the
all-reduce settings."""

import sys
import types

import pytest

from offline_bench.core.config import EngineConfig
from offline_bench.core.errors import BenchError
from offline_bench.engine.parallel import check_parallel, connect_ray, engine_env_and_kwargs
from offline_bench.model.info import ModelInfo
from offline_bench.model.presets import preset_config
from tests.helpers import cli

TINY = ModelInfo.from_config(preset_config("tiny-llama"))


@pytest.mark.parametrize("args,fragment", [
    (["--tensor-parallel-size", "3"], "does not divide the model's 4 attention heads"),
    (["--distributed-executor-backend", "slurm"], "use mp or ray"),
    (["--compilation-config", "{bad"], "--compilation-config is not valid JSON"),
])
def test_parallel_bad_input_one_line(capsys, args, fragment):
    rc, _, err = cli(capsys, "run", *args)
    assert rc == 2 and err.startswith("error: ") and fragment in err, err
    assert err.count("\n") == 1


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
