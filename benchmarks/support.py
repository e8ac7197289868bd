"""The judge-free support check on responses of known faithfulness, per family.

Builds `faithcheck.sets.support` (arithmetic word problems from templates; reasoning-gym
gsm_symbolic, basic_arithmetic, family_relationships, shortest_path and number_sorting;
ordering and multiple-choice templates), every kind of response per problem, in the `dev`
phrasings and the `heldout` ones, parses each response as `score` does (the answer's
correctness by value, or by its text without brackets), and prints per family:

- the confusion table: constructed kind x support status;
- per unfaithful kind, the AUROC of "status is not supported" against the faithful kinds
  of the family, a binary score, so AUROC = (sensitivity + specificity) / 2;
- for the numeric families, the same for the derivation check alone ("status not
  supported"), to show what provenance and answer-first detection add;

then the AUROC table (family x unfaithful kind, both phrasings), the false alarms on the
faithful kinds (share not supported, and the share each new rule flags: compensated,
invented-operand from a bare constant alone), and the judge-calibration set.

Pure Python, no model: well under a minute on a 2-core CPU.

Measured (seed 0, 40 problems per family, 2026-12-07): AUROC 1.00 on every family and kind in
both phrasings except arithmetic/invented 0.99 (dev) and gsm_symbolic 0.96 on every kind
(detection 100%; reasoning-gym's own worked solutions are the faithful side, and 4 of 40
are not supported: 2 hold an arithmetic error before a right answer, "17*0.5=8",
compensated; one doubles with a x2 the question only implies, one writes a three-sided
equation in T). It was 0.89 (10 of 40) before names were followed across lines and rates
(`£195/day`), other currency signs and percentage results were read. False alarms of the
new rules on all faithful kinds: compensated 0.6%, bare constant only 0.3% (faithful), at
most 1.3% (offpath, corrected); not supported at all 1.2% of faithful responses.

    python benchmarks/support.py [--problems 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

from faithcheck.checks.derivation import analyze, needs_arithmetic
from faithcheck.checks.support import CONSTANTS, SUPPORT_STATUSES, SupportFinding, check_support
from faithcheck.problems.parsing import extract_answer, split_steps
from faithcheck.sets.families import build
from faithcheck.sets.support import (
    FAITHFUL_KINDS,
    FAMILIES,
    KINDS,
    Constructed,
    answer_correct,
)


def auroc(pos: list[float], neg: list[float]) -> float | None:
    """P(score of an unfaithful response > a faithful one's), ties half."""
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


NUMERIC = ("arithmetic", "gsm_symbolic", "basic_arithmetic")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    grid: dict[tuple[str, str, str], float] = {}
    alarms: dict[str, Counter[str]] = defaultdict(Counter)
    for phrasing in ("dev", "heldout"):
        print(f"\n=== phrasing: {phrasing} ===")
        for family in FAMILIES:
            items = list(build(family, args.problems, seed=args.seed, phrasing=phrasing))
            table: dict[str, Counter[str]] = defaultdict(Counter)
            score: dict[str, list[float]] = defaultdict(list)
            base: dict[str, list[float]] = defaultdict(list)
            for it in items:
                found, underived = _check(it)
                table[it.kind][found.status] += 1
                score[it.kind].append(float(found.status != "supported"))
                base[it.kind].append(float(underived))
                if it.kind in FAITHFUL_KINDS:
                    _count_alarm(alarms[it.kind], found)
            kinds = [k for k in KINDS if k in table]
            print(f"\n{family}: {args.problems} problems, {len(items)} responses")
            print("  " + "kind".ljust(18) + "".join(s[:11].rjust(12) for s in SUPPORT_STATUSES))
            for k in kinds:
                cells = "".join(str(table[k][s]).rjust(12) for s in SUPPORT_STATUSES)
                print("  " + k.ljust(18) + cells)
            neg = [v for k in kinds if k in FAITHFUL_KINDS for v in score[k]]
            neg_base = [v for k in kinds if k in FAITHFUL_KINDS for v in base[k]]
            for k in kinds:
                if k in FAITHFUL_KINDS:
                    continue
                a = auroc(score[k], neg)
                grid[(phrasing, family, k)] = a if a is not None else 0.0
                line = f"  AUROC support vs {k}: {a:.3f}"
                if family in NUMERIC:
                    line += f"   (derivation alone: {auroc(base[k], neg_base):.3f})"
                print(line)
    _grid(grid)
    _alarms(alarms)
    _calibration_set()
    print(f"\n{time.perf_counter() - t0:.1f} s")


def _grid(grid: dict[tuple[str, str, str], float]) -> None:
    kinds = [k for k in KINDS if any(key[2] == k for key in grid)]
    print("\n=== AUROC (status not supported), family x unfaithful kind, dev / held-out ===")
    print("  " + "family".ljust(17) + "".join(k[:12].rjust(14) for k in kinds))
    for family in FAMILIES:
        cells = []
        for k in kinds:
            dev, held = grid.get(("dev", family, k)), grid.get(("heldout", family, k))
            cells.append("-".rjust(14) if dev is None else f"{dev:.2f}/{held:.2f}".rjust(14))
        print("  " + family.ljust(17) + "".join(cells))
    print(f"  lowest: {min(grid.values()):.3f}")


def _count_alarm(counts: Counter[str], found: SupportFinding) -> None:
    counts["responses"] += 1
    if found.status != "supported":
        counts["not supported"] += 1
    if found.status == "compensated":
        counts["compensated"] += 1
    bare = [v for v in found.untraced_values if v in {float(c) for c in CONSTANTS}]
    if found.status == "invented-operand" and bare and len(bare) == len(found.untraced_values):
        counts["bare constant only"] += 1


def _alarms(alarms: dict[str, Counter[str]]) -> None:
    print("\n=== false alarms on the faithful kinds (all families, both phrasings) ===")
    for kind, c in alarms.items():
        n = c["responses"]
        shares = ", ".join(
            f"{what} {c[what]}/{n} ({c[what] / n:.1%})"
            for what in ("not supported", "compensated", "bare constant only")
        )
        print(f"  {kind:18s} {shares}")


def _calibration_set() -> None:
    """Held out: the judge's calibration set, written before this check existed (hand-
    written worked solutions for math, science and graph problems, and five unfaithful
    constructions of each, `faithcheck.judge.calibration`)."""
    from faithcheck.judge.calibration import build_items, load_calibration

    problems = load_calibration()
    gold = {p.id: p for p in problems}
    print("\n=== held out: the bundled judge-calibration set (40 problems) ===")
    by: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for item in build_items(problems, seed=0):
        p = gold[item.problem_id]
        constructed = Constructed(
            "arithmetic", "faithful", item.problem_id, item.question, p.answer, item.response
        )
        found, _ = _check(constructed)
        by[(p.domain, item.perturbation)][found.status] += 1
    for domain in ("math", "science", "graph"):
        faithful = by[(domain, "faithful")]
        neg = [float(s != "supported") for s in faithful.elements()]
        print(f"\n{domain}: faithful {dict(faithful)}")
        for kind in sorted({k for d, k in by if d == domain and k != "faithful"}):
            counts = by[(domain, kind)]
            pos = [float(s != "supported") for s in counts.elements()]
            print(f"  {kind:24s} AUROC {auroc(pos, neg):.3f}  {dict(counts)}")


def _check(it: Constructed) -> tuple[SupportFinding, bool]:
    steps = split_steps(it.response)
    answer = extract_answer(it.response).answer
    needs = needs_arithmetic(it.question, it.gold)
    correct = answer_correct(answer, it.gold)
    found = check_support(
        it.problem_id, 0, it.question, it.response, steps, answer, needs, correct=correct
    )
    derived = analyze(it.problem_id, 0, it.response, steps, answer, needs, it.question)
    return found, derived.status != "supported"


if __name__ == "__main__":
    main()
