"""Beyond one GPU, before an engine starts: the checks (one line naming the fix), the environment and the
extra vllm.LLM arguments multi-GPU runs need, and joining a Ray cluster. Data parallel runs: `dataparallel`."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from offline_bench.core.config import SAFE_ALLREDUCE_ENV, SAFE_ALLREDUCE_PASS, EngineConfig
from offline_bench.core.environment import nvidia_smi, visible_ids
from offline_bench.core.errors import BenchError
from offline_bench.model.info import ModelInfo
from offline_bench.model.limits import check_model_limits


def visible_gpus() -> list[str]:
    """GPU indices this process may use (nvidia-smi, narrowed by CUDA_VISIBLE_DEVICES)."""
    return visible_ids(len(nvidia_smi()))


def check_parallel(cfg: EngineConfig, info: ModelInfo | None) -> None:
    """One line naming the fix for settings that cannot work; run before any engine starts."""
    tp, pp, dp = cfg.tensor_parallel_size, cfg.pipeline_parallel_size, cfg.data_parallel_size
    check_model_limits(info, None, tensor_parallel_size=tp, pipeline_parallel_size=pp)
    gpus = visible_gpus()
    if gpus and tp * pp * dp > len(gpus) and cfg.distributed_executor_backend != "ray":
        raise BenchError(f"TP {tp} x PP {pp} x DP {dp} needs {tp * pp * dp} GPUs but {len(gpus)} are visible "
                         "(CUDA_VISIBLE_DEVICES): lower the sizes, or use --distributed-executor-backend ray "
                         "across hosts")


def connect_ray(address: str | None) -> str:
    """Join an existing Ray cluster (--ray-address or $RAY_ADDRESS), so an unreachable one fails in one line; with
    neither, 'local': vLLM's engine core starts a cluster of its own (starting one here would only be torn down)."""
    try:
        import ray  # optional dependency (offline-bench[ray])
    except ImportError:
        raise BenchError("Ray is not installed: pip install 'offline-bench[ray]' (the same Ray version on every "
                         "host)") from None
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        return "local"
    if ray.is_initialized():
        return address
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise BenchError(f"cannot reach the Ray cluster at {address}: {str(e).splitlines()[0][:200]} (start it "
                         "with `ray start --head` and pass --ray-address HOST:6379)") from None
    return address


def one_host_tp_group(nodes: list[dict[str, Any]], tp: int) -> tuple[str, int] | None:
    """(host, Ray nodes with GPUs on it) when a TP group of `tp` must span Ray nodes (none has `tp` GPUs) and some
    host runs several of them. vLLM tells nodes apart by shared memory, so it takes such a TP group for one node,
    and its custom all-reduce then asks each worker for GPUs it cannot see (seen with vLLM 0.26 on 4 x H100:
    "IndexError: device_id 1 is out of range for assigned_physical_gpu_ids")."""
    gpu_nodes = [n for n in nodes if n.get("Alive") and n.get("Resources", {}).get("GPU", 0) > 0]
    if tp < 2 or not gpu_nodes or max(n["Resources"]["GPU"] for n in gpu_nodes) >= tp:
        return None
    hosts = Counter(str(n.get("NodeManagerHostname") or n.get("NodeManagerAddress")) for n in gpu_nodes)
    host, count = hosts.most_common(1)[0]
    return (host, count) if count > 1 else None


def check_ray_layout(cfg: EngineConfig) -> None:
    """One line naming the fix, before a start that would fail minutes later (one_host_tp_group); needs this process
    connected to the cluster (connect_ray)."""
    import ray  # optional dependency (offline-bench[ray])

    tp = cfg.tensor_parallel_size
    if not ray.is_initialized() or cfg.engine_args.get("disable_custom_all_reduce"):
        return
    shared = one_host_tp_group(ray.nodes(), tp)
    if shared:
        raise BenchError(f"--tensor-parallel-size {tp} spans {shared[1]} Ray nodes of one host ({shared[0]}), each "
                         f"with fewer than {tp} GPUs: vLLM takes them for one node and its custom all-reduce fails; "
                         "pass --engine-arg disable_custom_all_reduce=true (as vLLM does across hosts)")


def ray_groups() -> set[str]:
    """The ids of the Ray cluster's placement groups now (taken before an engine starts, to tell its own apart);
    empty when this process is not connected (vLLM will start a local cluster of its own)."""
    import ray  # optional dependency (offline-bench[ray])

    return set(ray.util.placement_group_table()) if ray.is_initialized() else set()


def disconnect_ray() -> None:
    """Leave the cluster before the engine starts: vLLM's engine core connects by itself ($RAY_ADDRESS). It is
    spawned, not forked (engine_env_and_kwargs): a fork of a process that has used Ray hangs in ray.init."""
    import ray  # optional dependency (offline-bench[ray])

    if ray.is_initialized():
        ray.shutdown()


def ray_facts(address: str, groups_before: set[str]) -> dict[str, Any]:
    """What Ray gave the engine: the cluster's address and alive nodes, and the placement group(s) vLLM created
    for its workers (those not in `groups_before`) -- on how many nodes, with which resources on each node (named
    `IP/node-id prefix`). Connects for the reading (and leaves again) unless this process already is connected."""
    import ray  # optional dependency (offline-bench[ray])

    joined = not ray.is_initialized()
    try:
        if joined:
            ray.init(address="auto" if address == "local" else address, log_to_driver=False)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        groups = ray.util.placement_group_table()
    except (ConnectionError, RuntimeError, ValueError) as e:
        return {"address": address, "error": str(e).splitlines()[0][:200]}
    finally:
        if joined and ray.is_initialized():
            ray.shutdown()
    # several Ray nodes may share a host (one per GPU): name each by its IP and the start of its node id
    ip_of = {n["NodeID"]: f"{n.get('NodeManagerAddress') or '?'}/{n['NodeID'][:8]}" for n in nodes}
    placed: dict[str, dict[str, float]] = {}
    for pg_id, pg in groups.items():
        if pg_id in groups_before or pg.get("state") != "CREATED":
            continue
        for index, bundle in pg.get("bundles", {}).items():
            node = placed.setdefault(ip_of.get(pg.get("bundles_to_node_id", {}).get(index), "unknown"), {})
            for resource, amount in bundle.items():
                node[resource] = node.get(resource, 0.0) + amount
    return {"address": address, "nodes": len(nodes),
            "node_resources": {ip_of[n["NodeID"]]: {k: v for k, v in n.get("Resources", {}).items()
                                                   if k in ("CPU", "GPU")} for n in nodes},
            "placement_nodes": len(placed), "placement": placed,
            "gpus_per_node": {node: res.get("GPU", 0.0) for node, res in placed.items()}}


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
    if cfg.distributed_executor_backend == "ray":
        if cfg.ray_address:
            env["RAY_ADDRESS"] = cfg.ray_address  # where vLLM's engine core joins the cluster (ray.init reads it)
        if "VLLM_WORKER_MULTIPROC_METHOD" not in os.environ:
            # this process joins Ray around the engine start (connect_ray, ray_facts): an engine core forked from
            # it hangs in its own ray.init (vLLM forks on GPUs; seen with 0.26 on two H200s), a spawned one joins
            env["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
    world = cfg.tensor_parallel_size * cfg.pipeline_parallel_size
    if not on_gpu and world > 1 and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        # the CPU build refuses several workers on one NUMA node unless each gets its own cores
        cores = sorted(os.sched_getaffinity(0))
        per = max(1, len(cores) // world)
        env["VLLM_CPU_OMP_THREADS_BIND"] = "|".join(
            ",".join(map(str, cores[i * per:(i + 1) * per] or cores[-1:])) for i in range(world))
    return env, kwargs
