"""The engine runner: start `vllm.LLM` in-process, feed it a workload through its request API, measure.

vLLM is imported lazily inside functions, so `--help`, reports and pure logic never pay for (or need) it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from offline_bench.core import power
from offline_bench.core.config import CPU_DEFAULT_KV_BYTES, GPU_DEFAULT_GMU, EngineConfig
from offline_bench.core.environment import has_cuda, installed_vllm_version, vllm_support_warning
from offline_bench.core.errors import BenchError
from offline_bench.core.logcapture import LogCapture
from offline_bench.core.power import WindowEnergy
from offline_bench.core.procs import guard_descendants, kill_descendants
from offline_bench.engine.args import check_engine_args
from offline_bench.engine.parallel import (
    check_parallel,
    check_ray_layout,
    connect_ray,
    disconnect_ray,
    engine_env_and_kwargs,
    ray_facts,
    ray_groups,
)
from offline_bench.engine.steps import (
    ITERATION_DETAILS_ARG,
    StepRecorder,
    iteration_details_supported,
    quiet_iteration_log,
)
from offline_bench.model.info import ModelInfo
from offline_bench.model.limits import check_model_limits
from offline_bench.model.presets import ResolvedModel, resolve_model
from offline_bench.results.build import ms
from offline_bench.results.run import RequestRecord, StepTrace, Unwritten, keep_text
from offline_bench.results.startup import explain_engine_failure, parse_startup
from offline_bench.results.stats import union_length
from offline_bench.workloads.requests import Request

log = logging.getLogger(__name__)
FAILED_START_DRAIN_S = 3.0  # after a failed start, how long to wait for the engine's last log lines
KV_USAGE_NAMES = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")  # 0.26+ name, older name
ITL_NAMES = ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")  # 0.26+ name, older name
PROBE_NAMES = {
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "kv_usage": KV_USAGE_NAMES,
    "preemptions": ("vllm:num_preemptions",),
    "prefix_queries": ("vllm:prefix_cache_queries",),
    "prefix_hits": ("vllm:prefix_cache_hits",),
}


def llm_kwargs(cfg: EngineConfig, model: ResolvedModel, on_gpu: bool) -> dict[str, Any]:
    """The exact keyword arguments given to vllm.LLM (recorded with the result)."""
    kwargs: dict[str, Any] = {
        "model": model.path,
        "dtype": cfg.dtype,
        "kv_cache_dtype": cfg.kv_cache_dtype,
        "enforce_eager": cfg.enforce_eager if cfg.enforce_eager is not None else not on_gpu,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "pipeline_parallel_size": cfg.pipeline_parallel_size,
        "load_format": cfg.load_format or model.default_load_format or "auto",
        "seed": cfg.seed,
        "disable_log_stats": False,  # needed for RequestOutput.metrics and LLM.get_metrics()
    }
    kwargs.update(kv_size_kwargs(cfg.gpu_memory_utilization, cfg.kv_cache_memory_bytes, on_gpu))
    if cfg.tokenizer:
        kwargs["tokenizer"] = cfg.tokenizer
    for name in ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "enable_prefix_caching"):
        value = getattr(cfg, name)
        if value is not None:
            kwargs[name] = value
    kwargs.update(cfg.engine_args)
    return kwargs


def kv_size_kwargs(gmu: float | None, kv_bytes: int | None, on_gpu: bool) -> dict[str, Any]:
    """How the KV cache is sized: bytes if given (vLLM then ignores gmu), else gmu (GPU default 0.9), else on the
    CPU build a fixed size."""
    if kv_bytes is not None:
        return {"kv_cache_memory_bytes": kv_bytes}
    if gmu is not None or on_gpu:
        return {"gpu_memory_utilization": gmu or GPU_DEFAULT_GMU}
    return {"kv_cache_memory_bytes": CPU_DEFAULT_KV_BYTES}


class MetricsProbe:
    """Cheap reads of the engine's Prometheus gauges/counters after every step.

    Collecting the whole registry (LLM.get_metrics) costs too much to do per step, so the few collectors
    we need are located once; if that private registry map is missing we fall back to get_metrics().
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.collectors: list[Any] = []
        try:
            from prometheus_client import REGISTRY  # vLLM's metrics registry: only once an engine runs

            wanted = {n for names in PROBE_NAMES.values() for n in names}
            for collector, names in list(REGISTRY._collector_to_names.items()):  # noqa: SLF001
                if any(n in wanted or n.removesuffix("_total") in wanted for n in names):
                    self.collectors.append(collector)
        except Exception:  # noqa: BLE001
            self.collectors = []

    def _families(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        if self.collectors:
            for collector in self.collectors:
                for family in collector.collect():
                    for s in family.samples:
                        if s.name in (family.name, family.name + "_total"):
                            out.append((family.name, float(s.value)))
            return out
        for m in self.llm.get_metrics():
            value = getattr(m, "value", None)
            if isinstance(value, (int, float)):
                out.append((m.name, float(value)))
        return out

    def read(self) -> dict[str, float]:
        return probe_values(self._families())


def probe_values(samples: Iterable[tuple[str, float]]) -> dict[str, float]:
    """(metric name, value) samples -> {"running", "waiting", "kv_usage" (%), "preemptions", "prefix_queries",
    "prefix_hits"}, summed over label sets (one per engine; KV use, a fraction per engine, averaged). Counter
    names may carry Prometheus' `_total` suffix."""
    values: dict[str, list[float]] = {}
    for name, value in samples:
        base = name.removesuffix("_total")
        for key, names in PROBE_NAMES.items():
            if name in names or base in names:
                values.setdefault(key, []).append(value)
    out = {k: sum(v) for k, v in values.items()}
    if "kv_usage" in values:
        out["kv_usage"] = 100.0 * sum(values["kv_usage"]) / len(values["kv_usage"])
    return out


@dataclass
class BatchOutcome:
    """What one pass over a list of requests produced."""

    wall_s: float
    records: list[RequestRecord]
    timeline: list[dict[str, float]]
    peak_kv_pct: float | None
    counters_delta: dict[str, float]
    prefill_window_s: float | None
    decode_window_s: float | None
    texts: list[str] = field(default_factory=list)
    engine_ts: list[tuple[float, float, float]] = field(default_factory=list)  # (scheduled, first, last token)
    window_wall: tuple[float, float] | None = None  # wall-clock start and end of the pass
    steps: StepTrace | None = None  # per engine step (when recorded)
    lateness_s: list[float] = field(default_factory=list)  # how late each scheduled arrival was added
    itl: tuple[list[tuple[float, float]], float] | None = None  # the pass's ITL histogram: (buckets, sum) in s
    energy: WindowEnergy | None = None  # the engine's GPUs over window_wall (None without NVML: Engine.power_unknown)


class Engine:
    """A started vLLM engine (with its captured log) that several benchmark passes can share."""

    def __init__(self, cfg: EngineConfig, echo_log: bool = False, save_log: str | None = None) -> None:
        cfg.validate_values()
        self.cfg = cfg
        self.save_log = save_log  # written when the engine closes, fails to start or is interrupted
        self.log_unwritten: Unwritten | None = None  # save_log could not be written: where the log went instead
        self.model = resolve_model(cfg.model)
        self.info = self.model.info
        check_model_limits(self.info, self.model.config, max_model_len=cfg.max_model_len)
        check_engine_args(cfg.engine_args)
        check_parallel(cfg, self.info)
        self.ray: dict[str, Any] | None = None  # parallel.ray: what the Ray placement used
        ray_address, ray_before = _ray_before_start(cfg)
        self.on_gpu = has_cuda()
        self.kwargs = llm_kwargs(cfg, self.model, self.on_gpu)
        # the idle floor before vLLM takes the GPU (before the environment changes: a Ctrl-C here leaves nothing
        # to put back); sampling starts once vLLM has forked its processes (core.power.begin)
        self.power, self.power_unknown, self.idle = power.begin(cfg.tensor_parallel_size * cfg.pipeline_parallel_size,
                                                                self.on_gpu)
        self._set_env()
        self.capture = LogCapture(echo=echo_log).start()
        self._closed = False
        t0 = time.perf_counter()
        interrupted = _InterruptLatch()
        try:
            from vllm import LLM  # vLLM is heavy to import (torch, CUDA): only where an engine is used

            self.import_s = time.perf_counter() - t0  # ~0 once a process has imported vLLM (a sweep worker)
            if ITERATION_DETAILS_ARG not in self.kwargs and iteration_details_supported():
                self.kwargs[ITERATION_DETAILS_ARG] = True  # per-step scheduler counts for `predict`
                quiet_iteration_log()
            with interrupted:
                self.llm = LLM(**self.kwargs)
            if interrupted.seen:  # a library on the start-up path swallowed the KeyboardInterrupt: honour it
                self._shutdown_core()
                raise KeyboardInterrupt
        except BaseException as e:  # Ctrl-C too: give the terminal back before it propagates
            if isinstance(e, Exception):
                self.capture.drain(FAILED_START_DRAIN_S)
            text = self.capture.text()
            self.capture.stop()
            power.end(self.power)
            self._write_log(text)
            self._tell_log_unwritten()
            self._restore_env()
            self._closed = True
            if not isinstance(e, Exception):
                raise
            raise BenchError(explain_engine_failure(text, e)) from None
        self.init_s = time.perf_counter() - t0
        if self.power is not None:
            self.power.start()
        self.probe = MetricsProbe(self.llm)
        self.tokenizer = self.llm.get_tokenizer()
        if ray_before is not None:
            self.ray = ray_facts(ray_address, ray_before)
        hf_config = self.llm.llm_engine.vllm_config.model_config.hf_config
        if self.info is None:
            try:
                self.info = ModelInfo.from_config(hf_config.to_dict())
            except (KeyError, TypeError, ValueError):
                self.info = None

    def _set_env(self) -> None:
        self.env, extra = engine_env_and_kwargs(self.cfg, self.on_gpu)
        self.kwargs.update(extra)
        # read by vLLM at engine start and inherited by its workers; put back on close
        self._env_before = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        warning = vllm_support_warning(installed_vllm_version())
        if warning:
            log.warning(warning.removeprefix("warning: "))  # the CLI prints "warning: ..." on stderr

    @property
    def console(self):  # noqa: ANN201 - the original stderr, for progress and messages
        return self.capture.console

    def log_text(self) -> str:
        return self.capture.text()

    def startup_facts(self) -> dict[str, Any]:
        facts = parse_startup(self.log_text())
        facts["init_s"] = round(self.init_s, 3)  # LLM() constructor wall time, as the user waits for it
        facts["import_vllm_s"] = round(getattr(self, "import_s", 0.0), 3)  # part of init_s
        return facts

    def resolved_args(self) -> dict[str, Any]:
        """What the engine actually runs with, read back from its config."""
        vc = self.llm.llm_engine.vllm_config
        mc, cc, sc = vc.model_config, vc.cache_config, vc.scheduler_config
        pc = vc.parallel_config
        return {
            "max_model_len": mc.max_model_len,
            "dtype": str(mc.dtype).replace("torch.", ""),
            "kv_cache_dtype": cc.cache_dtype,
            "block_size": cc.block_size,
            "gpu_memory_utilization": cc.gpu_memory_utilization,
            "kv_cache_memory_bytes": getattr(cc, "kv_cache_memory_bytes", None),
            "enable_prefix_caching": cc.enable_prefix_caching,
            "max_num_seqs": sc.max_num_seqs,
            "max_num_batched_tokens": sc.max_num_batched_tokens,
            "enable_chunked_prefill": getattr(sc, "enable_chunked_prefill", None),
            "enforce_eager": mc.enforce_eager,
            "tensor_parallel_size": pc.tensor_parallel_size,
            "pipeline_parallel_size": pc.pipeline_parallel_size,
            "data_parallel_size": getattr(pc, "data_parallel_size", 1),
            "num_gpu_blocks": cc.num_gpu_blocks,
            "device": str(getattr(vc.device_config, "device_type", "")),
        }

    def kv_capacity(self) -> dict[str, Any]:
        """Blocks, tokens, bytes and max concurrency, with vLLM's own arithmetic (cdiv of blocks per request)."""
        vc = self.llm.llm_engine.vllm_config
        cc = vc.cache_config
        blocks, block_size, mml = cc.num_gpu_blocks, cc.block_size, vc.model_config.max_model_len
        kv_dtype = cc.cache_dtype if cc.cache_dtype != "auto" else str(vc.model_config.dtype).replace("torch.", "")
        bpt = self.info.kv_bytes_per_token(kv_dtype) if self.info else None
        cap = blocks * block_size if blocks and block_size else None
        return {
            "num_blocks": blocks, "block_size": block_size, "capacity_tokens": cap,
            "capacity_gib": round(cap * bpt / 2**30, 4) if cap and bpt else None,
            "bytes_per_token": bpt, "kv_cache_dtype": kv_dtype, "max_model_len": mml,
            "max_concurrency": round(blocks / math.ceil(mml / block_size), 2) if blocks and block_size else None,
        }

    def itl_histogram(self) -> tuple[dict[float, float], float]:
        """The engine's inter-token-latency histogram (seconds): cumulative count per upper bound, summed over
        engines, and the sum of all observations. Empty where the release does not export it."""
        buckets: dict[float, float] = {}
        total = 0.0
        try:
            metrics = self.llm.get_metrics()
        except Exception:  # noqa: BLE001 - no metrics reader in this release: offline ITL stays unknown
            return buckets, total
        for m in metrics:
            if m.name in ITL_NAMES and isinstance(getattr(m, "buckets", None), dict):
                for bound, count in m.buckets.items():
                    key = float("inf") if str(bound) in ("+Inf", "inf") else float(bound)
                    buckets[key] = buckets.get(key, 0.0) + float(count)
                total += float(getattr(m, "sum", 0.0) or 0.0)
        return buckets, total

    def vocab(self) -> tuple[int, list[int]]:
        """(vocab size, special ids) for synthetic prompts."""
        size = self.llm.llm_engine.vllm_config.model_config.get_vocab_size()
        special = list(getattr(self.tokenizer, "all_special_ids", []) or [])
        return size, special

    def prompt_len(self, req: Request) -> int:
        if req.token_ids is not None:
            return len(req.token_ids)
        return len(self.tokenizer.encode(req.prompt))

    def sampling_params(self, req: Request, temperature: float, top_p: float, ignore_eos: bool,
                        detokenize: bool) -> Any:
        # vLLM is heavy to import (torch, CUDA): only where an engine is used
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(n=1, temperature=temperature, top_p=top_p, max_tokens=req.output_len,
                              ignore_eos=ignore_eos, detokenize=detokenize,
                              output_kind=RequestOutputKind.FINAL_ONLY)

    def run_batch(self, requests: Sequence[Request], params: Sequence[Any], tag: str,
                  timeline_interval_s: float = 0.05, concurrency: int | None = None,
                  on_finish: Callable[[int], None] | None = None, keep_text: bool = False,
                  prompt_lens: Sequence[int] | None = None,
                  arrivals: Sequence[float] | None = None, sample_steps: bool = True) -> BatchOutcome:
        """Submit the requests (all at once, or keeping `concurrency` in flight) and step the engine to the end.

        This is the loop LLM.generate runs, with a cheap metrics read per step added (sample_steps=False: none, so
        no timeline and no peak KV use). With `prompt_lens` (and sample_steps) every engine step is recorded too
        (BatchOutcome.steps).
        """
        if not sample_steps:
            prompt_lens = None
        before = self.probe.read()
        itl_before = self.itl_histogram()
        sampler = _StepSampler(self.probe, timeline_interval_s, before)
        index_of: dict[str, int] = {}
        recorder = StepRecorder(self.llm.llm_engine, lambda rid: prompt_lens[index_of[rid]]
                                if prompt_lens is not None and rid in index_of else None)
        t0_wall = time.time()
        with recorder if prompt_lens is not None else contextlib.nullcontext():
            outputs, finish_wall, wall, lateness = drive(
                self.llm.llm_engine, [r.engine_prompt() for r in requests], params, tag, concurrency,
                on_step=sampler.sample if sample_steps else None, on_finish=on_finish, index_of=index_of,
                arrivals=arrivals)
        window = (t0_wall, time.time())
        after = self.probe.read()
        itl_after = self.itl_histogram()
        n = len(requests)
        if len(outputs) != n:
            raise BenchError(f"the engine returned {len(outputs)} of {n} requests; rerun with --verbose")
        records = [_record(i, outputs[i], finish_wall[i]) for i in range(n)]
        engine_ts = [(m.scheduled_ts, m.first_token_ts, m.last_token_ts) for m in
                     (getattr(outputs[i], "metrics", None) for i in range(n))
                     if m is not None and getattr(m, "first_token_ts", 0)]
        delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in ("preemptions", "prefix_queries", "prefix_hits")}
        return BatchOutcome(
            wall_s=wall, records=records, timeline=sampler.timeline, counters_delta=delta,
            peak_kv_pct=sampler.peak if sample_steps else None,
            prefill_window_s=union_length([(s, f) for s, f, _ in engine_ts]) if engine_ts else None,
            decode_window_s=union_length([(f, e) for _, f, e in engine_ts]) if engine_ts else None,
            texts=[outputs[i].outputs[0].text for i in range(n)] if keep_text else [], engine_ts=engine_ts,
            window_wall=window, energy=self.power.window(*window) if self.power else None,
            steps=recorder.trace(_first_queued(outputs)) if prompt_lens is not None else None,
            lateness_s=lateness, itl=_histogram_delta(itl_before, itl_after))

    def reset_prefix_cache(self) -> None:
        try:
            self.llm.reset_prefix_cache()
        except Exception:  # noqa: BLE001 - not every release/platform supports it; caching stays documented
            pass

    def _shutdown_core(self) -> None:
        core = getattr(self.llm.llm_engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            power.end(self.power)
            self._shutdown_core()
        finally:
            self.capture.stop()
            self._write_log(self.capture.text())
            self._restore_env()

    def _write_log(self, text: str) -> None:
        """--save-log; a log that cannot be written there goes to the temp directory (`log_unwritten` says where)
        and never replaces the outcome of the engine's life (an error, an interrupt, results)."""
        if self.save_log:
            self.log_unwritten = keep_text(self.save_log, text)

    def _tell_log_unwritten(self) -> None:
        """When the engine's life ends in an error or an interrupt, that is what the caller hears: say here where
        the log went (after a clean close the caller reports `log_unwritten` with the results)."""
        if self.log_unwritten is not None:
            log.error(self.log_unwritten.line())

    def _restore_env(self) -> None:
        for key, value in self._env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if exc[0] is not None:
            self._tell_log_unwritten()


POLL_S = 0.0005  # while waiting for the next arrival, look for an engine output this often


class _Feeder:
    """Adds requests to the engine: all at once, keeping `concurrency` in flight, and/or each at its arrival
    time (`arrivals`: seconds after the pass starts). Records how late each was added."""

    def __init__(self, core: Any, prompts: Sequence[Any], params: Sequence[Any], tag: str,
                 concurrency: int | None, arrivals: Sequence[float] | None, index_of: dict[str, int]) -> None:
        self.core, self.prompts, self.params, self.tag = core, prompts, params, tag
        self.concurrency, self.arrivals, self.index_of = concurrency, arrivals, index_of
        self.n, self.submitted, self.finished = len(prompts), 0, 0
        self.lateness_s: list[float] = []

    def next_arrival(self) -> float | None:
        """When the next request is due (None: nothing left, or it waits for a free concurrency slot)."""
        if self.submitted >= self.n:
            return None
        if self.concurrency is not None and self.submitted - self.finished >= self.concurrency:
            return None
        return self.arrivals[self.submitted] if self.arrivals is not None else 0.0

    def submit_due(self, elapsed: Callable[[], float]) -> None:
        while (due := self.next_arrival()) is not None and due <= (now := elapsed()):
            i = self.submitted
            rid = f"{self.tag}-{i}"
            got = self.core.add_request(rid, self.prompts[i], self.params[i])
            self.index_of[rid] = i
            if isinstance(got, str):  # releases that return their own request id
                self.index_of[got] = i
            if self.arrivals is not None:
                self.lateness_s.append(now - due)
            self.submitted += 1


def _wait_for_output_or(queue: Any, until: float, elapsed: Callable[[], float]) -> None:
    """Sleep in short slices until the engine has an output ready or the clock reaches `until`."""
    while elapsed() < until and (queue is None or queue.empty()):
        time.sleep(max(0.0, min(POLL_S, until - elapsed())))


def drive(core: Any, prompts: Sequence[Any], params: Sequence[Any], tag: str, concurrency: int | None,
          on_step: Callable[[float], None] | None = None,
          on_finish: Callable[[int], None] | None = None,
          index_of: dict[str, int] | None = None,
          arrivals: Sequence[float] | None = None) -> tuple[dict[int, Any], dict[int, float], float, list[float]]:
    """Feed `core` (vLLM's LLMEngine: add_request / step / has_unfinished_requests) every prompt -- all at once,
    keeping `concurrency` in flight (a finished request is replaced at once), and/or each at its `arrivals`
    offset -- and step it until all are done. `index_of`, if given, is filled with request id -> prompt index.

    While a request's arrival is pending the loop does not block in step(): it polls the engine's output queue
    (the multiprocess client's) so a request is added within ~POLL_S of its time.
    Returns (final output by index, wall clock of each finish, seconds from first submit to last output,
    lateness of each scheduled arrival in seconds)."""
    feeder = _Feeder(core, prompts, params, tag, concurrency, arrivals, {} if index_of is None else index_of)
    outputs: dict[int, Any] = {}
    finish_wall: dict[int, float] = {}
    queue = getattr(getattr(core, "engine_core", None), "outputs_queue", None)
    t0 = time.perf_counter()

    def elapsed() -> float:
        return time.perf_counter() - t0

    while feeder.finished < feeder.n:
        feeder.submit_due(elapsed)
        due = feeder.next_arrival()
        busy = core.has_unfinished_requests()
        if due is not None and (not busy or (queue is not None and queue.empty())):
            _wait_for_output_or(queue if busy else None, due, elapsed)
            continue
        if not busy:
            break  # the engine dropped a request: run_batch reports how many came back
        step_outputs = core.step()
        now_wall = time.time()
        feeder.submit_due(elapsed)  # before the bookkeeping below: an arrival that fell due in step() waits no more
        if on_step:
            on_step(elapsed())
        for out in step_outputs:
            if out.finished:
                outputs[feeder.index_of[out.request_id]] = out
                finish_wall[feeder.index_of[out.request_id]] = now_wall
                feeder.finished += 1
                if on_finish:
                    on_finish(1)
    return outputs, finish_wall, elapsed(), feeder.lateness_s


def _histogram_delta(before: tuple[dict[float, float], float],
                     after: tuple[dict[float, float], float]) -> tuple[list[tuple[float, float]], float] | None:
    """What a pass added to a cumulative histogram: (upper bound, cumulative count) rising, and the sum."""
    if not after[0]:
        return None
    buckets = [(b, after[0][b] - before[0].get(b, 0.0)) for b in sorted(after[0])]
    return (buckets, after[1] - before[1]) if buckets[-1][1] > 0 else None


def _first_queued(outputs: dict[int, Any]) -> float | None:
    """The engine core's clock when the pass's first request was queued (the steps' time origin)."""
    ts = [m.queued_ts for m in (getattr(o, "metrics", None) for o in outputs.values())
          if m is not None and getattr(m, "queued_ts", 0)]
    return min(ts) if ts else None


class _StepSampler:
    """After every engine step: the peak KV use, and a timeline point every `interval_s`."""

    def __init__(self, probe: MetricsProbe, interval_s: float, before: dict[str, float]) -> None:
        self.probe, self.interval_s, self.peak = probe, interval_s, before.get("kv_usage")
        self.preempted_before = before.get("preemptions")
        self.timeline: list[dict[str, float | None]] = []
        self._next = 0.0
        self._preempted = 0.0

    def sample(self, t: float) -> None:
        sample = self.probe.read()
        kv = sample.get("kv_usage")
        if kv is not None:
            self.peak = kv if self.peak is None else max(self.peak, kv)
        preempted = (sample["preemptions"] - self.preempted_before if "preemptions" in sample
                     and self.preempted_before is not None else None)
        # a point every interval, and one at every new preemption (so a timeline can mark when they happened)
        if t >= self._next or (preempted or 0.0) > self._preempted:
            self.timeline.append({"t_s": round(t, 4), "running": sample.get("running", 0.0),
                                  "waiting": sample.get("waiting", 0.0), "kv_usage_pct": kv or 0.0,
                                  "preemptions": preempted})
            self._next = t + self.interval_s
            self._preempted = preempted or 0.0


def _ray_before_start(cfg: EngineConfig) -> tuple[str | None, set[str] | None]:
    """With the Ray backend: the cluster's address (an unreachable one, or a TP layout vLLM cannot start there, fails
    here in one line) and its placement groups before the start (to tell the engine's own apart); this process
    leaves the cluster again."""
    if cfg.distributed_executor_backend != "ray":
        return None, None
    address = connect_ray(cfg.ray_address)
    try:
        check_ray_layout(cfg)
        before = ray_groups()
    finally:
        disconnect_ray()
    return address, before


class _InterruptLatch:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or a SIGTERM the CLI turns into one,
    during the engine's start. vLLM's engine core and workers get the signal too and die, while the client in this
    process may wait on them (a handshake, a utility call) for minutes, and code on that path (bare `except:`)
    can swallow the KeyboardInterrupt. So the first signal also kills every process below this one, and the
    interrupt is raised again each second until the start has unwound. Only handlers already installed (Python's
    SIGINT, the CLI's SIGTERM) are re-routed; the previous ones are back on exit.

    What no handler sees, kill -9 of this process, is for the watchdog that entering starts (once per process:
    core.procs.guard_descendants): it kills the engine's processes once this one is gone."""

    RAISE_AGAIN_S = 1.0

    def __init__(self) -> None:
        self.seen = False
        self._previous: dict[int, Any] = {}
        self._done = threading.Event()
        self._sending = threading.Lock()

    def _handler(self, signum: int, frame: Any) -> None:
        if not self.seen:
            self.seen = True
            kill_descendants()
            threading.Thread(target=self._raise_again, args=(signum,), daemon=True).start()
        raise KeyboardInterrupt

    def _raise_again(self, signum: int) -> None:
        while not self._done.wait(self.RAISE_AGAIN_S):
            with self._sending:
                if not self._done.is_set():
                    os.kill(os.getpid(), signum)

    def __enter__(self) -> _InterruptLatch:
        guard_descendants()  # before the engine's first process: none outlives this one, however it ends
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(sig)
            # SIGINT as Python sets it; SIGTERM only where the program made it raise (the CLI does)
            if current is signal.default_int_handler or (sig == signal.SIGTERM and callable(current)):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._sending:
            self._done.set()
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def _record(i: int, out: Any, finish_wall: float) -> RequestRecord:
    """Per-request timings from the engine's own timestamps (RequestOutput.metrics); repeat is set by the caller."""
    comp = out.outputs[0]
    n_out = len(comp.token_ids)
    rec = RequestRecord(repeat=0, index=i, input_tokens=len(out.prompt_token_ids or []), output_tokens=n_out,
                        cached_tokens=getattr(out, "num_cached_tokens", None), finish_reason=comp.finish_reason,
                        preemptions=None, queue_ms=None, prefill_ms=None, decode_ms=None, ttft_ms=None,
                        tpot_ms=None, e2e_ms=None)
    m = getattr(out, "metrics", None)
    if m is None or not getattr(m, "first_token_ts", 0):
        return rec
    decode_s = m.last_token_ts - m.first_token_ts
    return rec.model_copy(update=dict(
        preemptions=getattr(m, "num_preemptions", None),
        queue_ms=ms(m.scheduled_ts - m.queued_ts),  # waiting in the scheduler's queue
        prefill_ms=ms(m.first_token_ts - m.scheduled_ts),  # first scheduled -> first token (engine core)
        decode_ms=ms(decode_s),  # first token -> last token (engine core)
        ttft_ms=ms(m.first_token_latency),  # arrival in the front end -> first token seen there
        tpot_ms=ms(decode_s / (n_out - 1)) if n_out > 1 else None,
        e2e_ms=ms(finish_wall - m.arrival_time),  # arrival -> final output returned to the caller
        # the rest of e2e, outside the engine core's queue / prefill / decode: arrival -> queued (input
        # processing, IPC) plus last token -> output returned (IPC, detokenisation, output processing)
        frontend_ms=ms((finish_wall - m.arrival_time) - (m.last_token_ts - m.queued_ts)),
    ))
