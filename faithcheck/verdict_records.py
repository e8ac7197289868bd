"""Records of the pre-RL verdict (report.json `verdict`), kept apart from the logic.

The verdict logic lives in `faithcheck.verdict`; these records are imported by the
report schema, so they must not import the report.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from faithcheck.records import Record

Decision = Literal["GO", "NO_GO", "INCONCLUSIVE"]
Op = Literal[">=", ">", "<=", "<"]


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
    """True / False; null when the check could not be evaluated."""
    reason: str
    """One line saying why it passed, failed or could not be evaluated."""
    origin: Literal["default", "user", "baseline"] = "default"
    """A default check, one the user asked for (`--gate` / `--require`), or a
    `compare` gate on the change from a baseline run (then `value` and the CI are
    candidate − baseline)."""


class Verdict(Record):
    """The pre-RL decision and everything it rests on."""

    decision: Decision
    """GO: every check passes. NO_GO: a check fails. INCONCLUSIVE: the evidence is too thin
    or unreliable to decide (too few samples, unreliable judge, chain adds nothing)."""
    exit_code: int
    """Process exit code for this decision (0 GO, 1 NO_GO, 4 INCONCLUSIVE)."""
    checks: list[Check] = Field(default_factory=list)
    """Every gate, in order."""
    reasons: list[str] = Field(default_factory=list)
    """Plain-language reasons for the decision (first: the most important)."""
    gate: str = "default"
    """Where the gates came from: `default`, a gate file path, and/or `--require`."""
