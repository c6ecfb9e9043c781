"""Descriptive statistics on sequences of numbers."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


class StatsError(ValueError):
    """Data that a statistic is not defined for (too few values, zero variance...)."""


def _require(data: Sequence[float], at_least: int, name: str) -> None:
    if len(data) < at_least:
        raise StatsError(f"{name} needs at least {at_least} value(s), got {len(data)}")


def mean(data: Sequence[float]) -> float:
    _require(data, 1, "mean")
    return sum(data) / len(data)


def median(data: Sequence[float]) -> float:
    _require(data, 1, "median")
    ordered = sorted(data)
    middle = len(ordered) // 2
    if len(ordered) % 2 == 1:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def modes(data: Sequence[float]) -> list[float]:
    """Every most frequent value, in ascending order."""
    _require(data, 1, "modes")
    counts = Counter(data)
    best = max(counts.values())
    return sorted(value for value, count in counts.items() if count == best)


def quantile(data: Sequence[float], q: float) -> float:
    """The ``q``-quantile with linear interpolation between order statistics (R type 7)."""
    _require(data, 1, "quantile")
    if not 0.0 <= q <= 1.0:
        raise StatsError(f"quantile level must be in [0, 1], not {q}")
    ordered = sorted(data)
    position = q * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def variance(data: Sequence[float], *, sample: bool = True) -> float:
    """Sample variance (divides by n - 1) or population variance (by n)."""
    _require(data, 2 if sample else 1, "variance")
    centre = mean(data)
    squares = sum((x - centre) ** 2 for x in data)
    return squares / (len(data) - 1 if sample else len(data))


def stdev(data: Sequence[float], *, sample: bool = True) -> float:
    return math.sqrt(variance(data, sample=sample))


def covariance(xs: Sequence[float], ys: Sequence[float], *, sample: bool = True) -> float:
    if len(xs) != len(ys):
        raise StatsError(f"covariance needs sequences of equal length ({len(xs)} != {len(ys)})")
    _require(xs, 2 if sample else 1, "covariance")
    mx, my = mean(xs), mean(ys)
    total = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return total / (len(xs) - 1 if sample else len(xs))


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson's r."""
    sx, sy = stdev(xs), stdev(ys)
    if sx == 0 or sy == 0:
        raise StatsError("correlation is undefined when a sequence is constant")
    return covariance(xs, ys) / (sx * sy)


def zscores(data: Sequence[float]) -> list[float]:
    centre, spread = mean(data), stdev(data)
    if spread == 0:
        raise StatsError("z-scores are undefined when every value is equal")
    return [(x - centre) / spread for x in data]


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of ``y = slope * x + intercept``."""
    if len(xs) != len(ys):
        raise StatsError(f"linear_fit needs sequences of equal length ({len(xs)} != {len(ys)})")
    _require(xs, 2, "linear_fit")
    mx, my = mean(xs), mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise StatsError("linear_fit is undefined when every x is equal")
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return slope, my - slope * mx


def moving_average(data: Sequence[float], window: int) -> list[float]:
    """Means of each run of ``window`` consecutive values (``len(data) - window + 1`` of them)."""
    if window < 1:
        raise StatsError(f"window must be at least 1, not {window}")
    if window > len(data):
        return []
    total = sum(data[:window])
    result = [total / window]
    for index in range(window, len(data)):
        total += data[index] - data[index - window]
        result.append(total / window)
    return result


def histogram(data: Sequence[float], bins: int, low: float, high: float) -> list[int]:
    """Counts in ``bins`` equal-width bins over ``[low, high]`` (the last bin includes ``high``;
    values outside the range are ignored)."""
    if bins < 1:
        raise StatsError(f"bins must be at least 1, not {bins}")
    if high <= low:
        raise StatsError(f"histogram range is empty: [{low}, {high}]")
    counts = [0] * bins
    width = (high - low) / bins
    for value in data:
        if value < low or value > high:
            continue
        index = int((value - low) / width)
        if index == bins:
            index -= 1
        counts[index] += 1
    return counts


def ranks(data: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = sorted(range(len(data)), key=lambda i: data[i])
    result = [0.0] * len(data)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and data[order[end + 1]] == data[order[start]]:
            end += 1
        shared = (start + end) / 2 + 1
        for position in range(start, end + 1):
            result[order[position]] = shared
        start = end + 1
    return result
