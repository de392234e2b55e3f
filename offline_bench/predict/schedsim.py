"""A replay of vLLM v1's scheduler (vllm/v1/core/sched/scheduler.py, 0.26-0.32), step by step, with a step-cost
function for the clock.

What it follows: FCFS; each step a token budget of max_num_batched_tokens, spent first on the running requests
(a decode takes 1 token, an unfinished prompt the rest of it, chunked to the budget), then on waiting requests
in order while fewer than max_num_seqs run; a waiting request is admitted only if its whole sequence fits in the
free blocks (`scheduler_reserve_full_isl`, the default) and no request was preempted this step; KV blocks of
block_size are allocated as tokens are computed (one block is vLLM's reserved null block); when a running
request needs a block and none is free, the most recently admitted running request is preempted by recompute
(its blocks freed, its computed tokens reset, back to the front of the queue) until the block fits.

Where it simplifies: no prefix-cache hits (prompts are treated as distinct), no async-scheduling overlap or
speculative decoding, no waiting on the front end (tokenisation, detokenisation): the step-cost fit absorbs
their average cost; requests all arrive at t=0, or, with `concurrency`, one as another finishes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SimRequest:
    prompt: int
    output: int
    arrival_s: float = 0.0
    computed: int = 0
    generated: int = 0
    blocks: int = 0
    preemptions: int = 0
    scheduled_s: float | None = None
    first_s: float | None = None
    finish_s: float | None = None

    @property
    def tokens(self) -> int:
        return self.prompt + self.generated


@dataclass
class SimResult:
    requests: list[SimRequest]
    duration_s: float
    steps: int
    preemptions: int
    peak_usage_pct: float
    timeline: list[dict[str, float]] = field(default_factory=list)
    uncaptured_decode_steps: int = 0  # decode-only steps above the largest CUDA graph (`graph_tokens`)


SHORT = "short"  # _decode_stretch's answer when the free blocks do not last two steps


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


class _Scheduler:
    def __init__(self, num_blocks: int, block_size: int, max_batched: int, max_seqs: int, max_model_len: int):
        self.free = num_blocks - 1  # vLLM keeps one null block
        self.usable = max(1, num_blocks - 1)
        self.bs, self.budget0, self.max_seqs, self.mml = block_size, max_batched, max_seqs, max_model_len
        self.running: list[SimRequest] = []
        self.waiting: deque[SimRequest] = deque()
        self.preemptions = 0

    def _preempt(self, r: SimRequest) -> None:
        self.free += r.blocks
        r.blocks, r.computed = 0, 0
        r.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(r)

    def schedule(self, now: float) -> list[tuple[SimRequest, int]]:
        budget, out, preempted = self.budget0, [], False
        i = 0
        while i < len(self.running) and budget > 0:
            r = self.running[i]
            need = min(r.tokens - r.computed, budget)
            want = _cdiv(r.computed + need, self.bs) - r.blocks
            self_preempted = False
            while want > self.free:
                victim = self.running.pop()  # FCFS: the most recently admitted goes first
                self._preempt(victim)
                preempted = True
                if victim is r:
                    self_preempted = True
                    break
            if self_preempted:
                break  # r was the last running request: nothing after it is left
            self.free -= want
            r.blocks += want
            out.append((r, need))
            budget -= need
            i += 1
        while not preempted and self.waiting and budget > 0 and len(self.running) < self.max_seqs:
            r = self.waiting[0]
            if _cdiv(min(r.tokens, self.mml), self.bs) - r.blocks > self.free:
                break  # the whole sequence must fit before admission
            need = min(r.tokens - r.computed, budget)
            want = _cdiv(r.computed + need, self.bs) - r.blocks
            self.waiting.popleft()
            self.free -= want
            r.blocks += want
            if r.scheduled_s is None:
                r.scheduled_s = now
            self.running.append(r)
            out.append((r, need))
            budget -= need
        return out


class _Arrivals:
    """Requests reaching the scheduler: all at t=0, one per finished request (`concurrency`), or on an arrival
    schedule (`offsets_s` from the first step's start), at most `concurrency` in flight."""

    def __init__(self, reqs: list[SimRequest], concurrency: int | None, offsets_s: list[float] | None,
                 start_s: float) -> None:
        self.cap = len(reqs) if concurrency is None else max(1, min(concurrency, len(reqs)))
        self.timed = offsets_s is not None
        for r, off in zip(reqs, offsets_s or [0.0] * len(reqs)):
            r.arrival_s = start_s + off if self.timed else 0.0
        self.future = deque(reqs)  # not arrived yet (or, untimed, not admitted yet)
        self.held: deque[SimRequest] = deque()  # arrived, over the in-flight cap
        self.in_flight = 0
        self.opened = False  # the first admission: every closed-loop request in it arrived at t=0

    def admit(self, sched: _Scheduler, now: float) -> None:
        while self.future and (not self.timed or self.future[0].arrival_s <= now):
            r = self.future.popleft()
            if not self.timed and self.in_flight + len(self.held) >= self.cap:
                self.future.appendleft(r)
                break
            if not self.timed and self.opened:
                r.arrival_s = now  # a closed loop: it arrives as another finishes
            self.held.append(r)
        self.opened = True
        while self.held and self.in_flight < self.cap:
            sched.waiting.append(self.held.popleft())
            self.in_flight += 1

    def next_arrival(self) -> float | None:
        return self.future[0].arrival_s if self.timed and self.future else None


def simulate(requests: list[tuple[int, int]], num_blocks: int, block_size: int, max_num_batched_tokens: int,
             max_num_seqs: int, max_model_len: int, step_ms: Callable[[int, int, int, bool], float],
             concurrency: int | None = None, timeline_interval_s: float = 0.05, start_s: float = 0.0,
             graph_tokens: int = 0, arrivals_s: list[float] | None = None, fast: bool = True) -> SimResult:
    """Replay (prompt tokens, output tokens) requests; `step_ms(prefill_tokens, kv_tokens, decoding requests,
    uncaptured)` times each step (uncaptured: a decode-only step of more requests than `graph_tokens`, vLLM's
    largest CUDA graph, 0 for none known); the first step begins at `start_s`; `arrivals_s`: each request's
    arrival, in seconds after `start_s` (None: all at once, or one per finished request with `concurrency`).
    `fast`: replay stretches of pure-decode steps in one go (the same answer, minus a timeline sample's KV use
    inside a stretch; `fast=False` steps through them one by one)."""
    reqs = [SimRequest(prompt=p, output=max(1, o)) for p, o in requests]
    sched = _Scheduler(num_blocks, block_size, max_num_batched_tokens, max_num_seqs, max_model_len)
    for r in reqs:
        if _cdiv(min(r.prompt + r.output, max_model_len), block_size) > sched.usable:
            raise ValueError(f"a request of {r.prompt} + {r.output} tokens needs more KV blocks than the "
                             f"{sched.usable} the cache has")
    flow = _Arrivals(reqs, concurrency, arrivals_s, start_s)
    now, steps, peak, timeline, next_sample, unc_decode = start_s, 0, 0.0, [], 0.0, 0
    done, short_at = 0, -1
    flow.admit(sched, now)
    while done < len(reqs):
        if fast and sched.free > short_at:
            jump = _decode_stretch(sched, step_ms, now, flow.next_arrival(), graph_tokens, next_sample,
                                   timeline_interval_s)
            if jump == SHORT:  # blocks run short within 2 steps: no stretch until some are freed
                short_at = sched.free
            elif jump is not None:
                j, now, samples = jump
                steps += j
                unc_decode += j if 0 < graph_tokens < len(sched.running) else 0
                peak = max(peak, 100.0 * (1.0 - sched.free / sched.usable))
                for t, usage in samples:
                    timeline.append({"t_s": round(t, 4), "running": float(len(sched.running)),
                                     "waiting": float(len(sched.waiting)), "kv_usage_pct": round(usage, 3)})
                    next_sample = t + timeline_interval_s
                flow.admit(sched, now)
                continue
        batch = sched.schedule(now)
        if not batch:
            nxt = flow.next_arrival()
            if nxt is None:
                raise RuntimeError("the simulated scheduler stalled (no request fits): report this with the inputs")
            now = max(now, nxt)  # idle until the next request arrives
            flow.admit(sched, now)
            continue
        decoding = [r for r, n in batch if r.generated and n == 1 and r.computed == r.tokens - 1]
        prefill = sum(n for _, n in batch) - len(decoding)
        kv = sum(r.computed for r in decoding)
        uncaptured = not prefill and 0 < graph_tokens < len(decoding)  # a decode step too big for a CUDA graph
        now += step_ms(prefill, kv, len(decoding), uncaptured) / 1000.0
        steps += 1
        unc_decode += uncaptured
        done += _advance(sched, flow, batch, now)
        flow.admit(sched, now)
        usage = 100.0 * (1.0 - sched.free / sched.usable)
        peak = max(peak, usage)
        if now >= next_sample:
            timeline.append({"t_s": round(now, 4), "running": float(len(sched.running)),
                             "waiting": float(len(sched.waiting)), "kv_usage_pct": round(usage, 3)})
            next_sample = now + timeline_interval_s
    return SimResult(requests=reqs, duration_s=now, steps=steps, preemptions=sched.preemptions,
                     peak_usage_pct=round(peak, 3), timeline=timeline, uncaptured_decode_steps=unc_decode)


def _advance(sched: _Scheduler, flow: _Arrivals, batch: list[tuple[SimRequest, int]], now: float) -> int:
    """The step's tokens computed: first tokens and finishes stamped, finished requests' blocks freed; the count
    of requests finished."""
    finished = 0
    for r, n in batch:
        r.computed += n
        if r.computed < r.tokens:
            continue  # a prompt chunk: no token yet
        r.generated += 1
        if r.first_s is None:
            r.first_s = now
        if r.generated >= r.output:
            r.finish_s = now
            sched.free += r.blocks
            r.blocks = 0
            sched.running.remove(r)
            flow.in_flight -= 1
            finished += 1
    return finished


def _decode_stretch(sched: _Scheduler, step_ms: Callable[[int, int, int, bool], float], now: float,
                    next_arrival: float | None, graph_tokens: int, next_sample: float,
                    interval_s: float) -> tuple[int, float, list[tuple[float, float]]] | str | None:
    """Steps in which nothing but decoding can happen, replayed at once: every running request decodes one token a
    step, none finishes, no block runs short and no waiting request can be admitted (the free blocks only shrink).
    Stops after the step that reaches the next arrival. (steps, the clock after them, the timeline samples due
    (time, KV use %)), or None when fewer than 2 such steps lie ahead (the caller steps normally), SHORT when that is
    because the free blocks run out."""
    run = sched.running
    n = len(run)
    if not n or n > sched.budget0 or any(not r.generated or r.computed != r.tokens - 1 for r in run):
        return None
    k = min(r.output - r.generated for r in run) - 1  # the step where a request finishes is stepped normally
    if k < 2:
        return None
    bs = sched.bs

    def blocks_for(j: int) -> int:  # blocks the running requests add over j steps
        return sum(max(0, _cdiv(r.computed + j, bs) - r.blocks) for r in run)

    if sched.waiting and n < min(sched.max_seqs, sched.budget0):  # admission stays refused only if refused now
        head = sched.waiting[0]
        if _cdiv(min(head.tokens, sched.mml), bs) - head.blocks <= sched.free - blocks_for(1):
            return None
    if sched.free < n * (k // bs + 1) and blocks_for(k) > sched.free:
        # the most steps whose blocks fit (a shortage means preemption: step normally)
        if blocks_for(2) > sched.free:
            return SHORT
        lo, hi = 2, k
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if blocks_for(mid) <= sched.free else (lo, mid - 1)
        k = lo
        if k < 2:
            return None
    uncaptured = 0 < graph_tokens < n
    kv0, used0 = sum(r.computed for r in run), sched.usable - sched.free
    samples: list[tuple[float, float]] = []
    j = 0
    while j < k:
        now += step_ms(0, kv0 + j * n, n, uncaptured) / 1000.0
        j += 1
        if now >= next_sample:
            samples.append((now, 100.0 * (used0 + blocks_for(j)) / sched.usable))
            next_sample = now + interval_s
        if next_arrival is not None and now >= next_arrival:
            break
    grown = blocks_for(j)
    for r in run:
        r.computed += j
        r.generated += j
        r.blocks = max(r.blocks, _cdiv(r.computed, bs))
    sched.free -= grown
    return j, now, samples
