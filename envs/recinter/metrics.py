"""Inequality and loyalty statistics of the RecInter marketplace (the Matthew effect, brand loyalty).

Example:
    >>> gini([1, 1, 1, 1]), gini([0, 0, 0, 4])
    (0.0, 0.75)
    >>> top_share([1, 1, 1, 1, 1, 1, 1, 1, 1, 11], fraction=0.1)
    0.55
    >>> herfindahl([2, 2]), herfindahl([3, 0, 0])
    (0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def gini(values: Sequence[float] | np.ndarray) -> float:
    """The Gini coefficient of non-negative ``values``: 0 when equal, (n-1)/n when one holds all.

    ``G = 2 * sum_i i * x_(i) / (n * sum x) - (n + 1) / n`` with ``x`` sorted ascending and ``i``
    from 1; 0 for an empty or all-zero input.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    total = float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.dot(ranks, x) / (n * total) - (n + 1) / n)


def top_share(values: Sequence[float] | np.ndarray, fraction: float = 0.1) -> float:
    """The share of the total held by the top ``fraction`` of entries (at least one entry)."""
    x = np.sort(np.asarray(values, dtype=float))[::-1]
    total = float(x.sum())
    if x.size == 0 or total <= 0:
        return 0.0
    count = max(1, round(fraction * x.size))
    return float(x[:count].sum() / total)


def herfindahl(counts: Sequence[float] | np.ndarray) -> float:
    """The Herfindahl index ``sum_m share_m**2`` of ``counts`` (1: all in one; 0 for no counts)."""
    x = np.asarray(counts, dtype=float)
    total = float(x.sum())
    if total <= 0:
        return 0.0
    return float(np.sum((x / total) ** 2))


def rate(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or 0.0 when the denominator is 0 (no events, no rate)."""
    return float(numerator) / float(denominator) if denominator else 0.0
