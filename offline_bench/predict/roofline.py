"""The hardware's ceiling for a model: weight bytes, KV bytes and FLOPs per token against a GPU's memory
bandwidth and dense bf16 rate. Decode is bound by bytes moved, prefill by FLOPs.

decode step  >= (weight bytes read + batch x context x KV bytes per token) / memory bandwidth
                (weights read = all but the input embedding table, whose lookup reads one row a token)
prefill      >= FLOPs / peak dense bf16 FLOP/s,  FLOPs per token = 2 x matmul params + attention term
"""

from __future__ import annotations

from pydantic import BaseModel

from offline_bench.core.environment import capture_environment
from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import GPUS, GPUSpec, detect_gpu, gpu_spec
from offline_bench.model.info import DTYPE_BYTES, ModelInfo


class Roofline(BaseModel):
    model: str
    gpu: GPUSpec
    num_gpus: int
    dtype_bytes: int
    weight_bytes: int
    kv_bytes_per_token: int
    flops_per_token: float  # at the given context: 2 x matmul params + 4 x layers x context x heads x head_dim
    context_tokens: int
    prefill_tokens_per_s_ceiling: float
    decode_tokens_per_s_ceiling: dict[int, float]  # batch size -> tokens/s
    decode_step_ms_floor: dict[int, float]
    decode_bound: dict[int, str] = {}  # batch size -> "memory" or "compute": which floor is higher


def matmul_params(info: ModelInfo, active: bool = True) -> int:
    """Parameters that take part in matmuls per token (the input embedding is a lookup, not a matmul)."""
    return (info.active_params if active else info.params) - info.vocab_size * info.hidden_size


def weight_bytes_read(info: ModelInfo, batch: int, nbytes: int) -> float:
    """Bytes of weights one decode step reads: every weight except the input embedding table (a lookup reads only
    `batch` rows; a tied table is read whole by the LM head). MoE: only the experts the batch routes to, in
    expectation E x (1 - (1 - k/E)^batch) per layer."""
    params = float(info.params)
    if not info.tie_word_embeddings:
        params -= info.vocab_size * info.hidden_size - batch * info.hidden_size
    if info.num_experts:
        e, k = info.num_experts, info.num_experts_per_tok
        per_expert = 3 * info.hidden_size * info.moe_intermediate_size
        touched = e * (1 - (1 - k / e) ** batch)
        params -= info.num_layers * (e - touched) * per_expert
    return params * nbytes


def roofline(model: str, info: ModelInfo, gpu: GPUSpec, batch_sizes: list[int], context: int,
             num_gpus: int = 1, dtype: str | None = None, kv_dtype: str | None = None) -> Roofline:
    nbytes = DTYPE_BYTES.get((dtype or info.torch_dtype or "bfloat16").replace("torch.", ""), 2)
    kv = info.kv_bytes_per_token(kv_dtype)
    attn = 4 * info.num_layers * context * info.num_heads * info.head_dim  # QK^T and AV, 2 FLOPs per MAC
    flops = 2 * matmul_params(info) + attn
    bw = gpu.memory_bandwidth_gbps * 1e9 * num_gpus
    peak = gpu.bf16_dense_tflops * 1e12 * num_gpus
    decode, step, bound = {}, {}, {}
    for b in batch_sizes:
        # a step reads the weights and the batch's KV once, and does b tokens' FLOPs: the slower of the two is the
        # floor (memory at small batches; compute once b x FLOPs/token outweighs the bytes)
        t_mem = (weight_bytes_read(info, b, nbytes) + b * context * kv) / bw
        t_flop = b * flops / peak
        t = max(t_mem, t_flop)
        step[b] = t * 1000
        decode[b] = b / t
        bound[b] = "memory" if t_mem >= t_flop else "compute"
    return Roofline(model=model, gpu=gpu, num_gpus=num_gpus, dtype_bytes=nbytes, weight_bytes=info.params * nbytes,
                    kv_bytes_per_token=kv, flops_per_token=flops, context_tokens=context,
                    prefill_tokens_per_s_ceiling=peak / flops, decode_tokens_per_s_ceiling=decode,
                    decode_step_ms_floor=step, decode_bound=bound)


def achieved(info: ModelInfo, gpu: GPUSpec, mean_batch: float, mean_input: float, mean_output: float,
             prefill_tps: float | None, decode_tps: float | None, num_gpus: int = 1) -> dict:
    """% of the ceilings for a `run`: decode at the run's mean running batch and mean context, prefill at half
    the mean prompt (causal attention)."""
    batch = max(1, round(mean_batch))
    ctx = int(mean_input + mean_output / 2)
    dec = roofline("", info, gpu, [batch], ctx, num_gpus)
    pre = roofline("", info, gpu, [1], int(mean_input / 2), num_gpus)
    dec_ceiling = dec.decode_tokens_per_s_ceiling[batch]
    return {"gpu": gpu.name, "gpu_source": gpu.source, "num_gpus": num_gpus, "batch_assumed": batch,
            "context_assumed": ctx, "decode_tokens_per_s_ceiling": dec_ceiling,
            "decode_pct_of_ceiling": 100 * decode_tps / dec_ceiling if decode_tps else None,
            "prefill_tokens_per_s_ceiling": pre.prefill_tokens_per_s_ceiling,
            "prefill_pct_of_ceiling": 100 * prefill_tps / pre.prefill_tokens_per_s_ceiling if prefill_tps else None}


def resolve_gpu(name: str | None, required: bool = True) -> GPUSpec | None:
    """The GPU whose ceilings apply: named from the table, or detected (None on a CPU unless `required`, which
    asks for --gpu in one line). A measured one comes from engine.probes.measure_gpu."""
    if name:
        return gpu_spec(name)
    spec = detect_gpu(capture_environment().gpu_name)
    if spec is None and required:
        raise BenchError(f"no GPU detected: pass --gpu NAME ({', '.join(GPUS)})")
    return spec
