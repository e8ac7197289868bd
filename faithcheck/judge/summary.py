"""Aggregates of judge records for report.json (`judge` section). Pure: no I/O.

Every share is pooled over responses (each response counts once), with a 95% bootstrap
CI that resamples problems. Judge errors are left out of the label shares and the mean
label (a failed judgment says nothing about the response) but are counted, and their
own rate is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from faithcheck.judge.records import JudgeRecord, LabelName
from faithcheck.metrics import MetricValue, bootstrap_pooled, group_by
from faithcheck.records import Record


class LabelShares(Record):
    """How the judged responses of one group split over the rubric labels."""

    aligned: MetricValue
    """Share labelled aligned (1): the reasoning supports the stated answer."""
    partial: MetricValue
    """Share labelled partial (0.5): heads toward the answer with big gaps."""
    misaligned: MetricValue
    """Share labelled misaligned (0): the answer is unsupported by the reasoning."""
    judged: int
    """Responses of the group with a label (judge errors excluded)."""


class JudgeSummary(Record):
    """report.json `judge` section: does the reasoning support the stated answers?"""

    aligned_share_of_correct: MetricValue
    """Headline: share of correct judged responses whose reasoning supports their answer."""
    correct_but_misaligned_rate: MetricValue
    """Share of correct judged responses labelled misaligned: right answer, unsupported
    reasoning (the memorization signature)."""
    among_correct: LabelShares
    """Label shares among correct responses."""
    among_incorrect: LabelShares
    """Label shares among incorrect responses."""
    among_all: LabelShares
    """Label shares among all responses."""
    mean_label: MetricValue
    """Mean numeric label (1 / 0.5 / 0) over all judged responses."""
    error_rate: MetricValue
    """Share of responses the judge gave no valid verdict for, after retries."""
    responses: int
    """Responses judged or attempted (judged + errors)."""
    judged: int
    """Responses with a label."""
    errors: int
    """Responses recorded as judge errors."""
    correct: int
    """Correct responses (judge errors included)."""
    incorrect: int
    """Incorrect responses (judge errors included)."""
    problems: int
    """Distinct problems: the bootstrap's resampling unit."""
    prompt_version: str | None = None
    """Rubric prompt version (`JUDGE_PROMPT_VERSION`), when the caller sets it."""
    judge_model: str | None = None
    """The judge model, when the caller sets it."""


Select = Callable[[JudgeRecord], bool]


def _pooled(recs: Sequence[JudgeRecord], num: Select, den: Select, seed: int) -> MetricValue:
    """sum(num) / sum(den) over responses, CI resampling problems."""
    groups = group_by(recs, lambda r: r.problem_id).values()
    units = [(float(sum(num(r) for r in g)), float(sum(den(r) for r in g))) for g in groups]
    return bootstrap_pooled(units, seed=seed)


def _label_is(name: LabelName) -> Select:
    return lambda r: r.label_name == name


def _shares(recs: Sequence[JudgeRecord], seed: int) -> LabelShares:
    def labelled(r: JudgeRecord) -> bool:
        return r.label is not None

    return LabelShares(
        aligned=_pooled(recs, _label_is("aligned"), labelled, seed),
        partial=_pooled(recs, _label_is("partial"), labelled, seed),
        misaligned=_pooled(recs, _label_is("misaligned"), labelled, seed),
        judged=sum(labelled(r) for r in recs),
    )


def _mean_label(recs: Sequence[JudgeRecord], seed: int) -> MetricValue:
    groups = group_by(recs, lambda r: r.problem_id).values()
    units = [
        (sum(r.label for r in g if r.label is not None), float(sum(r.label is not None for r in g)))
        for g in groups
    ]
    return bootstrap_pooled(units, seed=seed)


def summarize_judge(
    records: Iterable[JudgeRecord],
    *,
    seed: int = 0,
    prompt_version: str | None = None,
    judge_model: str | None = None,
) -> JudgeSummary:
    """Build the report section from every judge record of a run.

    Args:
        records: judge records (any order; problems are the bootstrap unit).
        seed: bootstrap seed.
        prompt_version: copied into the summary for the report's metadata.
        judge_model: copied into the summary for the report's metadata.
    """
    recs = list(records)
    correct = [r for r in recs if r.correct]
    incorrect = [r for r in recs if not r.correct]
    among_correct = _shares(correct, seed)
    errors = sum(r.error is not None for r in recs)
    return JudgeSummary(
        aligned_share_of_correct=among_correct.aligned,
        correct_but_misaligned_rate=among_correct.misaligned,
        among_correct=among_correct,
        among_incorrect=_shares(incorrect, seed),
        among_all=_shares(recs, seed),
        mean_label=_mean_label(recs, seed),
        error_rate=_pooled(recs, lambda r: r.error is not None, lambda r: True, seed),
        responses=len(recs),
        judged=len(recs) - errors,
        errors=errors,
        correct=len(correct),
        incorrect=len(incorrect),
        problems=len({r.problem_id for r in recs}),
        prompt_version=prompt_version,
        judge_model=judge_model,
    )
