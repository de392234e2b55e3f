"""GPU power and energy through NVML (nvidia-ml-py), sampled in a thread while the engine works.

Every sample holds each GPU's power and, where the GPU has one (Volta and later), the driver's total-energy counter.
A window's energy is the counter's difference, interpolated to the window's edges; the power samples, integrated
(trapezoids), check it. Without NVML (the CPU build, no driver, no binding) nothing is sampled and the reason is
kept: energy is then "unknown", never an error.
"""

from __future__ import annotations

import bisect
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from offline_bench.core.environment import visible_ids

MIN_WINDOW_INTERVALS = 2  # a shorter window holds too few samples for its joules to mean anything
MAX_FAILED_READS = 5  # consecutive failed reads before the thread gives up
DEFAULT_INTERVAL_S = 0.05  # 50 ms: the 50-100 ms, and 20 samples in a second of idle
IDLE_S = 1.0  # idle floor: sampled this long before the engine starts
FIELD_POWER_INSTANT = 186  # NVML_FI_DEV_POWER_INSTANT: the current draw (nvmlDeviceGetPowerUsage averages ~1 s)


@dataclass(frozen=True)
class Sample:
    t: float  # time.time(), the clock the engine's pass windows use
    watts: tuple[float, ...]  # per GPU
    energy_j: tuple[float | None, ...]  # per GPU: the driver's counter (J since the driver loaded), None without


@dataclass
class GpuWindow:
    """One GPU over one window."""

    joules: float | None  # the counter's, else the samples'
    sampled_joules: float | None  # the power samples integrated
    avg_watts: float | None
    peak_watts: float | None
    method: str  # "counter" or "samples"


@dataclass
class WindowEnergy:
    """Every GPU the engine uses over one window (a timed pass, the warm-up, the idle floor)."""

    start: float
    end: float
    gpus: list[GpuWindow] = field(default_factory=list)
    samples: int = 0
    why: str | None = None  # why there are no joules (too short, not bracketed by samples)

    @property
    def joules(self) -> float | None:
        parts = [g.joules for g in self.gpus]
        return sum(parts) if parts and None not in parts else None  # type: ignore[arg-type]

    @property
    def avg_watts(self) -> float | None:
        """Every GPU together, over the window."""
        j = self.joules
        return j / (self.end - self.start) if j is not None and self.end > self.start else None


_NVML: Any = None  # the binding once initialised: nvmlInit once per process


def load_nvml(nvml: Any = None) -> tuple[Any, str | None]:
    """(the initialised NVML module, None), or (None, why not) -- one line a user can act on."""
    global _NVML
    if nvml is None and _NVML is not None:
        return _NVML, None
    own = nvml is None
    if nvml is None:
        try:
            import pynvml as nvml  # nvidia-ml-py: `pip install offline-bench[gpu]`
        except ImportError:
            return None, "no NVML binding in this environment: pip install nvidia-ml-py (offline-bench[gpu])"
    try:
        nvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound / _DriverNotLoaded on a machine without an NVIDIA driver
        return None, f"NVML did not start ({type(e).__name__}: {e}): no NVIDIA driver on this machine"
    if own:
        _NVML = nvml
    return nvml, None


def _handle(nvml: Any, name: str) -> Any:
    if name.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(name))
    return nvml.nvmlDeviceGetHandleByUUID(name)


class PowerSampler:
    """Samples the given GPUs every `interval_s` in a daemon thread until `stop()`; `samples` grows meanwhile
    (appends are atomic, readers take a copy)."""

    def __init__(self, nvml: Any, gpus: Sequence[str], interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.nvml, self.interval_s, self.clock = nvml, interval_s, clock
        self.handles = [_handle(nvml, g) for g in gpus]
        self.indices = [nvml.nvmlDeviceGetIndex(h) for h in self.handles]
        self.names = [_text(nvml.nvmlDeviceGetName(h)) for h in self.handles]
        self.has_counter = [self._counter(h) is not None for h in self.handles]
        self.instant = all(self._instant(h) is not None for h in self.handles)
        self.samples: list[Sample] = []
        self.error: str | None = None  # why the thread stopped sampling early
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _counter(self, h: Any) -> float | None:
        try:
            return self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0  # mJ
        except Exception:  # NVMLError_NotSupported before Volta
            return None

    def _instant(self, h: Any) -> float | None:
        try:
            (value,) = self.nvml.nvmlDeviceGetFieldValues(h, [FIELD_POWER_INSTANT])
            return value.value.uiVal / 1000.0 if value.nvmlReturn == 0 else None  # mW
        except Exception:  # an older driver or binding
            return None

    def _watts(self, h: Any) -> float:
        w = self._instant(h) if self.instant else None
        return w if w is not None else self.nvml.nvmlDeviceGetPowerUsage(h) / 1000.0  # mW

    def read(self) -> Sample:
        t0 = self.clock()
        watts = tuple(self._watts(h) for h in self.handles)
        energy = tuple(self._counter(h) if c else None for h, c in zip(self.handles, self.has_counter))
        # stamped mid-read: with several GPUs (5-30 ms a read each on an H200) the start would be early
        s = Sample((t0 + self.clock()) / 2, watts, energy)
        self.samples.append(s)
        return s

    @property
    def method(self) -> str:
        power = "instantaneous power" if self.instant else "power (the driver's ~1 s average)"
        base = f"NVML, {power} every {self.interval_s * 1000:g} ms"
        return base + (", energy from the driver's total-energy counter" if all(self.has_counter) else
                       ", energy from the power samples (no energy counter on this GPU)")

    def _loop(self) -> None:
        failures = 0
        while not self._stop.wait(self.interval_s):
            try:
                self.read()
                failures = 0
            except Exception as e:  # a GPU fell off the bus or NVML shut down: a few misses, then stop
                failures += 1
                if failures >= MAX_FAILED_READS:
                    self.error = f"NVML stopped answering ({type(e).__name__}: {e})"
                    return

    def start(self) -> PowerSampler:
        try:
            self.read()
        except Exception as e:  # noqa: BLE001 - never fail the engine's start: energy says unknown, and why
            self.error = f"NVML stopped answering ({type(e).__name__}: {e})"
            return self
        self._thread = threading.Thread(target=self._loop, name="offline-bench-power", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * self.interval_s + 1)
        self.read()

    def idle(self, seconds: float = IDLE_S) -> WindowEnergy:
        """Sample for `seconds` in this thread (before the engine starts: the idle floor), from the first sample
        to the last: samples are stamped mid-read, so a window opened before the first read has no sample at its
        start (on an H200 a read takes 5-30 ms) and would be unknown."""
        first = last = self.read()
        while last.t - first.t < seconds:
            time.sleep(self.interval_s)
            last = self.read()
        return window(self.samples, first.t, last.t)

    def window(self, start: float, end: float) -> WindowEnergy:
        """[start, end] as sampled; a window that ended after the last sample gets one read now (NVML is
        thread-safe), so its tail is measured, not held flat."""
        if end - start < MIN_WINDOW_INTERVALS * self.interval_s:
            return WindowEnergy(start, end, why=f"a window of {1000 * (end - start):.0f} ms, shorter than "
                                f"{MIN_WINDOW_INTERVALS} sampling intervals ({self.interval_s * 1000:g} ms)")
        if not self.samples or self.samples[-1].t < end:
            try:
                self.read()
            except Exception:  # noqa: BLE001 - unmeasured edge: window() says unknown
                pass
        return window(self.samples, start, end)  # window() slices: a copy, while the thread appends


def _time(s: Sample) -> float:
    return s.t


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _at(samples: list[Sample], t: float, value: Callable[[Sample], float | None]) -> float | None:
    """`value` interpolated linearly at time t (held flat beyond the first and last sample)."""
    before = [s for s in samples if s.t <= t]
    after = [s for s in samples if s.t >= t]
    a = before[-1] if before else after[0]
    b = after[0] if after else before[-1]
    va, vb = value(a), value(b)
    if va is None or vb is None:
        return None
    return va if b.t == a.t else va + (vb - va) * (t - a.t) / (b.t - a.t)


def integrate(samples: list[Sample], start: float, end: float, gpu: int) -> float:
    """Joules of one GPU's power samples over [start, end]: trapezoids, the edges interpolated."""
    inner = [(s.t, s.watts[gpu]) for s in samples if start < s.t < end]

    def at(t: float) -> float:
        return _at(samples, t, lambda s: s.watts[gpu]) or 0.0

    points = [(start, at(start)), *inner, (end, at(end))]
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(points, points[1:]))


def window(samples: list[Sample], start: float, end: float) -> WindowEnergy:
    """Each GPU's energy over [start, end]: the counter's difference where every sample has it, else the samples'
    integral; average and peak watts; how many samples fell inside."""
    # samples come in time order: only the window's, and one either side of it, are read (an engine's life holds
    # tens of thousands, and every pass asks for its window)
    lo = max(0, bisect.bisect_right(samples, start, key=_time) - 1)
    samples = samples[lo:bisect.bisect_left(samples, end, key=_time) + 1]
    out = WindowEnergy(start, end, samples=sum(1 for s in samples if start <= s.t <= end))
    if not samples or end <= start or samples[0].t > start or samples[-1].t < end:
        out.why = "no power sample on both sides of the window"  # the joules would be a guess
        return out
    for g in range(len(samples[0].watts)):
        sampled = integrate(samples, start, end, g)
        c0, c1 = (_at(samples, t, lambda s, g=g: s.energy_j[g]) for t in (start, end))
        counted = c1 - c0 if c0 is not None and c1 is not None and c1 >= c0 else None
        inside = [s.watts[g] for s in samples if start <= s.t <= end]
        joules = counted if counted is not None else sampled
        out.gpus.append(GpuWindow(joules=joules, sampled_joules=sampled, avg_watts=joules / (end - start),
                                  peak_watts=max(inside) if inside else None,
                                  method="counter" if counted is not None else "samples"))
    return out


NO_GPU = "no GPU: the engine runs on the CPU, and energy is sampled from NVIDIA GPUs only (NVML)"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def begin(world: int | None, on_gpu: bool, idle_s: float = IDLE_S, start: bool = False,
          nvml: Any = None) -> tuple[PowerSampler | None, str | None, WindowEnergy | None]:
    """Before an engine starts on `world` GPUs (None: every GPU this process sees): (the sampler, None, the idle
    floor of `idle_s`), or (None, why energy is unknown, None). The sampler's thread runs only once started
    (`start`, or the caller's `sampler.start()`): vLLM forks its engine processes at start, and a fork while the
    thread is inside NVML would hand the child NVML's lock held. Never raises: energy is a measurement beside
    the run, not a condition of it."""
    if not on_gpu:
        return None, NO_GPU, None
    mod, why = load_nvml(nvml)
    if mod is None:
        return None, why, None
    try:
        sampler = PowerSampler(mod, visible_ids(world or mod.nvmlDeviceGetCount()))
        idle = sampler.idle(idle_s) if idle_s > 0 else None
        return (sampler.start() if start else sampler), None, idle
    except Exception as e:  # noqa: BLE001 - a MIG instance, a UUID NVML does not know, NVML failing mid-read
        return None, f"NVML cannot read the engine's GPUs ({type(e).__name__}: {e})", None


def begin_local(url: str, on_gpu: bool, world: int | None = None,
                idle_s: float = IDLE_S) -> tuple[PowerSampler | None, str | None, WindowEnergy | None]:
    """As `begin`, started at once, for a server at `url` on `world` GPUs (None: every GPU this process sees),
    when it runs on this machine (the idle floor is then the server's, model loaded)."""
    host = urlsplit(url).hostname or ""
    if host not in (*LOCAL_HOSTS, socket.gethostname()):
        return None, f"the server ({host}) is not on this machine: its GPUs cannot be sampled from here", None
    if not on_gpu:
        return None, NO_GPU.replace("the engine runs", "this machine runs"), None
    return begin(world, on_gpu, idle_s, start=True)

def end(sampler: PowerSampler | None) -> None:
    if sampler is not None:
        try:
            sampler.stop()
        except Exception:  # noqa: BLE001 - the last read failed; the samples taken stand
            pass
