"""Beyond one GPU: checks before an engine starts, the settings multi-GPU runs need, and data parallel offline
(N engine replicas, each in its own process on its own GPU group, fed one workload split N ways)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from offline_bench.config import SAFE_ALLREDUCE_ENV, SAFE_ALLREDUCE_PASS, EngineConfig, RunConfig
from offline_bench.errors import BenchError
from offline_bench.modelinfo import ModelInfo
from offline_bench.procs import child_error, fail_child, kill_group, spawn


def visible_gpus() -> list[str]:
    """GPU indices this process may use (nvidia-smi, narrowed by CUDA_VISIBLE_DEVICES)."""
    from offline_bench.environment import _nvidia_smi, visible_ids

    return visible_ids(len(_nvidia_smi()))


def check_parallel(cfg: EngineConfig, info: ModelInfo | None) -> None:
    """One line naming the fix for settings that cannot work; run before any engine starts."""
    tp, pp, dp = cfg.tensor_parallel_size, cfg.pipeline_parallel_size, cfg.data_parallel_size
    if info is not None:
        if info.num_heads % tp:
            divisors = [d for d in range(1, info.num_heads + 1) if info.num_heads % d == 0 and d <= 16]
            raise BenchError(f"--tensor-parallel-size {tp} does not divide the model's {info.num_heads} attention "
                             f"heads: use one of {', '.join(map(str, divisors))}")
        if pp > info.num_layers:
            raise BenchError(f"--pipeline-parallel-size {pp} exceeds the model's {info.num_layers} layers")
    gpus = visible_gpus()
    if gpus and tp * pp * dp > len(gpus) and cfg.distributed_executor_backend != "ray":
        raise BenchError(f"TP {tp} x PP {pp} x DP {dp} needs {tp * pp * dp} GPUs but {len(gpus)} are visible "
                         "(CUDA_VISIBLE_DEVICES): lower the sizes, or use --distributed-executor-backend ray "
                         "across hosts")
    if cfg.distributed_executor_backend == "ray":
        connect_ray(cfg.ray_address)


def connect_ray(address: str | None) -> str:
    """Join an existing Ray cluster (--ray-address or $RAY_ADDRESS) or start a local one."""
    try:
        import ray
    except ImportError:
        raise BenchError("Ray is not installed: pip install 'offline-bench[ray]' (the same Ray version on every "
                         "host)") from None
    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        return address or "local"
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise BenchError(f"cannot reach the Ray cluster at {address}: {str(e).splitlines()[0][:200]} (start it "
                         "with `ray start --head` and pass --ray-address HOST:6379)") from None
    return address or "local"


def engine_env_and_kwargs(cfg: EngineConfig, on_gpu: bool) -> tuple[dict[str, str], dict[str, Any]]:
    """Environment variables and extra vllm.LLM arguments the parallel settings need."""
    env: dict[str, str] = {}
    kwargs: dict[str, Any] = {}
    comp = dict(cfg.compilation_config or {})
    if cfg.safe_allreduce:
        env.update(SAFE_ALLREDUCE_ENV)
        comp["pass_config"] = {**comp.get("pass_config", {}), **SAFE_ALLREDUCE_PASS}
    if comp:
        kwargs["compilation_config"] = comp
    if cfg.distributed_executor_backend:
        kwargs["distributed_executor_backend"] = cfg.distributed_executor_backend
    world = cfg.tensor_parallel_size * cfg.pipeline_parallel_size
    if not on_gpu and world > 1 and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        # the CPU build refuses several workers on one NUMA node unless each gets its own cores
        cores = sorted(os.sched_getaffinity(0))
        per = max(1, len(cores) // world)
        env["VLLM_CPU_OMP_THREADS_BIND"] = "|".join(
            ",".join(map(str, cores[i * per:(i + 1) * per] or cores[-1:])) for i in range(world))
    return env, kwargs


# ---------------------------------------------------------------- data parallel offline


def run_data_parallel(cfg: RunConfig, progress_file: Any = None) -> Any:
    """Start N replicas (each `run` on 1/N of the workload), release them together, aggregate."""
    from offline_bench.environment import has_cuda
    from offline_bench.runner import aggregate_replicas

    dp = cfg.engine.data_parallel_size
    n = cfg.workload.num_prompts
    if cfg.workload.synthetic and (n or 0) < dp:
        raise BenchError(f"--num-prompts {n} is fewer than --data-parallel-size {dp}: every replica needs work")
    per_group = cfg.engine.tensor_parallel_size * cfg.engine.pipeline_parallel_size
    gpus = visible_gpus() if has_cuda() else []
    cores = sorted(os.sched_getaffinity(0))
    tmp = Path(tempfile.mkdtemp(prefix="offline-bench-dp-"))
    procs = []
    for rank in range(dp):
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[rank * per_group:(rank + 1) * per_group])
        else:  # CPU build: give each replica its own cores
            share = cores[rank::dp] or cores[-1:]
            env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, share))
        replica = cfg.model_copy(deep=True)
        replica.engine.data_parallel_size = 1
        spec = {"config": json.loads(replica.model_dump_json()), "rank": rank, "size": dp,
                "out": str(tmp / f"replica-{rank}.json"), "go": str(tmp / "go")}
        p = spawn([sys.executable, "-m", "offline_bench.parallel"], env=env)
        p.stdin.write(json.dumps(spec))
        p.stdin.close()
        procs.append(p)
    try:
        for rank, p in enumerate(procs):  # wait until every engine is up
            line = p.stdout.readline().strip()
            if line != "ready":
                p.wait()
                raise BenchError(f"replica {rank} failed to start: {child_error(p.stderr.read(), p.returncode)}")
        (tmp / "go").write_text(str(time.time()))
        results = []
        for rank, p in enumerate(procs):
            p.wait()
            out = tmp / f"replica-{rank}.json"
            if p.returncode != 0 or not out.exists():
                raise BenchError(f"replica {rank} failed: {child_error(p.stderr.read(), p.returncode)}")
            results.append(json.loads(out.read_text()))
    finally:
        for p in procs:
            kill_group(p)
    return aggregate_replicas(cfg, results)


def _replica_main() -> None:
    from offline_bench.engine import Engine
    from offline_bench.runner import run_benchmark

    spec = json.loads(sys.stdin.read())
    cfg = RunConfig.model_validate(spec["config"])
    parent = os.fdopen(os.dup(1), "w")  # the engine's log capture takes fd 1 over; "ready" must reach the parent
    try:
        with Engine(cfg.engine) as engine:
            print("ready", file=parent, flush=True)
            go = Path(spec["go"])
            while not go.exists():
                time.sleep(0.01)
            result = run_benchmark(cfg, engine=engine, shard=(spec["rank"], spec["size"]))
            wall_start = float(go.read_text())
            result.startup["dp_go_wall_s"] = wall_start
            result.save(spec["out"])
    except BenchError as e:
        fail_child(str(e))


if __name__ == "__main__":
    _replica_main()
