"""Pure statistics: distributions that keep their raw values, confidence intervals, interval unions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

# two-sided 95% Student-t quantiles for df = 1..30; above that the normal 1.96 is within 2%
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default 'linear' method) of already sorted values."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class Distribution(BaseModel):
    """Summary of one latency metric; raw values live in the result's per-request records."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    min: float | None

    @classmethod
    def from_values(cls, values: Iterable[float | None]) -> Distribution:
        vals = sorted(v for v in values if v is not None and not math.isnan(v))
        if not vals:
            return cls(count=0, mean=None, p50=None, p90=None, p99=None, max=None, min=None)
        return cls(count=len(vals), mean=sum(vals) / len(vals), p50=percentile(vals, 50),
                   p90=percentile(vals, 90), p99=percentile(vals, 99), max=vals[-1], min=vals[0])


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Prometheus' histogram_quantile: `buckets` are (upper bound, cumulative count) in rising order, the last
    bound +inf; the value is interpolated linearly inside the bucket that holds rank q x count (a +inf bucket
    answers with the largest finite bound)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def distribution_from_histogram(buckets: Sequence[tuple[float, float]], total: float, scale: float = 1.0
                                ) -> Distribution | None:
    """A Distribution from cumulative histogram buckets and the sum of the observations (no max/min: a
    histogram does not keep them); values multiplied by `scale` (e.g. 1000 for seconds -> ms)."""
    n = buckets[-1][1] if buckets else 0
    if not n:
        return None
    qs = [histogram_quantile(buckets, q) for q in (0.5, 0.9, 0.99)]
    return Distribution(count=int(n), mean=total / n * scale, p50=qs[0] * scale, p90=qs[1] * scale,
                        p99=qs[2] * scale, max=None, min=None)


class MeanCI(BaseModel):
    """Mean over repeats with a 95% Student-t confidence interval (None bounds for a single repeat)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @classmethod
    def from_values(cls, values: Sequence[float]) -> MeanCI:
        n = len(values)
        if n == 0:
            raise ValueError("mean of no values")
        mean = sum(values) / n
        if n == 1:
            return cls(mean=mean, low=None, high=None, n=1)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
        half = t * sd / math.sqrt(n)
        return cls(mean=mean, low=mean - half, high=mean + half, n=n)


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total time covered by at least one interval (overlaps counted once)."""
    total = 0.0
    cur_start = cur_end = None
    for start, end in sorted((s, e) for s, e in intervals if e > s):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total
