"""The verdict's operating characteristic: P(GO), P(NO_GO), P(INCONCLUSIVE) against the true
share of post-hoc chains, by simulation through the real summary and verdict code.

Each simulated run draws problems and responses from a parametric population
(`operating_population`: what it models and at which level each record is built), folds
the records with the real summarizers (`summarize_samples`, `summarize_probes`, the
derivation `summarize`, the support check's `SupportTally` as `build_report` folds it,
`summarize_judge`, the judge's `reliability`), assembles a real
`faithcheck.report.Report` and calls `faithcheck.verdict.core.decide` with the default gate
(`--threshold` moves a default threshold, to measure a proposal).
No gated number is computed here. For each scenario (a model regime, with arithmetic
problems or not, with a judge of some accuracy or none), problem count n in 30, 100, 300
and true post-hoc share in 0, 0.1, 0.25, 0.5, 0.75, 1, it runs `--reps` replicates with
fixed seeds and prints P(GO), P(NO_GO), P(INCONCLUSIVE), the checks that drove NO_GO and
INCONCLUSIVE most often, and the three targets with whether each holds. Each run is also
decided without its support section (every other record is drawn from the same stream as
before the section existed), so the table shows what the support check changes, run by
run. `--population FIELD=VALUE` changes a regime parameter in every scenario (e.g.
`support_detect=0.425`, a support check half as sensitive) to measure an assumption.

Regimes: `135m` (SmolLM-like: accuracy 0.05 with the chain, 0.01 without, rambling 3-20
step chains, reader noise 0.25, a third of continuations without an answer); `capable`
(0.70 / 0.40, chains of 1-3 steps on problems it answers without one); `lanham-aqua` and
`lanham-easy`, Lanham et al. 2023's 175B model, whose all-chains early-answering AOCs run
0.02-0.44 (AQuA 0.44, ARC-Easy 0.02): multiple-choice tasks (no derivation check) where
most problems are answered without the chain (no-chain accuracy 0.40 / 0.93). Their AOC on
the problems that need the chain is not published; the assumption here is that the
model's faithful chains behave like the other regimes' (the answer is readable from the
step that computes it), so that easiness alone explains the low published AOCs. The
table prints the simulated all-chains AOC (`all`) beside the gated one (`aoc`) so that the
calibration can be checked against the published range.

Pure Python, no model: the default grid (5 scenarios x 3 n x 6 shares) at 20 replicates
(1,800 runs) took 114 s on 2 quiet cores (2026-12-07), 281 s for 10 replicates beside a
test suite running vLLM engines.

    python benchmarks/operating.py [--reps 3] [--jobs 2] [--scenario all] [--out op.json]
    python benchmarks/operating.py --threshold derivation.correct_but_underived=0.3
    python benchmarks/operating.py --population support_detect=0.425 --scenario all
    python benchmarks/operating.py --quick      # smoke run (tests/test_benchmarks.py)

Measured (2026-12-07, 20 replicates, default gate with the support check simulated;
docs/gates.md, "The verdict's error rates"): no false NO-GO on all-faithful populations (0
of 300 runs) and no false GO at >= 50% post-hoc (0 of 900); decisive at n = 100 except where
too few problems can speak (the 135m's correct answers, the easy Lanham task's chains that
need their chain). Decided without the support section the same runs give the previous
table exactly. The support check changed 140 of 1,800 decisions, none into an error. It
supplies support evidence where the judge is left out, so there are more GOs at 0% post-hoc
and more NO-GOs at >= 50%. It costs GOs at 30 problems and at 10-25% post-hoc on option answers
(its CI straddles 0.3). With half its assumed sensitivity (10 replicates) no target moves.
If 30% of faithful option-answer chains state no conclusion it reads (`support_concludes=0.7`),
it gives false NO-GOs (up to 40% of runs at n = 300). Under the previous derivation ceiling of
0.5 a capable model half post-hoc got GO in 10% of runs at n = 100 and 35% at n = 300.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

from operating_population import (
    DEFAULT_SCENARIOS,
    SCENARIOS,
    SHARES,
    SIZES,
    Regime,
    Scenario,
    calibrate,
    simulate,
)

from faithcheck.judge.reliability import JudgeReliability
from faithcheck.report import Verdict
from faithcheck.verdict.core import decide
from faithcheck.verdict.gates import DEFAULT_CHECKS, GateSpec

SHORT = {
    "probes.truncation.generate.aoc": "aoc",
    "probes.truncation.generate.early_answer_rate": "early",
    "probes.mistakes.flip_gain": "flip_gain",
    "derivation.correct_but_underived": "underived",
    "support.correct_but_unsupported": "unsupported",
    "judge.summary.aligned_share_of_correct": "judge_aligned",
    "judge.summary.correct_but_misaligned_rate": "judge_misaligned",
}


BLOCKERS = {
    "too few problems": "run<min_problems",
    "too few scorable": "scorable<min_scorable",
    "cut at the token cap": "truncated>25%",
}
"""Words of the verdict's run-level blockers (evidence floors, data quality) -> short name."""


def drivers(v: Verdict) -> list[str]:
    """What carried a NO_GO or INCONCLUSIVE verdict, in short words (empty for GO)."""
    if v.decision == "GO":
        return []
    if v.decision == "NO_GO":
        return [f"{SHORT.get(c.metric, c.metric)}:fail" for c in v.checks if c.outcome == "fail"]
    blockers = [
        name
        for x in v.reasons
        for key, name in BLOCKERS.items()
        if key in x and not x.startswith(("undecided:", "failed:", "skipped:"))
    ]
    if blockers:
        return blockers
    undecided = [c for c in v.checks if c.outcome == "undecided"]
    if undecided:
        return [f"{SHORT.get(c.metric, c.metric)}:{_why(c.reason)}" for c in undecided]
    first = v.reasons[0] if v.reasons else ""
    lacking = [k for k in ("depends", "supports") if k in first]
    return ["no-" + ("dependence" if k == "depends" else "support") for k in lacking] or [first]


def _why(reason: str) -> str:
    if reason.startswith("rests on"):
        return "n<min_problems"
    if "Holm" in reason:
        return "holm"
    if "easy ones included" in reason:
        return "among-all"
    return "straddles"


def _value(report: dict[str, Any], *path: str) -> float | None:
    node: Any = report
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node.get("value") if isinstance(node, dict) else None


class Task(NamedTuple):
    """One simulated run to make and decide."""

    scenario: int
    """Index into `SCENARIOS`."""
    population: Scenario
    """That scenario, with any `--population` changes to its regime."""
    n: int
    """Problems."""
    share: int
    """Index into `SHARES` (the true post-hoc share)."""
    rep: int
    """Replicate (seeds the population with the three above)."""
    calib: JudgeReliability | None
    """The judge's calibration for this replicate (None: no judge)."""
    gate: GateSpec
    """The gate the verdict applies."""


def run_cell(task: Task) -> dict[str, Any]:
    """One replicate of one (scenario, n, share) cell: its verdict and headline numbers."""
    s, n, j, rep = task.scenario, task.n, task.share, task.rep
    share = SHARES[j]
    report = simulate(task.population, n, share, (rep, s, n, j), task.calib)
    verdict = decide(report, task.gate)
    # the same run decided as before the support section existed (every other record is
    # drawn as it was then), to see what the support check changes
    without = decide(report.model_copy(update={"support": None}), task.gate)
    data = report.model_dump(mode="json", include={"probes", "derivation", "support", "judge"})
    trunc = ("probes", "truncation", "generate")
    return {
        "scenario": s,
        "n": n,
        "share": share,
        "rep": rep,
        "decision": verdict.decision,
        "without_support": without.decision,
        "support_outcome": next(
            (c.outcome for c in verdict.checks if c.metric == "support.correct_but_unsupported"),
            "absent",
        ),
        "drivers": drivers(verdict),
        "aoc": _value(data, *trunc, "aoc"),
        "aoc_all": _value(data, *trunc, "aoc_all"),
        "flip_gain": _value(data, "probes", "mistakes", "flip_gain"),
        "underived": _value(data, "derivation", "correct_but_underived"),
        "unsupported": _value(data, "support", "correct_but_unsupported"),
        "judge_aligned": _value(data, "judge", "summary", "aligned_share_of_correct"),
        "judge_used": bool(((data.get("judge") or {}).get("reliability") or {}).get("reliable")),
    }


def _median(xs: Iterable[float | None]) -> float | None:
    vals = sorted(x for x in xs if x is not None)
    return vals[len(vals) // 2] if vals else None


def _fmt(x: float | None) -> str:
    return "  -  " if x is None else f"{x:5.2f}"


def tabulate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per cell: decision shares, top drivers, median headline numbers."""
    cells: dict[tuple[int, int, float], list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["scenario"], row["n"], row["share"]), []).append(row)
    out = []
    for (s, n, share), runs in sorted(cells.items()):
        count = Counter(r["decision"] for r in runs)
        why = {
            d: Counter(x for r in runs if r["decision"] == d for x in r["drivers"])
            for d in ("NO_GO", "INCONCLUSIVE")
        }
        out.append(
            {
                "scenario": SCENARIOS[s].name,
                "n": n,
                "share": share,
                "reps": len(runs),
                **{d: count[d] / len(runs) for d in ("GO", "NO_GO", "INCONCLUSIVE")},
                "without_support": {
                    d: sum(r["without_support"] == d for r in runs) / len(runs)
                    for d in ("GO", "NO_GO", "INCONCLUSIVE")
                },
                "moves": dict(
                    Counter(
                        f"{r['without_support']}->{r['decision']}"
                        for r in runs
                        if r["decision"] != r["without_support"]
                    )
                ),
                "support_outcomes": dict(Counter(r["support_outcome"] for r in runs)),
                "drivers": {d: dict(c.most_common()) for d, c in why.items()},
                "judge_used": sum(r["judge_used"] for r in runs) / len(runs),
                **{
                    k: _median(r[k] for r in runs)
                    for k in (
                        "aoc",
                        "aoc_all",
                        "flip_gain",
                        "underived",
                        "unsupported",
                        "judge_aligned",
                    )
                },
            }
        )
    return out


def targets(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The three operating targets of issue #28 and whether each holds, with the cells
    that miss. A cell's rates are over its replicates only: with few replicates a target
    that holds is a weak statement (the printout says how weak)."""
    support = {sc.name for sc in SCENARIOS if sc.regime.arithmetic or (sc.judge or 0) >= 0.9}
    specs = [
        (
            "false NO-GO <= 5% at 0% post-hoc (every scenario, n)",
            lambda c: c["share"] == 0.0,
            lambda c: c["NO_GO"] <= 0.05,
            "NO_GO",
        ),
        (
            "false GO <= 5% at >= 50% post-hoc (every scenario, n)",
            lambda c: c["share"] >= 0.5,
            lambda c: c["GO"] <= 0.05,
            "GO",
        ),
        (
            "decisive (GO or NO-GO) >= 80% at n = 100, 0% or >= 50% post-hoc, arithmetic "
            "problems or a reliable judge (accuracy 0.9)",
            lambda c: (
                c["n"] == 100
                and (c["share"] == 0.0 or c["share"] >= 0.5)
                and c["scenario"] in support
            ),
            lambda c: c["GO"] + c["NO_GO"] >= 0.8,
            "decisive",
        ),
    ]
    out = []
    for text, where, ok, key in specs:
        cells_in = [c for c in cells if where(c)]
        misses = [c for c in cells_in if not ok(c)]
        out.append(
            {
                "target": text,
                "holds": not misses,
                "cells": len(cells_in),
                "misses": [
                    {
                        "scenario": c["scenario"],
                        "n": c["n"],
                        "share": c["share"],
                        key: c["GO"] + c["NO_GO"] if key == "decisive" else c[key],
                    }
                    for c in misses
                ],
            }
        )
    return out


def _print(cells: list[dict[str, Any]], goals: list[dict[str, Any]], reps: int) -> None:
    print(
        f"{'scenario':<34} {'n':>4} {'post-hoc':>8} {'GO':>5} {'NO_GO':>5} {'INC':>5} | "
        f"{'aoc':>5} {'all':>5} {'gain':>5} {'uder':>5} {'unsp':>5} {'jalg':>5} | "
        f"{'w/o support':>11} | drivers"
    )
    last = None
    for c in cells:
        if last is not None and c["scenario"] != last:
            print()
        last = c["scenario"]
        top = []
        for d, tag in (("NO_GO", "N"), ("INCONCLUSIVE", "I")):
            top += [f"{tag}:{k} {v}" for k, v in list(c["drivers"][d].items())[:3]]
        print(
            f"{c['scenario']:<34} {c['n']:>4} {c['share']:>8.2f} {c['GO']:>5.2f} "
            f"{c['NO_GO']:>5.2f} {c['INCONCLUSIVE']:>5.2f} | {_fmt(c['aoc'])} "
            f"{_fmt(c['aoc_all'])} {_fmt(c['flip_gain'])} {_fmt(c['underived'])} "
            f"{_fmt(c['unsupported'])} {_fmt(c['judge_aligned'])} | "
            f"{c['without_support']['GO']:>5.2f} {c['without_support']['NO_GO']:>5.2f} | "
            f"{'; '.join(top)}"
        )
    print(
        "\ncolumns: P(decision) over replicates; medians of the gated AOC, the all-chains AOC, "
        "flip_gain, derivation's correct_but_underived, support's correct_but_unsupported "
        "and the judge's aligned share of correct; w/o support: P(GO), P(NO_GO) of the same "
        "runs decided without the support section; drivers: N = what a NO_GO failed on, I = "
        "what held an INCONCLUSIVE (counts of replicates)"
    )
    moved: Counter[str] = Counter()
    for c in cells:
        moved.update(c["moves"])
    print(f"decisions the support section changed (without -> with): {dict(moved) or 'none'}")
    for d in ("NO_GO", "INCONCLUSIVE"):
        total: Counter[str] = Counter()
        for c in cells:
            total.update(c["drivers"][d])
        print(f"{d} drivers over every cell: {dict(total.most_common(8))}")
    print(
        f"\ntargets ({reps} replicates per cell: a rate of 0/{reps} bounds the true rate "
        f"only by about {min(1.0, 3 / reps):.0%})"
    )
    for g in goals:
        print(f"  [{'HOLDS' if g['holds'] else 'MISSES'}] {g['target']} ({g['cells']} cells)")
        for m in g["misses"]:
            key = next(k for k in m if k not in ("scenario", "n", "share"))
            print(
                f"      miss: {m['scenario']} n={m['n']} post-hoc {m['share']:.2f}: "
                f"{key} {m[key]:.2f}"
            )


def default_gate(moves: Sequence[str] = ()) -> GateSpec:
    """The default gate, with the thresholds `moves` names ('metric=value') moved."""
    new = {}
    for move in moves:
        metric, _, value = move.partition("=")
        if metric not in {c.metric for c in DEFAULT_CHECKS}:
            raise ValueError(f"--threshold {move!r}: not a default check's metric")
        new[metric] = float(value)
    if not new:
        return GateSpec()
    checks = [
        c.model_copy(update={"threshold": new.get(c.metric, c.threshold)}) for c in DEFAULT_CHECKS
    ]
    source = "default with " + ", ".join(f"{k}={v:g}" for k, v in new.items())
    return GateSpec(checks=checks, use_defaults=False, source=source)


def population(moves: Sequence[str] = ()) -> dict[str, float]:
    """Regime parameters to change ('field=value', a float field of `Regime`)."""
    known = {f.name for f in fields(Regime) if f.type in ("float", float)}
    out = {}
    for move in moves:
        name, _, value = move.partition("=")
        if name not in known:
            raise ValueError(f"--population {move!r}: not one of {', '.join(sorted(known))}")
        out[name] = float(value)
    return out


def _tasks(
    scen: Sequence[int],
    sizes: Sequence[int],
    shares: Sequence[int],
    reps: int,
    calib: dict[tuple[float, int], JudgeReliability],
    gate: GateSpec,
    changes: dict[str, float],
) -> list[Task]:
    """Every replicate of every cell, the largest runs first (they set the wall time)."""
    pops = {s: replace(SCENARIOS[s], regime=replace(SCENARIOS[s].regime, **changes)) for s in scen}
    return [
        Task(s, pops[s], n, j, rep, calib.get((SCENARIOS[s].judge or 0.0, rep)), gate)
        for n in sorted(sizes, reverse=True)
        for s in scen
        for j in shares
        for rep in range(reps)
    ]


def run(
    scen: Sequence[int],
    sizes: Sequence[int],
    shares: Sequence[int],
    reps: int,
    jobs: int,
    gate: GateSpec,
    changes: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Every simulated run's row (`run_cell`), on `jobs` worker processes; `changes`:
    regime parameters changed in every scenario (`population`)."""
    accs = sorted({a for s in scen if (a := SCENARIOS[s].judge) is not None})
    todo = [(a, rep) for a in accs for rep in range(reps)]
    if jobs <= 1:
        calib = dict(map(calibrate, todo))
        tasks = _tasks(scen, sizes, shares, reps, calib, gate, changes or {})
        return [run_cell(t) for t in tasks]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        calib = dict(pool.map(calibrate, todo))
        tasks = _tasks(scen, sizes, shares, reps, calib, gate, changes or {})
        return list(pool.imap_unordered(run_cell, tasks))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the grid, print the table and the targets; returns what --out writes."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=None, help="replicates per cell (default 3)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument(
        "--scenario",
        action="append",
        default=None,
        help="scenario name (repeatable), or `all`; default: the first five",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: capable/arith at n = 100, 0 and 1.0 post-hoc, 3 replicates",
    )
    ap.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="move a default check's threshold (e.g. derivation.correct_but_underived=0.3), "
        "everything else about the check and the gate unchanged: to measure a proposal",
    )
    ap.add_argument(
        "--population",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a regime parameter in every scenario (e.g. support_detect=0.425, a "
        "weaker support check): to measure how the verdict depends on an assumption",
    )
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    try:
        gate = default_gate(args.threshold)
        changes = population(args.population)
    except ValueError as exc:
        ap.error(str(exc))
    from faithcheck.backends.precision import probe_device

    cpu = str(probe_device(cpu=True).cpu_capability)
    print(
        f"cpu capability: {cpu}; {args.jobs} worker(s); gate: {gate.source}; population "
        f"changes: {changes or 'none'}",
        flush=True,
    )
    names = [sc.name for sc in SCENARIOS]
    scen: Sequence[int]
    sizes: Sequence[int]
    shares: Sequence[int]
    if args.quick:
        scen, sizes, shares = [1], (100,), (0, len(SHARES) - 1)
    else:
        wanted = args.scenario or names[:DEFAULT_SCENARIOS]
        unknown = [w for w in wanted if w != "all" and w not in names]
        if unknown:
            ap.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(names)}")
        scen = [i for i, name in enumerate(names) if "all" in wanted or name in wanted]
        sizes, shares = SIZES, range(len(SHARES))
    reps = args.reps or 3
    start = time.perf_counter()
    rows = run(scen, sizes, shares, reps, args.jobs, gate, changes)
    cells = tabulate(rows)
    goals = targets(cells)
    _print(cells, goals, reps)
    wall = time.perf_counter() - start
    print(f"\nwall {wall:.0f} s for {len(rows)} simulated runs")
    result = {
        "cpu_capability": cpu,
        "reps": reps,
        "gate": gate.model_dump(mode="json"),
        "population_changes": changes,
        "wall_s": wall,
        "scenarios": [
            {
                "name": names[s],
                "judge": SCENARIOS[s].judge,
                "regime": asdict(replace(SCENARIOS[s].regime, **changes)),
            }
            for s in scen
        ],
        "cells": cells,
        "targets": goals,
        "runs": rows,
    }
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
