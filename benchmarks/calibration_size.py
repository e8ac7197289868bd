"""How many calibration problems a judge needs, and how few are too few to trust its CIs.

Simulated judges label the bundled calibration items (`faithcheck.judge.calibration`): a
faithful item is called aligned with probability `accuracy`, else partial or misaligned;
an unfaithful item is caught (misaligned) with the same probability, else labelled
aligned (2 in 3) or partial (1 in 3). Problems are drawn without replacement from the
whole set, 6 items each.

Part 1 (default): for each judge accuracy and calibration size it prints the share of
trials in which the judge is called reliable by the point estimates alone (the rule
before CIs were gated, for comparison), by the reliability gate as it is (CI lower bounds,
and at least `MIN_CALIBRATION_PROBLEMS` problems), and how often the gate is undecided.

Part 2 (`--floor`): a weak judge (accuracy 0.62, Cohen's kappa about 0.27, below the 0.4
floor) at 1 to 15 problems, gated by its CIs alone (`min_problems=1`): how often is it
wrongly called reliable? `MIN_CALIBRATION_PROBLEMS` is the smallest size from which that
stays at or below 5% (the verdict's own error budget: a floor passes a true value at its
threshold at most 2.5% of the time per metric, and two metrics are gated).

Pure Python, no model. Part 1 takes about two minutes on a 2-core CPU with the defaults,
part 2 about four.

    python benchmarks/calibration_size.py [--trials 20] [--n-boot 1000]
    python benchmarks/calibration_size.py --floor [--trials 200]
"""

from __future__ import annotations

import argparse
import math
import random
import time

from faithcheck.backends.precision import describe_machine
from faithcheck.judge.calibration import CalibrationItem, build_items, load_calibration
from faithcheck.judge.reliability import (
    ALIGNED_AT,
    MIN_CALIBRATION_PROBLEMS,
    JudgeReliability,
    ReliabilityThreshold,
    cohen_kappa,
    reliability,
)

WEAK = 0.62
"""Accuracy of the weak judge of part 2: expected kappa about 0.27 on the bundled items."""


def simulated_labels(
    items: list[CalibrationItem], accuracy: float, rng: random.Random
) -> dict[str, float]:
    """One simulated judge's labels (see the module docs)."""
    out = {}
    for item in items:
        right = rng.random() < accuracy
        if item.expected == 1.0:
            out[item.item_id] = 1.0 if right else rng.choice([0.5, 0.0])
        else:
            out[item.item_id] = 0.0 if right else rng.choice([1.0, 1.0, 0.5])
    return out


def by_value(report: JudgeReliability, threshold: ReliabilityThreshold) -> bool:
    """The point-estimate rule (no CIs): every value clears its floor."""
    auroc, kappa, errors = report.auroc.value, report.kappa.value, report.error_rate
    return (
        auroc is not None
        and kappa is not None
        and errors is not None
        and auroc >= threshold.min_auroc
        and kappa >= threshold.min_kappa
        and errors <= threshold.max_error_rate
    )


def sizes_table(args: argparse.Namespace) -> None:
    problems = load_calibration()
    default = ReliabilityThreshold()
    print(f"{len(problems)} calibration problems; {args.trials} trials per cell")
    print("judge accuracy | problems (items) | reliable by value | by the gate | undecided")
    for accuracy in args.accuracy:
        for size in args.sizes:
            value = gated = undecided = 0
            for trial in range(args.trials):
                rng = random.Random(trial * 1000 + size)
                items = build_items(rng.sample(problems, min(size, len(problems))))
                labels = simulated_labels(items, accuracy, rng)
                report = reliability(items, labels, n_boot=args.n_boot)
                value += by_value(report, default)
                gated += report.reliable
                undecided += report.outcome == "undecided"
            n = args.trials
            print(
                f"{accuracy:.2f} | {size} ({6 * size}) | {value}/{n} | {gated}/{n} | "
                f"{undecided}/{n}",
                flush=True,
            )


def floor_table(args: argparse.Namespace) -> None:
    problems = load_calibration()
    ci_only = ReliabilityThreshold(min_problems=1)
    rng = random.Random(0)
    whole = build_items(problems)
    kappas = []
    for _ in range(200):
        labels = simulated_labels(whole, WEAK, rng)
        truth = [i.expected >= 0.5 for i in whole]
        k = cohen_kappa(truth, [labels[i.item_id] >= ALIGNED_AT for i in whole])
        kappas.append(k or 0.0)
    print(
        f"weak judge: accuracy {WEAK}, mean kappa {sum(kappas) / len(kappas):.3f} over 200 "
        f"labellings of all {len(problems)} problems; {args.trials} trials per size, "
        f"gated on the CIs alone (n_boot {args.n_boot})"
    )
    print("problems | called reliable | share | 95% upper bound (Wilson)")
    smallest = None
    for size in args.sizes:
        hits = 0
        for trial in range(args.trials):
            trng = random.Random(trial * 1000 + size)
            items = build_items(trng.sample(problems, size))
            labels = simulated_labels(items, WEAK, trng)
            hits += reliability(items, labels, threshold=ci_only, n_boot=args.n_boot).reliable
        share = hits / args.trials
        z2 = 1.96**2 / args.trials
        upper = (share + z2 / 2 + math.sqrt(z2 * share * (1 - share) + z2 * z2 / 4)) / (1 + z2)
        if share <= 0.05 and smallest is None:
            smallest = size
        elif share > 0.05:
            smallest = None
        print(f"{size} | {hits}/{args.trials} | {share:.3f} | {upper:.3f}", flush=True)
    print(f"smallest size from which every share is <= 5%: {smallest}")
    print(f"MIN_CALIBRATION_PROBLEMS is {MIN_CALIBRATION_PROBLEMS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="20 (part 1), 200 (--floor)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--accuracy", type=float, nargs="+", default=[0.9, 0.85, 0.8, 0.6])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=None, help="6 12 20 40 (part 1), 1..15 (--floor)"
    )
    parser.add_argument("--floor", action="store_true", help="part 2: the minimum size")
    args = parser.parse_args()
    args.trials = args.trials or (200 if args.floor else 20)
    args.sizes = args.sizes or (list(range(1, 16)) if args.floor else [6, 12, 20, 40])
    start = time.perf_counter()
    (floor_table if args.floor else sizes_table)(args)
    print(f"wall {time.perf_counter() - start:.0f} s; machine: {describe_machine()}")


if __name__ == "__main__":
    main()
