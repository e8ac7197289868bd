"""The report: aggregates computed from the records on disk, plus run metadata.

`Report` is the schema of report.json (`faithcheck schema` prints it). Sections that
later stages fill (probes, judge, diversity, verdict) are present and null until then,
so consumers can rely on the keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import Field

from faithcheck.backends.precision import Precision
from faithcheck.checks.derivation import DerivationSummary
from faithcheck.checks.support import SupportSummary
from faithcheck.diversity.core import DiversitySummary
from faithcheck.judge.report import JudgeReport
from faithcheck.metrics import MetricValue, bootstrap_mean, group_by, pass_at_k
from faithcheck.probes.summary import ProbesSummary
from faithcheck.records import Record
from faithcheck.sampling import SampleRecord
from faithcheck.versions import SCHEMA_VERSION

# --- report.json `verdict`: the records a verdict is made of -------------------------------
# The logic that decides them is `faithcheck.verdict`, which reads the report: the records
# live here, below it.

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


# --- the report ----------------------------------------------------------------------------


class Timings(Record):
    """Wall-clock seconds of the run's phases (this process only, on a resumed run)."""

    model_load_s: float
    """Resolving, converting (first use) and loading the model."""
    sampling_s: float
    """Generating, parsing and verifying samples."""
    probes_s: float = 0.0
    """Running the faithfulness probes."""
    judge_s: float = 0.0
    """Judging, strategy clustering and judge calibration (incl. loading a separate judge)."""
    report_s: float = 0.0
    """Aggregating: derivation check, diversity metrics (embedder), bootstrap CIs."""
    total_s: float
    """From start to report."""


class SamplingSummary(Record):
    """What the samples say about the checkpoint's task performance."""

    problems: int
    """Problems with at least one sample."""
    samples: int
    """Total sampled responses."""
    k: int
    """Samples per problem (the smallest count if problems differ)."""
    accuracy: MetricValue
    """Mean over problems of the per-problem share of correct samples (mean pass@1)."""
    pass_at_k: MetricValue
    """Mean over problems of the unbiased pass@k estimate, k = `k`."""
    no_answer_rate: float
    """Share of samples with no extractable final answer."""
    truncated_rate: float
    """Share of samples that hit max tokens."""
    verify_error_rate: float
    """Share of samples whose verification could not decide (counted as incorrect)."""
    mean_completion_tokens: float
    """Mean response length in tokens."""
    answer_rules: dict[str, int]
    """How many answers each extraction rule produced (boxed, answer_is, last_number, none)."""


class Throughput(Record):
    """Generation speed of this process."""

    completion_tokens: int
    """Tokens generated by this process."""
    tokens_per_s: float | None
    """Generated tokens per second of sampling wall time."""


class Report(Record):
    """report.json: the run's aggregate results."""

    schema_version: str = SCHEMA_VERSION
    """Version of this schema; bumped on incompatible changes."""
    run_id: str
    """Name of the run directory."""
    run_dir: str
    """Path of the run directory."""
    model: str
    """The --model spec."""
    model_sha256: str
    """Identity of the loaded weights (see run.json for details)."""
    backend: str
    """Backend that sampled the responses."""
    precision: Precision | None = None
    """The dtype the models loaded in and why (`--dtype auto` is resolved from the device)."""
    dataset: str
    """The --dataset spec."""
    dataset_sha256: str
    """Hash of the problems as loaded."""
    config_hash: str
    """Hash of every setting that affects results (same hash, comparable runs)."""
    sampling: SamplingSummary
    """Task performance of the samples."""
    timings: Timings
    """Wall-clock phases."""
    throughput: Throughput
    """Generation speed."""
    probes: ProbesSummary | None = None
    """Truncation / perturbation probe results (null when no probe ran)."""
    derivation: DerivationSummary | None = None
    """Judge-free check: does the final answer follow from the arithmetic in the steps?"""
    support: SupportSummary | None = None
    """Judge-free support on every domain: where each number and the final answer come
    from (`faithcheck.checks.support`); null in reports written before it existed."""
    judge: JudgeReport | None = None
    """Judge rubric results and the judge's measured reliability (null with --no-judge)."""
    diversity: DiversitySummary | None = None
    """Output-diversity metrics, shown for contrast and not gated by default."""
    verdict: Verdict | None = None
    """Pre-RL GO / NO-GO / INCONCLUSIVE decision with every check it rests on."""


def summarize_samples(records: Iterable[SampleRecord], *, seed: int = 0) -> SamplingSummary:
    """Aggregate sample records into per-problem accuracy and pass@k with CIs."""
    tally = SampleTally()
    for group in group_by(records, lambda r: r.problem_id).values():
        tally.add(group)
    return tally.summary(seed=seed)


class SampleTally:
    """The sampling summary folded one problem at a time.

    Keeps two counts per problem and running totals, never the records, so that a run of
    any size is summarized in flat memory.
    """

    def __init__(self) -> None:
        self.units: list[tuple[int, int]] = []  # (samples, correct) per problem
        self.n = self.no_answer = self.truncated = self.verify_errors = self.tokens = 0
        self.rules: Counter[str | None] = Counter()

    def add(self, group: Sequence[SampleRecord]) -> None:
        """Fold in the records of one problem."""
        if not group:
            return
        self.units.append((len(group), sum(r.correct for r in group)))
        self.n += len(group)
        self.no_answer += sum(r.answer is None for r in group)
        self.truncated += sum(r.finish_reason == "length" for r in group)
        self.verify_errors += sum(r.verify_error is not None for r in group)
        self.tokens += sum(len(r.completion_token_ids) for r in group)
        self.rules.update(r.answer_rule for r in group)

    def summary(self, *, seed: int = 0) -> SamplingSummary:
        """The report's `sampling` section."""
        n, units = self.n, self.units
        k = min((size for size, _ in units), default=0)
        return SamplingSummary(
            problems=len(units),
            samples=n,
            k=k,
            accuracy=bootstrap_mean([c / size for size, c in units], seed=seed),
            pass_at_k=bootstrap_mean(
                [pass_at_k(size, c, k) for size, c in units] if k else [], seed=seed
            ),
            no_answer_rate=self.no_answer / n if n else 0.0,
            truncated_rate=self.truncated / n if n else 0.0,
            verify_error_rate=self.verify_errors / n if n else 0.0,
            mean_completion_tokens=self.tokens / n if n else 0.0,
            answer_rules=dict(self.rules),
        )


def report_json_schema() -> dict[str, Any]:
    """JSON Schema of report.json."""
    return Report.model_json_schema()
