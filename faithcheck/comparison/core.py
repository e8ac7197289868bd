"""`faithcheck compare`: scored checkpoints side by side, with paired deltas vs a baseline.

Definitions (the contract of this module; units and metrics: `faithcheck.comparison.metrics`):

- **Delta** of a candidate vs the baseline: metric(candidate) − metric(baseline) over the
  problems both runs have a unit for, with a 95% bootstrap CI
  (`faithcheck.metrics.bootstrap`) that resamples those problem ids with replacement, one
  draw applied to both runs (paired); `n` is the number of such problems. Diversity
  deltas are paired the same way on the per-problem values of diversity.jsonl; when a
  run lacks that file (scored with --no-diversity, or before it existed) they fall back
  to the difference of the report aggregates (unpaired, no CI). Diversity is never gated.
- **Per-run values** come from the run's report.json aggregate where it has one, else
  from its records (bootstrap over the run's own problems).
- **Truncation AOC** (`truncation_aoc`) reads the runs' primary read-out
  (`probes.primary_readout`, the one their verdicts read) when they agree and every run
  with truncation records has it, else the generate read-out, else the score read-out.
- **Ranking** by point estimate of the first metric of `RANKING_ORDER` that every run has
  (the judge's aligned share of correct responses, else truncation AOC, …), ties broken by
  the next ones, then by the other compared directional metrics; runs equal on all of
  them share a rank. A metric some run lacks is left out of the ranking (with a warning).
  Ranking reads each run's own value; whether a gap is real is what the deltas' CIs say.
- **Max-drop gate** (`faithcheck.verdict.core.max_drop_checks`), by the verdict's three-way
  rule: a candidate passes a higher-is-better metric when the CI lower bound of its
  delta is at or above −max_drop (a worsening beyond max_drop ruled out at 95%), fails
  when even the upper bound is below it (a worsening beyond it shown), and is undecided
  otherwise or on fewer than 10 shared problems; mirrored for a lower-is-better metric.
  Only paired, directional metrics measured in the candidate or the baseline are gated; a
  check that cannot be evaluated (measured in one of the two only) is null. The gate
  passes when every check passes, fails when any fails, and is otherwise null
  (inconclusive, exit 4, with about how many more problems would decide it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from faithcheck.comparison.metrics import (
    Aggregation,
    MetricSpec,
    RunData,
    Source,
    Units,
    label_runs,
    paired_delta,
    run_value,
    select_metrics,
)
from faithcheck.errors import UsageError
from faithcheck.metrics import MetricValue
from faithcheck.records import Record
from faithcheck.report import Check, Decision

SCHEMA_VERSION = "0.1"
MIN_SHARED = 10
"""Fewer shared problems than this draws a warning."""
RANKING_ORDER = (
    "aligned_share_of_correct",
    "truncation_aoc",
    "flip_rate",
    "necessity_rate",
    "answer_derived",
    "accuracy",
)
"""Ranking keys, primary first (only those compared and present in some run are used)."""


# --- records ---------------------------------------------------------------------------------


class ComparedRun(Record):
    """One run directory in the comparison."""

    label: str
    """Checkpoint label: the run directory's name (the model spec or path if names clash)."""
    path: str
    """The run directory as given."""
    model: str
    """The report's --model spec."""
    dataset_sha256: str | None
    """Hash of the problems the run was scored on."""
    config_hash: str | None
    """Hash of the run's result-affecting settings."""
    problems: int
    """Problems with at least one sample in samples.jsonl."""
    decision: Decision | None
    """The run's own verdict decision, when its report has one."""
    judges: dict[str, str] = Field(default_factory=dict)
    """With a jury: each judge's label shares in this run, in words (aligned / partial /
    misaligned share of all judged responses, and its calibration outcome); empty with
    one judge. The paired judge metrics use the first judge's labels."""


class MetricInfo(Record):
    """A compared metric."""

    name: str
    """Short name (what `--metric` takes)."""
    path: str
    """Dotted path of the aggregate in report.json."""
    higher_is_better: bool | None
    """Direction; null for contrast-only metrics (diversity)."""
    paired: bool
    """Deltas are paired per problem from the records (else report aggregates, no CI); for
    diversity only where both runs have diversity.jsonl (each `Delta.paired` says)."""
    aggregation: Aggregation
    """pooled: sum(num)/sum(den) over problems; mean: mean over problems of num/den."""


class RunValue(MetricValue):
    """A run's value of one metric."""

    source: Source
    """Where it came from: the report aggregate, the records, or nowhere (not measured)."""


class Delta(MetricValue):
    """Candidate minus baseline on shared problems (`n` of them), with a paired 95% CI."""

    higher_is_better: bool | None
    """Direction of the metric (a positive delta is an improvement when true)."""
    paired: bool
    """False for report-aggregate differences (no CI, not gated)."""


class DropCheck(Check):
    """One max-drop check of one candidate on one metric (value and CI: the delta)."""

    candidate: str
    """Label of the candidate run."""
    origin: Literal["default", "user", "baseline"] = "baseline"
    """Always `baseline`: a gate on the change from the baseline run."""


class Gate(Record):
    """The max-drop gate vs the baseline."""

    max_drop: float
    """Largest allowed drop of a metric (in its own units) vs the baseline."""
    checks: list[DropCheck]
    """One check per candidate and paired directional metric."""
    passed: bool | None
    """True: every check passes; False: some check fails; null: none fails but some
    could not be evaluated, or no compared metric is gateable."""
    failed: list[str]
    """`label: metric` of each failed check."""


class Ranked(Record):
    """A run's place in the ranking."""

    rank: int
    """1 = best; runs equal on every ranking metric share a rank."""
    label: str
    """The run."""
    values: dict[str, float | None]
    """Its value of each ranking metric, in order."""


class Comparison(Record):
    """`faithcheck compare` output (`--json`, `--out`)."""

    schema_version: str = SCHEMA_VERSION
    """Version of this schema."""
    baseline: str
    """Label of the baseline run."""
    runs: list[ComparedRun]
    """The runs, in command-line order (an extra --baseline first)."""
    metric_info: list[MetricInfo]
    """The compared metrics, in column order."""
    metrics: dict[str, dict[str, RunValue]]
    """label -> metric -> the run's value with its CI."""
    deltas: dict[str, dict[str, Delta]]
    """candidate label -> metric -> delta vs the baseline."""
    shared_problems: dict[str, int]
    """candidate label -> problems sampled in both it and the baseline."""
    ranking_metrics: list[str]
    """Metrics the ranking sorts on, primary first."""
    ranking: list[Ranked]
    """Runs best first."""
    warnings: list[str]
    """Why some deltas may not compare like with like (datasets, settings, few problems)."""
    gate: Gate | None = None
    """The max-drop gate, when --max-drop is given."""
    seed: int
    """Bootstrap seed."""
    n_boot: int
    """Bootstrap resamples."""


def comparison_json_schema() -> dict[str, Any]:
    """JSON Schema of the comparison JSON (`--json`, `--out`)."""
    return Comparison.model_json_schema()


def _info(spec: MetricSpec) -> MetricInfo:
    return MetricInfo(
        name=spec.name,
        path=spec.path,
        higher_is_better=spec.higher_is_better,
        paired=spec.units is not None,
        aggregation=spec.aggregation,
    )


def _delta(
    spec: MetricSpec,
    base: tuple[str, Units, RunValue],
    cand: tuple[str, Units, RunValue],
    seed: int,
    n_boot: int,
) -> Delta:
    """Delta of one metric; `base` and `cand` are (label, units, own value)."""
    hib = spec.higher_is_better
    missing = [label for label, units, _ in (base, cand) if not units]
    if spec.units is None or (spec.unpaired_fallback and missing):
        b, c = base[2].value, cand[2].value
        if b is None or c is None:
            return Delta(
                value=None, reason="not in both reports", higher_is_better=hib, paired=False
            )
        why = "unpaired: difference of report aggregates"
        if spec.units is not None:
            why += f" (no per-problem values in {' and '.join(missing)})"
        return Delta(value=c - b, reason=why, higher_is_better=hib, paired=False)
    if missing:
        why = f"not measured in {' and '.join(missing)}"
        return Delta(value=None, reason=why, higher_is_better=hib, paired=True)
    delta = paired_delta(base[1], cand[1], spec.aggregation, seed=seed, n_boot=n_boot)
    return Delta(**delta.model_dump(), higher_is_better=hib, paired=True)


def gate_checks(
    cand: RunData,
    base: RunData,
    gated: Sequence[tuple[MetricSpec, Delta]],
    max_drop: float,
) -> list[DropCheck]:
    """Max-drop checks of one candidate (`faithcheck.verdict.core.max_drop_checks`), labelled."""
    from faithcheck.verdict.core import max_drop_checks

    lower = {s.path for s, _ in gated if s.higher_is_better is False}
    deltas = {s.path: d for s, d in gated}
    checks = max_drop_checks(base.report, cand.report, deltas, max_drop, lower_is_better=lower)
    return [DropCheck(**c.model_dump(), candidate=cand.label) for c in checks]


def gate_result(checks: list[DropCheck], max_drop: float) -> Gate:
    """False if any check fails, else None if any is null (or there is none), else True."""
    results = [c.passed for c in checks]
    passed = False if False in results else (None if None in results or not checks else True)
    failed = [f"{c.candidate}: {c.metric}" for c in checks if c.passed is False]
    return Gate(max_drop=max_drop, checks=checks, passed=passed, failed=failed)


def rank_runs(
    labels: Sequence[str],
    specs: Sequence[MetricSpec],
    values: Mapping[str, Mapping[str, MetricValue]],
) -> tuple[list[str], list[Ranked]]:
    """Order runs by `RANKING_ORDER`, then the other paired directional metrics; best first.

    Only metrics every run has a value for are ranking keys (if there are none: those some
    run has, missing values last), so a run without a judge is not ranked below judged
    ones for that alone.

    Returns:
        The ranking metrics used (primary first) and the ranked runs.
    """
    by_name = {s.name: s for s in specs}
    order = [m for m in RANKING_ORDER if m in by_name] + [
        s.name
        for s in specs
        if s.name not in RANKING_ORDER and s.higher_is_better is not None and s.units is not None
    ]
    # Rank on what every run measured; only when no metric is common, on what any has.
    present = [m for m in order if any(values[lbl][m].value is not None for lbl in labels)]
    keys = [m for m in present if all(values[lbl][m].value is not None for lbl in labels)]
    keys = keys or present

    def sort_key(label: str) -> tuple[tuple[bool, float], ...]:
        pairs = [(values[label][m].value, by_name[m].higher_is_better) for m in keys]
        return tuple((v is None, 0.0 if v is None else (-v if hib else v)) for v, hib in pairs)

    ranked: list[Ranked] = []
    for i, label in enumerate(sorted(labels, key=sort_key), start=1):
        tied = bool(ranked) and sort_key(ranked[-1].label) == sort_key(label)
        rank = ranked[-1].rank if tied else i
        ranked.append(
            Ranked(rank=rank, label=label, values={m: values[label][m].value for m in keys})
        )
    return keys, ranked


def _short(sha: object) -> str:
    return str(sha)[:12] if sha else "unknown"


def setting_warnings(base: RunData, cand: RunData) -> list[str]:
    """Why `cand` may not compare like with like with `base`: dataset, sampling and probe
    settings, precision, judge model or rubric version."""
    out = []
    bd, cd = base.report.get("dataset_sha256"), cand.report.get("dataset_sha256")
    if bd != cd:
        out.append(
            f"{cand.label}: scored on a different dataset than {base.label} "
            f"(dataset_sha256 {_short(cd)} vs {_short(bd)})"
        )
    out += [f"{r.label}: no run.json; settings not compared" for r in (base, cand) if not r.info]
    configs = [(r.info or {}).get("config") or {} for r in (base, cand)]
    for section in ("sampling", "probes"):
        b, c = (cfg.get(section) for cfg in configs)
        if isinstance(b, dict) and isinstance(c, dict) and b != c:
            keys = sorted(k for k in b.keys() | c.keys() if b.get(k) != c.get(k))
            out.append(
                f"{cand.label}: {section} settings differ from {base.label} ({', '.join(keys)})"
            )
    b, c = (cfg.get("dtype") for cfg in configs)
    if b and c and b != c:  # bf16 vs fp32 logits: small drifts in every sampled token
        out.append(f"{cand.label}: ran in {c}, {base.label} in {b} (--dtype)")
    judges = [r.report.get("judge") or {} for r in (base, cand)]
    for r, j in zip((base, cand), judges, strict=True):
        if isinstance(j.get("jury"), Mapping):
            out.append(
                f"{r.label}: judged by a jury; the paired judge metrics use its first judge's "
                "labels (each judge's shares: runs[].judges)"
            )
    for key in ("model", "prompt_version"):
        b, c = (j.get(key) for j in judges)
        if b and c and b != c:
            out.append(f"{cand.label}: judge {key} {c!r} differs from {base.label}'s {b!r}")
    return out


def shared_warnings(base: RunData, cand: RunData, b_ids: set[str], c_ids: set[str]) -> list[str]:
    """Problems left out of the pairing, and too few shared problems."""
    shared = len(b_ids & c_ids)
    out = []
    if b_ids != c_ids:
        out.append(
            f"{cand.label}: {len(c_ids - b_ids)} of its problems and {len(b_ids - c_ids)} of "
            f"{base.label}'s are not shared; deltas use the {shared} shared"
        )
    if shared < MIN_SHARED:
        out.append(
            f"{cand.label}: only {shared} problems shared with {base.label} "
            f"(fewer than {MIN_SHARED}); the delta CIs are unreliable"
        )
    return out


def compare_runs(
    runs: Sequence[RunData],
    metrics: Sequence[str] | None = None,
    *,
    baseline: int = 0,
    max_drop: float | None = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> Comparison:
    """Compare loaded runs with `runs[baseline]` (definitions in the module docs).

    Args:
        runs: at least two runs (`faithcheck.comparison.metrics.load_run`), labelled here.
        metrics: metric names or report.json paths; None: the `DEFAULT_METRICS` that some
            run has (an explicitly asked metric no run has is kept, with a warning).
        baseline: index of the baseline in `runs`.
        max_drop: when given, gate every candidate on it.
        seed: bootstrap seed (the same for every metric and candidate).
        n_boot: bootstrap resamples.

    Raises:
        UsageError: fewer than two runs, a bad baseline index, or an unknown metric.
    """
    if len(runs) < 2:
        raise UsageError("compare needs at least two run directories (or one and --baseline)")
    if max_drop is not None and not (math.isfinite(max_drop) and max_drop >= 0):
        raise UsageError(f"--max-drop must be a number >= 0, got {max_drop:g}")
    if not 0 <= baseline < len(runs):
        raise UsageError(f"baseline index {baseline} is not among the {len(runs)} runs")
    runs = label_runs(runs)
    specs = select_metrics(metrics, runs)
    units = {r.label: {s.name: s.units(r) if s.units else {} for s in specs} for r in runs}
    values = _run_values(runs, specs, units, seed, n_boot)
    absent = {s.name for s in specs if all(v[s.name].source == "missing" for v in values.values())}
    warnings = [f"{m}: not measured in any run" for m in sorted(absent) if metrics is not None]
    if metrics is None:
        specs = [s for s in specs if s.name not in absent]
    base, cands = runs[baseline], [r for i, r in enumerate(runs) if i != baseline]
    ids = {r.label: set(r.problems) for r in runs}
    deltas: dict[str, dict[str, Delta]] = {}
    checks: list[DropCheck] = []
    for c in cands:
        gated: list[tuple[MetricSpec, Delta]] = []
        warnings += setting_warnings(base, c)
        warnings += shared_warnings(base, c, ids[base.label], ids[c.label])
        deltas[c.label] = {}
        for s in specs:
            ends = [(r.label, units[r.label][s.name], values[r.label][s.name]) for r in (base, c)]
            d = deltas[c.label][s.name] = _delta(s, ends[0], ends[1], seed, n_boot)
            directional = s.units is not None and s.higher_is_better is not None
            if directional and any(u for _, u, _ in ends):  # measured in one of the two
                gated.append((s, d))
        if max_drop is not None:
            checks += gate_checks(c, base, gated, max_drop)
    labels = [r.label for r in runs]
    ranking_metrics, ranking = rank_runs(labels, specs, values)
    warnings += _ranking_warnings(labels, ranking_metrics, values, base.label)
    return Comparison(
        baseline=base.label,
        runs=[_compared(r, len(ids[r.label])) for r in runs],
        metric_info=[_info(s) for s in specs],
        metrics={lbl: {s.name: values[lbl][s.name] for s in specs} for lbl in labels},
        deltas=deltas,
        shared_problems={c.label: len(ids[base.label] & ids[c.label]) for c in cands},
        ranking_metrics=ranking_metrics,
        ranking=ranking,
        warnings=list(dict.fromkeys(warnings)),  # the baseline's own warnings once
        gate=gate_result(checks, max_drop) if max_drop is not None else None,
        seed=seed,
        n_boot=n_boot,
    )


def _run_values(
    runs: Sequence[RunData],
    specs: Sequence[MetricSpec],
    units: Mapping[str, Mapping[str, Units]],
    seed: int,
    n_boot: int,
) -> dict[str, dict[str, RunValue]]:
    """Each run's value of each metric, by run label then metric name."""
    values: dict[str, dict[str, RunValue]] = {}
    for r in runs:
        values[r.label] = {}
        for s in specs:
            value, source = run_value(s, r.report, units[r.label][s.name], seed=seed, n_boot=n_boot)
            values[r.label][s.name] = RunValue(**value.model_dump(), source=source)
    return values


def _ranking_warnings(
    labels: Sequence[str],
    ranking_metrics: Sequence[str],
    values: Mapping[str, Mapping[str, RunValue]],
    baseline: str,
) -> list[str]:
    """One warning per ranking metric that the ranking leaves out because a run lacks it."""
    out = []
    for m in (m for m in RANKING_ORDER if m not in ranking_metrics and m in values[baseline]):
        missing = [lbl for lbl in labels if values[lbl][m].value is None]
        if len(missing) < len(labels):
            out.append(f"ranking leaves out {m}: not measured in {', '.join(missing)}")
    return out


def _compared(run: RunData, problems: int) -> ComparedRun:
    verdict = run.report.get("verdict")
    decision = verdict.get("decision") if isinstance(verdict, dict) else None
    return ComparedRun(
        label=run.label,
        path=str(run.path),
        model=run.report["model"],
        dataset_sha256=run.report.get("dataset_sha256"),
        config_hash=run.report.get("config_hash"),
        problems=problems,
        decision=decision if decision in ("GO", "NO_GO", "INCONCLUSIVE") else None,
        judges=_juror_labels(run.report),
    )


def _juror_labels(report: Mapping[str, Any]) -> dict[str, str]:
    """Each jury judge's label shares, read from report.json (empty: one judge)."""
    jury = (report.get("judge") or {}).get("jury")
    if not isinstance(jury, Mapping):
        return {}
    out = {}
    for j in jury.get("judges") or ():
        shares = ((j.get("summary") or {}).get("among_all")) or {}
        parts = [
            f"{name} {value:.2f}"
            for name in ("aligned", "partial", "misaligned")
            if isinstance(value := (shares.get(name) or {}).get("value"), int | float)
        ]
        outcome = (j.get("reliability") or {}).get("outcome", "uncalibrated")
        out[str(j.get("name"))] = ", ".join(parts) + f" ({outcome})"
    return out
