"""Flag groups -> typed configs: each group's fields are its flags (see `flags`), `to_config` builds and validates
the library's config from them."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from offline_bench.cli import options as o
from offline_bench.core.config import EngineConfig, Prices, WorkloadConfig, parse_bytes, parse_engine_arg, parse_goodput
from offline_bench.core.errors import BenchError
from offline_bench.model.limits import check_model
from offline_bench.workloads.requests import check_workload, prompt_source


def _known(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """`values`, every one a field of `model` (pydantic would drop a stray one silently: a renamed flag)."""
    stray = sorted(set(values) - set(model.model_fields))
    if stray:
        raise TypeError(f"{model.__name__} has no field {', '.join(stray)}")
    return values


@dataclass
class ParallelFlags:
    """How the engine spreads over GPUs and hosts, and its all-reduce."""
    data_parallel_size: o.Dp = 1
    distributed_executor_backend: o.Backend = None
    ray_address: o.RayAddress = None
    compilation_config: o.CompilationConfig = None
    safe_allreduce: o.SafeAllreduce = False


@dataclass
class EngineFlags:
    """vLLM's engine arguments under vLLM's own names; None means vLLM's (or the machine's) default."""
    model: o.Model = "preset:tiny-llama"
    tokenizer: o.Tokenizer = None
    gpu_memory_utilization: o.Gmu = None
    kv_cache_memory_bytes: o.KvBytes = None
    max_model_len: o.Mml = None
    max_num_seqs: o.MaxNumSeqs = None
    max_num_batched_tokens: o.Mnbt = None
    dtype: o.Dtype = "auto"
    kv_cache_dtype: o.KvDtype = "auto"
    enforce_eager: o.Eager = None
    enable_prefix_caching: o.Prefix = None
    tensor_parallel_size: o.Tp = 1
    pipeline_parallel_size: o.Pp = 1
    load_format: o.LoadFormat = None
    seed: o.Seed = 0
    engine_arg: o.EngineArg = None

    def to_config(self, parallel: ParallelFlags | None = None, axes: dict[str, str] | None = None) -> EngineConfig:
        """EngineConfig (sizes and JSON parsed here, every value validated, within the model's limits: with a
        sweep's `axes`, each of their values too)."""
        flags = {**dataclasses.asdict(self), **dataclasses.asdict(parallel or ParallelFlags())}
        comp, kvb = _json_flag(flags.pop("compilation_config")), flags.pop("kv_cache_memory_bytes")
        flags["kv_cache_memory_bytes"] = parse_bytes(kvb) if kvb is not None else None
        extra = dict(parse_engine_arg(a) for a in flags.pop("engine_arg") or [])
        cfg = EngineConfig(**_known(EngineConfig, flags), compilation_config=comp, engine_args=extra)
        cfg.validate_values()
        check_model(cfg.model, **{k: [getattr(cfg, k), *int_items(axes or {}, k)] for k in LIMITED})
        return cfg


LIMITED = ("max_model_len", "tensor_parallel_size", "pipeline_parallel_size")  # the model limits (model.limits)


def int_items(lists: dict[str, str], key: str) -> list[int]:
    """The integers of a comma list already checked by its option's validator ([] when not given)."""
    return [int(x) for x in o.INTS.items(lists[key], key)] if lists.get(key) is not None else []


def _json_flag(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BenchError(f"--compilation-config is not valid JSON ({e.msg}): e.g. "
                         '\'{"pass_config": {"fuse_allreduce_rms": false}}\'') from None


@dataclass
class CostFlags:
    """What a GPU-hour and a kWh cost: the result's USD per million output tokens (results.energy)."""
    gpu_hour_cost: o.GpuHourCost = None
    kwh_cost: o.KwhCost = None

    def to_prices(self) -> Prices | None:
        return Prices.given(self.gpu_hour_cost, self.kwh_cost)


@dataclass
class WorkloadFlags:
    """The requests: synthetic (lengths) or from a file, sampling, passes; `--num-prompts` and `--request-rate`
    may be comma lists (one level each), which the command turns into levels."""
    prompts: o.Prompts = None
    dataset: o.Dataset = None
    dataset_name: o.DatasetName = None
    dataset_path: o.DatasetPath = None
    num_prompts: o.NumPromptsList = None
    input_len: o.InputLen = 128
    output_len: o.OutputLen = 128
    range_ratio: o.RangeRatio = 0.0
    ignore_eos: o.IgnoreEos = None
    temperature: o.Temperature = 1.0
    top_p: o.TopP = 1.0
    detokenize: o.Detokenize = True
    warmup: o.Warmup = 4
    repeats: o.Repeats = 1
    prefix_len: o.PrefixLen = 0
    num_prefixes: o.NumPrefixes = 1
    request_rate: o.RequestRate = None
    burstiness: o.Burstiness = 1.0
    goodput: o.Goodput = None

    def to_config(self, *, seed: int, num_prompts: int | None, request_rate: float | None = None) -> WorkloadConfig:
        """WorkloadConfig of one level (its request count and rate), checked (prompt file read) before any engine
        starts."""
        flags = dataclasses.asdict(self)
        # the prompt file: ours (--prompts, --dataset) or vllm bench's (--dataset-name, --dataset-path)
        prompts_file, dataset = prompt_source(*(flags.pop(k) for k in ("prompts", "dataset", "dataset_name",
                                                                       "dataset_path")))
        for level_flag in ("num_prompts", "request_rate", "goodput"):  # levels and SLOs: the command's
            flags.pop(level_flag)
        wl = WorkloadConfig(**_known(WorkloadConfig, flags), prompts_file=prompts_file, dataset=dataset,
                            num_prompts=num_prompts, seed=seed,
                            request_rate=None if request_rate == float("inf") else request_rate)
        check_workload(wl)
        return wl

    def slo(self) -> dict[str, float] | None:
        """--goodput NAME:MS -> {name: ms}."""
        return parse_goodput(self.goodput)

