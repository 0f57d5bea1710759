"""Correlation statistics for the word-pair benchmarks: Spearman, Pearson and their p-values."""

import math
from typing import NamedTuple

import numpy as np


class Correlation(NamedTuple):
    """A coefficient and its two-sided p-value; indexes like scipy's result (`r[0]`, `r[1]`)."""

    statistic: float
    pvalue: float


def _rank(a):
    """1-based ranks of a 1-D array, ties given the average of the ranks they span."""
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    starts = np.r_[True, sorted_a[1:] != sorted_a[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)  # 0-based position where each tie group starts
    size = np.bincount(group)
    ranks = np.empty(len(a), dtype=np.float64)
    ranks[order] = (first + (size + 1) / 2.0)[group]
    return ranks


def _pair(x, y, name):
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{name} needs equal lengths, got {x.size} and {y.size}")
    return x, y


def pearson(x, y):
    """Pearson correlation; NaN if undefined (n < 2 or a constant input)."""
    x, y = _pair(x, y, "pearson")
    if x.size < 2:
        return float("nan")
    x = x - x.mean()
    y = y - y.mean()
    denom = math.sqrt(float(x @ x) * float(y @ y))
    return max(-1.0, min(1.0, float(x @ y) / denom)) if denom > 0 else float("nan")


def spearman(x, y):
    """Spearman rank correlation (average ranks for ties); NaN if undefined (n < 2 or constant)."""
    x, y = _pair(x, y, "spearman")
    if x.size < 2:
        return float("nan")
    return pearson(_rank(x), _rank(y))


def _betacf(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def correlation_pvalue(r, n):
    """Two-sided p-value of a correlation r over n pairs: Student's t with n - 2 degrees of freedom.

    t = r sqrt((n - 2) / (1 - r^2)) and P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2), which is
    how scipy's pearsonr and spearmanr report it.
    """
    df = n - 2
    if df <= 0 or math.isnan(r):
        return float("nan")
    if abs(r) >= 1.0:
        return 0.0
    return betainc(df / 2.0, 0.5, (1.0 - r * r))  # df / (df + t^2) simplifies to 1 - r^2


def with_pvalue(r, n):
    return Correlation(r, correlation_pvalue(r, n))
