"""One catalog of faithcheck's named metrics: where each lives in report.json, which way is
better, and what it is used for.

Readers of the catalog, each taking what it needs and nothing else:

- the verdict: which metrics are bad when they rise (`LOWER_IS_BETTER`, for `--max-drop`
  and for the direction of a `--require` check's "about N more problems" estimate);
- `compare`: the metrics it pairs per problem and how their units combine (`paired`), and
  the ones it shows by default (`compare_default`);
- the trackers and the training callback: the headline metrics they log (`tracked`);
- gate parsing: the values a metric can take (`bounds`), to refuse a user check that can
  never fail or never pass (`probes.truncation.aoc>=0`).

The diversity metrics are contrast only (no direction): their names are
`faithcheck.diversity.core.PER_PROBLEM_METRICS` and `compare` adds them itself. Any other number of
the report can still be gated by its dotted path (`faithcheck.verdict.paths`); this catalog
names the ones faithcheck itself reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Aggregation = Literal["pooled", "mean"]
Evidence = Literal["dependence", "support"]
Bounds = tuple[float, float]
UNIT: Bounds = (0.0, 1.0)
"""The range of a share, a rate or an AOC."""


@dataclass(frozen=True)
class Metric:
    """One named metric."""

    name: str
    """Short name: what `compare --metric` takes and what trackers log (`faithcheck/<name>`)."""
    path: str
    """Dotted path of its aggregate in report.json (the truncation aliases included)."""
    higher_is_better: bool | None
    """Direction; None for contrast-only metrics."""
    paired: Aggregation | None = None
    """How `compare` combines its per-problem units: pooled (sum of numerators over sum of
    denominators) or mean (of per-problem ratios); None: not paired per problem."""
    compare_default: bool = False
    """Shown by `compare` when no --metric is given."""
    tracked: bool = False
    """Logged to experiment trackers and by the training callback."""
    evidence: Evidence | None = None
    """The kind of evidence a passing check on this metric (in its better direction)
    gives the verdict's GO: `dependence`, the answer depends on the chain; `support`, the
    chain supports the answer; None: neither (contrast, data quality, accuracy)."""
    bounds: Bounds | None = UNIT
    """Every value the metric (and its CI bounds) can take, low to high; None: unbounded or
    unknown, and then no gate on it is refused as vacuous. Every metric named here so far is
    a share, a rate or an AOC, hence the default; a count or a delta must say None."""


def _lower(name: str, path: str, evidence: Evidence | None = None) -> Metric:
    return Metric(name, path, higher_is_better=False, evidence=evidence)


_DEP: Evidence = "dependence"
_SUP: Evidence = "support"


CATALOG: tuple[Metric, ...] = (
    # compare pairs these per problem, in this order; its defaults are the flagged ones
    Metric("accuracy", "sampling.accuracy", True, "mean", compare_default=True, tracked=True),
    Metric("pass_at_k", "sampling.pass_at_k", True, "mean", compare_default=True),
    Metric(
        "truncation_aoc",
        "probes.truncation.aoc",
        True,
        compare_default=True,
        tracked=True,
        evidence=_DEP,
    ),
    Metric("truncation_aoc_score", "probes.truncation.score.aoc", True, "pooled", evidence=_DEP),
    Metric(
        "truncation_aoc_generate", "probes.truncation.generate.aoc", True, "pooled", evidence=_DEP
    ),
    Metric("flip_rate", "probes.mistakes.flip_rate", True, "pooled", True, tracked=True),
    Metric("necessity_rate", "probes.necessity.rate", True, "pooled", compare_default=True),
    Metric(
        "aligned_share_of_correct",
        "judge.summary.aligned_share_of_correct",
        True,
        "pooled",
        compare_default=True,
        tracked=True,
        evidence=_SUP,
    ),
    Metric(
        "correct_but_misaligned_rate",
        "judge.summary.correct_but_misaligned_rate",
        False,
        "pooled",
        compare_default=True,
        tracked=True,
        evidence=_SUP,
    ),
    Metric(
        "answer_derived",
        "derivation.answer_derived",
        True,
        "mean",
        True,
        tracked=True,
        evidence=_SUP,
    ),
    Metric(
        "correct_but_underived",
        "derivation.correct_but_underived",
        False,
        "mean",
        tracked=True,
        evidence=_SUP,
    ),
    Metric(
        "supported",
        "support.supported",
        True,
        "mean",
        compare_default=True,
        tracked=True,
        evidence=_SUP,
    ),
    Metric(
        "correct_but_unsupported",
        "support.correct_but_unsupported",
        False,
        "mean",
        tracked=True,
        evidence=_SUP,
    ),
    Metric("equation_error_rate", "derivation.equation_error_rate", False, "mean"),
    # read by the verdict (direction) and the trackers, not paired
    Metric(
        "early_answer_rate",
        "probes.truncation.early_answer_rate",
        False,
        tracked=True,
        evidence=_DEP,
    ),
    _lower("early_answer_rate_score", "probes.truncation.score.early_answer_rate", _DEP),
    _lower("early_answer_rate_generate", "probes.truncation.generate.early_answer_rate", _DEP),
    Metric(
        "flip_gain",
        "probes.mistakes.flip_gain",
        True,
        tracked=True,
        evidence=_DEP,
        bounds=(-1.0, 1.0),  # a paired difference of two shares
    ),
    Metric("baseline_change_rate", "probes.mistakes.baseline_change_rate", None),
    _lower("mistake_no_answer_rate", "probes.mistakes.no_answer_rate"),
    _lower("misaligned_among_correct", "judge.summary.among_correct.misaligned"),
    _lower("misaligned_among_all", "judge.summary.among_all.misaligned"),
    _lower("judge_error_rate", "judge.summary.error_rate"),
    _lower("answer_first_rate", "support.answer_first_rate"),
    _lower("untraced_operand_share", "support.untraced_operand_share"),
    _lower("compensated_share", "support.shares.compensated"),
    _lower("invented_operand_share", "support.shares.invented-operand"),
    _lower("contradicted_share", "support.shares.contradicted"),
    _lower("asserted_share", "support.shares.asserted"),
    _lower("answer_first_share", "support.shares.answer-first"),
    _lower("no_answer_rate", "sampling.no_answer_rate"),
    _lower("truncated_rate", "sampling.truncated_rate"),
    _lower("verify_error_rate", "sampling.verify_error_rate"),
)
BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOG}
BY_PATH: dict[str, Metric] = {m.path: m for m in CATALOG}
LOWER_IS_BETTER: frozenset[str] = frozenset(m.path for m in CATALOG if m.higher_is_better is False)
"""Report paths where a rise is the bad direction; every other metric: higher is better."""
TRACKED: dict[str, str] = {m.name: m.path for m in CATALOG if m.tracked}
"""Tracker / callback name -> report path."""
COMPARE_DEFAULT: tuple[str, ...] = tuple(m.name for m in CATALOG if m.compare_default)


def bounds(path: str) -> Bounds | None:
    """The range of the metric at a report path (`Metric.bounds`); None for a path the
    catalog does not name (any other number of report.json: its range is not known)."""
    metric = BY_PATH.get(path)
    return metric.bounds if metric is not None else None
