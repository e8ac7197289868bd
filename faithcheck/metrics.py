"""Pure metric functions over records: no I/O, no globals.

Every 95% CI treats *problems* as the units (samples of one problem are correlated, so
treating samples as independent would make the CIs too narrow), and is built to hold its
level on each side at 10-30 problems, since the verdict reads one end of it (the lower for
a floor, the upper for a ceiling) and the other side's misses do not help:

- **Shares** (a pooled ratio sum(num) / sum(den) with 0 <= num <= den per problem, or a
  mean of per-problem values in [0, 1]): `share_interval`, the Wilson score interval at
  an effective sample size, the item count over a cluster-robust design effect, with
  Student's t on n - 1 degrees of freedom for z. The design effect is estimated with two
  pseudo-problems of the mean size added, one all hits and one all misses (Agresti-Coull's
  add-successes-and-failures, at the problem level): with few problems or few hits it
  leans towards the worst case (every problem all-or-nothing, about n items' worth),
  with many it is the plain estimate. All-zero data at 10 problems give [0, 0.36], not
  [0, 0]; one problem gives [0, 1].
- **Any other statistic** (kappa, AUROC, paired deltas, unbounded means): `bootstrap`,
  a BCa bootstrap at the expanded level: the normal quantile z replaced by
  sqrt(n / (n - 1)) * t_{n-1} (Hesterberg's small-sample widening), then bias-corrected
  and accelerated (Efron), resampling problems.

Evidence: `benchmarks/coverage.py` simulates per-problem units like faithcheck's (1-16 or
2 items per problem, intra-problem correlation 0-0.5, true shares 0.05-0.8; means of
per-problem values with point masses at 0 and 1) at n = 5-100 problems, 4000
replications per cell. Over the 112 cells with n >= 10 the worst per-side miss rate
(nominal 2.5%) is 3.4% for `share_interval`, and it exceeds 2.5% by more than two Monte
Carlo standard errors only in one corner: a true share of 0.05 with 2 items per problem
and correlation 0.5, whose lower end reaches the truth in 3.0-3.4% of runs. Every
bootstrap misses the high side of a true 0.05 share in up to 46% of runs (most draws
have no hit and give [0, 0]); on the low side the percentile bootstrap used before
misses up to 14%, the expanded percentile 12%, expanded BCa 8%. The cluster-robust
Wilson interval without pseudo-problems misses up to 10%.
Narrower variants failed (half-size pseudo-problems 4.6%, z for t 5.0%); n problems as
the effective size held too but was 26% wider. `share_interval` is 31% wider on average
than the percentile bootstrap. Expanded BCa is the best of the bootstraps, but still
misses up to 6% a side on a 0.5 share at 10 problems and more near 0 or 1: intervals on
statistics other than shares are less trustworthy at small n, which is one reason the
verdict also asks for at least 10 problems.
"""

from __future__ import annotations

import functools
import math
import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from statistics import NormalDist
from typing import TypeVar

from faithcheck.records import Record

T = TypeVar("T")
U = TypeVar("U")


class MetricValue(Record):
    """A point estimate with a 95% confidence interval over problems."""

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
    """Mean of per-unit values with a CI over the units.

    Values all in [0, 1] (shares, AOCs, pass rates): `share_interval`, which neither
    resamples nor uses the seed. Otherwise the expanded BCa `bootstrap`.
    """
    if values and all(0.0 <= v <= 1.0 for v in values):
        lo, hi = share_interval(values, [1.0] * len(values), alpha=alpha)
        return MetricValue(value=mean(values), ci_low=lo, ci_high=hi, n=len(values))
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
    """Point statistic and expanded BCa bootstrap CI, resampling units with replacement.

    The BCa interval (bias correction from the share of resamples below the estimate,
    acceleration from the jackknife) at the level whose normal quantile is
    sqrt(n / (n - 1)) * t_{n-1} rather than z (see the module docs). Resamples whose
    statistic is NaN are left out. One unit has nothing to resample: its CI is the point.
    """
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
    if size < 2:
        return MetricValue(value=point, ci_low=point, ci_high=point, n=size)
    low, high = _bca_levels(units, statistic, point, stats, alpha)
    lo = stats[math.floor(low * (len(stats) - 1))]
    hi = stats[math.ceil(high * (len(stats) - 1))]
    return MetricValue(value=point, ci_low=min(lo, point), ci_high=max(hi, point), n=size)


def _bca_levels(
    units: Sequence[U],
    statistic: Callable[[Sequence[U]], float],
    point: float,
    stats: Sequence[float],
    alpha: float,
) -> tuple[float, float]:
    """The expanded BCa interval's two levels into the sorted bootstrap `stats`."""
    n, b = len(units), len(stats)
    below = bisect_left(stats, point)
    ties = bisect_right(stats, point) - below
    normal = NormalDist()
    z0 = normal.inv_cdf(min(max((below + ties / 2) / b, 0.5 / b), 1 - 0.5 / b))
    jack = [statistic([*units[:i], *units[i + 1 :]]) for i in range(n)]
    jack = [j for j in jack if not math.isnan(j)]
    centre = math.fsum(jack) / len(jack) if jack else 0.0
    square = math.fsum((centre - j) ** 2 for j in jack)
    accel = math.fsum((centre - j) ** 3 for j in jack) / (6 * square**1.5) if square else 0.0
    z = math.sqrt(n / (n - 1)) * t_quantile(1 - alpha / 2, n - 1)

    def level(zq: float) -> float:
        w = z0 + zq
        den = 1 - accel * w
        if den <= 0:  # past the acceleration's range: the extreme resample
            return 0.0 if zq < 0 else 1.0
        return normal.cdf(z0 + w / den)

    return level(-z), level(z)


RatioUnit = tuple[float, float]
"""One problem's (numerator, denominator) of a pooled ratio or share: what
`bootstrap_pooled` resamples, so that chains of one problem move together."""


def pooled_ratio(units: Sequence[RatioUnit]) -> float:
    """sum(numerators) / sum(denominators) over units; NaN when the denominator is 0."""
    den = math.fsum(d for _, d in units)
    return math.fsum(n for n, _ in units) / den if den else math.nan


def bootstrap_pooled(
    units: Sequence[RatioUnit], *, seed: int = 0, n_boot: int = 1000
) -> MetricValue:
    """A pooled ratio (e.g. flips / corrupted chains) with a CI over units.

    Each unit is one problem's (numerator, denominator): the estimate weights every
    chain equally while the CI respects that chains of one problem are correlated. A
    share (0 <= numerator <= denominator in every unit) gets `share_interval`, which
    neither resamples nor uses the seed; any other ratio (e.g. a paired difference with
    negative numerators) the expanded BCa `bootstrap`. Units with denominator 0 are left
    out.
    """
    units = [u for u in units if u[1] > 0]
    count = round(math.fsum(d for _, d in units))
    if units and all(0.0 <= x <= d for x, d in units):
        num, den = [x for x, _ in units], [d for _, d in units]
        lo, hi = share_interval(num, den)
        value = pooled_ratio(units)
        return MetricValue(value=value, ci_low=lo, ci_high=hi, n=len(units), units=count)
    out = bootstrap(units, pooled_ratio, seed=seed, n_boot=n_boot)
    return out.model_copy(update={"units": count})


def share_interval(
    num: Sequence[float], den: Sequence[float], *, alpha: float = 0.05
) -> tuple[float, float]:
    """The CI of the share sum(num) / sum(den) over problems (one entry per problem).

    The Wilson score interval at an effective sample size, with Student's t on n - 1
    degrees of freedom for the normal quantile. The effective size is the item count
    sum(den) over the design effect, the cluster-robust (CR1, linearized) variance of
    the ratio relative to the variance of independent items, estimated with two
    pseudo-problems of the mean size added, one all hits and one all misses, so that it
    never vanishes and leans towards the worst case when the data say little (see the
    module docs for the measurements behind this choice).

    Args:
        num: per problem, the hits (or a sum of per-item values in [0, 1]); 0 <= num <= den.
        den: per problem, the items (> 0); 1 each for a mean of per-problem values.
        alpha: 1 - the confidence level.

    Returns:
        (low, high) within [0, 1] and around the share; (0, 1) for a single problem.

    Raises:
        ValueError: no problems, or num and den of different lengths.
    """
    n = len(num)
    if n != len(den) or n == 0:
        raise ValueError(f"share_interval: {n} numerators against {len(den)} denominators")
    items = math.fsum(den)
    p = math.fsum(num) / items
    if n == 1:
        return 0.0, 1.0
    size = items / n
    aug_p = (math.fsum(num) + size) / (items + 2 * size)
    resid = [y - aug_p * m for y, m in zip(num, den, strict=True)]
    resid += [size * (1 - aug_p), -size * aug_p]
    aug_var = (n + 2) / (n + 1) * math.fsum(r * r for r in resid) / (items + 2 * size) ** 2
    effective = aug_p * (1 - aug_p) / aug_var * n / (n + 2)
    t2 = t_quantile(1 - alpha / 2, n - 1) ** 2 / effective
    centre = (p + t2 / 2) / (1 + t2)
    half = math.sqrt(t2 * p * (1 - p) + t2 * t2 / 4) / (1 + t2)
    return min(max(0.0, centre - half), p), max(min(1.0, centre + half), p)


def share(flags: Sequence[bool]) -> float | None:
    """Fraction of True values, None when empty."""
    return sum(flags) / len(flags) if flags else None


def group_by(items: Iterable[T], key: Callable[[T], str]) -> Mapping[str, list[T]]:
    """Group items by key, preserving first-seen order."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def t_quantile(q: float, df: int) -> float:
    """Quantile `q` (in (0.5, 1)) of Student's t with `df` >= 1 degrees of freedom.

    Bisection on the exact two-sided CDF for integer df (Abramowitz & Stegun 26.7.3-4);
    past 300 df the Cornish-Fisher expansion about the normal quantile (error < 1e-8).
    """
    if not 0.5 < q < 1 or df < 1:
        raise ValueError(f"need 0.5 < q < 1 and df >= 1, got q={q} df={df}")
    return _t_quantile(q, df)


@functools.cache
def _t_quantile(q: float, df: int) -> float:
    if df > 300:
        z = NormalDist().inv_cdf(q)
        return (
            z
            + (z**3 + z) / (4 * df)
            + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
        )
    target, lo, hi = 2 * q - 1, 0.0, 1.0
    while _t_within(hi, df) < target:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_within(mid, df) < target else (lo, mid)
        if hi - lo <= 1e-13 * hi:
            break
    return (lo + hi) / 2


def _t_within(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer df."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    term = total = 1.0
    if df % 2:
        if df == 1:
            return 2 * theta / math.pi
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    for k in range(1, df // 2):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total
