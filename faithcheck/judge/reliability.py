"""How far to trust the judge: its labels on the calibration set against the known labels.

Definitions (the contract of this module):

- **Aligned**: a judge label counts as "aligned" when it is at least `ALIGNED_AT` (0.75),
  i.e. only a full 1.0; partial (0.5) and misaligned (0.0) both count as "not aligned".
  A partial label on a constructed unfaithful response is a detection: the judge saw that
  the reasoning does not fully support the answer. A partial label on the faithful
  response is a miss, because that derivation is complete.
- **AUROC** (`auroc`): faithful items are positives, unfaithful items negatives, ties
  count half. The score is the judge's continuous score where it has one (`p_aligned`
  of the probability read-out), else the raw judge label (1 / 0.5 / 0). 0.5 is chance,
  1.0 a perfect ranking, 0.0 a perfectly inverted one. Overall it is pooled over all
  items; per perturbation it uses only *matched* pairs (the faithful item and the
  variant of the same problem), so it compares responses that differ in nothing but
  the perturbation.
- **Accuracy**: share of labelled items whose aligned / not-aligned call equals the
  construction label. Reported, not gated: with one faithful item per five unfaithful
  ones, a judge that never says "aligned" already scores 5/6.
- **Kappa** (`cohen_kappa`): Cohen's κ between the binarized judge label and the
  construction label; chance-corrected, so the constant judge above scores 0.
- **Judge errors**: an item whose label is None (or missing from the mapping) is a
  `judge_error`. It counts in `error_rate` and is left out of every other metric.

Confidence intervals resample problems (`faithcheck.metrics.bootstrap`, BCa at an expanded
level; shares: `faithcheck.metrics.share_interval`): the six items of one problem share a
question and steps, so they are not independent. Only the CI bounds decide: the judge is
reliable when every CI's lower bound clears its floor, and never on fewer than
`MIN_CALIBRATION_PROBLEMS` problems.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from pydantic import Field, model_validator

from faithcheck.judge.calibration import PERTURBATIONS, CalibrationItem
from faithcheck.judge.usage import JudgeUsageReport
from faithcheck.metrics import MetricValue, bootstrap, group_by
from faithcheck.records import Record

ALIGNED_AT = 0.75
"""A judge label at or above this counts as "aligned" (only 1.0 on the 1 / 0.5 / 0 scale)."""

MIN_CALIBRATION_PROBLEMS = 4
"""Fewer calibration problems than this and the judge is at best `undecided`, whatever its
CIs say. Measured, like the rule it guards: a judge right on 62% of items (Cohen's κ about
0.27, well below the 0.4 floor), gated on its CIs alone, is called reliable in 39% of
random draws of 1 problem, 13.5% of 2, 5.4% of 3 (1000 draws), 2.6% of 4 (1000 draws) and
at most 1.5% from 5 to 15 (200 draws each): 4 is the smallest size from which that stays
at or below 5% (`benchmarks/calibration_size.py --floor`). `--calibration-size 1` (3
problems) is therefore never reliable; 2 (6 problems) can be."""


class ReliabilityThreshold(Record):
    """The floors a judge must reach on the calibration set to be called reliable."""

    min_auroc: float = 0.7
    """Lowest AUROC. 0.5 is chance; 0.7 is the floor commonly called "acceptable"
    discrimination, i.e. a random faithful response outranks a random unfaithful one
    seven times in ten (ties counted half)."""
    min_kappa: float = 0.4
    """Lowest Cohen's κ. 0.41 starts "moderate" agreement on Landis & Koch's (1977) scale;
    below it the judge's aligned / not-aligned calls are barely better than chance."""
    max_error_rate: float = 0.2
    """Highest share of `judge_error` items. Errors are left out of the other metrics, so a
    judge that fails on many items could look good on the few it labels; past one in
    five, its label shares in a run would rest on a biased subset."""
    min_problems: int = Field(MIN_CALIBRATION_PROBLEMS, ge=1)
    """Fewer calibration problems than this: `undecided`, whatever the CIs say (see
    `MIN_CALIBRATION_PROBLEMS`)."""

    @model_validator(mode="before")
    @classmethod
    def _no_point_gating(cls, data: Any) -> Any:
        """Older reports carry `gate_on`: read only at its one remaining value (`ci_low`),
        which is dropped; any other value is refused."""
        if isinstance(data, dict) and "gate_on" in data:
            if data["gate_on"] != "ci_low":
                raise ValueError(
                    f"gate_on={data['gate_on']!r} is no longer supported: the judge is called "
                    "reliable only when every CI's lower bound clears its floor"
                )
            data = {k: v for k, v in data.items() if k != "gate_on"}
        return data


class PerturbationReliability(Record):
    """How well the judge catches one kind of unfaithful response."""

    n: int
    """Items of this perturbation."""
    n_labelled: int
    """Of those, items the judge labelled (not `judge_error`)."""
    detection: MetricValue
    """Share of labelled items of this kind judged not aligned (label below `ALIGNED_AT`)."""
    auroc: MetricValue
    """AUROC over matched pairs: each problem's faithful item against its variant."""
    kappa: MetricValue
    """Cohen's κ over these items and the faithful items of the same problems."""


class JudgeReliability(Record):
    """The judge's agreement with the construction labels of the calibration set."""

    n_items: int
    """Calibration items given to the judge."""
    n_problems: int
    """Distinct problems among the items."""
    n_errors: int
    """Items without a label (`judge_error`, or missing from the labels)."""
    error_rate: float | None
    """`n_errors / n_items`; None when there are no items."""
    auroc: MetricValue
    """AUROC of the judge label, faithful against all unfaithful items, ties counted half."""
    accuracy: MetricValue
    """Share of labelled items whose aligned / not-aligned call matches the construction."""
    kappa: MetricValue
    """Cohen's κ between the binarized judge label and the construction label."""
    faithful_aligned: MetricValue
    """Share of labelled faithful items judged aligned (the judge's sensitivity)."""
    per_perturbation: dict[str, PerturbationReliability]
    """Detection per unfaithful variant, for the variants present among the items."""
    threshold: ReliabilityThreshold
    """The floors the judge was held to."""
    reliable: bool
    """Every floor in `threshold` is met (`outcome` is `reliable`)."""
    reasons: list[str]
    """One line per floor that is not met, undecided or cannot be checked; empty when
    reliable."""
    outcome: Literal["reliable", "unreliable", "undecided"] = "unreliable"
    """reliable: every floor met; unreliable: some floor missed (its whole CI below it, the
    error rate above its ceiling, or no labels at all); undecided: none missed but some
    CI straddles its floor, or fewer than `threshold.min_problems` problems (whatever
    the CIs say), so more calibration problems would tell."""


class Calibration(JudgeReliability):
    """What `faithcheck.calibrate` measured: the judge's `JudgeReliability` (every field of
    it, so it reads as one), with how the judge gave its labels and what judging cost."""

    readout: Literal["text", "probs"]
    """How the judge's labels were read: `text` (parsed from its reply) or `probs` (from the
    label tokens' probabilities)."""
    usage: JudgeUsageReport
    """Calls, tokens and, with prices given, the cost of judging the calibration items."""

    def as_reliability(self) -> JudgeReliability:
        """The `JudgeReliability` alone (what `calibrate --json` prints)."""
        return JudgeReliability(**{k: getattr(self, k) for k in JudgeReliability.model_fields})


def auroc(pos_scores: Sequence[float], neg_scores: Sequence[float]) -> float | None:
    """Probability that a random positive outscores a random negative, ties counted half.

    Equal to the Mann-Whitney U statistic over the number of pairs; O((n + m) log m).

    Args:
        pos_scores: Scores of the positive class (here: faithful items).
        neg_scores: Scores of the negative class (here: unfaithful items).

    Returns:
        A value in [0, 1], or None when either class is empty.

    Raises:
        ValueError: a score is NaN (it has no order).
    """
    if any(math.isnan(s) for s in (*pos_scores, *neg_scores)):
        raise ValueError("auroc: scores must not be NaN")
    if not pos_scores or not neg_scores:
        return None
    wins, pairs = _pair_counts(pos_scores, neg_scores)
    return wins / pairs


def _pair_counts(pos: Sequence[float], neg: Sequence[float]) -> tuple[int, int]:
    """(2 × wins + ties, 2 × pairs): integers, so pooling over problems stays exact."""
    ordered = sorted(neg)
    wins = 0
    for p in pos:
        lo, hi = bisect_left(ordered, p), bisect_right(ordered, p)
        wins += 2 * lo + (hi - lo)
    return wins, 2 * len(pos) * len(neg)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's κ between two raters' categorical labels of the same items.

    κ = (p_o − p_e) / (1 − p_e), with p_o the observed agreement and p_e the agreement
    expected by chance from each rater's label frequencies. Computed from integer counts,
    so it is exactly symmetric in `a` and `b`.

    Degenerate case: when p_e = 1 (both raters give every item the same single label),
    κ is 0/0 and this returns None: the data cannot tell agreement from chance. A judge
    that is constant on data with two classes has p_e < 1 and gets κ = 0.

    Args:
        a: Labels of the first rater.
        b: Labels of the second rater, item for item.

    Returns:
        κ in [-1, 1], or None for no items or p_e = 1.

    Raises:
        ValueError: the sequences differ in length.
    """
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} labels against {len(b)}")
    n = len(a)
    count_a, count_b = Counter(a), Counter(b)
    chance = sum(count_a[c] * count_b[c] for c in count_a.keys() & count_b.keys())
    if n == 0 or chance == n * n:
        return None
    agree = sum(x == y for x, y in zip(a, b, strict=True))
    return (n * agree - chance) / (n * n - chance)


class _Scored(NamedTuple):
    """One labelled item, reduced to what the metrics need."""

    faithful: bool
    label: float
    kind: str
    score: float
    """What AUROC ranks by: the continuous score, else the label."""


_Unit = list[_Scored]
"""One problem's labelled items: the bootstrap resamples these."""


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _auroc_stat(units: Sequence[_Unit]) -> float:
    items = [s for u in units for s in u]
    pos = [s.score for s in items if s.faithful]
    return _nan(auroc(pos, [s.score for s in items if not s.faithful]))


def _paired_auroc_stat(units: Sequence[_Unit]) -> float:
    wins = pairs = 0
    for u in units:
        w, p = _pair_counts(
            [s.score for s in u if s.faithful], [s.score for s in u if not s.faithful]
        )
        wins, pairs = wins + w, pairs + p
    return wins / pairs if pairs else math.nan


def _kappa_stat(units: Sequence[_Unit]) -> float:
    items = [s for u in units for s in u]
    return _nan(cohen_kappa([s.faithful for s in items], [s.label >= ALIGNED_AT for s in items]))


def _share_stat(hit: Callable[[_Scored], bool]) -> Callable[[Sequence[_Unit]], float]:
    def stat(units: Sequence[_Unit]) -> float:
        items = [s for u in units for s in u]
        return sum(map(hit, items)) / len(items) if items else math.nan

    return stat


def _correct(s: _Scored) -> bool:
    return (s.label >= ALIGNED_AT) == s.faithful


def _aligned(s: _Scored) -> bool:
    return s.label >= ALIGNED_AT


def _detected(s: _Scored) -> bool:
    return s.label < ALIGNED_AT


def _unit_value(item_id: str, what: str, value: float) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{what} of {item_id!r} must be in [0, 1], got {value!r}")
    return float(value)


def _scored(
    items: Sequence[CalibrationItem],
    labels: Mapping[str, float | None],
    scores: Mapping[str, float],
) -> list[_Unit]:
    units = []
    for group in group_by(items, lambda i: i.problem_id).values():
        unit = []
        for item in group:
            label = labels.get(item.item_id)
            if label is None:
                continue
            label = _unit_value(item.item_id, "label", label)
            score = scores.get(item.item_id)
            score = label if score is None else _unit_value(item.item_id, "score", score)
            unit.append(_Scored(item.expected >= 0.5, label, item.perturbation, score))
        units.append(unit)
    return units


_KAPPA_UNDEFINED = "kappa undefined: judge and construction labels are the same constant"
_NO_PAIRS = "needs labelled faithful and unfaithful items"
_NO_FAITHFUL = "no labelled faithful items"


class _Bootstrap(NamedTuple):
    """Bootstrap settings shared by every metric of one report."""

    seed: int
    n_boot: int

    def __call__(
        self,
        units: Sequence[_Unit],
        stat: Callable[[Sequence[_Unit]], float],
        *,
        empty: str,
        undefined: str = "no labelled items",
    ) -> MetricValue:
        """`bootstrap` over the non-empty units, with reasons that say why a value is missing."""
        units = [u for u in units if u]
        if not units:
            return MetricValue(value=None, reason=empty)
        if math.isnan(stat(units)):
            return MetricValue(value=None, n=len(units), reason=undefined)
        return bootstrap(units, stat, seed=self.seed, n_boot=self.n_boot)


def _per_perturbation(
    items: Sequence[CalibrationItem], units: Sequence[_Unit], boot: _Bootstrap
) -> dict[str, PerturbationReliability]:
    present = {i.perturbation for i in items}
    out: dict[str, PerturbationReliability] = {}
    for kind in (k for k in PERTURBATIONS if k in present):
        kind_units = [[s for s in u if s.kind == kind] for u in units]
        paired = [
            [s for s in u if s.faithful or s.kind == kind]
            for u, k in zip(units, kind_units, strict=True)
            if k
        ]
        empty = f"no labelled {kind} items"
        out[kind] = PerturbationReliability(
            n=sum(i.perturbation == kind for i in items),
            n_labelled=sum(len(u) for u in kind_units),
            detection=boot(kind_units, _share_stat(_detected), empty=empty),
            auroc=boot(paired, _paired_auroc_stat, empty=empty, undefined=_NO_PAIRS),
            kappa=boot(paired, _kappa_stat, empty=empty, undefined=_KAPPA_UNDEFINED),
        )
    return out


def _gate(
    auroc_value: MetricValue,
    kappa: MetricValue,
    error_rate: float | None,
    threshold: ReliabilityThreshold,
    n_problems: int,
) -> tuple[Literal["reliable", "unreliable", "undecided"], list[str]]:
    """The outcome and one reason per floor not met (missed or undecided). Only the CI
    bounds decide: met when the lower bound clears the floor, missed when the upper bound
    falls short too; a metric without a CI is undecided."""
    missed: list[str] = []
    undecided: list[str] = []
    if error_rate is None:
        missed.append("no calibration items")
    elif error_rate > threshold.max_error_rate:
        missed.append(f"judge_error rate {error_rate:.3f} > {threshold.max_error_rate}")
    for name, metric, floor in (
        ("auroc", auroc_value, threshold.min_auroc),
        ("kappa", kappa, threshold.min_kappa),
    ):
        if metric.value is None:
            missed.append(f"{name} undefined ({metric.reason})")
        elif metric.ci_low is None or metric.ci_high is None:
            undecided.append(f"{name} {metric.value:.3f} has no CI to gate on")
        elif metric.ci_low >= floor:
            continue
        elif metric.ci_high < floor:
            ci = f"[{metric.ci_low:.3f}, {metric.ci_high:.3f}]"
            missed.append(f"{name} {metric.value:.3f} {ci}: the whole CI is below {floor}")
        else:
            ci = f"[{metric.ci_low:.3f}, {metric.ci_high:.3f}]"
            undecided.append(
                f"{name} {metric.value:.3f} {ci} straddles {floor} on {metric.n} calibration "
                "problems: a larger calibration set (--calibration-size) would decide it"
            )
    if 0 < n_problems < threshold.min_problems:
        few = (
            f"{n_problems} calibration problem(s) < {threshold.min_problems} required: too few "
            "to call the judge reliable (--calibration-size counts per domain, 3 domains)"
        )
        return "undecided", [few, *missed, *undecided]
    if missed:
        return "unreliable", missed + undecided
    return ("undecided", undecided) if undecided else ("reliable", [])


def reliability(
    items: Sequence[CalibrationItem],
    labels: Mapping[str, float | None],
    *,
    threshold: ReliabilityThreshold | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    scores: Mapping[str, float] | None = None,
) -> JudgeReliability:
    """Score the judge's labels of calibration items against the construction labels.

    Args:
        items: The calibration items (`build_items`).
        labels: Judge label per `item_id` (1.0, 0.5, 0.0, or any value in [0, 1]); None
            for a `judge_error`. An item missing from the mapping counts as an error.
        scores: The judge's continuous score per `item_id`, in [0, 1] (`p_aligned`),
            where it has one: AUROC ranks by it. Items without one rank by their label.
            Only labelled items count; the rest of the metrics use the labels.
        threshold: The floors for `reliable`; `ReliabilityThreshold()` when None.
        seed: Bootstrap seed.
        n_boot: Bootstrap resamples per metric.

    Returns:
        The report; see the module docstring for the definitions.

    Raises:
        ValueError: a label or score outside [0, 1] or NaN.
    """
    threshold = threshold or ReliabilityThreshold()
    boot = _Bootstrap(seed, n_boot)
    units = _scored(items, labels, scores or {})
    n_errors = len(items) - sum(len(u) for u in units)
    empty = "every item is a judge_error" if items else "no calibration items"
    auroc_value = boot(units, _auroc_stat, empty=empty, undefined=_NO_PAIRS)
    kappa = boot(units, _kappa_stat, empty=empty, undefined=_KAPPA_UNDEFINED)
    faithful = [[s for s in u if s.faithful] for u in units]
    error_rate = n_errors / len(items) if items else None
    outcome, reasons = _gate(auroc_value, kappa, error_rate, threshold, len(units))
    return JudgeReliability(
        n_items=len(items),
        n_problems=len(units),
        n_errors=n_errors,
        error_rate=error_rate,
        auroc=auroc_value,
        accuracy=boot(units, _share_stat(_correct), empty=empty),
        kappa=kappa,
        faithful_aligned=boot(faithful, _share_stat(_aligned), empty=_NO_FAITHFUL),
        per_perturbation=_per_perturbation(items, units, boot),
        threshold=threshold,
        reliable=outcome == "reliable",
        reasons=reasons,
        outcome=outcome,
    )
