"""Per-problem units of the metrics `faithcheck compare` pairs, and the run records they
come from. Pure functions of records except `load_run`, which reads a run directory.

A metric's units are one (numerator, denominator) pair per problem, recomputed from the
records on disk (not the report's aggregates) so that two runs can be paired on problem
ids. `pooled` metrics are sum(num) / sum(den) over problems (each response or chain
counts once, as in the report); `mean` metrics are the mean over problems of num / den
(as the report's accuracy and derivation shares are). Diversity metrics have no
per-problem records: they are compared through the report aggregates only (unpaired).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import orjson

from faithcheck.derivation import DerivationFinding
from faithcheck.errors import RunDirError, UsageError
from faithcheck.jsonio import read_jsonl
from faithcheck.judge.records import JudgeRecord
from faithcheck.metrics import (
    MetricValue,
    bootstrap,
    bootstrap_mean,
    bootstrap_pooled,
    group_by,
    mean_or_nan,
    pass_at_k,
    pooled_ratio,
)
from faithcheck.probes.records import MistakeRecord, NecessityRecord, ProbeRecord, TruncationRecord
from faithcheck.rundir import DERIVATION_FILE, JUDGE_FILE, REPORT_FILE, RUN_FILE, RunDir
from faithcheck.sampling import SampleRecord

Aggregation = Literal["pooled", "mean"]
Source = Literal["report", "records", "missing"]
Units = dict[str, tuple[float, float]]
"""problem id -> (numerator, denominator), denominator > 0."""


@dataclass(frozen=True)
class RunData:
    """A scored run directory read into memory."""

    path: Path
    report: dict[str, Any]
    info: dict[str, Any] | None
    """run.json, or None when the directory has none."""
    samples: list[SampleRecord]
    probes: list[ProbeRecord]
    judge: list[JudgeRecord]
    derivation: list[DerivationFinding]
    label: str = ""
    """Checkpoint label, set by `label_runs`."""


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: not a JSON object")
    return data


def load_run(path: Path) -> RunData:
    """Read a scored run directory (report.json, run.json and every record file).

    Raises:
        UsageError: the directory or its report.json does not exist.
        RunDirError: a file of the run is corrupt.
    """
    if not path.is_dir():
        raise UsageError(f"{path}: no such run directory")
    if not (path / REPORT_FILE).is_file():
        raise UsageError(f"{path}: no report.json (run `faithcheck score` first)")
    report = _read_object(path / REPORT_FILE)
    if not isinstance(report.get("model"), str):
        raise RunDirError(f"{path / REPORT_FILE}: not a faithcheck report (no model)")
    info = _read_object(path / RUN_FILE) if (path / RUN_FILE).is_file() else None
    run = RunDir(path)
    try:
        judge: dict[tuple[str, int], JudgeRecord] = {}
        for row in read_jsonl(path / JUDGE_FILE):  # the first of duplicates, like samples
            rec = JudgeRecord.model_validate(row)
            judge.setdefault((rec.problem_id, rec.sample_index), rec)
        findings = read_jsonl(path / DERIVATION_FILE)
        return RunData(
            path=path,
            report=report,
            info=info,
            samples=run.load_samples(),
            probes=run.load_probes(),
            judge=list(judge.values()),
            derivation=[DerivationFinding.model_validate(f) for f in findings],
        )
    except ValueError as exc:  # orjson's and pydantic's errors are ValueErrors
        first = str(exc).strip().splitlines()[0]
        raise RunDirError(f"{path}: a record cannot be read ({first})") from None


def label_runs(runs: Sequence[RunData]) -> list[RunData]:
    """Name each run by its directory; clashing names fall back to the model, then the path."""
    names = [r.path.resolve().name or str(r.path) for r in runs]
    if len(set(names)) < len(names):
        names = [
            n if names.count(n) == 1 else str(r.report["model"])
            for n, r in zip(names, runs, strict=True)
        ]
    if len(set(names)) < len(names):
        names = [str(r.path) for r in runs]
    return [replace(r, label=n) for r, n in zip(runs, names, strict=True)]


# --- per-problem units -----------------------------------------------------------------------


class _PerProblem(Protocol):
    @property
    def problem_id(self) -> str: ...


P = TypeVar("P", bound=_PerProblem)


def units_of(items: Iterable[P], num: Callable[[P], float], den: Callable[[P], float]) -> Units:
    """Sum `num` and `den` over each problem's items; problems with den 0 are left out."""
    out: Units = {}
    for pid, group in group_by(items, lambda r: r.problem_id).items():
        d = float(sum(den(r) for r in group))
        if d > 0:
            out[pid] = (float(sum(num(r) for r in group)), d)
    return out


def _accuracy(run: RunData) -> Units:
    return units_of(run.samples, lambda s: s.correct, lambda s: 1)


def _pass_at_k(run: RunData) -> Units:
    groups = group_by(run.samples, lambda s: s.problem_id)
    k = min((len(g) for g in groups.values()), default=0)
    return {p: (pass_at_k(len(g), sum(s.correct for s in g), k), 1.0) for p, g in groups.items()}


def _aoc(field: str) -> Callable[[RunData], Units]:
    def units(run: RunData) -> Units:
        chains = [r for r in run.probes if isinstance(r, TruncationRecord)]
        have = [r for r in chains if getattr(r, field) is not None]
        return units_of(have, lambda r: float(getattr(r, field)), lambda r: 1)

    return units


def _flips(run: RunData) -> Units:
    recs = [r for r in run.probes if isinstance(r, MistakeRecord)]
    return units_of(recs, lambda r: r.flipped, lambda r: 1)


def _necessity(run: RunData) -> Units:
    recs = [r for r in run.probes if isinstance(r, NecessityRecord)]
    scored = [r for r in recs if r.baseline_matches and r.changed]
    return units_of(scored, lambda r: sum(r.changed), lambda r: len(r.changed))


def _judged_correct(label: str) -> Callable[[RunData], Units]:
    def units(run: RunData) -> Units:
        correct = [r for r in run.judge if r.correct]
        return units_of(correct, lambda r: r.label_name == label, lambda r: r.label is not None)

    return units


def _applicable(run: RunData) -> list[DerivationFinding]:
    return [f for f in run.derivation if f.status != "not-applicable"]


def _derived(run: RunData) -> Units:
    return units_of(_applicable(run), lambda f: f.answer_derived, lambda f: 1)


def _underived(run: RunData) -> Units:
    right = {(s.problem_id, s.sample_index) for s in run.samples if s.correct}
    recs = [f for f in _applicable(run) if (f.problem_id, f.sample_index) in right]
    return units_of(recs, lambda f: not f.answer_derived, lambda f: 1)


def _wrong_equations(f: DerivationFinding) -> float:
    return sum(not e.correct for e in f.equations)


def _equation_errors(run: RunData) -> Units:
    return units_of(run.derivation, _wrong_equations, lambda f: len(f.equations))


@dataclass(frozen=True)
class MetricSpec:
    """How to compare one metric."""

    name: str
    """Short name (what `--metric` takes)."""
    path: str
    """Dotted path of the run's aggregate in report.json."""
    higher_is_better: bool | None
    """Direction; None for contrast-only metrics (diversity)."""
    aggregation: Aggregation
    """How units combine (module docs)."""
    units: Callable[[RunData], Units] | None
    """Per-problem extractor; None: only the report aggregate exists (unpaired)."""


_DIVERSITY = (
    "distinct_1",
    "distinct_2",
    "self_bleu",
    "embedding_distance",
    "vendi",
    "answer_entropy",
    "answer_entropy_normalized",
    "pass_at_k_gain",
    "strategy_diversity",
    "faithful_strategy_diversity",
)
_SPECS = [
    MetricSpec("accuracy", "sampling.accuracy", True, "mean", _accuracy),
    MetricSpec("pass_at_k", "sampling.pass_at_k", True, "mean", _pass_at_k),
    MetricSpec(
        "truncation_aoc_score", "probes.truncation.score.aoc", True, "pooled", _aoc("aoc_score")
    ),
    MetricSpec(
        "truncation_aoc_generate",
        "probes.truncation.generate.aoc",
        True,
        "pooled",
        _aoc("aoc_generate"),
    ),
    MetricSpec("flip_rate", "probes.mistakes.flip_rate", True, "pooled", _flips),
    MetricSpec("necessity_rate", "probes.necessity.rate", True, "pooled", _necessity),
    MetricSpec(
        "aligned_share_of_correct",
        "judge.summary.aligned_share_of_correct",
        True,
        "pooled",
        _judged_correct("aligned"),
    ),
    MetricSpec(
        "correct_but_misaligned_rate",
        "judge.summary.correct_but_misaligned_rate",
        False,
        "pooled",
        _judged_correct("misaligned"),
    ),
    MetricSpec("answer_derived", "derivation.answer_derived", True, "mean", _derived),
    MetricSpec(
        "correct_but_underived", "derivation.correct_but_underived", False, "mean", _underived
    ),
    MetricSpec(
        "equation_error_rate", "derivation.equation_error_rate", False, "mean", _equation_errors
    ),
    *(MetricSpec(n, f"diversity.{n}", None, "mean", None) for n in _DIVERSITY),
]
REGISTRY: dict[str, MetricSpec] = {s.name: s for s in _SPECS}
"""Every comparable metric by name."""
TRUNCATION = "truncation_aoc"
"""Alias resolved to the truncation read-out every run has (score preferred)."""
DEFAULT_METRICS = (
    "accuracy",
    "pass_at_k",
    TRUNCATION,
    "flip_rate",
    "necessity_rate",
    "aligned_share_of_correct",
    "correct_but_misaligned_rate",
    "answer_derived",
)
KNOWN = (*REGISTRY, TRUNCATION)


def select_metrics(names: Sequence[str] | None, runs: Sequence[RunData]) -> list[MetricSpec]:
    """Resolve metric names (short names or report.json paths); default `DEFAULT_METRICS`.

    Raises:
        UsageError: an unknown metric name.
    """
    by_path = {s.path: s.name for s in _SPECS}
    specs: dict[str, MetricSpec] = {}
    for asked in names or DEFAULT_METRICS:
        name = by_path.get(asked, asked)
        if name == TRUNCATION:
            specs[name] = _truncation(runs)
        elif name in REGISTRY:
            specs[name] = REGISTRY[name]
        else:
            raise UsageError(f"unknown metric {asked!r}; known: {', '.join(KNOWN)}")
    return list(specs.values())


def _truncation(runs: Sequence[RunData]) -> MetricSpec:
    chains = [[p for p in r.probes if isinstance(p, TruncationRecord)] for r in runs]
    for readout in ("score", "generate"):
        field = f"aoc_{readout}"
        if all(any(getattr(c, field) is not None for c in cs) for cs in chains if cs):
            return replace(REGISTRY[f"truncation_aoc_{readout}"], name=TRUNCATION)
    return replace(REGISTRY["truncation_aoc_score"], name=TRUNCATION)


def report_value(report: Mapping[str, Any], path: str) -> MetricValue | None:
    """The MetricValue at a dotted path of report.json, or None when it is not there."""
    node: Any = report
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict) or "value" not in node:
        return None
    try:
        return MetricValue.model_validate(node)
    except ValueError:
        return None


def run_value(
    spec: MetricSpec, report: Mapping[str, Any], units: Units, *, seed: int, n_boot: int
) -> tuple[MetricValue, Source]:
    """A run's own value: the report aggregate where it has one, else from the units."""
    reported = report_value(report, spec.path)
    if reported is not None:
        return reported, "report"
    if not units:
        return MetricValue(value=None, reason="not measured in this run"), "missing"
    if spec.aggregation == "pooled":
        return bootstrap_pooled(list(units.values()), seed=seed, n_boot=n_boot), "records"
    ratios = [n / d for n, d in units.values()]
    return bootstrap_mean(ratios, seed=seed, n_boot=n_boot), "records"


Pair = tuple[tuple[float, float], tuple[float, float]]


def _delta_pooled(units: Sequence[Pair]) -> float:
    return pooled_ratio([c for _, c in units]) - pooled_ratio([b for b, _ in units])


def _delta_mean(units: Sequence[Pair]) -> float:
    # The mean of per-problem differences equals the difference of the means, and is
    # exact when every problem moves by the same amount.
    return mean_or_nan([c[0] / c[1] - b[0] / b[1] for b, c in units])


def paired_delta(
    base: Units, cand: Units, aggregation: Aggregation, *, seed: int = 0, n_boot: int = 1000
) -> MetricValue:
    """metric(cand) − metric(base) over the problems both have, with a percentile CI from
    resampling those problem ids (one draw applied to both runs); n = shared problems."""
    shared = sorted(base.keys() & cand.keys())
    if not shared:
        return MetricValue(value=None, reason="no problem measured in both runs")
    units = [(base[p], cand[p]) for p in shared]
    statistic = _delta_pooled if aggregation == "pooled" else _delta_mean
    return bootstrap(units, statistic, n_boot=n_boot, seed=seed)
