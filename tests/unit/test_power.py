"""Energy sampling (core.power) and the energy/cost of a result (results.energy), on a fake NVML: pure logic."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from offline_bench.core import power
from offline_bench.core.config import Prices, parse_gpu_hour_cost
from offline_bench.core.errors import BenchError
from offline_bench.core.power import PowerSampler, Sample, integrate, window
from offline_bench.results.energy import Energy, check_note, cost_of, energy_of, merge


class FakeNvml:
    """NVML on a fake clock: each GPU draws `watts(t)`; its energy counter (mJ) is the exact integral, plus an
    offset, as the driver's counter runs from its load."""

    def __init__(self, watts: list, counter: bool = True, instant: bool = True) -> None:
        self.watts, self.counter, self.instant = watts, counter, instant
        self.t = 1000.0
        self.inits = 0

    def clock(self) -> float:
        return self.t

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's names
        self.inits += 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.watts)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:  # noqa: N802
        return int(uuid.rsplit("-", 1)[1])

    def nvmlDeviceGetIndex(self, h: int) -> int:  # noqa: N802
        return h

    def nvmlDeviceGetName(self, h: int) -> bytes:  # noqa: N802
        return b"NVIDIA H200"

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:  # noqa: N802
        return int(self.watts[h](self.t) * 1000)

    def nvmlDeviceGetFieldValues(self, h: int, fields: list[int]) -> list:  # noqa: N802
        if not self.instant:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        assert fields == [power.FIELD_POWER_INSTANT]
        return [SimpleNamespace(nvmlReturn=0, value=SimpleNamespace(uiVal=int(self.watts[h](self.t) * 1000)))]

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:  # noqa: N802
        if not self.counter:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return int(5e9 + self._integral(h) * 1000)

    def _integral(self, h: int, dt: float = 0.001) -> float:
        n = int(round((self.t - 1000.0) / dt))
        return sum(self.watts[h](1000.0 + (i + 0.5) * dt) * dt for i in range(n))


def _sampled(nv: FakeNvml, gpus: list[str], until: float, step: float = 0.05) -> PowerSampler:
    s = PowerSampler(nv, gpus, interval_s=step, clock=nv.clock)
    while nv.t < until - 1e-9:
        s.read()
        nv.t = round(nv.t + step, 6)
    s.read()
    return s


def test_a_constant_draw_integrates_to_watts_times_seconds():
    nv = FakeNvml([lambda t: 300.0, lambda t: 100.0])
    s = _sampled(nv, ["0", "1"], 1002.0)
    w = s.window(1000.5, 1001.5)
    assert [round(g.joules, 1) for g in w.gpus] == [300.0, 100.0]
    assert [round(g.sampled_joules, 1) for g in w.gpus] == [300.0, 100.0]
    assert [g.method for g in w.gpus] == ["counter", "counter"]
    assert round(w.joules, 1) == 400.0 and w.gpus[0].avg_watts == pytest.approx(300.0)
    assert w.samples == 21


def test_the_counter_is_preferred_and_the_samples_check_it():
    # a draw that changes between samples: the counter is exact, the samples miss part of the spike
    nv = FakeNvml([lambda t: 600.0 if 1001.01 <= t < 1001.04 else 200.0])
    s = _sampled(nv, ["0"], 1002.0)
    g = s.window(1000.0, 1002.0).gpus[0]
    assert g.method == "counter" and g.joules == pytest.approx(400.0 + 0.03 * 400, abs=0.05)
    assert g.sampled_joules == pytest.approx(400.0, abs=0.05)  # the spike fell between samples
    assert g.peak_watts == 200.0


def test_without_a_counter_the_samples_give_the_joules():
    nv = FakeNvml([lambda t: 100.0 + 100.0 * (t - 1000.0)], counter=False, instant=False)
    s = _sampled(nv, ["0"], 1002.0)
    g = s.window(1000.0, 1002.0).gpus[0]
    assert g.method == "samples" and g.joules == pytest.approx(400.0, rel=1e-3)  # a ramp: trapezoids are exact
    assert "no energy counter" in s.method and "1 s average" in s.method


def test_a_window_ending_after_the_last_sample_is_read_to_its_end():
    """The engine asks for a pass's window the moment it ends, up to an interval after the thread's last read:
    the sampler reads once more, so the tail is measured, not held flat at the last counter value."""
    nv = FakeNvml([lambda t: 300.0])
    s = _sampled(nv, ["0"], 1001.0)
    nv.t = 1001.045  # the pass ended 45 ms after the last sample
    g = s.window(1000.5, 1001.045).gpus[0]
    assert g.joules == pytest.approx(300.0 * 0.545, abs=0.05) and g.method == "counter"
    assert s.window(1001.0, 1001.03).why.startswith("a window of 30 ms, shorter than 2 sampling intervals")
    assert window(s.samples, 999.0, 1000.5).joules is None  # before the first sample: no joules, not a guess
    assert "both sides" in window(s.samples, 999.0, 1000.5).why


def test_the_thread_survives_a_failed_read_and_says_why_it_stopped():
    nv = FakeNvml([lambda t: 50.0])
    s = PowerSampler(nv, ["0"], interval_s=0.005)
    calls = {"n": 0}
    real = nv.nvmlDeviceGetPowerUsage

    def flaky(h: int) -> int:
        calls["n"] += 1
        if calls["n"] in (3, 4) or calls["n"] > 12:
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST")
        return real(h)

    s.instant = False
    nv.nvmlDeviceGetPowerUsage = flaky
    s.start()
    deadline = time.time() + 5
    while s.error is None and time.time() < deadline:
        time.sleep(0.01)
    assert calls["n"] >= 12 and "NVML stopped answering (RuntimeError: NVML_ERROR_GPU_IS_LOST)" in s.error
    power.end(s)  # the last read fails too: nothing raised
    e = energy_of(s, None, [window([], 0.0, 1.0)], None, None, [(1, 1)])
    assert e.status == "unknown" and e.reason == s.error


def test_the_idle_floor_is_measured_when_reads_take_time(monkeypatch):
    """On the H200 a read takes 5-30 ms and samples are stamped mid-read: the idle window must start at the first
    sample, not before it (it was unknown on every GPU run of 2026-12-03: 'no power sample on both sides')."""
    nv = FakeNvml([lambda t: 75.0])
    real = nv.nvmlDeviceGetFieldValues

    def slow(h: int, fields: list[int]) -> list:
        nv.t = round(nv.t + 0.01, 6)
        return real(h, fields)

    nv.nvmlDeviceGetFieldValues = slow
    monkeypatch.setattr(power.time, "sleep", lambda s: setattr(nv, "t", round(nv.t + s, 6)))
    s = PowerSampler(nv, ["0"], interval_s=0.05, clock=nv.clock)
    idle = s.idle(1.0)
    assert idle.why is None and idle.gpus[0].avg_watts == pytest.approx(75.0, abs=0.5)
    assert idle.end - idle.start >= 1.0 and idle.samples == len(s.samples)


def test_per_token_figures_count_every_pass_s_tokens():
    e, s = _energy(passes=2)
    wins = [s.window(1001.0 + 2.0 * i, 1003.0 + 2.0 * i) for i in range(2)]
    uneven = energy_of(s, None, wins, None, None, [(1000, 2000), (1400, 3400)])  # without --ignore-eos
    assert uneven.joules_per_output_token == pytest.approx(1200.0 / 2400, abs=1e-3)
    assert uneven.joules_per_total_token == pytest.approx(1200.0 / 5400, abs=1e-3)


def test_window_edges_are_interpolated():
    samples = [Sample(0.0, (100.0,), (0.0,)), Sample(1.0, (300.0,), (200.0,))]
    assert integrate(samples, 0.25, 0.75, 0) == pytest.approx(100.0)  # 150 W .. 250 W over 0.5 s
    w = window(samples, 0.25, 0.75)
    assert w.gpus[0].joules == pytest.approx(100.0) and w.samples == 0
    assert window([], 0.0, 1.0).gpus == [] and window(samples, 1.0, 1.0).joules is None


def test_the_engine_s_gpus_follow_cuda_visible_devices(monkeypatch):
    nv = FakeNvml([lambda t: 1.0] * 8)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert power.begin(2, True, idle_s=0, nvml=nv)[0].indices == [0, 1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6")
    assert power.begin(2, True, idle_s=0, nvml=nv)[0].indices == [3, 5]
    assert power.begin(None, True, idle_s=0, nvml=nv)[0].indices == [3, 5, 6]  # a server: every GPU it sees
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-abc-2")
    assert power.begin(1, True, idle_s=0, nvml=nv)[0].indices == [2]


def test_no_nvml_is_a_reason_not_an_error():
    class Broken:
        def nvmlInit(self) -> None:  # noqa: N802
            raise OSError("NVML Shared Library Not Found")

    mod, why = power.load_nvml(Broken())
    assert mod is None and "NVML did not start" in why and "no NVIDIA driver" in why
    assert power.begin(1, on_gpu=False) == (None, power.NO_GPU, None)
    sampler, why, idle = power.begin_local("http://10.1.2.3:8000", on_gpu=True)
    assert sampler is None and "not on this machine" in why


def test_the_thread_samples_until_stopped():
    nv = FakeNvml([lambda t: 50.0])
    s = PowerSampler(nv, ["0"], interval_s=0.01).start()  # the real clock: a thread
    time.sleep(0.1)
    s.stop()
    assert len(s.samples) >= 3 and s._thread is not None and not s._thread.is_alive()


def _energy(watts: float = 300.0, idle_w: float = 60.0, passes: int = 2) -> tuple[Energy, PowerSampler]:
    nv = FakeNvml([lambda t: idle_w if t < 1001.0 else watts])
    s = _sampled(nv, ["0"], 1001.0 + 2.0 * passes + 1.0)
    idle = s.window(1000.0, 1001.0)
    wins = [s.window(1001.0 + 2.0 * i, 1003.0 + 2.0 * i) for i in range(passes)]
    return energy_of(s, None, wins, s.window(1001.0, 1001.5), idle, [(1200, 3000)] * passes), s


def test_energy_per_token_and_the_idle_floor():
    e, _ = _energy()
    assert e.status == "measured" and e.joules == pytest.approx(600.0, abs=0.5)
    assert e.joules_per_pass == pytest.approx([600.0, 600.0], abs=0.5)
    assert e.joules_per_output_token == pytest.approx(0.5, abs=1e-3)
    assert e.joules_per_total_token == pytest.approx(0.2, abs=1e-3)
    assert e.output_tokens_per_joule == pytest.approx(2.0, abs=1e-2)
    assert e.idle_watts == pytest.approx(60.0, abs=0.5) and e.avg_watts == pytest.approx(300.0, abs=0.5)
    assert e.above_idle_joules_per_output_token == pytest.approx((600 - 120) / 1200, abs=1e-3)
    assert e.gpus[0].counter_vs_samples_pct == pytest.approx(0.0, abs=0.1) and check_note(e) is None
    assert e.warmup_joules == pytest.approx(150.0, abs=0.5)


def test_unknown_energy_keeps_its_reason():
    e = energy_of(None, "no GPU: the engine runs on the CPU", [None], None, None, [(10, 20)])
    assert e.status == "unknown" and e.reason.startswith("no GPU") and e.joules is None
    assert cost_of(None, None, 1, 100.0, e) is None


def test_replicas_merge_into_one_energy():
    e, _ = _energy()
    m = merge([e, e], output_tokens=2400, total_tokens=6000)
    assert m.joules == pytest.approx(1200.0, abs=1) and len(m.gpus) == 2
    assert m.joules_per_output_token == pytest.approx(0.5, abs=1e-3)
    assert merge([e, Energy(reason="replica 1: no NVML")], 1, 1).reason == "replica 1: no NVML"


def test_cost_per_million_tokens():
    e, _ = _energy()
    # 2 GPUs at $3/h, 1000 tok/s: 6 $/h / 3.6 M tokens/h = 1.667 $/M
    c = cost_of(Prices(gpu_hour_usd=3.0, kwh_usd=0.12), "h200", 2, 1000.0, e)
    assert c.usd_per_million_output_tokens == pytest.approx(1.6667, abs=1e-3)
    # 0.5 J/token: 0.5 MJ per million = 0.1389 kWh x $0.12
    assert c.energy_usd_per_million_output_tokens == pytest.approx(0.5e6 / 3.6e6 * 0.12, abs=1e-5)
    table = Prices(gpu_hour_usd=parse_gpu_hour_cost("h100-sxm=2.49,H200=3.5"))
    assert cost_of(table, "h200", 1, 1000.0, None).gpu_hour_usd == 3.5
    missing = cost_of(table, "a100-80gb", 1, 1000.0, None)
    assert missing.usd_per_million_output_tokens is None and "no price for a100-80gb" in missing.reason
    cpu = cost_of(Prices(kwh_usd=0.1), None, 0, 10.0, Energy(reason="no GPU"))
    assert cpu.energy_usd_per_million_output_tokens is None and "energy unknown: no GPU" in cpu.reason


@pytest.mark.parametrize("text", ["0", "-2", "abc", "h200=", "=3", "h200=3,", "inf", "nan"])
def test_gpu_hour_cost_refuses_in_one_line(text):
    with pytest.raises(BenchError, match="--gpu-hour-cost .* such as h100-sxm=2.49,h200=3.50"):
        parse_gpu_hour_cost(text)
