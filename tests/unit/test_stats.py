import math

import pytest

from offline_bench.core.config import parse_goodput
from offline_bench.core.errors import BenchError
from offline_bench.results.build import throughput
from offline_bench.results.run import RequestRecord
from offline_bench.results.stats import Distribution, MeanCI, percentile, union_length


def test_percentile_matches_numpy_linear():
    vals = sorted([1.0, 2.0, 3.0, 4.0, 10.0])
    assert percentile(vals, 50) == 3.0
    assert percentile(vals, 90) == pytest.approx(7.6)  # numpy.percentile(..., 90) == 7.6
    assert percentile(vals, 100) == 10.0
    assert percentile([5.0], 99) == 5.0


def test_distribution_ignores_missing_values():
    d = Distribution.from_values([3.0, None, 1.0, 2.0, float("nan")])
    assert (d.count, d.mean, d.p50, d.max, d.min) == (3, 2.0, 2.0, 3.0, 1.0)
    empty = Distribution.from_values([None])
    assert empty.count == 0 and empty.mean is None


def test_mean_ci_uses_student_t():
    ci = MeanCI.from_values([10.0, 12.0, 14.0])
    sd = 2.0
    half = 4.303 * sd / math.sqrt(3)
    assert ci.mean == 12.0 and ci.low == pytest.approx(12 - half) and ci.high == pytest.approx(12 + half)
    single = MeanCI.from_values([5.0])
    assert single.low is None and single.n == 1


def test_union_length_counts_overlap_once():
    assert union_length([(0, 2), (1, 3), (5, 6)]) == 4
    assert union_length([(0, 1), (1, 2)]) == 2
    assert union_length([]) == 0
    assert union_length([(2, 1)]) == 0  # empty intervals are ignored


def test_goodput_counts_requests_meeting_every_slo():
    def rec(ttft, tpot, e2e):
        return RequestRecord(repeat=0, index=0, input_tokens=10, output_tokens=5, cached_tokens=0,
                             finish_reason="length", preemptions=0, queue_ms=0, prefill_ms=0, decode_ms=0,
                             ttft_ms=ttft, tpot_ms=tpot, e2e_ms=e2e)

    slo = parse_goodput(["ttft:500 tpot:50", "e2e:2000"])
    assert slo == {"ttft_ms": 500.0, "tpot_ms": 50.0, "e2e_ms": 2000.0}
    recs = [rec(100, 20, 1000), rec(600, 20, 1000), rec(100, 60, 1000), rec(100, None, 1999), rec(100, 20, 2001)]
    t = throughput(recs, wall_s=2.0, slo_ms=slo)
    assert t.goodput_requests_per_s == 1.0 and t.good_requests_pct == 40.0  # the 1st and the 4th (no TPOT)
    assert throughput(recs, wall_s=2.0).goodput_requests_per_s is None
    assert parse_goodput(["e2el:100"]) == {"e2e_ms": 100.0}
    for bad in ("ttft", "ttft:x", "speed:10", "tpot:-1"):
        with pytest.raises(BenchError, match="--goodput"):
            parse_goodput([bad])


def test_histogram_quantiles_interpolate_inside_buckets():
    from offline_bench.results.stats import distribution_from_histogram, histogram_quantile

    # 10 observations <= 0.01 s, 30 in (0.01, 0.02], 60 in (0.02, 0.05], none above
    b = [(0.01, 10.0), (0.02, 40.0), (0.05, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(b, 0.05) == pytest.approx(0.005)
    assert histogram_quantile(b, 0.5) == pytest.approx(0.02 + 0.03 * (50 - 40) / 60)
    assert histogram_quantile(b, 0.99) == pytest.approx(0.02 + 0.03 * (99 - 40) / 60)
    assert histogram_quantile([(0.01, 0.0), (float("inf"), 5.0)], 0.5) == 0.01  # only +Inf: the largest bound
    d = distribution_from_histogram(b, total=2.5, scale=1000.0)
    assert d.count == 100 and d.mean == pytest.approx(25.0) and d.p50 == pytest.approx(25.0) and d.max is None
    assert distribution_from_histogram([], 0.0) is None
