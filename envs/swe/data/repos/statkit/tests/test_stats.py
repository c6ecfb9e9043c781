import math

import pytest
from statkit import (
    StatsError,
    correlation,
    covariance,
    histogram,
    linear_fit,
    mean,
    median,
    modes,
    moving_average,
    quantile,
    ranks,
    stdev,
    variance,
    zscores,
)


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5
    assert mean([-1.5]) == -1.5
    with pytest.raises(StatsError, match="at least 1"):
        mean([])


def test_median_odd_and_even():
    assert median([3, 1, 2]) == 2
    assert median([5, 1, 3, 2]) == 2.5
    assert median([7]) == 7


def test_modes():
    assert modes([1, 2, 2, 3, 3]) == [2, 3]
    assert modes([4, 4, 1]) == [4]
    assert modes([9, 8]) == [8, 9]


@pytest.mark.parametrize(
    ("q", "expected"), [(0.0, 1.0), (0.25, 1.75), (0.5, 2.5), (0.9, 3.7), (1.0, 4.0)]
)
def test_quantile_interpolates(q, expected):
    assert quantile([4, 1, 3, 2], q) == pytest.approx(expected)


def test_quantile_edge_cases():
    assert quantile([5], 0.3) == 5
    with pytest.raises(StatsError):
        quantile([1, 2], 1.5)
    with pytest.raises(StatsError):
        quantile([1, 2], -0.1)


def test_variance_and_stdev():
    data = [2, 4, 4, 4, 5, 5, 7, 9]
    assert variance(data, sample=False) == 4.0
    assert variance(data) == pytest.approx(32 / 7)
    assert stdev(data, sample=False) == 2.0
    assert stdev(data) == pytest.approx(math.sqrt(32 / 7))
    with pytest.raises(StatsError):
        variance([1])
    assert variance([3], sample=False) == 0.0


def test_covariance():
    xs, ys = [1, 2, 3, 4], [2, 4, 6, 9]
    assert covariance(xs, ys) == pytest.approx(11.5 / 3)
    assert covariance(xs, ys, sample=False) == pytest.approx(11.5 / 4)
    with pytest.raises(StatsError, match="equal length"):
        covariance([1, 2], [1, 2, 3])


def test_correlation():
    assert correlation([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert correlation([1, 2, 3], [6, 4, 2]) == pytest.approx(-1.0)
    assert correlation([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    with pytest.raises(StatsError, match="constant"):
        correlation([1, 1, 1], [1, 2, 3])


def test_zscores():
    assert zscores([1, 2, 3]) == pytest.approx([-1.0, 0.0, 1.0])
    with pytest.raises(StatsError):
        zscores([2, 2, 2])


def test_linear_fit():
    assert linear_fit([0, 1, 2], [1, 3, 5]) == (2.0, 1.0)
    slope, intercept = linear_fit([1, 2, 3, 4], [6, 5, 7, 10])
    assert slope == pytest.approx(1.4)
    assert intercept == pytest.approx(3.5)
    with pytest.raises(StatsError, match="every x"):
        linear_fit([2, 2], [1, 5])
    with pytest.raises(StatsError):
        linear_fit([1], [1])


def test_moving_average():
    assert moving_average([1, 2, 3, 4, 5], 2) == [1.5, 2.5, 3.5, 4.5]
    assert moving_average([1, 2, 3, 4, 5], 5) == [3.0]
    assert moving_average([1, 2], 3) == []
    assert moving_average([4, 8], 1) == [4.0, 8.0]
    with pytest.raises(StatsError):
        moving_average([1, 2], 0)


def test_histogram():
    data = [0, 0.5, 1, 2.5, 3.9, 4, 5, -1]
    assert histogram(data, 4, 0, 4) == [2, 1, 1, 2]
    assert histogram([10], 2, 0, 10) == [0, 1]
    with pytest.raises(StatsError):
        histogram(data, 0, 0, 4)
    with pytest.raises(StatsError):
        histogram(data, 2, 4, 4)


def test_ranks_average_ties():
    assert ranks([10, 20, 30]) == [1.0, 2.0, 3.0]
    assert ranks([30, 10, 20]) == [3.0, 1.0, 2.0]
    assert ranks([1, 2, 2, 3]) == [1.0, 2.5, 2.5, 4.0]
    assert ranks([5, 5, 5]) == [2.0, 2.0, 2.0]
    assert ranks([]) == []
