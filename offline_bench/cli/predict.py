"""Commands that answer without an engine: `plan` (KV capacity) and `predict` (from one run)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Optional

import typer

from offline_bench.cli import options as o
from offline_bench.cli.flags import command
from offline_bench.cli.options import Fmt, Opt
from offline_bench.cli.terminal import finish, print_results
from offline_bench.core.config import EngineConfig, parse_bytes, parse_int_list
from offline_bench.core.errors import BenchError
from offline_bench.engine import probes
from offline_bench.measure import sweep as sweep_mod
from offline_bench.model.limits import check_model
from offline_bench.predict import plan as kvplan
from offline_bench.predict import replay as predict_mod
from offline_bench.report.formats import check_format, render
from offline_bench.results.run import check_writable, keep_result


@dataclass
class PlanGrid:
    """`plan`'s grid: every setting a comma list."""
    gpu_memory_utilization: o.GmuList = None
    kv_cache_memory_bytes: Annotated[Optional[str], Opt(help="KV cache sizes instead of gmu, e.g. 2GiB,4GiB."),
                                     o.BYTE_SIZES] = None
    max_model_len: o.LengthList = None
    kv_cache_dtype: o.KvDtypeList = None
    max_num_batched_tokens: o.LengthList = None
    max_num_seqs: o.CountList = None
    tensor_parallel_size: o.SizeList = None
    block_size: Annotated[Optional[str], Opt(help="KV block sizes (default: vLLM's, 16 on GPU, 128 on CPU)."),
                          o.INTS] = None

    def lists(self) -> dict[str, list]:
        """The values of each setting given, parsed like the engine's (and --block-size)."""
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        lists = {k: sweep_mod.parse_list(k, v) for k, v in given.items() if k != "block_size"}
        if self.block_size is not None:
            lists["block_size"] = parse_int_list(self.block_size, "--block-size")
        return lists


@command()
def plan(
    *, model: o.Model = "preset:tiny-llama",
    gpu: Annotated[Optional[str], Opt("--gpu", help="GPU from the built-in table (default: this machine's device; "
                                                   "on a CPU machine the CPU build)."), o.PLAN_GPU] = None,
    gpu_memory_gib: Annotated[Optional[float], Opt(help="Device memory as torch reports it (overrides --gpu)."),
                              o.MEMORY_GIB] = None,
    grid: PlanGrid,
    calibrate: Annotated[o.File, Opt("--calibrate", help="A `run` / sweep-point JSON or a raw vLLM start-up "
                                                         "log: its measured terms replace the model's.")] = None,
    fmt: Fmt("plan") = "table",
    wide: Annotated[bool, Opt("--wide", help="Console table: also the memory budget (weights, activation, ...) and "
                                             "every setting (csv and json always have them).")] = False,
) -> None:
    """KV cache and max concurrency per setting, without an engine.

    One row for every point of the grid of settings given.

    Example: offline-bench plan --model preset:llama-3.1-8b --gpu h100-sxm --gpu-memory-utilization 0.5,0.8,0.9
    --max-model-len 4096,16384 --kv-cache-dtype auto,fp8
    """
    check_format("plan", fmt)
    lists = grid.lists()
    info, config = check_model(model, **{k: lists.get(k) for k in ("max_model_len", "tensor_parallel_size")})
    if info is None:
        raise BenchError(f"no config.json readable for '{model}' without network: pass a local path or a preset")
    kvplan.check_supported(info, config)
    if "gpu_memory_utilization" in lists and "kv_cache_memory_bytes" in lists:
        raise BenchError("give --gpu-memory-utilization or --kv-cache-memory-bytes, not both")
    lists.setdefault("max_model_len", [info.max_position_embeddings or 4096])
    for p in kvplan.grid(lists):  # the checks a run would make, on every point
        EngineConfig(model=model, **{k: v for k, v in p.items() if k != "block_size"}).validate_values()
    device, total, _source = kvplan.target_device(gpu, gpu_memory_gib, probes.visible_gpu_memory)
    calib = kvplan.load_calibration(calibrate, info) if calibrate else None
    if calib is not None and calib.model not in (None, model):
        raise BenchError(f"--calibrate {calibrate} is a run of {calib.model}: pass --model {calib.model}, or a "
                         "calibration run of this model")
    if calib is not None and gpu is None and gpu_memory_gib is None:
        device, total = calib.device, calib.total_gib  # the calibration run's device, unless another is named
    rows = kvplan.plan_rows(info, kvplan.grid(lists), device, total, calib)
    typer.echo(render("plan", fmt, rows, wide))


@command("predict")
def predict_cmd(
    *, from_: Annotated[str, Opt("--from", help="A `run` result (it records every engine step) to calibrate on."),
                        o.PATH],
    gpu_memory_utilization: o.Gmu = None, kv_cache_memory_bytes: o.KvBytes = None, max_model_len: o.Mml = None,
    max_num_seqs: o.MaxNumSeqs = None, max_num_batched_tokens: o.Mnbt = None,
    kv_cache_dtype: Annotated[Optional[str], Opt(help="KV cache dtype: auto, fp8 (default: the run's)."),
                              o.KV_DTYPE] = None,
    num_prompts: Annotated[o.Count, Opt(help="Requests (default: the run's, cycled).")] = None,
    input_len: Annotated[o.Count, Opt(help="Prompt length of every request (default: the run's).")] = None,
    output_len: Annotated[o.Count, Opt(help="Output length of every request (default: the run's).")] = None,
    concurrency: Annotated[o.Count, Opt("--concurrency", "--max-concurrency",
                                        help="Keep N requests in flight (default: the run's).")] = None,
    gpu: Annotated[Optional[str], Opt("--gpu", help="Predict on this GPU of the built-in table (default: the run's "
                                                   "own); the step cost moves by datasheet ratios."),
                   o.TABLE_GPU] = None,
    request_rate: Annotated[Optional[float], Opt("--request-rate", help="Requests/s arriving, on `run`'s "
                                                                        "seeded schedule (default: the run's)."),
                            o.RATE] = None,
    burstiness: o.Burstiness = 1.0, seed: o.Seed = 0,
    output: o.Output = None, fmt: Fmt("run") = "table",
) -> None:
    """Predict a run at other settings or on another GPU.

    Throughput, latency and preemptions, replayed on a step model fitted to the run's engine steps.

    Example: offline-bench predict --from run.json --gpu-memory-utilization 0.6 --max-num-seqs 128
    """
    check_format("run", fmt)
    check_writable(output, "--output")
    cal = predict_mod.Calibrated(from_)
    check_model(cal.result.model, max_model_len=max_model_len)  # a prediction holds for the calibration's model
    overrides = {"gpu_memory_utilization": gpu_memory_utilization, "max_model_len": max_model_len,
                 "kv_cache_memory_bytes": parse_bytes(kv_cache_memory_bytes) if kv_cache_memory_bytes else None,
                 "max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
                 "kv_cache_dtype": kv_cache_dtype}
    EngineConfig(model=cal.result.model, **{k: v for k, v in overrides.items() if v is not None}).validate_values()
    result = predict_mod.predict(cal, overrides, num_prompts, input_len, output_len, concurrency, gpu, request_rate,
                                 burstiness, seed)
    finish(print_results("run", fmt, [keep_result(result, output)]))
