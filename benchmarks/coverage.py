"""Do 95% CIs hold their level on data like faithcheck's? Per-side miss rates by simulation.

The verdict reads one end of a CI (the lower for a floor, the upper for a ceiling), so
each side's miss rate must stay at or below 2.5%; two-sided coverage says too little. A
*low-side miss* is a CI whose lower end is at or above the truth (a floor set at the truth
would pass), a *high-side miss* one whose upper end is at or below it (a ceiling at the
truth would pass); ties count, because the gate passes on equality.

Data (per replication, `n` problems, the units every method resamples or pools over):

- **pooled** shares sum(num) / sum(den), like the probes' and the judge's rates: each
  problem has `size` items (uniform on 1..16, or 2 as with `--probe-samples 2`), a
  problem-level rate drawn from a beta with mean `p` and intra-problem correlation `icc`
  (0: independent items), and a binomial count of hits;
- **mean** of per-problem values in [0, 1], like accuracy or an AOC averaged over
  problems: a mixture of point masses at 0 and 1 and a beta in between.

Methods (alpha = 0.05; the bootstraps draw `--n-boot` resamples in the order
`faithcheck.metrics.bootstrap` draws them with seed 0, the same for every replication):

- `pct`: the percentile bootstrap (faithcheck before issue #28);
- `xpct`: the expanded percentile bootstrap (Hesterberg 2015): percentiles at the level
  whose normal quantile is sqrt(n / (n - 1)) * t_{n-1} instead of z;
- `bca`: the bias-corrected and accelerated bootstrap (acceleration from the jackknife);
- `xbca`: BCa at the expanded level: `faithcheck.metrics.bootstrap`, the default for
  statistics that are not shares;
- `t`: the ratio +- t_{n-1} * its cluster-robust (CR1, linearized) standard error, clipped;
- `wilson`: the Wilson score interval at the effective sample size p(1-p) / var (var the
  same cluster-robust variance), t_{n-1} for z, n problems where var is 0;
- `share`: `faithcheck.metrics.share_interval`, the default for shares: `wilson` with the
  design effect estimated with two pseudo-problems of the mean size added, one all hits
  and one all misses;
- `share/2`: the same with half-size pseudo-problems; `share-z`: with z for t;
- `wil-n`: Wilson with n problems as the effective size (every problem all-or-nothing).

The `share` and `xbca` columns are checked against faithcheck's own functions on the
first replications of every cell (`--check`).

The default run (4000 replications per cell, 140 cells) takes about half a minute on 2
cores (numpy); the standard error of a 2.5% miss rate is 0.25 points at 4000 replications
(`--reps 16000` halves it, 1000 doubles it).

    python benchmarks/coverage.py [--reps 4000] [--n-boot 1000] [--seed 0] [--check 20]
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import time
from collections.abc import Callable, Iterator
from statistics import NormalDist

import numpy as np

from faithcheck.backends.precision import describe_machine
from faithcheck.metrics import (
    bootstrap,
    bootstrap_mean,
    bootstrap_pooled,
    mean_or_nan,
    pooled_ratio,
    share_interval,
    t_quantile,
)

ALPHA = 0.05
NS = (5, 10, 20, 30, 100)
SHARES = (0.05, 0.2, 0.5, 0.8)
ICCS = (0.0, 0.2, 0.5)
SIZES: dict[str, Callable[[np.random.Generator, tuple[int, int]], np.ndarray]] = {
    "1-16": lambda rng, shape: rng.integers(1, 17, shape),
    "2": lambda rng, shape: np.full(shape, 2),
}
# (weight at 0, weight at 1, beta a, beta b) of a per-problem value in [0, 1].
MEANS: dict[str, tuple[float, float, float, float]] = {
    "rare": (0.85, 0.0, 1.0, 2.0),
    "low": (0.60, 0.05, 2.0, 5.0),
    "mid": (0.15, 0.15, 2.0, 2.0),
    "high": (0.05, 0.30, 5.0, 2.0),
}
NAMES = ("pct", "xpct", "bca", "xbca", "t", "wilson", "share/2", "share-z", "share", "wil-n")
_NORMAL = NormalDist()

Data = tuple[np.ndarray, np.ndarray]
"""(numerators, denominators), each replications x problems."""
Interval = tuple[np.ndarray, np.ndarray]


def pooled_data(
    rng: np.random.Generator, reps: int, n: int, p: float, icc: float, size: str
) -> Data:
    """Per-problem (hits, items): beta-binomial with mean p and intra-problem correlation icc."""
    m = SIZES[size](rng, (reps, n))
    if icc == 0:
        rate = np.full((reps, n), p)
    else:
        total = 1 / icc - 1  # a + b of the beta: icc = 1 / (a + b + 1)
        rate = rng.beta(p * total, (1 - p) * total, (reps, n))
    return rng.binomial(m, rate).astype(float), m.astype(float)


def mean_data(rng: np.random.Generator, reps: int, n: int, kind: str) -> tuple[Data, float]:
    """Per-problem values in [0, 1] (with unit denominators) and their true mean."""
    w0, w1, a, b = MEANS[kind]
    u = rng.random((reps, n))
    v = np.where(u < w0, 0.0, np.where(u < w0 + w1, 1.0, rng.beta(a, b, (reps, n))))
    return (v, np.ones_like(v)), w1 + (1 - w0 - w1) * a / (a + b)


def counts(n_boot: int, n: int, seed: int = 0) -> np.ndarray:
    """How often each problem is drawn in each resample (n_boot x n), drawn exactly as
    `faithcheck.metrics.bootstrap` draws them with this seed."""
    rng = random.Random(seed)
    out = np.zeros((n_boot, n))
    for b in range(n_boot):
        for _ in range(n):
            out[b, rng.randrange(n)] += 1
    return out


class Boot:
    """One cell's bootstrap distributions and jackknife, shared by the bootstrap methods."""

    def __init__(self, data: Data, resample: np.ndarray) -> None:
        y, m = data
        self.point = y.sum(1) / m.sum(1)
        self.sorted = np.sort((y @ resample.T) / (m @ resample.T), axis=1)
        self.b = resample.shape[0]
        loo = (y.sum(1, keepdims=True) - y) / (m.sum(1, keepdims=True) - m)
        d = loo.mean(1, keepdims=True) - loo
        num, den = (d**3).sum(1), 6 * (d**2).sum(1) ** 1.5
        self.accel = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        # Ties within rounding: faithcheck sums exactly (fsum), numpy does not.
        gap = self.sorted - self.point[:, None]
        below, ties = (gap < -1e-12).sum(1), (np.abs(gap) <= 1e-12).sum(1)
        prop = np.clip((below + 0.5 * ties) / self.b, 0.5 / self.b, 1 - 0.5 / self.b)
        self.z0 = np.array([_NORMAL.inv_cdf(x) for x in prop])

    def at(self, lo_level: np.ndarray | float, hi_level: np.ndarray | float) -> Interval:
        """The order statistics at these levels (faithcheck's index rule)."""
        rows = np.arange(self.sorted.shape[0])
        lo_i = np.floor(np.asarray(lo_level) * (self.b - 1)).astype(int)
        hi_i = np.ceil(np.asarray(hi_level) * (self.b - 1)).astype(int)
        lo_i = np.broadcast_to(np.clip(lo_i, 0, self.b - 1), rows.shape)
        hi_i = np.broadcast_to(np.clip(hi_i, 0, self.b - 1), rows.shape)
        return self.sorted[rows, lo_i], self.sorted[rows, hi_i]

    def bca(self, z: float) -> Interval:
        def level(zq: float) -> np.ndarray:
            w = self.z0 + zq
            den = 1 - self.accel * w
            inner = self.z0 + w / np.where(den > 0, den, 1)
            out = np.array([_NORMAL.cdf(x) for x in inner])
            return np.where(den > 0, out, 0.0 if zq < 0 else 1.0)

        lo, hi = self.at(level(-z), level(z))
        return np.minimum(lo, self.point), np.maximum(hi, self.point)


def expanded_z(n: int) -> float:
    """The normal quantile the expanded bootstraps use: sqrt(n / (n - 1)) * t_{n-1}."""
    return math.sqrt(n / (n - 1)) * t_quantile(1 - ALPHA / 2, n - 1)


def cluster_var(data: Data) -> tuple[np.ndarray, np.ndarray]:
    """The pooled ratio and its cluster-robust (CR1, linearized) variance."""
    y, m = data
    n = y.shape[1]
    p = y.sum(1) / m.sum(1)
    resid = y - p[:, None] * m
    return p, n / (n - 1) * (resid**2).sum(1) / m.sum(1) ** 2


def wald_t(data: Data) -> Interval:
    p, var = cluster_var(data)
    half = t_quantile(1 - ALPHA / 2, data[0].shape[1] - 1) * np.sqrt(var)
    return np.clip(p - half, 0, 1), np.clip(p + half, 0, 1)


def wilson(data: Data, effective: str, pseudo: float = 1.0, quantile: str = "t") -> Interval:
    """Wilson score intervals at an effective size: `cr` (plain cluster-robust, n where
    its variance is 0), `pseudo` (pseudo-problems of `pseudo` x the mean size), `n`."""
    y, m = data
    n = y.shape[1]
    p, var = cluster_var(data)
    pq = p * (1 - p)
    if effective == "cr":
        eff = np.where((var > 0) & (pq > 0), pq / np.where(var > 0, var, 1), n)
    elif effective == "n":
        eff = np.full_like(p, n)
    else:
        size = pseudo * m.mean(1, keepdims=True)
        aug_p, aug_var = cluster_var(
            (np.concatenate([y, size, 0 * size], 1), np.concatenate([m, size, size], 1))
        )
        eff = aug_p * (1 - aug_p) / aug_var * m.sum(1) / (m.sum(1) + 2 * size[:, 0])
    q = t_quantile(1 - ALPHA / 2, n - 1) if quantile == "t" else _NORMAL.inv_cdf(1 - ALPHA / 2)
    t2 = q**2 / eff
    centre = (p + t2 / 2) / (1 + t2)
    half = np.sqrt(t2 * pq + t2**2 / 4) / (1 + t2)
    return np.minimum(np.maximum(0, centre - half), p), np.maximum(np.minimum(1, centre + half), p)


def methods(data: Data, boot: Boot, n: int) -> dict[str, Interval]:
    """Every candidate's interval on one cell's replications."""
    z, zx = _NORMAL.inv_cdf(1 - ALPHA / 2), expanded_z(n)
    ax = 2 * _NORMAL.cdf(-zx)
    return {
        "pct": boot.at(ALPHA / 2, 1 - ALPHA / 2),
        "xpct": boot.at(ax / 2, 1 - ax / 2),
        "bca": boot.bca(z),
        "xbca": boot.bca(zx),
        "t": wald_t(data),
        "wilson": wilson(data, "cr"),
        "share/2": wilson(data, "pseudo", 0.5),
        "share-z": wilson(data, "pseudo", quantile="z"),
        "share": wilson(data, "pseudo"),
        "wil-n": wilson(data, "n"),
    }


def cells(rng: np.random.Generator, reps: int) -> Iterator[tuple[str, int, Data, float]]:
    """(label, n, data, truth) for every cell of the grid, in print order."""
    for size in SIZES:
        for p in SHARES:
            for icc in ICCS:
                for n in NS:
                    label = f"pooled p={p:<4} icc={icc:<3} size={size:<4}"
                    yield label, n, pooled_data(rng, reps, n, p, icc, size), p
    for kind in MEANS:
        for n in NS:
            data, truth = mean_data(rng, reps, n, kind)
            yield f"mean {kind:<4} (true {truth:.3f})", n, data, truth


def check(data: Data, found: dict[str, Interval], pooled: bool, k: int, n_boot: int) -> None:
    """faithcheck's functions on the first k replications give the `share` column, and on
    the first few the generic `bootstrap` gives the `xbca` column."""
    y, m = data
    for r in range(min(k, y.shape[0])):
        units = list(zip(y[r].tolist(), m[r].tolist(), strict=True))
        got = bootstrap_pooled(units) if pooled else bootstrap_mean(y[r].tolist())
        want = share_interval(y[r].tolist(), m[r].tolist())
        lo, hi = found["share"][0][r], found["share"][1][r]
        assert (got.ci_low, got.ci_high) == want, (r, got, want)
        assert math.isclose(want[0], lo, abs_tol=1e-9), (r, want, lo)
        assert math.isclose(want[1], hi, abs_tol=1e-9), (r, want, hi)
        if r < 3:
            boot = (
                bootstrap(units, pooled_ratio, n_boot=n_boot)
                if pooled
                else bootstrap(y[r].tolist(), mean_or_nan, n_boot=n_boot)
            )
            lo, hi = found["xbca"][0][r], found["xbca"][1][r]
            assert boot.ci_low is not None and boot.ci_high is not None
            assert math.isclose(boot.ci_low, lo, abs_tol=1e-9), (r, boot, lo)
            assert math.isclose(boot.ci_high, hi, abs_tol=1e-9), (r, boot, hi)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (describe_machine gives its capability)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4000, help="replications per cell")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated data")
    parser.add_argument("--check", type=int, default=20, help="replications checked per cell")
    args = parser.parse_args()
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    resample = {n: counts(args.n_boot, n) for n in NS}
    tol = 2 * math.sqrt(0.025 * 0.975 / args.reps)
    print(f"{args.reps} replications per cell, {args.n_boot} resamples, data seed {args.seed}")
    print("per method: missed low % / missed high % / mean width; * marks a side over 2.5%")
    print(f"by more than two Monte Carlo standard errors ({100 * tol:.2f} points)\n")
    print(f"{'cell':<34}{'n':>4} " + "".join(f"{m:^19}" for m in NAMES))
    worst = {m: [0.0, 0.0] for m in NAMES}
    over: dict[str, list[str]] = {m: [] for m in NAMES}
    widths: dict[str, list[float]] = {m: [] for m in NAMES}
    for label, n, data, truth in cells(rng, args.reps):
        found = methods(data, Boot(data, resample[n]), n)
        check(data, found, label.startswith("pooled"), args.check, args.n_boot)
        row = f"{label:<34}{n:>4} "
        for name in NAMES:
            lo, hi = found[name]
            low, high = float(np.mean(lo >= truth)), float(np.mean(hi <= truth))
            width = float(np.mean(hi - lo))
            mark = ["*" if x > 0.025 + tol else " " for x in (low, high)]
            row += f"{100 * low:5.1f}{mark[0]}{100 * high:5.1f}{mark[1]}{width:6.3f} "
            if n >= 10:
                worst[name] = [max(worst[name][0], low), max(worst[name][1], high)]
                widths[name].append(width)
                if "*" in mark:
                    over[name].append(f"{label} n={n}")
        print(row, flush=True)
    print(f"\nover the {len(widths['pct'])} cells with n >= 10:")
    print(f"{'method':<8} {'worst low %':>11} {'worst high %':>12} {'mean width':>10}  cells over")
    for name in NAMES:
        print(
            f"{name:<8} {100 * worst[name][0]:>11.1f} {100 * worst[name][1]:>12.1f} "
            f"{np.mean(widths[name]):>10.3f}  {len(over[name])} cells"
        )
    for name in ("share", "xbca"):
        if over[name]:
            print(f"  {name} over: " + "; ".join(" ".join(c.split()) for c in over[name]))
    wall = time.perf_counter() - start
    print(f"\nwall {wall:.0f} s; {cpu_model()}; machine: {describe_machine()}")


if __name__ == "__main__":
    main()
