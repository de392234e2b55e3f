"""Facts from vLLM's start-up log (memory budget, KV size, start-up time). Unknown facts stay None."""

from __future__ import annotations

import re
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NUM = r"([\d,]+(?:\.\d+)?)"

FACT_KEYS = ["vllm_version", "model", "dtype", "max_model_len", "tensor_parallel_size", "weights_gib",
             "weights_load_s", "torch_compile_s", "kv_cache_gib", "kv_cache_tokens", "max_concurrency",
             "max_concurrency_at_tokens", "cuda_graph_s", "cuda_graph_gib", "peak_activation_gib",
             "non_torch_gib", "gpu_total_gib", "gpu_memory_utilization", "init_engine_s", "compilation_s"]

# (pattern, keys of its groups); the first match of each pattern wins (one engine's line set)
_PATTERNS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"Initializing a V1 LLM engine \(v([^)\s]+)\) with config: model='([^']*)'"),
     ("vllm_version", "model")),
    (re.compile(r"with config: .*?\bdtype=(?:torch\.)?(\w+)"), ("dtype",)),
    (re.compile(r"with config: .*?\bmax_seq_len=(\d+)"), ("max_model_len",)),
    (re.compile(r"with config: .*?\btensor_parallel_size=(\d+)"), ("tensor_parallel_size",)),
    (re.compile(rf"Model loading took {NUM} GiB(?: memory)? and {NUM} s"), ("weights_gib", "weights_load_s")),
    (re.compile(rf"torch\.compile (?:took|takes) {NUM} s in total"), ("torch_compile_s",)),
    (re.compile(rf"Available KV cache memory: {NUM} GiB"), ("kv_cache_gib",)),
    (re.compile(rf"\b\w+(?: \+ host)? KV cache size: {NUM} tokens"), ("kv_cache_tokens",)),
    (re.compile(rf"Maximum concurrency for {NUM} tokens per request: {NUM}x"),
     ("max_concurrency_at_tokens", "max_concurrency")),
    (re.compile(rf"Graph capturing finished in {NUM} secs?, took {NUM} GiB"), ("cuda_graph_s", "cuda_graph_gib")),
    (re.compile(rf"init engine \(profile, create kv cache, warmup model\) took {NUM} s(?:econds)?"
                rf"(?: \(compilation: {NUM} s)?"), ("init_engine_s", "compilation_s")),
    (re.compile(rf"Free memory on device \({NUM}/{NUM} GiB\) on startup\. Desired GPU memory utilization is "
                rf"\({NUM}, {NUM} GiB\)\. Actual usage is {NUM} GiB for weight, {NUM} GiB for peak activation, "
                rf"{NUM} GiB for non-torch memory, and {NUM} GiB for CUDAGraph memory"),
     ("_free_gib", "gpu_total_gib", "gpu_memory_utilization", "_requested_gib", "weights_gib",
      "peak_activation_gib", "non_torch_gib", "cuda_graph_gib")),
    # CPU build: "Auto set (1.99/8.71) GiB for KV cache on node 0, with 2.61 GiB requested memory ..."
    (re.compile(rf"Auto set \({NUM}/{NUM}\) GiB for KV cache on node \d+, with {NUM} GiB requested memory for "
                rf"the worker\. {NUM} GiB memory was consumed by non-kv usages"),
     ("kv_cache_gib", "cpu_memory_gib", "_requested_gib", "non_kv_gib")),
]
_INT_KEYS = {"max_model_len", "tensor_parallel_size", "kv_cache_tokens", "max_concurrency_at_tokens"}
_STR_KEYS = {"vllm_version", "model", "dtype"}


def _convert(key: str, raw: str | None) -> Any:
    if raw is None:
        return None
    if key in _STR_KEYS:
        return raw
    raw = raw.replace(",", "")
    return int(float(raw)) if key in _INT_KEYS else float(raw)


def parse_startup(text: str) -> dict[str, Any]:
    """Every key of FACT_KEYS (None when the log does not say), plus CPU-build extras when present."""
    facts: dict[str, Any] = dict.fromkeys(FACT_KEYS)
    lines = [ANSI.sub("", line) for line in text.splitlines()]
    for pattern, keys in _PATTERNS:
        for line in lines:
            m = pattern.search(line)
            if m:
                for key, raw in zip(keys, m.groups()):
                    if facts.get(key) is None and not key.startswith("_"):
                        facts[key] = _convert(key, raw)
                break
    return facts


# Root causes of a failed engine start, mapped to one line naming the fix.
_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"No available memory for the cache blocks|insufficient.*KV cache|KV cache is needed, which is "
                r"larger than the available KV cache memory|larger than the available KV cache|"
                r"Not enough memory for KV cache|requested memory for kv|cannot allocate KV", re.I),
     "not enough memory for the KV cache ({detail}): raise --gpu-memory-utilization or lower --max-model-len "
     "/ --max-num-seqs"),
    (re.compile(r"is less than desired GPU memory utilization|Decrease GPU memory utilization"),
     "the GPU does not have that much free memory ({detail}): lower --gpu-memory-utilization or free the GPU"),
    (re.compile(r"CUDA out of memory|OutOfMemoryError"),
     "out of memory while starting the engine ({detail}): lower --gpu-memory-utilization, --max-num-seqs or "
     "--max-num-batched-tokens, or use a smaller model"),
    (re.compile(r"max_model_len.*(greater than|exceeds|larger than)|greater than the derived max_model_len", re.I),
     "--max-model-len is above the model's limit ({detail}): lower --max-model-len"),
]


def explain_engine_failure(log_text: str, exc: BaseException) -> str:
    """One line for a failed engine start: the root cause from the log if we know it, else the exception."""
    lines = [ANSI.sub("", line).strip() for line in log_text.splitlines()]
    candidates = [str(exc)] + [line for line in reversed(lines) if "Error" in line or "error" in line]
    for pattern, template in _ERRORS:
        for text in candidates:
            if pattern.search(text):
                detail = re.sub(r"^.*?(\w*Error): ", r"\1: ", text)[:300]
                return template.format(detail=detail)
    root = next((line for line in reversed(lines) if re.search(r"\b\w*(Error|Exception)\b: ", line)), None)
    detail = re.sub(r"^.*?(\w*(?:Error|Exception)): ", r"\1: ", root) if root else f"{type(exc).__name__}: {exc}"
    return f"the engine failed to start: {detail[:400]} (run with --verbose for the engine's full log)"
