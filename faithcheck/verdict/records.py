"""Records of the pre-RL verdict (report.json `verdict`), kept apart from the logic.

The verdict logic lives in `faithcheck.verdict.core`; these records are imported by the
report schema, so they must not import the report.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from faithcheck.records import Record

Decision = Literal["GO", "NO_GO", "INCONCLUSIVE"]
Op = Literal[">=", ">", "<=", "<"]
Outcome = Literal["pass", "fail", "undecided", "not-evaluated"]
"""What one check concluded (rules in `faithcheck.verdict.core`): pass, the data rule out the
failing side; fail, they rule out the passing side; undecided, they rule out neither (the
CI straddles the threshold, or too few problems stand behind the metric); not-evaluated,
there was nothing to read (the section did not run, the metric is undefined) or the check
was suspended (unreliable judge, chain adds nothing)."""


class Check(Record):
    """One gate on one metric: passes when the bound the gate reads satisfies `op threshold`."""

    metric: str
    """Dotted path of the metric in report.json (e.g. `judge.aligned_share_of_correct`)."""
    op: Op
    """Comparison the metric must satisfy."""
    threshold: float
    """The value it is compared with."""
    value: float | None
    """Point estimate (null when the metric could not be computed)."""
    ci_low: float | None = None
    """Lower bound of the 95% bootstrap CI."""
    ci_high: float | None = None
    """Upper bound of the 95% bootstrap CI."""
    bound: Literal["ci_low", "ci_high", "value"] = "value"
    """Which number is compared: the lower CI bound for `>=`/`>` gates, the upper for
    `<=`/`<` gates (conservative), or the point estimate when asked."""
    passed: bool | None
    """True on `pass`, False on `fail`, null otherwise (undecided or not evaluated)."""
    outcome: Outcome = "not-evaluated"
    """pass / fail / undecided / not-evaluated (see `Outcome`)."""
    n: int | None = None
    """Problems behind the metric (the bootstrap's units); null for a plain number."""
    units: int | None = None
    """Items behind a pooled metric (responses, chains, corruptions) over those problems."""
    more_problems: int | None = None
    """When undecided: about how many more problems the run would need to decide it,
    from how the CI narrows with the square root of the problems behind the metric (and
    the share of the run's problems that contribute to it); null when it cannot be told."""
    reason: str
    """One line saying why it passed, failed, is undecided or could not be evaluated."""
    evidence: Literal["dependence", "support"] | None = None
    """Which kind of evidence a pass of this check gives GO: `dependence` (the answer
    depends on the chain: truncation, mistakes), `support` (the chain supports the
    answer: derivation, support, judge), or none (`faithcheck.verdict.gates.evidence_kind`)."""
    origin: Literal["default", "user", "baseline"] = "default"
    """A default check, one the user asked for (`--gate` / `--require`), or a
    `compare` gate on the change from a baseline run (then `value` and the CI are
    candidate − baseline)."""


class Verdict(Record):
    """The pre-RL decision and everything it rests on."""

    decision: Decision
    """GO: every evaluated check passes, with evidence of both kinds (a passing check that
    the answer depends on the chain, and one that the chain supports it). NO_GO: a check
    fails (after Holm's correction over the checks). INCONCLUSIVE: the evidence is too
    thin, undecided or partial to decide (too few samples or problems, too many responses
    cut at the token cap, a CI straddling its threshold, no passing check of one kind)."""
    exit_code: int
    """Process exit code for this decision (0 GO, 1 NO_GO, 4 INCONCLUSIVE)."""
    checks: list[Check] = Field(default_factory=list)
    """Every gate, in order."""
    reasons: list[str] = Field(default_factory=list)
    """Plain-language reasons for the decision (first: the most important)."""
    more_problems: int | None = None
    """When INCONCLUSIVE for want of data: about how many more problems would decide every
    undecided check (the largest of their `more_problems`); null otherwise."""
    gate: str = "default"
    """Where the gates came from: `default`, a gate file path, and/or `--require`."""
    fallback_answers: int | None = None
    """Of `answers`, those found only by the last-number fallback (no `\\boxed{}` and no
    "the answer is"): the more there are, the less every answer-based number means."""
    answers: int | None = None
    """Responses with a final answer found by any rule (null without a sampling section)."""
