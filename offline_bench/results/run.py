"""Versioned result schema (JSON) with an atomic save and a load that checks the version."""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field

from offline_bench.core.environment import Environment
from offline_bench.core.errors import BenchError, NotAResult
from offline_bench.results.energy import Cost, Energy
from offline_bench.results.kinds import KINDS, kind_of, migrate, validate, wrong_kind
from offline_bench.results.stats import Distribution, MeanCI

SCHEMA_VERSION = 1
Mode = Literal["offline", "serving", "imported", "predicted"]  # how a result was measured (or predicted)


def read_text(path: str | Path) -> str:
    """A file's text; a `.gz` file is decompressed (results kept gzipped, as docs/results keeps large ones)."""
    p = Path(path)
    if p.name.endswith(".gz"):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            return f.read()
    return p.read_text(encoding="utf-8")


def read_json(path: str | Path) -> Any:
    """A result file's JSON (.json or .json.gz), or one line saying why it cannot be read."""
    try:
        return json.loads(read_text(path))
    except (OSError, EOFError, zlib.error, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NotAResult(f"cannot read result '{path}': {e}", f"not readable JSON ({type(e).__name__})") from None


def result_name(path: str | Path) -> str:
    """A result file's name without `.json` or `.json.gz`."""
    return Path(path).name.removesuffix(".gz").removesuffix(".json")


class Throughput(BaseModel):
    # None only for imported figures that do not give the number
    duration_s: float | None
    requests_per_s: float | None
    input_tokens_per_s: float | None
    output_tokens_per_s: float | None
    total_tokens_per_s: float | None
    prefill_tokens_per_s: float | None  # input tokens / time with >= 1 request in prefill (see README)
    decode_tokens_per_s: float | None  # decode tokens / time with >= 1 request in decode (see README)
    goodput_requests_per_s: float | None = None  # requests meeting every --goodput SLO / wall time
    good_requests_pct: float | None = None


class ThroughputSummary(Throughput):
    """Mean over repeats; `repeats` keeps each repeat, `ci95` the 95% interval of each rate."""

    # the first pass's steady window (steps.steady_window): None when it has no plateau
    steady_output_tokens_per_s: float | None = None
    steady_window_s: list[float] | None = None

    repeats: list[Throughput]
    ci95: dict[str, MeanCI]


class Latency(BaseModel):
    queue_ms: Distribution
    prefill_ms: Distribution
    decode_ms: Distribution
    ttft_ms: Distribution
    tpot_ms: Distribution
    e2e_ms: Distribution
    itl_ms: Distribution | None = None  # serving: gaps between streamed chunks
    arrival_lateness_ms: Distribution | None = None  # --request-rate: how late each request was added
    frontend_ms: Distribution | None = None  # offline: e2e beyond the engine core's queue + prefill + decode


class KVCache(BaseModel):
    num_blocks: int | None
    block_size: int | None
    capacity_tokens: int | None
    capacity_gib: float | None
    bytes_per_token: int | None
    kv_cache_dtype: str | None
    max_concurrency: float | None  # requests of max_model_len tokens that fit at once (vLLM's arithmetic)
    max_model_len: int | None
    logged_capacity_tokens: int | None  # what the engine's own start-up line says
    peak_usage_pct: float | None
    preemptions: int | None
    prefix_cache_queries: int | None
    prefix_cache_hits: int | None
    prefix_cache_hit_rate: float | None  # vLLM's counters: a request preempted and rescheduled queries again
    # share of the prompt tokens found in the prefix cache when each request was first scheduled (recomputation
    # after a preemption not counted): RequestOutput.num_cached_tokens / prompt tokens
    prompt_cache_hit_rate: float | None = None
    # `plan`'s prediction for this engine, made without the measurement (see offline_bench/predict/plan.py)
    predicted_tokens: int | None = None
    predicted_error_pct: float | None = None  # (predicted - measured) / measured x 100
    predicted_basis: str | None = None  # "model" or "calibrated"


class Memory(BaseModel):
    weights_gib: float | None
    peak_activation_gib: float | None
    cuda_graph_gib: float | None
    non_torch_gib: float | None
    kv_cache_gib: float | None
    total_gib: float | None


class TimelinePoint(BaseModel):
    t_s: float  # since the timed window began
    repeat: int
    running: float
    waiting: float
    kv_usage_pct: float
    preemptions: float | None = None  # cumulative since the pass began (None: not recorded)


class RequestRecord(BaseModel):
    repeat: int
    index: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int | None
    finish_reason: str | None
    preemptions: int | None
    queue_ms: float | None
    prefill_ms: float | None
    decode_ms: float | None
    ttft_ms: float | None
    tpot_ms: float | None
    e2e_ms: float | None
    itl_ms: list[float] | None = None  # serving only
    frontend_ms: float | None = None  # offline: e2e - (queue + prefill + decode), the front end's share
    replica: int | None = None  # data parallel: which engine replica served it


class StepTrace(BaseModel):
    """One entry per engine step of the first timed pass, stored as columns (see offline_bench/engine/steps.py)."""

    source: str  # "iteration_details": the scheduler's own counts; "outputs": inferred from emitted tokens
    t_s: list[float]  # engine-core clock at the step's end, since the pass's first request was queued
    exec_ms: list[float | None]  # model execution of the step (iteration details only)
    ctx_tokens: list[int]  # prompt tokens scheduled (prefill chunks, recomputation after preemption)
    ctx_reqs: list[int]
    gen_reqs: list[int]  # requests decoding one token
    out_tokens: list[int]  # tokens the step emitted
    first_tokens: list[int]  # requests that emitted their first token
    decode_ctx_tokens: list[int]  # KV tokens the decoding requests attend to
    running: list[int | None]
    waiting: list[int | None]
    kv_usage_pct: list[float | None]


class Workload(BaseModel):
    source: str  # "synthetic", the prompt file, or "scenario:NAME"
    # None only in imported results that do not give the figure
    num_prompts: int | None
    total_input_tokens: int | None  # tokens actually processed, per repeat
    total_output_tokens: int | None
    input_len: int | None
    output_len: int | None
    range_ratio: float | None
    seed: int | None
    ignore_eos: bool | None
    temperature: float | None
    top_p: float | None
    detokenize: bool | None
    warmup_requests: int
    warmup_s: float | None = None  # how long the untimed warm-up took (startup holds only the engine's start)
    repeats: int
    concurrency: int | None = None
    prefix_len: int | None = None  # synthetic shared prefixes (see WorkloadConfig)
    num_prefixes: int | None = None
    request_rate: float | None = None  # requests/s of the arrival schedule (None: all at once)
    burstiness: float | None = None
    dataset: str | None = None  # the prompt file's format when given: "sharegpt" or "custom"


class RunResult(BaseModel):
    kind: Literal["run"] = "run"  # what the file is (results.kinds); `mode` says how it was measured
    schema_version: int = SCHEMA_VERSION
    tool_version: str
    created_at: str
    mode: Mode = "offline"
    model: str
    endpoint: str | None = None  # serving: the URL measured (never the key)
    environment: Environment
    engine_args: dict[str, Any]
    workload: Workload
    startup: dict[str, Any]
    kv_cache: KVCache
    memory: Memory
    throughput: ThroughputSummary
    latency: Latency
    timeline: list[TimelinePoint]
    requests: list[RequestRecord]
    notes: list[str] = Field(default_factory=list)
    roofline: dict[str, Any] | None = None  # % of the GPU's ceilings (None off a known GPU)
    parallel: dict[str, Any] | None = None  # world size, GPUs, per-GPU rates, KV per replica and in total
    steps: StepTrace | None = None  # per engine step of the first timed pass (what `predict` fits)
    prediction: dict[str, Any] | None = None  # mode "predicted": the step model and what the simulation assumed
    goodput_slo_ms: dict[str, float] | None = None  # the SLOs behind throughput.goodput_requests_per_s
    energy: Energy | None = None  # the GPUs' energy over the timed passes (status "unknown" with the reason)
    cost: Cost | None = None  # USD per million output tokens at --gpu-hour-cost / --kwh-cost

    def save(self, path: str | Path) -> None:
        write_atomic(path, self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: str | Path, purpose: str = "this command") -> RunResult:
        """A run result (any mode) from .json or .json.gz; one line when the file is another kind, another schema
        version or not whole (`purpose` names the reader in it: "'x.json' is a plan table; compare needs ...")."""
        data = read_json(path)
        kind = kind_of(data)
        if kind != "run":
            raise wrong_kind(path, kind, data, purpose, KINDS["run"])
        return validate(cls, migrate(data, kind), path)


def write_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same directory, then rename: readers never see half a file. A `.gz` path
    is written gzipped, as `read_text` reads it (`--output run.json.gz` keeps a result small)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    data = text.encode("utf-8")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Unwritten:
    """A file a command could not write where it was asked to, after its measurement: why, and where its content
    went instead (None: nowhere, the temp directory failed too; the command's printed output is all there is)."""

    path: str
    reason: str
    saved_to: str | None

    def line(self) -> str:
        """`cannot write result.json (No space left on device): saved to /tmp/offline-bench-....json instead`."""
        if self.saved_to is None:
            return (f"cannot write {self.path} ({self.reason}), nor a copy in {tempfile.gettempdir()}: what was "
                    "printed is all that is left of it")
        return f"cannot write {self.path} ({self.reason}): saved to {self.saved_to} instead"

    @classmethod
    def from_line(cls, text: str) -> Unwritten | None:
        """The inverse of `line()` (what a sweep's point process reports about its result), else None."""
        m = re.fullmatch(r"cannot write (.+?) \((.+?)\)(?:: saved to (.+) instead|, nor a copy in .*)", text.strip())
        return cls(m.group(1), m.group(2), m.group(3)) if m else None


class Kept(NamedTuple):
    """A result and the file it was to be written to (None: none asked for); `unwritten` when that failed."""

    result: Any
    path: str | None
    unwritten: Unwritten | None = None

    @property
    def where(self) -> str | None:
        """Where the file is: the path asked for, or the copy in the temp directory."""
        return self.unwritten.saved_to if self.unwritten else self.path


def keep_file(path: str | Path, write: Callable[[Path], None]) -> Unwritten | None:
    """`write(path)`; if that fails (disk full, folder gone, no permission), `write` again into a fresh file of
    the system's temp directory and say so: a measurement is never lost to its file."""
    try:
        write(Path(path))
        return None
    except OSError as e:
        reason = e.strerror or str(e)
        blocking = next((p for p in Path(path).parents if p.exists()), None)
        if e.errno in (errno.EEXIST, errno.ENOTDIR) and blocking is not None and not blocking.is_dir():
            reason = f"{blocking} is a file, not a folder"  # a folder removed, and a file in its place
        return Unwritten(str(path), reason, temp_copy(path, write))


def temp_copy(path: str | Path, write: Callable[[Path], None]) -> str | None:
    """`write` into a fresh file of the system's temp directory named after `path` (offline-bench-NAME-XXXX.json);
    its path, or None when that fails too."""
    name = Path(path).name
    suffix = ".json.gz" if name.endswith(".json.gz") else Path(name).suffix
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"offline-bench-{name.removesuffix(suffix) or 'output'}-", suffix=suffix)
        os.close(fd)
        write(Path(tmp))
        return tmp
    except OSError:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        return None


def keep_text(path: str | Path, text: str) -> Unwritten | None:
    """`write_atomic`, or the text kept in the temp directory (see `keep_file`)."""
    return keep_file(path, lambda p: write_atomic(p, text))


def keep_result(result: Any, path: str | None) -> Kept:
    """A result (anything with `save(path)`) saved at `path` when one is given: in the temp directory when that
    fails, `unwritten` saying so."""
    return Kept(result, path, keep_file(path, result.save) if path else None)


def check_writable(path: str | Path | None, flag: str, is_dir: bool = False) -> None:
    """Before any engine starts: can `path` (a file, or with is_dir a directory) be written? One line if not.

    Probes by creating a file, since permission bits say nothing for root or on read-only mounts."""
    if not path:
        return
    path = Path(path)
    target = path if is_dir else path.parent
    if not is_dir and path.is_dir():
        raise BenchError(f"{flag} {path} is a directory: give a file name, e.g. {path / 'result.json'}")
    probe_dir = target
    while not probe_dir.exists():  # write_atomic creates missing directories: probe the nearest existing one
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise BenchError(f"{flag} {path}: {probe_dir} is a file, not a directory: choose another location")
    try:
        fd, probe = tempfile.mkstemp(prefix=".offline-bench-probe-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise BenchError(f"{flag} {path}: cannot write in {probe_dir} ({e.strerror}): choose a writable "
                         "location") from None
