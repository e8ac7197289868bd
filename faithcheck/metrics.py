"""Pure metric functions over records: no I/O, no globals.

Confidence intervals come from a percentile bootstrap over *problems* (samples of one
problem are correlated, so resampling individual samples would make the CIs too narrow).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from faithcheck.records import Record

T = TypeVar("T")
U = TypeVar("U")


class MetricValue(Record):
    """A point estimate with a bootstrap confidence interval."""

    value: float | None
    """Point estimate; None when undefined (with `reason`)."""
    ci_low: float | None = None
    """Lower bound of the confidence interval."""
    ci_high: float | None = None
    """Upper bound of the confidence interval."""
    n: int = 0
    """Number of units (problems) the estimate rests on."""
    units: int | None = None
    """For a pooled ratio: the items counted in its denominator (responses, chains,
    corruptions) over those `n` problems; None for other statistics."""
    reason: str | None = None
    """Why the value is missing, when it is."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).

    Args:
        n: samples drawn for the problem.
        c: correct samples among them.
        k: budget; must satisfy 1 <= k <= n.
    """
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"need 1 <= k <= n and 0 <= c <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # Product form avoids huge binomials.
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean, None for an empty sequence."""
    return math.fsum(values) / len(values) if values else None


def bootstrap_mean(
    values: Sequence[float], *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> MetricValue:
    """Mean of per-unit values with a percentile bootstrap CI over the units."""
    return bootstrap(values, mean_or_nan, n_boot=n_boot, alpha=alpha, seed=seed)


def mean_or_nan(values: Sequence[float]) -> float:
    """Mean, NaN when empty (internal to bootstrap loops, never stored)."""
    return math.fsum(values) / len(values) if values else math.nan


def bootstrap(
    units: Sequence[U],
    statistic: Callable[[Sequence[U]], float],
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> MetricValue:
    """Point statistic and percentile bootstrap CI, resampling units with replacement."""
    if not units:
        return MetricValue(value=None, n=0, reason="no data")
    point = statistic(units)
    rng = random.Random(seed)
    size = len(units)
    stats = sorted(
        s
        for s in (
            statistic([units[rng.randrange(size)] for _ in range(size)]) for _ in range(n_boot)
        )
        if not math.isnan(s)
    )
    if not stats or math.isnan(point):
        return MetricValue(value=None, n=size, reason="statistic undefined on this data")
    lo = stats[math.floor(alpha / 2 * (len(stats) - 1))]
    hi = stats[math.ceil((1 - alpha / 2) * (len(stats) - 1))]
    return MetricValue(value=point, ci_low=lo, ci_high=hi, n=size)


def pooled_ratio(units: Sequence[tuple[float, float]]) -> float:
    """sum(numerators) / sum(denominators) over units; NaN when the denominator is 0."""
    den = math.fsum(d for _, d in units)
    return math.fsum(n for n, _ in units) / den if den else math.nan


def bootstrap_pooled(
    units: Sequence[tuple[float, float]], *, seed: int = 0, n_boot: int = 1000
) -> MetricValue:
    """A pooled ratio (e.g. flips / corrupted chains) with a bootstrap CI over units.

    Each unit is one problem's (numerator, denominator): the estimate weights every
    chain equally while the CI respects that chains of one problem are correlated.
    """
    units = [u for u in units if u[1] > 0]
    out = bootstrap(units, pooled_ratio, seed=seed, n_boot=n_boot)
    return out.model_copy(update={"units": round(math.fsum(d for _, d in units))})


def share(flags: Sequence[bool]) -> float | None:
    """Fraction of True values, None when empty."""
    return sum(flags) / len(flags) if flags else None


def group_by(items: Iterable[T], key: Callable[[T], str]) -> Mapping[str, list[T]]:
    """Group items by key, preserving first-seen order."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups
