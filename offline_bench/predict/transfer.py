"""The fitted step cost split by what limits each part, so a prediction can move to another GPU or KV dtype.

    fixed_ms            = host (scheduling, output handling) + one read of the weights        (bandwidth)
    per_kv_token_ms     = reading the token's KV bytes (bandwidth) + attention math on them  (compute)
    per_decode_token_ms = a decoded token's matmuls                                          (compute)
    per_prefill_token   = prompt matmuls and attention                                       (compute)

The bandwidth parts are the roofline's floors at the calibration GPU's datasheet bandwidth (capped at the fitted
term); what the fit measured beyond them is host time (fixed) or math (per KV token). On another GPU the
bandwidth parts scale by the ratio of datasheet bandwidths, the compute parts by the ratio of dense bf16 rates,
host time not at all. A smaller KV dtype scales only the KV read. Same-efficiency assumption: the target GPU
reaches the same share of its datasheet figures as the calibration GPU did.
"""

from __future__ import annotations

from pydantic import BaseModel

from offline_bench.core.gpus import GPUSpec
from offline_bench.predict.stepmodel import StepModel


class StepSplit(BaseModel):
    gpu: str
    host_ms: float
    weights_read_ms: float
    per_kv_read_ms: float
    per_kv_math_ms: float
    per_prefill_token_ms: float
    per_decode_token_ms: float = 0.0


def split(model: StepModel, gpu: GPUSpec, weights_read_ms: float, kv_bytes_per_token_gpu: float) -> StepSplit:
    """`weights_read_ms`: one read of the weights on this GPU at its datasheet bandwidth; `kv_bytes_per_token_gpu`:
    the KV bytes one token keeps on one GPU (its TP share)."""
    read = min(model.fixed_ms, weights_read_ms)
    kv_read = min(model.per_kv_token_ms, kv_bytes_per_token_gpu / (gpu.memory_bandwidth_gbps * 1e9) * 1000.0)
    return StepSplit(gpu=gpu.name, host_ms=model.fixed_ms - read, weights_read_ms=read, per_kv_read_ms=kv_read,
                     per_kv_math_ms=model.per_kv_token_ms - kv_read, per_prefill_token_ms=model.per_prefill_token_ms,
                     per_decode_token_ms=model.per_decode_token_ms)


def read_share(s: StepSplit) -> float:
    total = s.per_kv_read_ms + s.per_kv_math_ms
    return s.per_kv_read_ms / total if total > 0 else 1.0


def move(s: StepSplit, src: GPUSpec, dst: GPUSpec) -> StepSplit:
    bw = src.memory_bandwidth_gbps / dst.memory_bandwidth_gbps
    flops = src.bf16_dense_tflops / dst.bf16_dense_tflops
    return StepSplit(gpu=dst.name, host_ms=s.host_ms, weights_read_ms=s.weights_read_ms * bw,
                     per_kv_read_ms=s.per_kv_read_ms * bw, per_kv_math_ms=s.per_kv_math_ms * flops,
                     per_prefill_token_ms=s.per_prefill_token_ms * flops,
                     per_decode_token_ms=s.per_decode_token_ms * flops)


def as_model(s: StepSplit, base: StepModel) -> StepModel:
    """`base` with the split's terms (its fit statistics kept: they describe the calibration)."""
    return base.model_copy(update={
        "fixed_ms": round(s.host_ms + s.weights_read_ms, 6), "per_prefill_token_ms": s.per_prefill_token_ms,
        "per_kv_token_ms": s.per_kv_read_ms + s.per_kv_math_ms, "per_decode_token_ms": s.per_decode_token_ms,
        "kv_read_share": round(read_share(s), 6)})


def describe(src: StepSplit, dst: StepSplit) -> list[str]:
    """What moved, in words (for the prediction's notes)."""
    return [f"Step cost moved from {src.gpu} to {dst.gpu} by datasheet ratios: weights read "
            f"{src.weights_read_ms:.2f} -> {dst.weights_read_ms:.2f} ms and KV read {src.per_kv_read_ms * 1e6:.1f} "
            f"-> {dst.per_kv_read_ms * 1e6:.1f} ns/token (bandwidth); decode math {src.per_kv_math_ms * 1e6:.1f} -> "
            f"{dst.per_kv_math_ms * 1e6:.1f} ns/KV token and prefill {src.per_prefill_token_ms * 1e3:.2f} -> "
            f"{dst.per_prefill_token_ms * 1e3:.2f} us/token (compute); host {src.host_ms:.2f} ms kept."]
