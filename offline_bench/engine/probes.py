"""engine.probes"""

from __future__ import annotations

from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import GPUSpec


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


def visible_gpu_memory() -> tuple[float | None, str]:
    """(total GiB, where from) of the visible GPU as torch reports it (vLLM's gpu_memory_utilization base)."""
    try:
        import torch  # only on a GPU machine, to read the visible device's total

        return torch.cuda.mem_get_info()[1] / 2**30, f"visible device {torch.cuda.get_device_name(0)}"
    except Exception:  # noqa: BLE001 - no usable torch: ask for the figure
        return None, "unknown"
