"""The cost of one engine step, fitted on the steps a `run` recorded (RunResult.steps).

    step_ms = fixed_ms + per_prefill_token_ms x prompt tokens scheduled + per_kv_token_ms x KV tokens decoding
                                                                          requests attend to

Why this form: decode steps read the weights once (the fixed part) plus every decoding request's KV (the KV
part); prefill costs per token. A per-request term was tried: in a batch of equal-length requests it is
collinear with the KV term and the fit cannot tell them apart, so it is left out.

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
    steps_fitted: int
    total_error_pct: float  # sum of modelled step times vs the measured sum, over the fitted steps
    median_step_error_pct: float  # median |modelled - measured| / measured per step
    start_ms: float = 0.0  # the first step's time beyond the model: the front end still submitting requests
    kv_scale: float = 1.0  # the KV bytes' ratio when the KV dtype differs from the calibration's
    # the share of per_kv_token_ms that is reading the KV bytes at the GPU's bandwidth (scaled by kv_scale); the
    # rest is the math of a decoding token (matmuls, attention, dequantisation), which its bytes do not change
    kv_read_share: float = 1.0
    fixed_basis: str = "fitted"  # or "weights read at datasheet bandwidth"

    def step_ms(self, prefill_tokens: int, kv_tokens: int) -> float:
        per_kv = self.per_kv_token_ms * (self.kv_read_share * self.kv_scale + 1.0 - self.kv_read_share)
        return self.fixed_ms + self.per_prefill_token_ms * prefill_tokens + per_kv * kv_tokens


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


def fit(steps: StepTrace, weights_read_ms: float | None = None) -> StepModel:
    """Fit the step cost on a run's recorded steps (the first step, which includes the requests' arrival, is
    left out). `weights_read_ms`: one read of the weights at the GPU's bandwidth, the fixed cost's anchor when the
    run's batch sizes cannot separate it (None: fit it regardless)."""
    dur = durations_ms(steps)
    idx = [i for i in range(1, len(dur)) if dur[i] > 0]
    if len(idx) < MIN_STEPS:
        raise ValueError(f"only {len(idx)} engine steps recorded; predict needs at least {MIN_STEPS}")
    decode = [i for i in idx if steps.ctx_tokens[i] == 0 and steps.gen_reqs[i] > 0]
    groups: dict[int, list[int]] = {}
    for i in decode:  # batch sizes in groups of 16 requests
        groups.setdefault(steps.gen_reqs[i] // 16, []).append(i)
    pts = [(median(steps.decode_ctx_tokens[i] for i in g), median(dur[i] for i in g)) for g in groups.values()]
    wide = sum(len(g) >= MIN_GROUP_STEPS for g in groups.values()) >= MIN_GROUPS
    basis = "fitted"
    kv_sum = sum(steps.decode_ctx_tokens[i] for i in decode)
    if weights_read_ms is not None and not wide and kv_sum:
        fixed, basis = weights_read_ms, "weights read at datasheet bandwidth"
        per_kv = max(0.0, sum(dur[i] - fixed for i in decode) / kv_sum)
    elif len(pts) >= 2:
        fixed, per_kv = _nnls([[1.0, kv] for kv, _ in pts], [d for _, d in pts])
    else:
        fixed, per_kv = (median(dur[i] for i in decode) if decode else 0.0), 0.0
    prefill = [i for i in idx if steps.ctx_tokens[i] > 0]
    extra = sum(dur[i] - fixed - per_kv * steps.decode_ctx_tokens[i] for i in prefill)
    tokens = sum(steps.ctx_tokens[i] for i in prefill)
    per_tok = max(0.0, extra / tokens) if tokens else 0.0
    model = StepModel(fixed_ms=round(fixed, 6), per_prefill_token_ms=round(per_tok, 9),
                      per_kv_token_ms=round(per_kv, 12), steps_fitted=len(idx), total_error_pct=0.0,
                      median_step_error_pct=0.0, fixed_basis=basis)
    pred = [model.step_ms(steps.ctx_tokens[i], steps.decode_ctx_tokens[i]) for i in idx]
    meas = [dur[i] for i in idx]
    model.start_ms = round(max(0.0, dur[0] - model.step_ms(steps.ctx_tokens[0], steps.decode_ctx_tokens[0])), 3)
    model.total_error_pct = round(100.0 * (sum(pred) / sum(meas) - 1.0), 3)
    model.median_step_error_pct = round(100.0 * median(abs(p - m) / m for p, m in zip(pred, meas)), 3)
    return model
