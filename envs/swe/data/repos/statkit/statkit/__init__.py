"""Descriptive statistics and a small dense matrix type."""

from statkit.matrix import Matrix, MatrixError
from statkit.stats import (
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

__all__ = [
    "Matrix",
    "MatrixError",
    "StatsError",
    "correlation",
    "covariance",
    "histogram",
    "linear_fit",
    "mean",
    "median",
    "modes",
    "moving_average",
    "quantile",
    "ranks",
    "stdev",
    "variance",
    "zscores",
]
__version__ = "0.2.1"
