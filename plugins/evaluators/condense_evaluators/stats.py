"""Small statistics helpers (no SciPy dependency): ranks with ties, Spearman's ρ, mean ± std."""

from __future__ import annotations

import math
from collections.abc import Sequence


def rankdata(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the average of their ranks (SciPy's ``average``)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for t in range(i, j + 1):
            ranks[order[t]] = avg
        i = j + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; NaN when either input is constant or shorter than 2."""
    if len(x) != len(y):
        raise ValueError(f"lengths differ: {len(x)} and {len(y)}")
    n = len(x)
    if n < 2:
        return float("nan")
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return float("nan")
    return sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's r of the (tie-averaged) ranks."""
    return pearson(rankdata(x), rankdata(y))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (``np.std``, as the official scripts report)."""
    if not values:
        return float("nan"), float("nan")
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


__all__ = ["mean_std", "pearson", "rankdata", "spearman"]
