"""Juries: several judges label the same responses (`--judge-model` given more than once).

Each judge is given as `MODEL[,key=value...]`: its own endpoint and settings
(`JUROR_KEYS`); every other `--judge-*` option applies to all of them. Each judge
labels the same responses, tagged with its name in judge.jsonl, and is calibrated on
its own. The report's `judge.jury` section has each judge's labels and reliability and
their agreement (`faithcheck.judge.agreement`); `judge.summary` is then the jury's label
(`jury_vote`) from the reliable judges when at least `quorum` of them are reliable,
else from every judge (shown, but the verdict leaves the judge's checks out).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal, NamedTuple

from pydantic import Field

from faithcheck.errors import UsageError
from faithcheck.judge.agreement import (
    Item,
    Vote,
    disagreement_rate,
    fleiss_kappa,
    jury_vote,
    pair_kappa,
    quorum,
)
from faithcheck.judge.records import LABEL_VALUES, JudgeRecord, LabelName
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge.summary import JudgeFold, JudgeSummary
from faithcheck.judge.usage import JudgeUsageReport
from faithcheck.metrics import MetricValue, bootstrap
from faithcheck.records import Record

JUROR_KEYS: dict[str, type] = {
    "backend": str,
    "base_url": str,
    "api_key_env": str,
    "max_tokens": int,
    "reasoning_effort": str,
    "concurrency": int,
    "http_retries": int,
    "readout": str,
    "rationale_tokens": int,
    "price_in": float,
    "price_out": float,
}
"""What one judge of a jury may set for itself (`openai/o3,reasoning_effort=high`), as
`key=value` after its model (dashes or underscores): how to reach and ask that judge,
and its prices (hosted models differ). The run's settings (samples judged, calibration,
cache, caps, strategy) stay shared: --judge-max-cost caps the whole jury."""

JURY_NAME = "jury"
"""The `judge` of the jury's own labels (computed for the report, never on disk)."""


def split_judge_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`MODEL[,key=value...]` -> (model, that judge's own options, typed).

    Raises:
        UsageError: an unknown key, a part without `=`, or a value of the wrong type.
    """
    model, *parts = [p.strip() for p in spec.split(",")]
    if not model:
        raise UsageError(f"--judge-model {spec!r}: the model comes first")
    own: dict[str, Any] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in JUROR_KEYS:
            raise UsageError(
                f"--judge-model {spec!r}: {part!r} is not one of "
                + ", ".join(f"{k}=..." for k in JUROR_KEYS)
            )
        try:
            own[key] = JUROR_KEYS[key](value.strip())
        except ValueError:
            raise UsageError(f"--judge-model {spec!r}: {key} must be a number") from None
    return model, own


def juror_names(models: Sequence[str]) -> list[str]:
    """Each judge's name in judge.jsonl and the report: its model, with `#2`, `#3`, ...
    after a model given more than once."""
    names = []
    for i, model in enumerate(models):
        seen = models[:i].count(model)
        names.append(model if seen == 0 else f"{model}#{seen + 1}")
    return names


class JurorReport(Record):
    """One judge of the jury: its own labels and reliability."""

    name: str
    """Its name, as judge.jsonl's `judge` says it."""
    model: str
    """The judge model."""
    backend: str
    """Backend that ran it."""
    readout: Literal["text", "probs"]
    """How its label was read (text or probs)."""
    summary: JudgeSummary
    """Its own label shares (as `judge.summary` for a one-judge run)."""
    reliability: JudgeReliability | None = None
    """Its own calibration (null with --no-calibrate)."""
    warnings: list[str] = Field(default_factory=list)
    """Caveats about this judge."""
    usage: JudgeUsageReport | None = None
    """Its own calls and their cost at its prices, and the responses it left unjudged
    (a --judge-max-items or --judge-max-cost cap)."""


class PairAgreement(Record):
    """Cohen's κ between two judges of the jury."""

    judges: tuple[str, str]
    """The two judges."""
    kappa: MetricValue
    """κ over the responses both labelled (three nominal labels), CI over problems."""


class JuryAgreement(Record):
    """How far the judges agree on the run's responses."""

    items: int
    """Responses every judge labelled (what Fleiss' κ and the disagreement rate count)."""
    pairwise_kappa: list[PairAgreement]
    """Cohen's κ of every pair of judges."""
    fleiss_kappa: MetricValue
    """Fleiss' κ over the responses every judge labelled, CI over problems."""
    disagreement_rate: MetricValue
    """Share of those responses the judges do not label unanimously, CI over problems."""


class JuryReport(Record):
    """report.json `judge.jury`: the judges, their agreement, and how the jury label is
    made (present only when --judge-model is given more than once)."""

    judges: list[JurorReport]
    """Each judge, in the order given."""
    agreement: JuryAgreement
    """Pairwise Cohen's κ, Fleiss' κ and the disagreement rate on the run's responses."""
    reliable: list[str]
    """The judges reliable on calibration."""
    quorum: int
    """Reliable judges the jury needs before the verdict uses its label (more than half)."""
    used: bool
    """The verdict's judge checks use the jury label (`reliable` reaches `quorum`)."""
    counted: list[str]
    """The judges whose votes make `judge.summary`: the reliable ones when `used`, else
    all of them."""
    reason: str | None = None
    """Why the verdict leaves the judge's checks out, when it does."""
    rule: str = (
        "per response, the mean label probabilities of the counted judges where each of "
        "them read probabilities, else the label most of them gave; a tie goes to the "
        "least aligned label; no counted judge labelled it: a judge error"
    )
    """The jury label's rule, in words."""


class Juror(NamedTuple):
    """What the report needs of one judge of the jury."""

    name: str
    model: str
    backend: str
    readout: Literal["text", "probs"]
    reliability: JudgeReliability | None
    warnings: list[str]
    usage: JudgeUsageReport | None = None


def _usable(jurors: Sequence[Juror]) -> tuple[list[str], bool, str | None]:
    reliable = [j.name for j in jurors if j.reliability is not None and j.reliability.reliable]
    need = quorum(len(jurors))
    if len(reliable) >= need:
        return reliable, True, None
    if all(j.reliability is None for j in jurors):
        return (
            reliable,
            False,
            (
                "jury uncalibrated (calibration skipped): its checks are left out, since "
                "judges whose reliability was not measured are no evidence either way"
            ),
        )
    return (
        reliable,
        False,
        (
            f"{len(reliable)} of {len(jurors)} judges reliable on calibration (the jury needs "
            f"{need}): its checks are left out"
        ),
    )


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


class _Votes:
    """One problem's records, judge by judge: the first record of each response."""

    def __init__(self, group: Sequence[JudgeRecord], names: Sequence[str]) -> None:
        self.by: dict[str, dict[int, JudgeRecord]] = {n: {} for n in names}
        self.order: list[int] = []
        for r in group:
            mine = self.by.get(r.judge or names[0])
            if mine is None or r.sample_index in mine:
                continue
            mine[r.sample_index] = r
            if r.sample_index not in self.order:
                self.order.append(r.sample_index)

    def item(self, index: int, names: Sequence[str]) -> Item:
        out: list[LabelName | None] = []
        for n in names:
            rec = self.by[n].get(index)
            out.append(rec.label_name if rec is not None else None)
        return tuple(out)

    def jury_record(self, index: int, counted: Sequence[str]) -> JudgeRecord:
        recs = {n: r for n in self.by if (r := self.by[n].get(index)) is not None}
        votes = []
        for n in counted:
            r = recs.get(n)
            if r is None:
                votes.append(Vote(None))
                continue
            probs = None
            if r.p_aligned is not None and r.p_partial is not None and r.p_misaligned is not None:
                probs = (r.p_aligned, r.p_partial, r.p_misaligned)
            votes.append(Vote(r.label_name, probs))
        vote = jury_vote(votes)
        said = "; ".join(f"{n}: {r.label_name or 'error'}" for n, r in recs.items())
        first = next(iter(recs.values()))
        p = vote.probs or (None, None, None)
        return JudgeRecord(
            label=None if vote.label is None else LABEL_VALUES[vote.label],
            label_name=vote.label,
            rationale=f"jury ({vote.rule}): {said}",
            raw="",
            attempts=1,
            seeds=[],
            error=None if vote.label is not None else "judge_error: no counted judge labelled it",
            p_aligned=p[0],
            p_partial=p[1],
            p_misaligned=p[2],
            problem_id=first.problem_id,
            sample_index=index,
            correct=first.correct,
            answer=first.answer,
            judge=JURY_NAME,
        )


def fold_jury(
    groups: Iterator[Sequence[JudgeRecord]],
    jurors: Sequence[Juror],
    *,
    seed: int = 0,
    prompt_version: str | None = None,
) -> tuple[JudgeSummary, JuryReport]:
    """The jury's summary (of its labels) and the `judge.jury` section, from judge.jsonl
    read one problem at a time (records of every judge; an untagged record is the first
    judge's)."""
    names = [j.name for j in jurors]
    reliable, used, reason = _usable(jurors)
    counted = reliable if used else names
    folds = {n: JudgeFold() for n in names}
    jury = JudgeFold()
    units: list[list[Item]] = []
    for group in groups:
        if not group:
            continue
        votes = _Votes(group, names)
        for n in names:
            folds[n].add([votes.by[n][i] for i in votes.order if i in votes.by[n]])
        jury.add([votes.jury_record(i, counted) for i in votes.order])
        units.append([votes.item(i, names) for i in votes.order])
    items = [it for unit in units for it in unit]

    def stat(fn: Any) -> Any:
        return lambda us: _nan(fn([it for u in us for it in u]))

    pairs = [
        PairAgreement(
            judges=(names[a], names[b]),
            kappa=bootstrap(units, stat(lambda its, a=a, b=b: pair_kappa(its, a, b)), seed=seed),
        )
        for a in range(len(names))
        for b in range(a + 1, len(names))
    ]
    agreement = JuryAgreement(
        items=sum(all(v is not None for v in it) for it in items),
        pairwise_kappa=pairs,
        fleiss_kappa=bootstrap(units, stat(fleiss_kappa), seed=seed),
        disagreement_rate=bootstrap(units, stat(disagreement_rate), seed=seed),
    )
    members = [
        JurorReport(
            name=j.name,
            model=j.model,
            backend=j.backend,
            readout=j.readout,
            summary=folds[j.name].summary(seed, prompt_version, j.model),
            reliability=j.reliability,
            warnings=j.warnings,
            usage=j.usage,
        )
        for j in jurors
    ]
    section = JuryReport(
        judges=members,
        agreement=agreement,
        reliable=reliable,
        quorum=quorum(len(jurors)),
        used=used,
        counted=counted,
        reason=reason,
    )
    summary = jury.summary(seed, prompt_version, " + ".join(names))
    return summary, section
