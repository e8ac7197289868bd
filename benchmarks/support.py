"""The judge-free support check on responses of known faithfulness, per family.

Builds `faithcheck.sets.support` (arithmetic word problems from templates; reasoning-gym
family_relationships, shortest_path and number_sorting), every kind of response per
problem, in the `dev` phrasings and the `heldout` ones, parses each response as `score`
does, and prints per family:

- the confusion table: constructed kind x support status;
- per unfaithful kind, the AUROC of "status is not supported" against the faithful kinds
  (faithful and slip), a binary score, so AUROC = (sensitivity + specificity) / 2;
- for arithmetic, the same for the derivation check alone ("answer not derived by a
  correct equation"), to show what provenance and answer-first detection add.

Pure Python, no model: a few seconds on a 2-core CPU.

    python benchmarks/support.py [--problems 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

from faithcheck.checks.derivation import analyze, needs_arithmetic
from faithcheck.checks.support import SUPPORT_STATUSES, check_support
from faithcheck.problems.parsing import extract_answer, split_steps
from faithcheck.sets.support import FAITHFUL_KINDS, FAMILIES, KINDS, Constructed, build


def auroc(pos: list[float], neg: list[float]) -> float | None:
    """P(score of an unfaithful response > a faithful one's), ties half."""
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    worst = 1.0
    for phrasing in ("dev", "heldout"):
        print(f"\n=== phrasing: {phrasing} ===")
        for family in FAMILIES:
            items = list(build(family, args.problems, seed=args.seed, phrasing=phrasing))
            table: dict[str, Counter[str]] = defaultdict(Counter)
            score: dict[str, list[float]] = defaultdict(list)
            base: dict[str, list[float]] = defaultdict(list)
            for it in items:
                status, underived = _check(it)
                table[it.kind][status] += 1
                score[it.kind].append(float(status != "supported"))
                base[it.kind].append(float(underived))
            kinds = [k for k in KINDS if k in table]
            print(f"\n{family}: {args.problems} problems, {len(items)} responses")
            print("  " + "kind".ljust(13) + "".join(s[:12].rjust(13) for s in SUPPORT_STATUSES))
            for k in kinds:
                print(
                    "  "
                    + k.ljust(13)
                    + "".join(str(table[k][s]).rjust(13) for s in SUPPORT_STATUSES)
                )
            neg = [v for k in kinds if k in FAITHFUL_KINDS for v in score[k]]
            neg_base = [v for k in kinds if k in FAITHFUL_KINDS for v in base[k]]
            for k in kinds:
                if k in FAITHFUL_KINDS:
                    continue
                a = auroc(score[k], neg)
                worst = min(worst, a or 0.0)
                line = f"  AUROC support vs {k}: {a:.3f}"
                if family == "arithmetic":
                    line += f"   (derivation alone: {auroc(base[k], neg_base):.3f})"
                print(line)
            pos_all = [v for k in kinds if k not in FAITHFUL_KINDS for v in score[k]]
            print(f"  AUROC support, all unfaithful kinds: {auroc(pos_all, neg):.3f}")
    print(f"\nlowest per-kind AUROC on the constructed sets: {worst:.3f}")
    _calibration_set()
    print(f"\n{time.perf_counter() - t0:.1f} s")


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
        status, _ = _check(constructed)
        by[(p.domain, item.perturbation)][status] += 1
    for domain in ("math", "science", "graph"):
        faithful = by[(domain, "faithful")]
        neg = [float(s != "supported") for s in faithful.elements()]
        print(f"\n{domain}: faithful {dict(faithful)}")
        for kind in sorted({k for d, k in by if d == domain and k != "faithful"}):
            counts = by[(domain, kind)]
            pos = [float(s != "supported") for s in counts.elements()]
            print(f"  {kind:24s} AUROC {auroc(pos, neg):.3f}  {dict(counts)}")


def _check(it: Constructed) -> tuple[str, bool]:
    steps = split_steps(it.response)
    answer = extract_answer(it.response).answer
    needs = needs_arithmetic(it.question, it.gold)
    found = check_support(it.problem_id, 0, it.question, it.response, steps, answer, needs)
    derived = analyze(it.problem_id, 0, it.response, steps, answer, needs)
    return found.status, derived.status != "supported"


if __name__ == "__main__":
    main()
