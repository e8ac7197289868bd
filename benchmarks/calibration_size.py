"""How many calibration problems a good judge needs to pass the CI-gated reliability floors.

Simulated judges label the bundled calibration items (`faithcheck.judge.calibration`): a
faithful item is called aligned with probability `accuracy`, else partial or misaligned;
an unfaithful item is caught (misaligned) with the same probability, else labelled
aligned (2 in 3) or partial (1 in 3). For each calibration size (problems drawn without
replacement from the whole set, 6 items each) it prints the share of trials in which the
judge is called reliable by the point estimates (the old rule) and by the CI lower bounds
(`ReliabilityThreshold.gate_on = "ci_low"`, the default), and how often it is undecided.

Pure Python, no model: about a minute on a 2-core CPU with the defaults.

    python benchmarks/calibration_size.py [--trials 20] [--n-boot 300]
"""

from __future__ import annotations

import argparse
import random
import time

from faithcheck.judge.calibration import CalibrationItem, build_items, load_calibration
from faithcheck.judge.reliability import ReliabilityThreshold, reliability


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--n-boot", type=int, default=300)
    parser.add_argument("--accuracy", type=float, nargs="+", default=[0.9, 0.85, 0.8, 0.6])
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 12, 20, 40])
    args = parser.parse_args()
    problems = load_calibration()
    start = time.perf_counter()
    print(f"{len(problems)} calibration problems; {args.trials} trials per cell")
    print("judge accuracy | problems (items) | reliable by value | by CI | CI undecided")
    for accuracy in args.accuracy:
        for size in args.sizes:
            value = ci = undecided = 0
            for trial in range(args.trials):
                rng = random.Random(trial * 1000 + size)
                items = build_items(rng.sample(problems, min(size, len(problems))))
                labels = simulated_labels(items, accuracy, rng)
                by_ci = reliability(items, labels, n_boot=args.n_boot)
                by_value = reliability(
                    items,
                    labels,
                    n_boot=args.n_boot,
                    threshold=ReliabilityThreshold(gate_on="value"),
                )
                value += by_value.reliable
                ci += by_ci.reliable
                undecided += by_ci.outcome == "undecided"
            n = args.trials
            print(
                f"{accuracy:.2f} | {size} ({6 * size}) | {value}/{n} | {ci}/{n} | {undecided}/{n}",
                flush=True,
            )
    print(f"wall {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
