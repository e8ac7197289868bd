"""Per-problem units of the metrics `faithcheck compare` pairs, and how they are read from a
run directory. Pure functions of records except `load_run`, which reads a run directory.

A metric's units are one (numerator, denominator) pair per problem, recomputed from the
records on disk (not the report's aggregates) so that two runs can be paired on problem
ids. `pooled` metrics are sum(num) / sum(den) over problems (each response or chain
counts once, as in the report); `mean` metrics are the mean over problems of num / den
(as the report's accuracy and derivation shares are). Diversity metrics are read from
diversity.jsonl, one (value, 1) unit per problem where the metric applies (`mean`); a run
without that file (scored with --no-diversity, or before the file existed) has no units
for them, and is compared through the report aggregates only (unpaired, no CI).

`load_run` reads each record file one problem at a time (`faithcheck.store.jsonindex`) and keeps
only the units, so memory grows with the number of problems, not of records. A metric's
units are ordered like the problems' first records that count for it in the file (what
grouping the whole file's records would give), so a run's own bootstrap does not depend on
how its records are split into spans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import orjson
from pydantic import ValidationError

from faithcheck.checks.derivation import DerivationFinding
from faithcheck.checks.support import SupportFinding
from faithcheck.diversity.core import PER_PROBLEM_METRICS, ProblemDiversity
from faithcheck.errors import RunDirError, UsageError
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
from faithcheck.probes.records import (
    PRIMARY_READOUT,
    MistakeRecord,
    NecessityRecord,
    ProbeRecord,
    TruncationRecord,
)
from faithcheck.probes.summary import flip_unit
from faithcheck.sampling import SampleRecord
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.rundir import (
    DERIVATION_FILE,
    DIVERSITY_FILE,
    JUDGE_FILE,
    PROBES_FILE,
    REPORT_FILE,
    RUN_FILE,
    SAMPLES_FILE,
    SUPPORT_FILE,
    RunDir,
    validate_probe,
)
from faithcheck.verdict.catalog import CATALOG, COMPARE_DEFAULT, Aggregation
from faithcheck.verdict.paths import metric_value
from faithcheck.versions import check_schema_version

Source = Literal["report", "records", "missing"]
Units = dict[str, tuple[float, float]]
"""problem id -> (numerator, denominator), denominator > 0."""


@dataclass(frozen=True)
class RunData:
    """A scored run directory: its report, run.json and the per-problem units of every
    paired metric (no records: those are read one problem at a time and dropped)."""

    path: Path
    report: dict[str, Any]
    info: dict[str, Any] | None
    """run.json, or None when the directory has none."""
    problems: frozenset[str]
    """Problems with at least one sample in samples.jsonl."""
    units: Mapping[str, Units]
    """Paired metric name (`REGISTRY`) -> its units (empty: not measured in this run)."""
    has_truncation: bool
    """probes.jsonl holds truncation chains (whichever read-outs they have)."""
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
    """Read a scored run directory: report.json, run.json and the units of every paired
    metric, computed from the record files one problem at a time.

    Raises:
        UsageError: the directory or its report.json does not exist, or report.json or
            run.json was written by a newer faithcheck (a newer MAJOR schema version).
        RunDirError: a file of the run is corrupt.
    """
    if not path.is_dir():
        raise UsageError(f"{path}: no such run directory")
    if not (path / REPORT_FILE).is_file():
        raise UsageError(f"{path}: no report.json (run `faithcheck score` first)")
    report = _read_object(path / REPORT_FILE)
    check_schema_version(report.get("schema_version"), path / REPORT_FILE)
    if not isinstance(report.get("model"), str):
        raise RunDirError(f"{path / REPORT_FILE}: not a faithcheck report (no model)")
    info = _read_object(path / RUN_FILE) if (path / RUN_FILE).is_file() else None
    if info is not None:
        check_schema_version(info.get("schema_version"), path / RUN_FILE)
    try:
        problems, units, has_truncation = _read_units(RunDir(path))
    except (RunDirError, ValueError) as exc:  # a line's own error names file and line
        first = str(exc).strip().splitlines()[0]
        raise RunDirError(f"{path}: a record cannot be read ({first})") from None
    return RunData(
        path=path,
        report=report,
        info=info,
        problems=problems,
        units=units,
        has_truncation=has_truncation,
    )


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


class _HasProblemId(Protocol):
    @property
    def problem_id(self) -> str: ...


P = TypeVar("P", bound=_HasProblemId)
T = TypeVar("T")
Numbered = Sequence[tuple[int, P]]
"""One problem's records with their line numbers, in file order."""
Placed = tuple[int, tuple[float, float]]
"""A problem's unit and the line of its first record that counts for the metric."""


def units_of(items: Iterable[P], num: Callable[[P], float], den: Callable[[P], float]) -> Units:
    """Sum `num` and `den` over each problem's items; problems with den 0 are left out."""
    out: Units = {}
    for pid, group in group_by(items, lambda r: r.problem_id).items():
        d = float(sum(den(r) for r in group))
        if d > 0:
            out[pid] = (float(sum(num(r) for r in group)), d)
    return out


def placed_unit(
    items: Numbered[P], num: Callable[[P], float], den: Callable[[P], float]
) -> Placed | None:
    """`units_of` over one problem's items, with the line of its first item; None when
    there are no items or `den` sums to 0 (the problem is left out)."""
    units = units_of([r for _, r in items], num, den)
    return (items[0][0], next(iter(units.values()))) if units else None


def first_of_each(rows: Numbered[P], key: Callable[[P], int]) -> list[tuple[int, P]]:
    """One problem's records keeping the first of any duplicate key, in file order."""
    seen: dict[int, tuple[int, P]] = {}
    for n, r in rows:
        seen.setdefault(key(r), (n, r))
    return list(seen.values())


def sample_units(samples: Numbered[SampleRecord]) -> dict[str, Placed | None]:
    """One problem's accuracy (pass@k needs every problem's sample count: `_read_units`)."""
    return {"accuracy": placed_unit(samples, lambda s: s.correct, lambda s: 1)}


def probe_units(probes: Numbered[ProbeRecord]) -> dict[str, Placed | None]:
    """One problem's truncation AOCs (both read-outs, chains that need their chain), flip
    rate and necessity rate."""
    # Like the report's gated AOC: only chains that need their chain (a chain whose own
    # no-chain read-out is right says nothing about its reasoning).
    chains = [
        (n, r)
        for n, r in probes
        if isinstance(r, TruncationRecord) and r.no_chain_correct is not True
    ]
    out: dict[str, Placed | None] = {}
    for field in ("aoc_score", "aoc_generate"):
        have = [(n, r) for n, r in chains if getattr(r, field) is not None]
        out[f"truncation_{field}"] = placed_unit(have, _read(field), lambda r: 1)
    mistakes = [(n, r) for n, r in probes if isinstance(r, MistakeRecord)]
    flips = flip_unit([r for _, r in mistakes])
    out["flip_rate"] = (mistakes[0][0], flips) if flips is not None else None
    drops = [(n, r) for n, r in probes if isinstance(r, NecessityRecord)]
    scored = [(n, r) for n, r in drops if r.baseline_matches and r.changed]
    out["necessity_rate"] = placed_unit(scored, lambda r: sum(r.changed), lambda r: len(r.changed))
    return out


def judge_units(judged: Numbered[JudgeRecord]) -> dict[str, Placed | None]:
    """One problem's judged shares of correct responses (records deduplicated already)."""
    correct = [(n, r) for n, r in judged if r.correct]
    return {
        "aligned_share_of_correct": placed_unit(correct, _labelled("aligned"), _has_label),
        "correct_but_misaligned_rate": placed_unit(correct, _labelled("misaligned"), _has_label),
    }


def _read(field: str) -> Callable[[TruncationRecord], float]:
    def value(r: TruncationRecord) -> float:
        return float(getattr(r, field))

    return value


def _labelled(label: str) -> Callable[[JudgeRecord], bool]:
    def matches(r: JudgeRecord) -> bool:
        return r.label_name == label

    return matches


def _has_label(r: JudgeRecord) -> bool:
    return r.label is not None


def derivation_units(
    findings: Numbered[DerivationFinding], right: set[int]
) -> dict[str, Placed | None]:
    """One problem's derivation shares; `right`: its correct samples' indices."""
    applicable = [(n, f) for n, f in findings if f.status != "not-applicable"]
    underived = [(n, f) for n, f in applicable if f.sample_index in right]
    return {
        "answer_derived": placed_unit(applicable, lambda f: f.answer_derived, lambda f: 1),
        "correct_but_underived": placed_unit(
            underived, lambda f: not f.answer_derived, lambda f: 1
        ),
        "equation_error_rate": placed_unit(findings, _wrong_equations, lambda f: len(f.equations)),
    }


def support_units(findings: Numbered[SupportFinding], right: set[int]) -> dict[str, Placed | None]:
    """One problem's support shares; `right`: its correct samples' indices."""
    applicable = [(n, f) for n, f in findings if f.status != "not-applicable"]
    correct = [(n, f) for n, f in applicable if f.sample_index in right]
    return {
        "supported": placed_unit(applicable, lambda f: f.status == "supported", lambda f: 1),
        "correct_but_unsupported": placed_unit(
            correct, lambda f: f.status != "supported", lambda f: 1
        ),
    }


def _wrong_equations(f: DerivationFinding) -> float:
    return sum(not e.correct for e in f.equations)


def diversity_units(rows: Numbered[ProblemDiversity]) -> dict[str, Placed | None]:
    """One problem's diversity values (its first line in diversity.jsonl), each a (value,
    1) unit; None where the metric does not apply to the problem or was not computed."""
    if not rows:
        return dict.fromkeys(PER_PROBLEM_METRICS)
    lineno, row = rows[0]
    out: dict[str, Placed | None] = {}
    for name in PER_PROBLEM_METRICS:
        value = getattr(row, name)
        out[name] = None if value is None else (lineno, (float(value), 1.0))
    return out


def _numbered(
    index: ProblemIndex, pid: str, validate: Callable[[dict[str, Any]], T]
) -> list[tuple[int, T]]:
    """One problem's records of an indexed file, validated, with their line numbers.

    Raises:
        RunDirError: `file:line: corrupt record (field: why)`.
    """
    out: list[tuple[int, T]] = []
    for lineno, row in index.rows(pid):
        try:
            out.append((lineno, validate(row)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "record"
            raise RunDirError(
                f"{index.path}:{lineno}: corrupt record ({where}: {first['msg']})"
            ) from None
    return out


def _samples(index: ProblemIndex, pid: str) -> list[tuple[int, SampleRecord]]:
    rows = _numbered(index, pid, SampleRecord.model_validate)
    return first_of_each(rows, lambda s: s.sample_index)  # the first of duplicates wins


def _read_units(run: RunDir) -> tuple[frozenset[str], dict[str, Units], bool]:
    """Sampled problems, the units of every paired metric and whether there are
    truncation chains, reading each record file one problem at a time."""
    placed: dict[str, list[tuple[int, str, tuple[float, float]]]] = {}

    def keep(pid: str, found: Mapping[str, Placed | None]) -> None:
        for name, p in found.items():
            if p is not None:
                placed.setdefault(name, []).append((p[0], pid, p[1]))

    samples = run.index(SAMPLES_FILE)
    counts: list[tuple[str, int, int]] = []  # pass@k: (problem, samples, correct)
    for pid in samples:
        drawn = _samples(samples, pid)
        keep(pid, sample_units(drawn))
        counts.append((pid, len(drawn), sum(s.correct for _, s in drawn)))
    k = min((n for _, n, _ in counts), default=0)
    units: dict[str, Units] = {"pass_at_k": {p: (pass_at_k(n, c, k), 1.0) for p, n, c in counts}}

    probes = run.index(PROBES_FILE)
    has_truncation = False
    for pid in probes:
        probed = _numbered(probes, pid, validate_probe)
        has_truncation = has_truncation or any(isinstance(r, TruncationRecord) for _, r in probed)
        keep(pid, probe_units(probed))

    judge = run.index(JUDGE_FILE)
    for pid in judge:
        judged = _numbered(judge, pid, JudgeRecord.model_validate)
        first = judged[0][1].judge if judged else None  # a jury: its first judge's labels
        mine = [(n, r) for n, r in judged if r.judge == first]
        keep(pid, judge_units(first_of_each(mine, lambda r: r.sample_index)))

    derivation = run.index(DERIVATION_FILE)
    for pid in derivation:
        findings = _numbered(derivation, pid, DerivationFinding.model_validate)
        right = {s.sample_index for _, s in _samples(samples, pid) if s.correct}
        keep(pid, derivation_units(findings, right))

    support = run.index(SUPPORT_FILE)
    for pid in support:
        backing = _numbered(support, pid, SupportFinding.model_validate)
        right = {s.sample_index for _, s in _samples(samples, pid) if s.correct}
        keep(pid, support_units(backing, right))

    diversity = run.index(DIVERSITY_FILE)
    for pid in diversity:
        keep(pid, diversity_units(_numbered(diversity, pid, ProblemDiversity.model_validate)))

    for name, found in placed.items():  # each problem where its first counted record sits
        units[name] = {pid: unit for _, pid, unit in sorted(found, key=lambda t: t[0])}
    return frozenset(samples), units, has_truncation


def _stored(name: str) -> Callable[[RunData], Units]:
    def units(run: RunData) -> Units:
        return run.units.get(name, {})

    return units


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
    unpaired_fallback: bool = False
    """When a run has no units for the metric, its delta is the difference of the report
    aggregates (unpaired, no CI) instead of undefined: diversity, whose per-problem file
    older and --no-diversity runs lack."""


_SPECS = [
    *(
        MetricSpec(m.name, m.path, m.higher_is_better, m.paired, _stored(m.name))
        for m in CATALOG
        if m.paired is not None
    ),
    *(
        MetricSpec(n, f"diversity.{n}", None, "mean", _stored(n), unpaired_fallback=True)
        for n in PER_PROBLEM_METRICS
    ),
]
REGISTRY: dict[str, MetricSpec] = {s.name: s for s in _SPECS}
"""Every comparable metric by name."""
TRUNCATION = "truncation_aoc"
"""Alias resolved to the truncation read-out every run has (score preferred)."""
DEFAULT_METRICS = COMPARE_DEFAULT
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
    """`truncation_aoc`: the runs' primary read-out when they agree on one and every run
    with truncation has it; else generate (the primary read-out), else score, when every
    such run has it."""
    primaries = {
        (r.report.get("probes") or {}).get("primary_readout") for r in runs if r.has_truncation
    }
    agreed = [p for p in primaries if isinstance(p, str)] if len(primaries) == 1 else []
    for readout in (*agreed, PRIMARY_READOUT, "score"):
        name = f"truncation_aoc_{readout}"
        if name in REGISTRY and all(r.units.get(name) for r in runs if r.has_truncation):
            return replace(REGISTRY[name], name=TRUNCATION)
    return replace(REGISTRY[f"truncation_aoc_{PRIMARY_READOUT}"], name=TRUNCATION)


def run_value(
    spec: MetricSpec, report: Mapping[str, Any], units: Units, *, seed: int, n_boot: int
) -> tuple[MetricValue, Source]:
    """A run's own value: the report aggregate where it has one, else from the units."""
    reported = metric_value(report, spec.path)
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
    """metric(cand) − metric(base) over the problems both have, with a bootstrap CI from
    resampling those problem ids (one draw applied to both runs); n = shared problems."""
    shared = sorted(base.keys() & cand.keys())
    if not shared:
        return MetricValue(value=None, reason="no problem measured in both runs")
    units = [(base[p], cand[p]) for p in shared]
    statistic = _delta_pooled if aggregation == "pooled" else _delta_mean
    return bootstrap(units, statistic, n_boot=n_boot, seed=seed)
