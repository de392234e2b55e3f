"""Facts from vLLM's start-up log (memory budget, KV size, start-up time). Unknown facts stay None."""

from __future__ import annotations

import itertools
import re
import sys
from typing import Any, Literal

from pydantic import BaseModel

from offline_bench.core.errors import BenchError, input_file

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
    # CPU build with --kv-cache-memory-bytes: "Explicitly set (0.06/8.71) GiB for KV cache on node 0."
    (re.compile(rf"Explicitly set \({NUM}/{NUM}\) GiB for KV cache on node \d+"), ("kv_cache_gib", "cpu_memory_gib")),
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


_PREFIX = re.compile(r"^\s*\(([A-Za-z][\w.-]*?)(?:\s+pid=\d+)?\)")
_DP = re.compile(r"_DP(\d+)")


def _clean(text: str) -> list[str]:
    return [ANSI.sub("", line) for line in text.replace("\r\n", "\n").split("\n")]


def _facts_of(lines: list[str]) -> dict[str, Any]:
    facts: dict[str, Any] = dict.fromkeys(FACT_KEYS)
    for pattern, keys in _PATTERNS:
        for line in lines:
            m = pattern.search(line)
            if m:
                for key, raw in zip(keys, m.groups()):
                    if facts.get(key) is None and not key.startswith("_"):
                        facts[key] = _convert(key, raw)
                break
    return facts


def parse_engines(text: str) -> list[dict[str, Any]]:
    """Facts per engine: data-parallel engines (`EngineCore_DP1`, `Worker_DP1_TP0`, ...) each get their own line
    set; lines without a rank (the front end, a single engine) count for every engine."""
    shared: list[str] = []
    ranked: dict[int, list[str]] = {}
    for line in _clean(text):
        m = _PREFIX.match(line)
        dp = _DP.search(m.group(1)) if m else None
        if dp:
            ranked.setdefault(int(dp.group(1)), []).append(line)
        else:
            shared.append(line)
    if not ranked:
        return [_facts_of(shared)]
    return [{"dp_rank": r, **_facts_of(ranked[r] + shared)} for r in sorted(ranked)]


def parse_startup(text: str) -> dict[str, Any]:
    """Every key of FACT_KEYS (None when the log does not say) for the first engine, plus CPU-build extras."""
    facts = parse_engines(text)[0]
    facts.pop("dp_rank", None)
    return facts


class StartupFacts(BaseModel):
    """Start-up facts as one kind of result, from a vLLM log or from `startup --format json`."""

    kind: Literal["startup"] = "startup"  # what the file is (results.kinds)
    engines: list[dict[str, Any]]  # the facts of each engine (data parallel: one per rank, with its dp_rank)

    @classmethod
    def from_log(cls, text: str) -> StartupFacts:
        return cls(engines=parse_engines(text))

    @staticmethod
    def fields_of(doc: dict[str, Any]) -> dict[str, Any]:
        """The model's fields from `startup --format json`: one engine's facts at the top, or several under
        `engines`."""
        engines = doc["engines"] if "engines" in doc else [{k: v for k, v in doc.items() if k != "kind"}]
        return {"kind": doc.get("kind", "startup"), "engines": engines}

    @property
    def facts(self) -> dict[str, Any]:
        """The first engine's facts (what `report` shows)."""
        return {k: v for k, v in self.engines[0].items() if k != "dp_rank"}

    @property
    def found(self) -> bool:
        """Did the log say anything of an engine's start (a version or a KV cache size)?"""
        return bool(self.facts.get("vllm_version") or self.facts.get("kv_cache_tokens"))


def startup_document(engines: list[dict[str, Any]]) -> dict[str, Any]:
    """`startup --format json` of a log's engines (`parse_engines`): the facts of its engine with the names of those
    derived from others, or of each engine under `engines` (data parallel)."""
    out = []
    for e in engines:
        f, derived = derive(e)
        out.append({**f, "derived": sorted(derived)})
    return {"kind": "startup", **out[0]} if len(out) == 1 else {"kind": "startup", "engines": out}


# Root causes of a failed engine start, mapped to one line naming the fix.
_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Decrease --kv-cache-memory-bytes|kv_cache_memory_bytes.*(exceeds|larger than)", re.I),
     "the machine has less free memory than the KV cache asked for ({detail}): lower --kv-cache-memory-bytes or "
     "free memory"),
    (re.compile(r"No available memory for the cache blocks|insufficient.*KV cache|KV cache is needed, which is "
                r"larger than the available KV cache memory|larger than the available KV cache|"
                r"Not enough memory for KV cache|requested memory for kv|cannot allocate KV", re.I),
     "not enough memory for the KV cache ({detail}): raise --gpu-memory-utilization (or --kv-cache-memory-bytes) "
     "or lower --max-model-len / --max-num-seqs"),
    (re.compile(r"is less than desired GPU memory utilization|Decrease GPU memory utilization"),
     "the GPU does not have that much free memory ({detail}): lower --gpu-memory-utilization or free the GPU"),
    (re.compile(r"CUDA out of memory|OutOfMemoryError"),
     "out of memory while starting the engine, {stage} ({detail}): lower --gpu-memory-utilization, --max-num-seqs "
     "or --max-num-batched-tokens, or use a smaller model"),
    (re.compile(r"does not support ray"),
     "this vLLM build has no Ray executor ({detail}): use --distributed-executor-backend mp (the default) here; "
     "Ray runs vLLM's workers on GPUs only"),
    (re.compile(r"max_model_len.*(greater than|exceeds|larger than)|greater than the derived max_model_len", re.I),
     "--max-model-len is above the model's limit ({detail}): lower --max-model-len"),
    # vLLM tells nodes apart by shared memory: Ray nodes of one host look like one node to its custom all-reduce
    (re.compile(r"out of range for assigned_physical_gpu_ids"),
     "vLLM's custom all-reduce looked for GPUs its worker cannot see ({detail}): with a TP group over Ray nodes of "
     "one host pass --engine-arg disable_custom_all_reduce=true"),
]
_EXCEPTION_LINE = re.compile(r"\b\w*(Error|Exception)\b: ")


def _start_failure_root(lines: list[str]) -> str | None:
    """The last exception line of the engine core's own report ('EngineCore failed to start.' and the lines of that
    log record after it): errors logged later (an executor's clean-up failing in turn) are consequences."""
    for i in range(len(lines) - 1, -1, -1):
        head, found, _ = lines[i].partition("EngineCore failed to start")
        if found:
            block = list(itertools.takewhile(lambda line, head=head: line.startswith(head), lines[i + 1:]))
            return next((line for line in reversed(block) if _EXCEPTION_LINE.search(line)), None)
    return None


def start_stage(facts: dict[str, Any]) -> str:
    """How far a start got, from its log's facts (vLLM's order: weights, memory profile with torch.compile, KV cache
    sized and allocated, CUDA graphs, warm-up): where a start that failed stopped."""
    if facts.get("cuda_graph_s") is not None or facts.get("cuda_graph_gib") is not None:
        graphs = f" ({facts['cuda_graph_gib']:g} GiB)" if facts.get("cuda_graph_gib") is not None else ""
        return f"after capturing CUDA graphs{graphs}, in the warm-up"
    if facts.get("kv_cache_gib") is not None or facts.get("kv_cache_tokens") is not None:
        size = f"{facts['kv_cache_gib']:g} GiB" if facts.get("kv_cache_gib") is not None else "its size logged"
        return (f"after the KV cache was sized ({size} a GPU), while allocating it or capturing CUDA graphs: the "
                "memory outside vLLM's budget did not hold them")
    if facts.get("weights_gib") is not None:
        return f"after loading the weights ({facts['weights_gib']:g} GiB a GPU), in the memory profile"
    return "before the weights were loaded"


def explain_engine_failure(log_text: str, exc: BaseException) -> str:
    """One line for a failed engine start: the root cause from the log if we know it, else the exception."""
    lines = [ANSI.sub("", line).strip() for line in log_text.splitlines()]
    candidates = [str(exc)] + [line for line in reversed(lines) if "Error" in line or "error" in line]
    for pattern, template in _ERRORS:
        for text in candidates:
            if pattern.search(text):
                detail = re.sub(r"^.*?(\w*Error): ", r"\1: ", text)[:300]
                stage = start_stage(parse_startup(log_text)) if "{stage}" in template else ""
                return template.format(detail=detail, stage=stage)
    root = _start_failure_root(lines) or next((line for line in reversed(lines) if _EXCEPTION_LINE.search(line)),
                                              None)
    detail = re.sub(r"^.*?(\w*(?:Error|Exception)): ", r"\1: ", root) if root else f"{type(exc).__name__}: {exc}"
    return f"the engine failed to start: {detail[:400]} (run with --verbose for the engine's full log)"


# ---------------------------------------------------------------- the `startup` command: facts with explanations

UNITS = {"weights_gib": "GiB", "weights_load_s": "s", "torch_compile_s": "s", "kv_cache_gib": "GiB",
         "kv_cache_tokens": "tokens", "max_concurrency": "requests", "max_concurrency_at_tokens": "tokens",
         "cuda_graph_s": "s", "cuda_graph_gib": "GiB", "peak_activation_gib": "GiB", "non_torch_gib": "GiB",
         "gpu_total_gib": "GiB", "gpu_memory_utilization": "fraction", "init_engine_s": "s", "compilation_s": "s",
         "max_model_len": "tokens"}

MEANING = {
    "vllm_version": "vLLM release that wrote the log; line formats and defaults change between releases.",
    "model": "What the engine loaded (a path or an HF id).",
    "dtype": "Weights and activations dtype; bf16/fp16 take 2 bytes per parameter.",
    "max_model_len": "Longest request (prompt + output) the engine accepts; sets the KV blocks one request may need.",
    "tensor_parallel_size": "GPUs each layer is split over; weights and KV heads divide by it per GPU.",
    "weights_gib": "Memory of the weights per GPU = parameters x bytes per parameter / TP; a smaller dtype or "
                   "more TP lowers it.",
    "weights_load_s": "Time to read or create the weights; dummy weights skip disk, real ones depend on storage.",
    "torch_compile_s": "torch.compile (Dynamo + Inductor) time; near zero when the compile cache is warm, none "
                       "with --enforce-eager.",
    "kv_cache_gib": "KV memory = gmu x GPU total - weights - peak activation - non-torch memory (CUDA graphs "
                    "come on top in 0.26); raise gmu or shrink weights to grow it.",
    "kv_cache_tokens": "Tokens of context the KV pool holds at once = KV memory / KV bytes per token (rounded "
                       "to whole blocks).",
    "max_concurrency": "Requests of max_model_len tokens that fit at once = KV tokens / max_model_len; halves "
                       "when max_model_len doubles.",
    "max_concurrency_at_tokens": "The request length the concurrency figure assumes (max_model_len).",
    "cuda_graph_s": "Time to capture CUDA graphs for the decode batch sizes; none with --enforce-eager.",
    "cuda_graph_gib": "Memory the captured CUDA graphs keep; more capture sizes cost more.",
    "peak_activation_gib": "Largest activation memory seen while profiling a max_num_batched_tokens step; lower "
                           "--max-num-batched-tokens to reduce it.",
    "non_torch_gib": "Memory outside PyTorch's allocator (CUDA context, NCCL, cuBLAS workspaces).",
    "gpu_total_gib": "Device memory the driver reports.",
    "gpu_memory_utilization": "Share of device memory vLLM may use (--gpu-memory-utilization).",
    "init_engine_s": "Engine init after the weights: memory profiling, KV cache allocation, compilation, graph "
                     "capture and warm-up; falls on a warm compile cache.",
    "compilation_s": "Part of the init spent compiling (torch.compile); the compile cache makes reruns faster.",
}


def read_log(source: str) -> str:
    """Text of a log file ('-' for standard input), refusing what cannot be a vLLM log, in one line."""
    if source == "-":
        data = sys.stdin.buffer.read()
        name = "standard input"
    else:
        path = input_file(source, "log file", "pass a vLLM log file, or - for standard input")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BenchError(f"cannot read log file '{source}' ({e.strerror}): pass a readable vLLM log") from None
        name = f"'{source}'"
    if not data.strip():
        raise BenchError(f"{name} is empty: capture the engine's output, e.g. `vllm serve ... 2>&1 | tee vllm.log`")
    text = data.decode("utf-8", errors="replace")
    if text.count("\ufffd") > max(16, len(text) // 100) or "\x00" in text:
        raise BenchError(f"{name} is not a text log (binary or corrupted bytes): pass the log as written by vLLM")
    if not any(p.search(line) for line in _clean(text) for p, _ in _PATTERNS):
        raise BenchError(f"found no vLLM start-up lines in {name}: pass the log of `vllm serve` or of an offline "
                         "engine start (e.g. `offline-bench run --save-log engine.log`)")
    return text


def derive(facts: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Fill what can be computed from other facts; returns (facts, names of derived facts)."""
    f = dict(facts)
    derived: set[str] = set()
    if f.get("max_concurrency") is None and f.get("kv_cache_tokens") and f.get("max_model_len"):
        f["max_concurrency"] = round(f["kv_cache_tokens"] / f["max_model_len"], 2)
        f["max_concurrency_at_tokens"] = f["max_model_len"]
        derived |= {"max_concurrency", "max_concurrency_at_tokens"}
    if f.get("max_model_len") is None and f.get("max_concurrency_at_tokens"):
        f["max_model_len"] = f["max_concurrency_at_tokens"]
        derived.add("max_model_len")
    parts = [f.get(k) for k in ("gpu_total_gib", "gpu_memory_utilization", "weights_gib", "peak_activation_gib",
                                "non_torch_gib")]
    if f.get("kv_cache_gib") is None and None not in parts:
        total, gmu, w, act, nt = parts
        f["kv_cache_gib"] = round(total * gmu - w - act - nt, 2)
        derived.add("kv_cache_gib")
    return f, derived


def budget_line(f: dict[str, Any]) -> str:
    """Where the device memory went; adds up to the GPU total and names every part it could not read."""
    total = f.get("gpu_total_gib")
    parts = [("weights", f.get("weights_gib")), ("peak activation", f.get("peak_activation_gib")),
             ("non-torch", f.get("non_torch_gib")), ("KV cache", f.get("kv_cache_gib")),
             ("CUDA graphs", f.get("cuda_graph_gib"))]
    known = [(n, v) for n, v in parts if v is not None]
    missing = [n for n, v in parts if v is None]
    shown = " + ".join(f"{n} {v:.2f}" for n, v in known)
    if total is None:
        used = sum(v for _, v in known)
        return (f"memory budget: {shown} = {used:.2f} GiB; GPU total unknown (no 'Free memory on device' line)"
                + (f"; not read: {', '.join(missing)}" if missing else ""))
    free = total - sum(v for _, v in known)
    text = f"memory budget: GPU total {total:.2f} GiB = {shown} + left unused {free:.2f} (derived)"
    if f.get("gpu_memory_utilization") is not None:
        text += (f"; gmu {f['gpu_memory_utilization']:g} allows {total * f['gpu_memory_utilization']:.2f} GiB "
                 "(derived)")
    if missing:
        text += f"; not read from this log: {', '.join(missing)} (counted in 'left unused')"
    return text


def explain_rows(facts: dict[str, Any]) -> tuple[list[list[str]], str]:
    f, derived = derive(facts)
    rows = []
    for key in FACT_KEYS:
        value = f.get(key)
        source = "unknown" if value is None else "derived" if key in derived else "read"
        shown = "unknown" if value is None else f"{value:,}" if isinstance(value, int) else str(value)
        rows.append([key, shown, UNITS.get(key, ""), source, MEANING.get(key, "")])
    return rows, budget_line(f)


def facts_incomplete(facts: dict[str, Any]) -> bool:
    return facts.get("init_engine_s") is None
