"""Pure logic that needs no engine: the request loop's refill, and data-parallel aggregation."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from offline_bench.engine.llm import drive
from offline_bench.results.build import aggregate_replicas
from offline_bench.results.run import RunResult
from offline_bench.workloads.arrivals import arrival_offsets
from tests.helpers import ROOT


@dataclass
class _Out:
    request_id: str
    finished: bool


class FakeCore:
    """Finishes each request `steps` steps after it was added; records how many were in flight."""

    def __init__(self, steps: int = 2) -> None:
        self.steps = steps
        self.live: dict[str, int] = {}
        self.added: list[str] = []
        self.peak = 0

    def add_request(self, rid: str, prompt: object, params: object) -> None:
        self.live[rid] = self.steps
        self.added.append(rid)
        self.peak = max(self.peak, len(self.live))

    def has_unfinished_requests(self) -> bool:
        return bool(self.live)

    def step(self) -> list[_Out]:
        out = []
        for rid in list(self.live):
            self.live[rid] -= 1
            if self.live[rid] == 0:
                del self.live[rid]
                out.append(_Out(rid, True))
        return out


@pytest.mark.parametrize("concurrency,peak", [(None, 10), (3, 3), (1, 1), (50, 10)])
def test_refill_keeps_concurrency_in_flight(concurrency, peak):
    core = FakeCore()
    steps, finished = [], []
    outputs, finish_wall, wall, lateness = drive(core, list(range(10)), [None] * 10, "t", concurrency,
                                                 on_step=steps.append, on_finish=finished.append)
    assert sorted(outputs) == list(range(10)) and sorted(finish_wall) == list(range(10))
    assert core.peak == peak  # never more in flight than asked, and refilled up to it
    assert core.added == [f"t-{i}" for i in range(10)]  # submitted in order
    assert len(finished) == 10 and wall >= 0 and steps == sorted(steps)
    # with c in flight and 2 steps each, the batch takes ceil(10 / c) x 2 steps
    assert len(steps) == -(-10 // peak) * 2
    assert lateness == []  # no arrival schedule


def test_arrivals_are_honoured():
    """Each request is added no earlier than its arrival time, and (an idle engine) within a millisecond or two."""
    offsets = arrival_offsets(20, rate=200.0, burstiness=1.0, seed=3)
    core = FakeCore()
    added_at: list[float] = []
    t0 = time.perf_counter()
    original = core.add_request

    def add_request(rid, prompt, params):
        added_at.append(time.perf_counter() - t0)
        return original(rid, prompt, params)

    core.add_request = add_request
    outputs, _, wall, lateness = drive(core, list(range(20)), [None] * 20, "t", None, arrivals=offsets)
    assert sorted(outputs) == list(range(20)) and len(lateness) == 20
    assert all(a >= o - 1e-6 for a, o in zip(added_at, offsets))
    assert sorted(lateness)[10] < 0.005 and max(lateness) < 0.05 and wall >= offsets[-1]  # loose: shared CPUs


def test_gamma_gaps_have_the_asked_mean_and_spread():
    for rate, burst in ((5.0, 1.0), (50.0, 0.5), (20.0, 4.0)):
        t = arrival_offsets(4000, rate, burst, seed=0)
        gaps = [b - a for a, b in zip(t, t[1:])]
        mean = sum(gaps) / len(gaps)
        cv2 = sum((g - mean) ** 2 for g in gaps) / len(gaps) / mean**2
        assert mean == pytest.approx(1 / rate, rel=0.05)
        assert cv2 == pytest.approx(1 / burst, rel=0.15)  # gamma: squared coefficient of variation = 1/shape
    assert arrival_offsets(5, float("inf")) is None and arrival_offsets(5, None) is None
    assert arrival_offsets(50, 10.0, seed=1) == arrival_offsets(50, 10.0, seed=1)  # seeded


def _replica(rank: int, window: tuple[float, float], n_req: int, out_tokens: int) -> RunResult:
    base = RunResult.load(ROOT / "docs" / "results" / "h100-run" / "run-10x64-512.json")
    reqs = [q.model_copy(update={"repeat": 0, "output_tokens": out_tokens, "input_tokens": 64, "replica": rank})
            for q in base.requests[:n_req]]
    tp = base.throughput.repeats[0].model_copy(update={"prefill_tokens_per_s": 100.0 * (rank + 1),
                                                       "decode_tokens_per_s": 10.0 * (rank + 1)})
    return base.model_copy(update={
        "requests": reqs, "parallel": {**(base.parallel or {}), "world_size": 1, "replica": rank,
                                       "windows_wall_s": [list(window)]},
        "throughput": base.throughput.model_copy(update={"repeats": [tp]}),
        "workload": base.workload.model_copy(update={"num_prompts": n_req, "total_input_tokens": 64 * n_req,
                                                     "total_output_tokens": out_tokens * n_req}),
        "kv_cache": base.kv_cache.model_copy(update={"capacity_tokens": 1000 * (rank + 1), "preemptions": rank})})


def test_replica_aggregation_over_the_union_of_windows():
    a, b = _replica(0, (100.0, 110.0), 4, 50), _replica(1, (102.0, 112.0), 6, 50)
    r = aggregate_replicas([a, b.model_dump()])
    t = r.throughput.repeats[0]
    assert t.duration_s == pytest.approx(12.0)  # 100 .. 112
    assert t.output_tokens_per_s == pytest.approx(10 * 50 / 12.0)
    assert t.total_tokens_per_s == pytest.approx(10 * (50 + 64) / 12.0)
    assert t.prefill_tokens_per_s == pytest.approx(300.0) and t.decode_tokens_per_s == pytest.approx(30.0)
    assert r.workload.num_prompts == 10 and r.workload.total_output_tokens == 500
    assert [q.replica for q in r.requests] == [0] * 4 + [1] * 6
    par = r.parallel
    assert par["data_parallel_size"] == 2 and par["kv_capacity_tokens_per_replica"] == [1000, 2000]
    assert par["kv_capacity_tokens_total"] == 3000 and "windows_wall_s" not in par and "replica" not in par
    assert r.kv_cache.preemptions == 1 and r.roofline is None


def test_steady_window_from_recorded_steps():
    from offline_bench.engine.steps import steady_window

    r = RunResult.load(ROOT / "docs" / "results" / "h100-predict" / "calibration.json.gz")
    start, end, tokens = steady_window(r.steps)
    assert 0 < start < end < r.steps.t_s[-1]
    steady = tokens / (end - start)
    assert steady > r.throughput.output_tokens_per_s  # ramp-up and drain excluded
    # a pass that ramps up and drains at once has no plateau
    ramp = r.steps.model_copy(update={"running": list(range(1, len(r.steps.t_s) + 1))})
    assert steady_window(ramp) is None
