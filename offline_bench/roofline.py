"""The hardware's ceiling for a model: weight bytes, KV bytes and FLOPs per token against a GPU's memory
bandwidth and dense bf16 rate. Decode is bound by bytes moved, prefill by FLOPs.

decode step  >= (weight bytes read + batch x context x KV bytes per token) / memory bandwidth
                (weights read = all but the input embedding table, whose lookup reads one row a token)
prefill      >= FLOPs / peak dense bf16 FLOP/s,  FLOPs per token = 2 x matmul params + attention term
"""

from __future__ import annotations

from pydantic import BaseModel
from tabulate import tabulate

from offline_bench.environment import capture_environment
from offline_bench.errors import BenchError
from offline_bench.formats import renders
from offline_bench.modelinfo import DTYPE_BYTES, ModelInfo


class GPUSpec(BaseModel):
    name: str
    memory_bandwidth_gbps: float  # GB/s (10^9 bytes)
    bf16_dense_tflops: float  # dense (no sparsity) bf16 tensor-core TFLOP/s
    memory_gib: float  # usable: what torch reports as the device's total (vLLM's gpu_memory_utilization base)
    source: str
    memory_source: str = "estimated: nominal GiB less 0.82 GiB, as the H100 80GB keeps back; pass --gpu-memory-gib"


# Vendor datasheet figures (dense bf16, i.e. half the "with sparsity" number NVIDIA prints).
GPUS: dict[str, GPUSpec] = {g.name: g for g in [
    GPUSpec(name="h100-sxm", memory_bandwidth_gbps=3350, bf16_dense_tflops=989, memory_gib=79.18,
            source="NVIDIA H100 datasheet (SXM5 80GB): 3.35 TB/s HBM3, 1,979 TFLOPS bf16 with sparsity",
            memory_source="measured: vLLM 0.26's start-up log on this project's H100 80GB HBM3 (docs/results)"),
    GPUSpec(name="h100-pcie", memory_bandwidth_gbps=2000, bf16_dense_tflops=756, memory_gib=79.18,
            source="NVIDIA H100 datasheet (PCIe 80GB): 2 TB/s HBM2e, 1,513 TFLOPS bf16 with sparsity"),
    GPUSpec(name="h200", memory_bandwidth_gbps=4800, bf16_dense_tflops=989, memory_gib=139.8,
            source="NVIDIA H200 datasheet (SXM 141GB): 4.8 TB/s HBM3e, 1,979 TFLOPS bf16 with sparsity",
            memory_source="measured: vLLM 0.26's start-up log on this project's H200 (docs/results)"),
    GPUSpec(name="a100-40gb", memory_bandwidth_gbps=1555, bf16_dense_tflops=312, memory_gib=39.18,
            source="NVIDIA A100 datasheet (40GB SXM): 1,555 GB/s HBM2, 312 TFLOPS bf16 dense"),
    GPUSpec(name="a100-80gb", memory_bandwidth_gbps=2039, bf16_dense_tflops=312, memory_gib=79.18,
            source="NVIDIA A100 datasheet (80GB SXM): 2,039 GB/s HBM2e, 312 TFLOPS bf16 dense"),
    GPUSpec(name="l40s", memory_bandwidth_gbps=864, bf16_dense_tflops=362, memory_gib=47.18,
            source="NVIDIA L40S datasheet: 864 GB/s GDDR6, 362 TFLOPS bf16 dense (733 with sparsity)"),
    GPUSpec(name="a10", memory_bandwidth_gbps=600, bf16_dense_tflops=125, memory_gib=23.18,
            source="NVIDIA A10 datasheet: 600 GB/s GDDR6, 125 TFLOPS bf16 dense (250 with sparsity)"),
    GPUSpec(name="rtx-4090", memory_bandwidth_gbps=1008, bf16_dense_tflops=165.2, memory_gib=23.18,
            source="NVIDIA Ada whitepaper (RTX 4090): 1,008 GB/s GDDR6X, 165.2 TFLOPS bf16 (FP32 accumulate)"),
    GPUSpec(name="b200", memory_bandwidth_gbps=8000, bf16_dense_tflops=2250, memory_gib=179.18,
            source="NVIDIA HGX B200 datasheet (per GPU): 8 TB/s HBM3e, 4.5 PFLOPS bf16 with sparsity"),
]}
# device-name fragments (lower case) -> table entry; order matters (more specific first)
_DETECT = [("h200", "h200"), ("h100 pcie", "h100-pcie"), ("h100", "h100-sxm"), ("a100-sxm4-40gb", "a100-40gb"),
           ("a100-pcie-40gb", "a100-40gb"), ("a100", "a100-80gb"), ("l40s", "l40s"), ("a10", "a10"),
           ("4090", "rtx-4090"), ("b200", "b200")]


def gpu_spec(name: str) -> GPUSpec:
    key = name.lower()
    if key not in GPUS:
        raise BenchError(f"unknown GPU '{name}': choose one of {', '.join(GPUS)} (or --measure-gpu on the GPU)")
    return GPUS[key]


def detect_gpu(device_name: str | None) -> GPUSpec | None:
    if not device_name:
        return None
    low = device_name.lower()
    return next((GPUS[k] for frag, k in _DETECT if frag in low), None)


def measure_gpu(name: str = "measured") -> GPUSpec:
    """Measured device-to-device copy bandwidth and bf16 matmul rate on GPU 0 (replaces the datasheet)."""
    import torch  # torch is heavy to import: only on the GPU paths that need it

    if not torch.cuda.is_available():
        raise BenchError("--measure-gpu needs a CUDA GPU visible to this process")
    dev = torch.device("cuda:0")
    n = 1 << 30  # 1 GiB each way
    a = torch.empty(n, dtype=torch.uint8, device=dev)
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        b.copy_(a)
    end.record()
    torch.cuda.synchronize()
    bw = 2 * n * 20 / (start.elapsed_time(end) / 1000) / 1e9  # read + write
    m = torch.randn(8192, 8192, dtype=torch.bfloat16, device=dev)
    for _ in range(3):
        m @ m
    torch.cuda.synchronize()
    start.record()
    for _ in range(20):
        m @ m
    end.record()
    torch.cuda.synchronize()
    tflops = 2 * 8192**3 * 20 / (start.elapsed_time(end) / 1000) / 1e12
    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    del a, b, m
    torch.cuda.empty_cache()
    return GPUSpec(name=name, memory_bandwidth_gbps=round(bw, 1), bf16_dense_tflops=round(tflops, 1),
                   memory_gib=round(total, 2), source=f"measured on {torch.cuda.get_device_name(0)}: 1 GiB "
                   "device copy (read+write) and 8192^3 bf16 matmul, 20 runs each after 3 warm-ups")


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


@renders("roofline", ("table", "md", "json"))
def render(r: Roofline, fmt: str = "table") -> str:
    if fmt == "json":
        return r.model_dump_json(indent=2)

    head = [["model", r.model], ["GPU", f"{r.gpu.name} x{r.num_gpus} ({r.gpu.source})"],
            ["weight_bytes", f"{r.weight_bytes:,} ({r.weight_bytes / 2**30:.2f} GiB)"],
            ["kv_bytes_per_token", f"{r.kv_bytes_per_token:,}"],
            ["flops_per_token", f"{r.flops_per_token:,.0f} (context {r.context_tokens:,})"],
            ["prefill_tokens_per_s_ceiling", f"{r.prefill_tokens_per_s_ceiling:,.0f}"]]
    rows = [[b, f"{r.decode_step_ms_floor[b]:.3f}", f"{r.decode_tokens_per_s_ceiling[b]:,.1f}",
             r.decode_bound.get(b, "")] for b in r.decode_tokens_per_s_ceiling]
    tf = "github" if fmt == "md" else "simple"
    return (tabulate(head, tablefmt=tf, disable_numparse=True) + "\n\n"
            + tabulate(rows, headers=["batch", "decode step floor (ms)", "decode tokens/s ceiling", "bound by"],
                       tablefmt=tf, disable_numparse=True) + "\n")


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


def resolve_gpu(name: str | None, measure: bool, required: bool = True) -> GPUSpec | None:
    """The GPU whose ceilings apply: measured here, named from the table, or detected (None on a CPU unless
    `required`, which asks for --gpu in one line)."""
    if measure:
        return measure_gpu()
    if name:
        return gpu_spec(name)
    spec = detect_gpu(capture_environment().gpu_name)
    if spec is None and required:
        raise BenchError(f"no GPU detected: pass --gpu NAME ({', '.join(GPUS)})")
    return spec
