"""GPU datasheets: memory, bandwidth and dense bf16 rate of the cards the tool knows, by name or as detected."""

from __future__ import annotations

from pydantic import BaseModel

from offline_bench.core.errors import BenchError


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


def table_name(device_name: str | None) -> str | None:
    """The built-in table's name of a device (what --gpu-hour-cost NAME=USD names), else the device's own name."""
    spec = detect_gpu(device_name)
    return spec.name if spec else device_name
