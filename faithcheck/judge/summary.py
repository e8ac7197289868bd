"""Aggregates of judge records for report.json (`judge` section). Pure: no I/O.

Every share is pooled over responses (each response counts once), with a 95% bootstrap
CI that resamples problems. Judge errors are left out of the label shares and the mean
label (a failed judgment says nothing about the response) but are counted, and their
own rate is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from faithcheck.judge.records import LABEL_VALUES, JudgeRecord, LabelName
from faithcheck.metrics import MetricValue, RatioUnit, bootstrap_pooled, group_by
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


class _SharesFold:
    """Label-share units of one subset of responses, folded in one problem at a time."""

    def __init__(self) -> None:
        self.judged = 0
        self.units: dict[LabelName, list[RatioUnit]] = {name: [] for name in LABEL_VALUES}
        """Per label: (responses with it, responses labelled) per problem of the subset."""

    def add(self, recs: Sequence[JudgeRecord]) -> None:
        """Fold in one problem's responses of the subset."""
        if not recs:  # the problem has none in the subset: no unit, not a (0, 0) one
            return
        judged = sum(r.label is not None for r in recs)
        self.judged += judged
        for name, units in self.units.items():
            units.append((float(sum(r.label_name == name for r in recs)), float(judged)))

    def summary(self, seed: int) -> LabelShares:
        """Each label's pooled share, with its CI over the subset's problems."""
        shares = {name: bootstrap_pooled(units, seed=seed) for name, units in self.units.items()}
        return LabelShares(
            aligned=shares["aligned"],
            partial=shares["partial"],
            misaligned=shares["misaligned"],
            judged=self.judged,
        )


class JudgeFold:
    """Everything the judge section needs, folded in one problem at a time: per problem
    its units, and counters, never the records."""

    def __init__(self) -> None:
        self.among_correct = _SharesFold()
        self.among_incorrect = _SharesFold()
        self.among_all = _SharesFold()
        self.label_units: list[RatioUnit] = []
        """(sum of numeric labels, responses labelled) per problem."""
        self.error_units: list[RatioUnit] = []
        """(judge errors, responses) per problem."""
        self.responses = 0
        self.errors = 0
        self.correct = 0
        self.problems = 0

    def add(self, recs: Sequence[JudgeRecord]) -> None:
        """Fold in all the judge records of one problem."""
        if not recs:
            return
        correct = [r for r in recs if r.correct]
        self.among_correct.add(correct)
        self.among_incorrect.add([r for r in recs if not r.correct])
        self.among_all.add(recs)
        labels = [r.label for r in recs if r.label is not None]
        self.label_units.append((sum(labels), float(len(labels))))
        errors = sum(r.error is not None for r in recs)
        self.error_units.append((float(errors), float(len(recs))))
        self.responses += len(recs)
        self.errors += errors
        self.correct += len(correct)
        self.problems += len({r.problem_id for r in recs})

    def summary(
        self, seed: int, prompt_version: str | None, judge_model: str | None
    ) -> JudgeSummary:
        """The report section from the folded units and counters."""
        among_correct = self.among_correct.summary(seed)
        return JudgeSummary(
            aligned_share_of_correct=among_correct.aligned,
            correct_but_misaligned_rate=among_correct.misaligned,
            among_correct=among_correct,
            among_incorrect=self.among_incorrect.summary(seed),
            among_all=self.among_all.summary(seed),
            mean_label=bootstrap_pooled(self.label_units, seed=seed),
            error_rate=bootstrap_pooled(self.error_units, seed=seed),
            responses=self.responses,
            judged=self.responses - self.errors,
            errors=self.errors,
            correct=self.correct,
            incorrect=self.responses - self.correct,
            problems=self.problems,
            prompt_version=prompt_version,
            judge_model=judge_model,
        )


def summarize_judge_groups(
    groups: Iterable[Sequence[JudgeRecord]],
    *,
    seed: int = 0,
    prompt_version: str | None = None,
    judge_model: str | None = None,
) -> JudgeSummary:
    """Build the report section from a run's judge records, one problem at a time.

    Each group is folded into a few numbers (the problem's bootstrap units) and counters,
    then dropped: memory never holds more than one problem's records, so a caller can
    stream judge.jsonl problem by problem. The result equals `summarize_judge` on the
    groups' concatenation, bit for bit: the units are the same and in the same order.

    Args:
        groups: one item per problem holding all its judge records (in file order),
            problems in first-appearance order; read once, lazily. A problem split over
            two groups would count as two bootstrap units.
        seed: bootstrap seed.
        prompt_version: copied into the summary for the report's metadata.
        judge_model: copied into the summary for the report's metadata.
    """
    fold = JudgeFold()
    for group in groups:
        fold.add(group)
    return fold.summary(seed, prompt_version, judge_model)


def summarize_judge(
    records: Iterable[JudgeRecord],
    *,
    seed: int = 0,
    prompt_version: str | None = None,
    judge_model: str | None = None,
) -> JudgeSummary:
    """Build the report section from every judge record of a run (held in memory).

    Groups the records by problem, in first-appearance order, and folds them with
    `summarize_judge_groups`.

    Args:
        records: judge records (any order; problems are the bootstrap unit, and their
            first appearance sets the bootstrap's unit order).
        seed: bootstrap seed.
        prompt_version: copied into the summary for the report's metadata.
        judge_model: copied into the summary for the report's metadata.
    """
    return summarize_judge_groups(
        group_by(records, lambda r: r.problem_id).values(),
        seed=seed,
        prompt_version=prompt_version,
        judge_model=judge_model,
    )
