"""The cost of one engine step, fitted on the steps a `run` recorded (RunResult.steps).

    step_ms = fixed_ms + per_prefill_token_ms x prompt tokens scheduled + per_decode_token_ms x decoding requests
              + per_kv_token_ms x KV tokens the decoding requests attend to

Why this form: decode steps read the weights once (the fixed part), do every decoding token's matmuls (the
per-decode-token part) and read every decoding request's KV (the KV part); prefill costs per token. In a batch of
equal-length requests the per-decode-token and KV terms are collinear, so the fit cannot tell them apart; left
to the KV term alone, a run whose batch is smaller for the same KV (a preempting one: fewer requests fit, each
at its full context) came out 6% slower per decode step than modelled. So the per-decode-token cost is anchored
on physics: a decoded token does the same matmuls as a prompt token, so it costs the fitted per-prompt-token cost
times the matmul share of a prompt token's FLOPs (`decode_share`). On the H100 runs a free fit of that term,
where batch sizes vary, gives 0.020-0.026 ms against 0.0218 anchored.

How it is fitted: step durations are the gaps between the engine core's step timestamps (so they include
scheduling and output handling, as the wall time does). When the run's decode steps cover several batch sizes
(at least MIN_GROUPS groups of 16 requests with MIN_GROUP_STEPS steps each), the line through the groups' median
durations gives the fixed and per-KV-token costs. A batch run mostly decodes one batch size, which cannot tell a
fixed cost from a per-KV-token one; then the fixed cost is the time to read the weights once at the GPU's
datasheet bandwidth (decode's roofline) and the KV cost is what the decode steps took beyond it. The
per-prefill-token cost is what the steps with prompt tokens took beyond the decode part.
"""

from __future__ import annotations

import itertools
from statistics import median

from pydantic import BaseModel

from offline_bench.results.run import StepTrace

MIN_STEPS = 8
MIN_GROUPS, MIN_GROUP_STEPS = 3, 5


class StepModel(BaseModel):
    fixed_ms: float
    per_prefill_token_ms: float
    per_kv_token_ms: float
    per_decode_token_ms: float = 0.0  # older predictions: folded into per_kv_token_ms
    # vLLM runs a decode step of more requests than its largest CUDA graph (graph_tokens) without one: such a step
    # costs uncaptured_ms more (fitted when the calibration ran enough of them; None: it ran none, cost unknown)
    graph_tokens: int = 0
    uncaptured_ms: float | None = None
    steps_fitted: int
    total_error_pct: float  # sum of modelled step times vs the measured sum, over the fitted steps
    median_step_error_pct: float  # median |modelled - measured| / measured per step
    start_ms: float = 0.0  # the first step's time beyond the model: the front end still submitting requests
    kv_scale: float = 1.0  # the KV bytes' ratio when the KV dtype differs from the calibration's
    # the share of per_kv_token_ms that is reading the KV bytes at the GPU's bandwidth (scaled by kv_scale); the
    # rest is the math of a decoding token (matmuls, attention, dequantisation), which its bytes do not change
    kv_read_share: float = 1.0
    fixed_basis: str = "fitted"  # or "weights read at datasheet bandwidth"

    def step_ms(self, prefill_tokens: int, kv_tokens: int, decode_tokens: int = 0, uncaptured: bool = False) -> float:
        per_kv = self.per_kv_token_ms * (self.kv_read_share * self.kv_scale + 1.0 - self.kv_read_share)
        return self.fixed_ms + self.per_prefill_token_ms * prefill_tokens + per_kv * kv_tokens + \
            self.per_decode_token_ms * decode_tokens + ((self.uncaptured_ms or 0.0) if uncaptured else 0.0)


def durations_ms(steps: StepTrace) -> list[float]:
    """Each step's duration: the gap to the previous step's timestamp (the first from the pass's start)."""
    t = steps.t_s
    return [1000.0 * (t[i] - (t[i - 1] if i else 0.0)) for i in range(len(t))]


TOP_BATCH_SHARE = 0.7  # "the run's full batch": pure-decode steps with at least this share of the largest one


def full_batch_decode_step(steps: StepTrace) -> tuple[float, float, int] | None:
    """(median step ms, mean decoding requests, steps) over the pure-decode steps (no prompt tokens) of the run's
    full batch -- at least TOP_BATCH_SHARE of its largest decode batch; None with fewer than MIN_STEPS of them.
    Step times are timestamp gaps, so scheduling and output handling count, as they do in the wall time."""
    durations = durations_ms(steps)
    decode = [i for i in range(1, len(durations)) if steps.ctx_tokens[i] == 0 and steps.gen_reqs[i] > 0]
    if not decode:
        return None
    top = TOP_BATCH_SHARE * max(steps.gen_reqs[i] for i in decode)
    full = [i for i in decode if steps.gen_reqs[i] >= top]
    if len(full) < MIN_STEPS:
        return None
    return median(durations[i] for i in full), sum(steps.gen_reqs[i] for i in full) / len(full), len(full)


def _nnls(rows: list[list[float]], y: list[float]) -> list[float]:
    """Least squares with non-negative coefficients, for 2 unknowns: every active set, keep the best valid."""
    k = len(rows[0])
    best: tuple[float, list[float]] | None = None
    for r in range(1, k + 1):
        for sub in itertools.combinations(range(k), r):
            coef = _lstsq([[row[j] for j in sub] for row in rows], y)
            if coef is None or any(c < 0 for c in coef):
                continue
            full = [0.0] * k
            for j, c in zip(sub, coef):
                full[j] = c
            res = sum((sum(a * b for a, b in zip(row, full)) - v) ** 2 for row, v in zip(rows, y))
            if best is None or res < best[0]:
                best = (res, full)
    return best[1] if best else [0.0] * k


def _lstsq(rows: list[list[float]], y: list[float]) -> list[float] | None:
    """Normal equations for 1 or 2 unknowns (all this module needs)."""
    k = len(rows[0])
    ata = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    aty = [sum(r[i] * v for r, v in zip(rows, y)) for i in range(k)]
    if k == 1:
        return [aty[0] / ata[0][0]] if ata[0][0] else None
    det = ata[0][0] * ata[1][1] - ata[0][1] * ata[1][0]
    if abs(det) < 1e-12 * max(1.0, abs(ata[0][0] * ata[1][1])):
        return None
    return [(aty[0] * ata[1][1] - aty[1] * ata[0][1]) / det, (ata[0][0] * aty[1] - ata[1][0] * aty[0]) / det]


def fit(steps: StepTrace, weights_read_ms: float | None = None, decode_share: float = 0.0,
        graph_tokens: int = 0) -> StepModel:
    """Fit the step cost on a run's recorded steps (the first step, which includes the requests' arrival, is
    left out). `weights_read_ms`: one read of the weights at the GPU's bandwidth, the fixed cost's anchor when the
    run's batch sizes cannot separate it (None: fit it regardless). `decode_share`: a decoded token's cost as a
    share of a prompt token's (0: no per-decode-token term). `graph_tokens`: the run's largest CUDA graph (0: none
    known): decode steps above it are fitted apart, as an extra cost per step."""
    dur = durations_ms(steps)
    idx = [i for i in range(1, len(dur)) if dur[i] > 0]
    if len(idx) < MIN_STEPS:
        raise ValueError(f"only {len(idx)} engine steps recorded; predict needs at least {MIN_STEPS}")
    # decode-only steps too big for a CUDA graph (steps with prompt tokens: in the per-prompt-token cost, as the
    # calibration's own prompt chunks, thousands of tokens, never fit one either)
    unc = [steps.ctx_tokens[i] == 0 and 0 < graph_tokens < steps.gen_reqs[i] for i in range(len(dur))]
    decode = [i for i in idx if steps.ctx_tokens[i] == 0 and steps.gen_reqs[i] > 0]
    captured = [i for i in decode if not unc[i]]
    apart = [i for i in decode if unc[i]] if len(captured) >= MIN_STEPS else []
    base = captured if apart else decode
    prefill = [i for i in idx if steps.ctx_tokens[i] > 0]
    per_req, extra, basis = 0.0, 0.0, "fitted"
    for _ in range(6 if decode_share or apart else 1):  # the terms depend on each other: iterate
        left = [dur[i] - per_req * steps.gen_reqs[i] - (extra if unc[i] else 0.0) for i in range(len(dur))]
        fixed, per_kv, basis = _decode_terms(steps, base, left, weights_read_ms)
        extra_ms = sum(left[i] - fixed - per_kv * steps.decode_ctx_tokens[i] for i in prefill)
        tokens = sum(steps.ctx_tokens[i] for i in prefill)
        per_tok = max(0.0, extra_ms / tokens) if tokens else 0.0
        per_req = per_tok * decode_share
        if len(apart) >= MIN_STEPS:
            extra = max(0.0, median(dur[i] - fixed - per_kv * steps.decode_ctx_tokens[i] - per_req * steps.gen_reqs[i]
                                    for i in apart))
    model = StepModel(fixed_ms=round(fixed, 6), per_prefill_token_ms=round(per_tok, 9),
                      per_kv_token_ms=round(per_kv, 12), per_decode_token_ms=round(per_req, 9),
                      graph_tokens=graph_tokens, uncaptured_ms=round(extra, 4) if len(apart) >= MIN_STEPS else None,
                      steps_fitted=len(idx), total_error_pct=0.0, median_step_error_pct=0.0, fixed_basis=basis)
    if not apart and any(unc[i] for i in decode):
        model.uncaptured_ms = 0.0  # every decode step ran uncaptured: the fit holds their cost already
    pred = [model.step_ms(steps.ctx_tokens[i], steps.decode_ctx_tokens[i], steps.gen_reqs[i], unc[i]) for i in idx]
    meas = [dur[i] for i in idx]
    model.start_ms = round(max(0.0, dur[0] - model.step_ms(steps.ctx_tokens[0], steps.decode_ctx_tokens[0],
                                                           steps.gen_reqs[0], unc[0])), 3)
    model.total_error_pct = round(100.0 * (sum(pred) / sum(meas) - 1.0), 3)
    model.median_step_error_pct = round(100.0 * median(abs(p - m) / m for p, m in zip(pred, meas)), 3)
    return model


def _decode_terms(steps: StepTrace, decode: list[int], left: list[float],
                  weights_read_ms: float | None) -> tuple[float, float, str]:
    """(fixed ms, per-KV-token ms, basis) from the pure-decode steps' times `left` after the per-decode-token part:
    a line through batch-size groups when the run has several, else the fixed cost anchored on the weights read."""
    groups: dict[int, list[int]] = {}
    for i in decode:  # batch sizes in groups of 16 requests
        groups.setdefault(steps.gen_reqs[i] // 16, []).append(i)
    pts = [(median(steps.decode_ctx_tokens[i] for i in g), median(left[i] for i in g)) for g in groups.values()]
    wide = sum(len(g) >= MIN_GROUP_STEPS for g in groups.values()) >= MIN_GROUPS
    kv_sum = sum(steps.decode_ctx_tokens[i] for i in decode)
    if weights_read_ms is not None and not wide and kv_sum:
        fixed = weights_read_ms
        return fixed, max(0.0, sum(left[i] - fixed for i in decode) / kv_sum), "weights read at datasheet bandwidth"
    if len(pts) >= 2:
        fixed, per_kv = _nnls([[1.0, kv] for kv, _ in pts], [d for _, d in pts])
        return fixed, per_kv, "fitted"
    return (median(left[i] for i in decode) if decode else 0.0), 0.0, "fitted"
