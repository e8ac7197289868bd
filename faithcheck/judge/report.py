"""report.json's `judge` section: what the judge said, and how far to trust it.

It lives here, below `faithcheck.report`, so that the judge stage can build it without
importing the whole report schema.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from faithcheck.judge.jury import JuryReport
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge.summary import JudgeSummary
from faithcheck.judge.usage import JudgeUsageReport
from faithcheck.records import Record


class JudgeReport(Record):
    """report.json `judge`: what the judge said, and how far to trust it."""

    model: str
    """The judge model (alias, folder or served name)."""
    backend: str
    """Backend that ran the judge."""
    readout: Literal["text", "probs"] = "text"
    """How the label was read: text (the judge's verdict line, parsed) or probs (the most
    probable label after a fixed verdict prefix, with its probabilities in judge.jsonl)."""
    prompt_version: str
    """Rubric prompt version; the label shares are comparable across equal versions."""
    prompt_hash: str
    """Hash of the rubric templates."""
    summary: JudgeSummary
    """Label shares by correctness with CIs, the headline aligned share of correct
    responses, the correct-but-misaligned rate and the judge error rate."""
    reliability: JudgeReliability | None = None
    """The judge's accuracy, AUROC and Cohen's kappa on the bundled calibration pairs,
    overall and per perturbation type (null with --no-calibrate, and for a jury, whose
    judges each have their own in `jury.judges`)."""
    warnings: list[str] = Field(default_factory=list)
    """Caveats about this judge (e.g. a small default judge is weak)."""
    usage: JudgeUsageReport | None = None
    """Calls, tokens (reasoning included), cache hits and cost of every judge call of
    the run, by purpose, and the model ids the server said it ran (its snapshot)."""
    jury: JuryReport | None = None
    """With several judges (--judge-model given more than once): each judge's labels and
    reliability, their agreement (pairwise Cohen's kappa, Fleiss' kappa, disagreement
    rate) and whether the verdict uses the jury label (`summary` holds the jury's
    labels); null with one judge."""
