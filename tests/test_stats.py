import math

import pytest

from offline_bench.stats import Distribution, MeanCI, percentile, union_length


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
