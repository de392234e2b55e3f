"""Data parallel offline: N engine replicas, each in its own process on its own GPU group (or its own CPU cores),
fed one workload dealt round-robin, released together, and aggregated into one result."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from offline_bench.core.config import RunConfig
from offline_bench.core.environment import has_cuda
from offline_bench.core.errors import BenchError
from offline_bench.core.procs import child_error, fail_child, kill_group, spawn
from offline_bench.engine.llm import Engine
from offline_bench.engine.parallel import visible_gpus
from offline_bench.measure.runner import run_benchmark
from offline_bench.results.build import aggregate_replicas
from offline_bench.results.run import RunResult


def run_data_parallel(cfg: RunConfig) -> RunResult:
    """Start N replicas (each `run` on 1/N of the workload), release them together, aggregate."""
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
        p = spawn([sys.executable, "-m", "offline_bench.measure.dataparallel"], env=env)
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
    return aggregate_replicas(results)


def _replica_main() -> None:
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
