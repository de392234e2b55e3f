"""Run configuration: engine arguments (vLLM's own names) and the workload, validated before any engine starts."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import BaseModel, Field

from offline_bench.core.errors import BenchError

# Defaults that differ by machine; resolved at run time and recorded as resolved.
# On the CPU build gmu is the share of the NUMA node's RAM (less the worker's own memory) for the KV cache, and
# what a node reports varies from machine to machine and over time; a fixed KV size starts the same everywhere.
CPU_DEFAULT_KV_BYTES = 2**30
GPU_DEFAULT_GMU = 0.9  # vLLM's own default


class EngineConfig(BaseModel):
    """Arguments for `vllm.LLM`. None means "vLLM's default" (or a per-machine default, see resolve)."""

    model: str = "preset:tiny-llama"
    tokenizer: str | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None  # KV pool size in bytes; vLLM then ignores gpu_memory_utilization
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"
    enforce_eager: bool | None = None
    enable_prefix_caching: bool | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1  # offline: this many engine replicas, each on its own GPU group
    distributed_executor_backend: str | None = None  # "mp" or "ray" (vLLM's default: mp on one host)
    ray_address: str | None = None  # an existing Ray cluster (else $RAY_ADDRESS, else a local one)
    compilation_config: dict[str, Any] | None = None
    safe_allreduce: bool = False  # no FlashInfer mnnvl all-reduce (hosts without NVSwitch multicast)
    load_format: str | None = None
    seed: int = 0
    engine_args: dict[str, Any] = Field(default_factory=dict)

    def validate_values(self) -> None:
        self._absorb_engine_args()
        gmu = self.gpu_memory_utilization
        if gmu is not None and (not isinstance(gmu, (int, float)) or isinstance(gmu, bool) or not 0 < gmu <= 1):
            raise BenchError(f"--gpu-memory-utilization {gmu} is outside (0, 1]: pass a fraction such as 0.9")
        if self.distributed_executor_backend not in (None, "mp", "ray"):
            raise BenchError(f"--distributed-executor-backend {self.distributed_executor_backend}: use mp or ray")
        for name in ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "tensor_parallel_size",
                     "pipeline_parallel_size", "data_parallel_size", "kv_cache_memory_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise BenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if gmu is not None and self.kv_cache_memory_bytes is not None:
            raise BenchError("--gpu-memory-utilization and --kv-cache-memory-bytes both size the KV cache: give one "
                             "(vLLM ignores gpu_memory_utilization when kv_cache_memory_bytes is set)")

    def _absorb_engine_args(self) -> None:
        """--engine-arg KEY=VALUE naming one of our own flags: one source of truth, never a silent winner."""
        for key in [k for k in self.engine_args if k in FLAG_FIELDS]:
            value = self.engine_args[key]
            current = getattr(self, key)
            default = type(self).model_fields[key].default
            flag = f"--{key.replace('_', '-')}"
            if current != default and current != value:
                raise BenchError(f"--engine-arg {key}={value} conflicts with {flag} {current}: give it once")
            setattr(self, key, value)
            del self.engine_args[key]


# Fields with a flag of their own (the rest of EngineConfig is this tool's, not vLLM's)
FLAG_FIELDS = ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len", "max_num_seqs",
               "max_num_batched_tokens", "dtype", "kv_cache_dtype", "enforce_eager", "enable_prefix_caching",
               "tensor_parallel_size", "pipeline_parallel_size", "tokenizer", "load_format", "seed",
               "distributed_executor_backend", "compilation_config")

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_bytes(text: str, flag: str = "--kv-cache-memory-bytes") -> int:
    """'67108864', '64MiB', '2GiB', '2G' (= 2 x 10^9), '1.5GiB' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*", str(text), re.IGNORECASE)
    if not m:
        raise BenchError(f"{flag} '{text}' is not a size: give bytes or a size such as 64MiB or 2GiB")
    value = int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])
    if value < 1:
        raise BenchError(f"{flag} '{text}' must be at least one byte: give a size such as 64MiB or 2GiB")
    return value


SAFE_ALLREDUCE_ENV = {"VLLM_FLASHINFER_ALLREDUCE_BACKEND": "trtllm"}
SAFE_ALLREDUCE_PASS = {"fuse_allreduce_rms": False}


class WorkloadConfig(BaseModel):
    prompts_file: str | None = None
    dataset: str | None = None  # the file's format: None (by suffix: .txt / .jsonl), "sharegpt" or "custom"
    num_prompts: int | None = None  # synthetic: required; file: repeat/trim the file to this many
    input_len: int = 128
    output_len: int = 128
    range_ratio: float = 0.0
    seed: int = 0
    ignore_eos: bool | None = None  # None: on for synthetic prompts, off for prompt files
    temperature: float = 1.0
    top_p: float = 1.0
    detokenize: bool = True
    warmup: int = 4  # untimed requests before the timed batch
    repeats: int = 1
    prefix_len: int = 0  # synthetic: every prompt starts with one of num_prefixes shared prefixes of this length
    num_prefixes: int = 1
    request_rate: float | None = None  # requests/s (None or inf: all at once); see offline_bench.workloads.arrivals
    burstiness: float = 1.0  # gamma shape of the gaps: 1 = Poisson

    def validate_values(self) -> None:
        if self.request_rate is not None and not self.request_rate > 0:
            raise BenchError(f"--request-rate {self.request_rate} must be positive (requests/s), or inf")
        if not self.burstiness > 0:
            raise BenchError(f"--burstiness {self.burstiness} must be positive (1 = Poisson)")
        if self.prefix_len < 0 or self.num_prefixes < 1:
            raise BenchError("--prefix-len must be >= 0 and --num-prefixes >= 1")
        if self.prefix_len and self.prompts_file is not None:
            raise BenchError("--prefix-len applies to synthetic prompts: drop it, or drop --prompts/--dataset")
        if self.prompts_file is None and self.num_prompts is None:
            self.num_prompts = 100
        if self.num_prompts is not None and self.num_prompts < 1:
            raise BenchError(f"--num-prompts must be at least 1, got {self.num_prompts}")
        if self.input_len < 1 or self.output_len < 1:
            raise BenchError("--input-len and --output-len must be at least 1")
        if not 0 <= self.range_ratio < 1:
            raise BenchError(f"--range-ratio {self.range_ratio} must be in [0, 1)")
        if self.repeats < 1 or self.warmup < 0:
            raise BenchError("--repeats must be >= 1 and --warmup >= 0")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise BenchError("--temperature must be >= 0 and --top-p in (0, 1]")
        # the prompt file itself is read by workloads.check_workload: this module does no file I/O

    @property
    def synthetic(self) -> bool:
        return self.prompts_file is None

    @property
    def effective_ignore_eos(self) -> bool:
        return self.synthetic if self.ignore_eos is None else self.ignore_eos


class Prices(BaseModel):
    """--gpu-hour-cost and --kwh-cost: one price per GPU-hour, or one per GPU (the built-in table's names)."""

    gpu_hour_usd: float | dict[str, float] | None = None
    kwh_usd: float | None = None

    @classmethod
    def given(cls, gpu_hour_cost: str | None, kwh_cost: float | None) -> Prices | None:
        """The flags' prices (None: neither given)."""
        if gpu_hour_cost is None and kwh_cost is None:
            return None
        return cls(gpu_hour_usd=parse_gpu_hour_cost(gpu_hour_cost) if gpu_hour_cost is not None else None,
                   kwh_usd=kwh_cost)

    def gpu_hour(self, gpu_name: str | None) -> tuple[float | None, str | None]:
        """(USD per GPU-hour for this GPU, None), or (None, why not)."""
        price = self.gpu_hour_usd
        if price is None or isinstance(price, (int, float)):
            return price, None
        key = (gpu_name or "").lower()
        for name, usd in price.items():
            if name.lower() == key:
                return usd, None
        return None, (f"--gpu-hour-cost has no price for {gpu_name or 'this machine (no GPU)'}: add "
                      f"{gpu_name or 'NAME'}=USD")


def parse_gpu_hour_cost(text: str, flag: str = "--gpu-hour-cost") -> float | dict[str, float]:
    """'2.49' -> 2.49 (USD per GPU-hour, any GPU); 'h100-sxm=2.49,h200=3.50' -> a price per GPU (the built-in
    table's names, or a device's own name)."""
    def price(value: str) -> float:
        try:
            usd = float(value)
        except ValueError:
            usd = -1.0
        if not 0 < usd < math.inf:
            raise BenchError(f"{flag} '{text}' must be USD per GPU-hour > 0, or NAME=USD items such as "
                             "h100-sxm=2.49,h200=3.50")
        return usd

    items = [t.strip() for t in str(text).split(",")]
    if len(items) == 1 and "=" not in items[0]:
        return price(items[0])
    table = {}
    for item in items:
        name, _, usd = item.partition("=")
        if not name.strip():
            price("")  # one line naming the form
        table[name.strip().lower()] = price(usd)
    return table


class RunConfig(BaseModel):
    engine: EngineConfig = Field(default_factory=EngineConfig)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    timeline_interval_ms: float = 50.0
    step_timeline: bool = True  # read the engine's gauges after every step (timeline, peak KV, step records)
    concurrency: int | None = None  # reserved for in-process concurrency (serving comparison)
    verbose: bool = False  # echo the engine's log
    goodput_slo_ms: dict[str, float] | None = None  # {"ttft": 500, "tpot": 50, "e2e": 20000}: see parse_goodput
    prices: Prices | None = None  # --gpu-hour-cost / --kwh-cost: the result's cost per million tokens

    def validate_values(self) -> None:
        self.engine.validate_values()
        self.workload.validate_values()


def parse_engine_arg(item: str) -> tuple[str, Any]:
    """KEY=VALUE -> (key, value); the value is JSON when it parses (numbers, true/false, objects), else text."""
    if "=" not in item:
        raise BenchError(f"--engine-arg '{item}' must look like KEY=VALUE, e.g. --engine-arg max_num_seqs=128")
    key, raw = item.split("=", 1)
    key = key.strip().lstrip("-").replace("-", "_")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


GOODPUT_KEYS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "e2e": "e2e_ms", "e2el": "e2e_ms"}


def parse_goodput(items: list[str] | None) -> dict[str, float] | None:
    """['ttft:500 tpot:50', 'e2e:20000'] -> {"ttft_ms": 500.0, "tpot_ms": 50.0, "e2e_ms": 20000.0} (ms, as
    `vllm bench serve --goodput`; e2el is accepted for e2e)."""
    if not items:
        return None
    out: dict[str, float] = {}
    for item in (t for raw in items for t in raw.replace(",", " ").split() or [raw]):  # an empty one: refused
        key, _, value = item.partition(":")
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if key.lower() not in GOODPUT_KEYS or not 0 < ms < math.inf:
            raise BenchError(f"--goodput '{item}' must be NAME:MS with NAME one of ttft, tpot, e2e and MS > 0, "
                             "e.g. --goodput ttft:500 --goodput tpot:50")
        out[GOODPUT_KEYS[key.lower()]] = ms
    return out


def parse_int_list(text: str, flag: str, minimum: int = 1) -> list[int]:
    """'1,8,32' -> [1, 8, 32]; one line naming the flag otherwise."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < minimum:
        raise BenchError(f"{flag} takes a comma list of integers >= {minimum}, e.g. 1,8,32 (got '{text}')")
    return values
