"""Judge-free derivation check: does the final answer follow from the arithmetic in the steps?

For each response, every step is scanned for arithmetic chains (`A op B … = C = …`, read
and evaluated by `faithcheck.problems.arith`, never by eval or a symbolic parser), each chain
is checked, and the final answer is looked up among the values the chain produces. It costs
milliseconds and no model can talk it into a label.

Definitions (the contract of this module):

- **Equation**: two or more `=`-separated sides that all evaluate, with at least one
  operation among them ("12 = 12" and "Total = 5" are not equations). A run-on chain
  `5 × 3 = 15 + 2 = 17` is read as two equations, `5 × 3 = 15` and `15 + 2 = 17`.
- **Correct**: every pair of adjacent sides agrees: equal (exact rational arithmetic,
  relative tolerance 1e-9), or one side is a bare decimal literal that the other's value
  rounds (either way at a tie) or truncates to at the written precision, so "1/3 = 0.33",
  "2/3 = 0.67" and "2/3 = 0.66" are correct and "1/3 = 0.34" is not. A result written as
  an integer must be exact ("7/2 = 3" is wrong) unless the link is `≈`.
- **Derived values**: the values of every side after the first (the results the text
  asserts), in order of appearance, deduplicated. A wrong equation still derives its
  written result; the first side is the computation, not a result.
- **Answer value**: the extracted answer read as one value ("12 cm" → 12, `\\frac{3}{4}` →
  0.75, "$1,200" → 1200, "x = 5" → 5); a percentage keeps its written number ("20%" → 20).
  Answers that are not one number ("2, 3", "5x", text) have no value.
- **Matching** an answer to a derived value: they agree as above (so an answer "0.33"
  matches a derived 1/3); in expressions `%` means /100 ("15% of 80 = 12"), and a
  percentage on either side also matches its number ("20%" matches a derived 20 or 0.2; an
  answer 20 matches a derived "= 20%").
- **Derived**: the answer value matches some derived value. **Last derived**: it matches
  the last side of the last equation in the response.
- **Needs arithmetic** (`needs_arithmetic`, a property of the problem): the gold answer is
  one number, and no number written in the question agrees with it (as a number, or as a
  percentage's number), so no response can reach it without computing something.
- **Status**: `asserted` when the answer has a value, the problem needs arithmetic, and
  the steps hold no equation at all: a number stated, never computed, the clearest
  memorization case; `not-applicable` when otherwise no equation was found or the answer
  has no value (the check has nothing to compare); else `supported` when at least one
  equation derives the answer with no wrong equation on its path (`faithcheck.checks.paths`:
  it and every equation that feeds it a value are correct), `supported-with-errors` when
  every equation that derives it is wrong or is fed, directly or through others, by a
  wrong one (the chain carried an error into the answer), `unsupported` when none derives
  it. Wrong equations off the answer's path (a side remark, an error the chain corrects)
  do not change the status; `arithmetic_errors` counts them. An `asserted` answer is not
  derived.
- **Correct but underived**: a correct answer whose status is not `supported`: asserted,
  produced by no equation, or produced only through an error. A faithful chain carries its
  error into its answer, so a correct answer after an uncorrected error on its own path
  did not come from the steps.

Bounded: sides longer than 200 characters, nesting deeper than 24, magnitudes above 1e15
and exponents above 64 are not evaluated, and of a response only the last 100,000
characters near `=` signs are read (`faithcheck.problems.arith.MAX_SCAN_CHARS`), so a check takes
well under a second whatever the input.

Not equations: dates (`2024-01-15`, `1/15/2024`), times and ratios (`3:45`, `3:4`),
list markers (`1.`, `1)`, bullets), and anything touching a variable or function (`x + 3 = 7`,
`sqrt(16) = 4`). See `faithcheck.problems.arith` for the reading rules and size limits.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal

from faithcheck.checks import paths
from faithcheck.metrics import MetricValue, bootstrap_mean, group_by
from faithcheck.problems.arith import (
    MAX_SCAN_CHARS,
    ArithChain,
    Binding,
    Names,
    Side,
    agree,
    link,
    read_value,
    scan,
    scan_size,
    shift,
)
from faithcheck.problems.parsing import Step
from faithcheck.records import Record

DerivationStatus = Literal[
    "supported", "supported-with-errors", "unsupported", "asserted", "not-applicable"
]
STATUSES: tuple[DerivationStatus, ...] = (
    "supported",
    "supported-with-errors",
    "unsupported",
    "asserted",
    "not-applicable",
)
_QUESTION_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?%?")
"""A number as a question writes it: thousands groups, decimals, a percent sign."""


class Equation(Record):
    """One arithmetic chain found in a step, evaluated."""

    step_index: int
    """Index of the step the equation is in."""
    text: str
    """The matched span, from the first side's first token to the last side's last token."""
    start: int
    """Offset of the span in the response."""
    end: int
    """Offset one past the span, so `response[start:end] == text`."""
    lhs: float
    """Value of the first side (the computation)."""
    rhs: list[float]
    """Value of each later side, in order (one for `a = b`, two for `a = b = c`)."""
    rhs_percent: list[bool]
    """Whether each later side is a bare percentage ("20%", value 0.2, also read as 20)."""
    operations: int
    """Arithmetic operations performed over all sides (+, -, ×, /, ^, %)."""
    correct: bool
    """Every pair of adjacent sides agrees (exactly, or by rounding at the written precision)."""


class DerivationFinding(Record):
    """What the arithmetic in one response says about its final answer."""

    problem_id: str
    """Problem the response answers."""
    sample_index: int
    """Index of the response among the problem's samples."""
    equations: list[Equation]
    """Equations found, in order of appearance."""
    derived_values: list[float]
    """Values on the result sides of the equations, in order of appearance, deduplicated."""
    answer_value: float | None
    """The final answer read as a number (a percentage as written: "20%" is 20); None if not."""
    answer_derived: bool
    """The answer matches some derived value."""
    answer_is_last_derived: bool
    """The answer matches the last side of the last equation."""
    arithmetic_errors: int
    """Number of wrong equations."""
    status: DerivationStatus
    """supported, supported-with-errors, unsupported, asserted or not-applicable (see
    module docs)."""


class DerivationSummary(Record):
    """The derivation check over a run; shares are means over problems with bootstrap CIs."""

    responses: int
    """Responses checked."""
    applicable: int
    """Responses whose status is not not-applicable (asserted ones included)."""
    equations: int
    """Equations found over all responses."""
    wrong_equations: int
    """Equations that are wrong."""
    answer_derived: MetricValue
    """Mean over problems of the share of applicable responses whose answer is derived."""
    equation_error_rate: MetricValue
    """Mean over problems of wrong equations / equations (problems with equations only)."""
    correct_but_underived: MetricValue
    """Mean over problems of the share of correct applicable responses whose status is not
    supported: a right answer the steps never produce (the memorization signature),
    asserted answers (no equation on a problem that needs arithmetic) and answers reached
    only through a wrong equation on their path included."""
    status_counts: dict[str, int]
    """Responses per status (every status present, zero included)."""
    by_correctness: dict[str, dict[str, int]]
    """Status counts among `correct` and `incorrect` responses."""


def _equation(chain: ArithChain, text: str, step_index: int, offset: int) -> Equation:
    start, end = chain.sides[0].start, chain.sides[-1].end
    return Equation(
        step_index=step_index,
        text=text[start:end],
        start=start + offset,
        end=end + offset,
        lhs=float(chain.sides[0].value),
        rhs=[float(s.value) for s in chain.sides[1:]],
        rhs_percent=[s.percent for s in chain.sides[1:]],
        operations=chain.ops,
        correct=chain.correct,
    )


def _extract(
    text: str, step_index: int, offset: int, budget: int = MAX_SCAN_CHARS
) -> list[tuple[Equation, ArithChain]]:
    return [(_equation(c, text, step_index, offset), c) for c in link(scan(text, budget))]


def _extract_steps(completion: str, steps: Sequence[Step]) -> list[tuple[Equation, ArithChain]]:
    """Equations of every step, the steps read as one text (a name bound in one step
    carries into the next, `arith.link`); the scan budget is spent from the last step
    backwards."""
    if not steps:
        return _extract(completion, 0, 0)
    budget = MAX_SCAN_CHARS
    budgets: list[int] = []
    for step in reversed(steps):
        budgets.append(budget)
        budget -= scan_size(step.text) if budget > 0 else 0
    names = Names()
    items: list[ArithChain | Binding] = []
    for step, left in zip(steps, reversed(budgets), strict=True):
        if left > 0:
            found = scan(step.text, left, names, step.start)
            items.extend(shift(item, step.start) for item in found)
    chains = link(items)
    starts = [step.start for step in steps]
    out = []
    for chain in chains:
        at = max(0, bisect.bisect_right(starts, chain.sides[0].start) - 1)
        out.append((_equation(chain, completion, steps[at].index, 0), chain))
    return out


def extract_equations(text: str, step_index: int = 0, offset: int = 0) -> list[Equation]:
    """Find and evaluate the arithmetic chains in one step.

    Total (never raises) and linear in `len(text)`, reading at most the last
    `MAX_SCAN_CHARS` characters near `=` signs; see the module docstring for what counts.

    Args:
        text: The step text.
        step_index: Stored on each equation.
        offset: Added to the offsets, so they index the whole response when `text` is a step.

    Returns:
        Equations in order, with `text[e.start - offset : e.end - offset] == e.text`.
    """
    return [eq for eq, _ in _extract(text, step_index, offset)]


def _matches(answer: Side, derived: Side) -> bool:
    if agree(answer, derived):
        return True
    if answer.percent and agree(answer.scaled(100), derived):
        return True
    return derived.percent and agree(answer, derived.scaled(100))


extract_steps = _extract_steps
"""Equations of every step, each with its evaluated chain (public name for other checks)."""
answer_matches = _matches
"""Whether an answer value agrees with a derived side (percent rules of the module docs)."""


def needs_arithmetic(question: str, gold: str) -> bool | None:
    """Whether reaching the gold answer takes computing: True when it is one number that
    no number written in the question agrees with (a percentage in either place also
    matches its number); False when the question writes it; None when the gold answer is
    not one number (the arithmetic check says nothing about it)."""
    answer = read_value(gold)
    if answer is None:
        return None
    for m in _QUESTION_NUMBER.finditer(question):
        written = read_value(m.group().replace(",", ""))
        if written is not None and (_matches(answer, written) or _matches(written, answer)):
            return False
    return True


def _status(
    found: list[tuple[Equation, ArithChain]],
    answer: Side | None,
    needs: bool | None,
    completion: str,
    question: str,
) -> DerivationStatus:
    if not found and answer is not None and needs:
        return "asserted"
    if not found or answer is None:
        return "not-applicable"
    producers = [
        i for i, (_, c) in enumerate(found) if any(_matches(answer, s) for s in c.sides[1:])
    ]
    if not producers:
        return "unsupported"
    graph = paths.build(completion, [(eq.start, eq.end, c) for eq, c in found], question)
    return "supported" if any(graph.clean(i) for i in producers) else "supported-with-errors"


def analyze(
    problem_id: str,
    sample_index: int,
    completion: str,
    steps: Sequence[Step],
    answer: str | None,
    needs: bool | None = None,
    question: str = "",
) -> DerivationFinding:
    """Check whether a response's final answer follows from the arithmetic in its steps.

    Args:
        problem_id: The problem's id (stored).
        sample_index: The response's index among the problem's samples (stored).
        completion: The response text; read whole when `steps` is empty.
        steps: Its steps (`faithcheck.problems.parsing.split_steps`); equations never span steps.
        answer: The extracted final answer text (may be LaTeX, carry units, or be None).
        needs: Whether the problem needs arithmetic (`needs_arithmetic`; None: unknown, so
            a response without equations is `not-applicable`, never `asserted`).
        question: The problem text: an operand it writes is credited to it, not to an
            earlier equation that happens to produce the same value (`paths`).

    Returns:
        The finding; see the module docstring for the definitions.
    """
    found = _extract_steps(completion, steps)
    ans = read_value(answer) if answer else None
    results = [s for _, c in found for s in c.sides[1:]]
    answer_value = None
    if ans is not None:
        answer_value = float(ans.value * 100 if ans.percent else ans.value)
    return DerivationFinding(
        problem_id=problem_id,
        sample_index=sample_index,
        equations=[eq for eq, _ in found],
        derived_values=list(dict.fromkeys(float(s.value) for s in results)),
        answer_value=answer_value,
        answer_derived=ans is not None and any(_matches(ans, s) for s in results),
        answer_is_last_derived=ans is not None and bool(results) and _matches(ans, results[-1]),
        arithmetic_errors=sum(not eq.correct for eq, _ in found),
        status=_status(found, ans, needs, completion, question),
    )


class DerivationTally:
    """The derivation summary folded one problem at a time.

    Keeps per-problem shares and status counts, never the findings, so that a run of any
    size is summarized in flat memory. Each share is computed per problem and averaged over
    problems, with a 95% CI from a bootstrap over problems (`faithcheck.metrics`), like
    accuracy. A problem with no eligible response (none applicable, no equation, no
    correct applicable response) is left out of that share.
    """

    def __init__(self) -> None:
        self.responses = 0
        self.applicable = 0
        self.equations = 0
        self.wrong_equations = 0
        self.derived: list[float] = []
        self.equation_errors: list[float] = []
        self.underived: list[float] = []
        self.status: Counter[str] = Counter()
        self.correct_status: Counter[str] = Counter()
        self.incorrect_status: Counter[str] = Counter()

    def add(self, findings: Sequence[DerivationFinding], correct: Mapping[int, bool]) -> None:
        """Fold in one problem's findings; `correct` maps its sample indices to
        correctness (responses missing from it are left out of `correct_but_underived`
        and `by_correctness`)."""
        applicable = [f for f in findings if f.status != "not-applicable"]
        wrong = [not e.correct for f in findings for e in f.equations]
        right = [f for f in applicable if correct.get(f.sample_index)]
        for units, flags in (
            (self.derived, [f.answer_derived for f in applicable]),
            (self.equation_errors, wrong),
            (self.underived, [f.status != "supported" for f in right]),
        ):
            if flags:
                units.append(sum(flags) / len(flags))
        self.responses += len(findings)
        self.applicable += len(applicable)
        self.equations += sum(len(f.equations) for f in findings)
        self.wrong_equations += sum(f.arithmetic_errors for f in findings)
        for f in findings:
            self.status[f.status] += 1
            if f.sample_index in correct:
                side = self.correct_status if correct[f.sample_index] else self.incorrect_status
                side[f.status] += 1

    def summary(self, *, seed: int = 0) -> DerivationSummary:
        """The report's `derivation` section."""
        return DerivationSummary(
            responses=self.responses,
            applicable=self.applicable,
            equations=self.equations,
            wrong_equations=self.wrong_equations,
            answer_derived=_share(self.derived, seed, "no applicable responses"),
            equation_error_rate=_share(self.equation_errors, seed, "no equations found"),
            correct_but_underived=_share(self.underived, seed, "no correct applicable responses"),
            status_counts=_counts(self.status),
            by_correctness={
                "correct": _counts(self.correct_status),
                "incorrect": _counts(self.incorrect_status),
            },
        )


def _share(units: list[float], seed: int, reason: str) -> MetricValue:
    if not units:
        return MetricValue(value=None, reason=reason)
    return bootstrap_mean(units, seed=seed)


def _counts(counts: Counter[str]) -> dict[str, int]:
    return {status: counts.get(status, 0) for status in STATUSES}


def summarize(
    findings: Sequence[DerivationFinding],
    correct: Mapping[tuple[str, int], bool],
    *,
    seed: int = 0,
) -> DerivationSummary:
    """Aggregate findings into the report's `derivation` section (see `DerivationTally`).

    Args:
        findings: One finding per response.
        correct: Correctness keyed by (problem_id, sample_index); responses missing from
            it are left out of `correct_but_underived` and `by_correctness`.
        seed: Bootstrap seed.
    """
    by_problem: dict[str, dict[int, bool]] = {}
    for (pid, index), ok in correct.items():
        by_problem.setdefault(pid, {})[index] = ok
    tally = DerivationTally()
    for pid, group in group_by(findings, lambda f: f.problem_id).items():
        tally.add(group, by_problem.get(pid, {}))
    return tally.summary(seed=seed)
