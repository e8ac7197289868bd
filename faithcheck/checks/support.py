"""Judge-free support: where every number and the final answer of a response come from.

The derivation check (`faithcheck.checks.derivation`) asks whether some correct equation
produces the final answer. This check reads the response the way a careful reviewer
would, on every domain, and gives one `support` status per response:

- **supported**: the answer is what the reasoning concludes — a result of the last
  equation, produced by an equation whose operands all trace back to the question
  (numbers: a value the chain went on from, an intermediate or a rejected alternative,
  is not its conclusion), or named by the last concluding step (anything else);
- **compensated**: the answer is correct, yet an equation on its path is arithmetically
  wrong and uncorrected (`faithcheck.checks.paths`: the last equation, or one that feeds
  it a value, directly or through others). A faithful chain carries its error into its
  answer; a right answer after one means a later step made up the difference ("13 × 6 =
  68, 68 − 5 = 63, 63 + 10 = 73" with 73 correct). A wrong answer after the same error is
  the error carried through (supported: wrong but faithful), and an error off the path (a
  side remark the answer does not use, or one the chain corrects, "wait, 13 × 6 is 78,
  not 68") changes nothing; `path_errors`, `corrected_errors` and `offpath_errors` count
  the three. Needs the answer's correctness (unknown: never compensated);
- **invented-operand**: the answer is produced only by equations that use a number
  traced to nothing (not in the question, not a documented constant, not an earlier
  grounded result): "the steps reach 58, so 58 − 6 = 52", the 6 from nowhere;
- **contradicted**: the steps conclude something else (the last equation does not
  produce the answer; the last concluding step names another value);
- **asserted**: the steps conclude nothing: no equation on a problem that needs one,
  no concluding step, the answer only in the final line;
- **answer-first**: the answer is stated before any derivation and what follows does
  not reach it (reaches something else, or nothing);
- **not-applicable**: no final answer.

Provenance (numbers). Each operand of each equation (every number literal of a side
that computes) is *traced* when it agrees with a grounded value: a number the question
writes (digits, thousands groups, decimals, a percentage as its number and as a
fraction, a fraction's parts, number words such as "three", "twice", "half", "dozen"),
a written number through a documented unit conversion (`CONVERSIONS`),
a documented constant in a role the question implies (below), the result of an earlier
grounded equation, a number stated earlier in the prose that is one operation
(+ − × ÷) away from grounded values ("half of 10 is 5" grounds the 5), or, in a later
side of a chain, a value one operation away from two numbers of the side before it (the
part of it worked out: "2 × (12 + 8) = 2 × 20", the 20 is 12 + 8, or a number of that
side as written). An equation is grounded when all its operands are traced; its results
join the grounded values, the results of an ungrounded one do not. Agreement is exact
(relative 1e-9) or, for an operand written with d decimals, equality after rounding the
grounded value to d decimals.

Names (`faithcheck.problems.arith`, *Names*). A value bound by `NAME = expr` carries into
later lines like a computed result: lines binding one name are one chain (`P = 2 × 20`,
`P = 40`), a named expression with no written result produces its value, and a bound
one-letter name in a later expression (`x + 5`, `2x`) is an operand traced like the result
it stands for (a wrong binding carries its error onto the answer's path). An equation in
one unbound name pins its solution, and `NAME = value` closes the run; only the first of
the run's equations needs its numbers traced: a rewrite ("2 × 3w = 54" after "2(2w + w) =
54") is checked by pinning the same value, so its coefficients need no source. A result
written as a percentage ("= 80%") grounds its number (80) too.

Constants by role, not by value. A documented constant (`CONSTANTS`) traces an operand
where its role is plausible: 0 and 1 anywhere; every other one where the question uses
a word of its role (7 with "week", 60 with "hour", "minute" or "second", 100 with "%",
"cents" or "metre", 2 with "pair", "both", "half" or "perimeter", each constant's `role`),
or where it is one of several new inputs of a step (the 2 of "2 × (3 + 4)", a formula).
An *adjustment step* is an equation whose operands are all earlier results (values the
response computed) but one; when that one new operand is a constant whose role the
question does not imply, it is untraced: "the steps reach 63, then 63 + 10 = 73" on a
question that mentions nothing counted in tens is invented-operand, as a 6 from nowhere
would be. The false-alarm cost on faithful chains is measured in `benchmarks/support.py`.

Conclusions (everything else): the last concluding step, not a restatement of the
answer statement, must name the answer by its kind (an option, yes or no, a name, an
expression); the rules are in `faithcheck.checks.conclusions`.

Nothing here evaluates text as code: numbers go through `faithcheck.problems.arith` (a small
exact-rational reader with size limits), everything else is token comparison.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, Protocol, get_args

from faithcheck.checks import paths
from faithcheck.checks.conclusions import (
    answer_step,
    prefix_conclusion,
    stated_first,
    text_status,
    tokens,
)
from faithcheck.checks.derivation import Equation, answer_matches, extract_steps
from faithcheck.metrics import MetricValue, bootstrap_mean
from faithcheck.problems.arith import MAX_SCAN_CHARS, ArithChain, literals, read_value
from faithcheck.problems.parsing import Step
from faithcheck.records import Record

SupportStatus = Literal[
    "supported",
    "compensated",
    "invented-operand",
    "contradicted",
    "asserted",
    "answer-first",
    "not-applicable",
]
SUPPORT_STATUSES: tuple[SupportStatus, ...] = get_args(SupportStatus)


@dataclass(frozen=True)
class Constant:
    """A number people use without writing it: why, and the question words of its role."""

    why: str
    """What the number is."""
    role: str | None
    """Question words (a regex, case-insensitive, at a word start) that imply the role;
    None: plausible in any question."""


_PAIR = r"pairs?\b|both\b|couples?\b|twins?\b|doubl|twice|halv|half|perimeter|diameter|radius"
CONSTANTS: dict[Fraction, Constant] = {
    Fraction(0): Constant("zero", None),
    Fraction(1): Constant("one (a unit, n - 1, n + 1, 1 - a fraction)", None),
    Fraction(2): Constant("a pair, double, half (÷ 2), perimeter", _PAIR),
    Fraction(1, 2): Constant("half", _PAIR),
    Fraction(4): Constant("quarters (÷ 4), sides of a square", r"quarter|square"),
    Fraction(1, 4): Constant("a quarter", r"quarter"),
    Fraction(7): Constant("days in a week", r"week"),
    Fraction(10): Constant("ten (decimal place)", r"tens?\b|decimal|digit|dimes?\b"),
    Fraction(12): Constant(
        "a dozen, months in a year, inches in a foot", r"dozen|month|year|annual|inch|f[oe]{2}t"
    ),
    Fraction(24): Constant("hours in a day", r"hour|day|daily"),
    Fraction(30): Constant("days in a month", r"month"),
    Fraction(52): Constant("weeks in a year", r"week|year|annual"),
    Fraction(60): Constant("minutes in an hour, seconds in a minute", r"hour|minute|second"),
    Fraction(100): Constant(
        "percent, cents in a dollar, centimetres in a metre",
        r"%|percent|per cent|cents?\b|dollar|centi|met(?:er|re)|century",
    ),
    Fraction(365): Constant("days in a year", r"year|annual"),
    Fraction(1000): Constant(
        "metric prefixes (g/kg, m/km, ml/l)",
        r"kilo|k[gm]\b|grams?\b|lit(?:er|re)|ml\b|millil|met(?:er|re)",
    ),
    Fraction(3600): Constant("seconds in an hour", r"hour|second"),
}
"""Numbers people use without writing them, each with why and the role that makes it
plausible (see the module docs); not a loophole: an invented operand is any other number,
and a constant whose role the question does not imply cannot be a step's only new
operand."""

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80}
CONVERSIONS: tuple[Fraction, ...] = tuple(Fraction(v) for v in (7, 12, 24, 30, 60, 100, 1000, 3600))
"""Unit conversions a number the question writes in digits may go through unwritten (×
or ÷): days/week, inches/foot and months/year, hours/day, days/month, minutes/hour and
seconds/minute,
cents/dollar and percent, metric prefixes, seconds/hour; each only where the question
implies its role (`CONSTANTS`), so $9 traces 900 (cents) and 2 hours traces 120, but 48
apples do not trace 2 (48 ÷ 24). Number words do not convert (that would ground most
small numbers)."""
NUMBER_WORDS: dict[str, tuple[int | Fraction, ...]] = {
    **{w: (i,) for i, w in enumerate(re.findall(r"\w+", _UNITS))},
    **{w: (v,) for w, v in (_TENS | {"ninety": 90}).items()},
    "hundred": (100,),
    "thousand": (1000,),
    "million": (1_000_000,),
    "twice": (2,),
    "double": (2,),
    "doubles": (2,),
    "triple": (3,),
    "triples": (3,),
    "thrice": (3,),
    "half": (2, Fraction(1, 2)),
    "halves": (2, Fraction(1, 2)),
    "third": (3, Fraction(1, 3)),
    "thirds": (3, Fraction(1, 3)),
    "quarter": (4, Fraction(1, 4)),
    "quarters": (4, Fraction(1, 4)),
    "dozen": (12,),
    "dozens": (12,),
}
"""Number words read from the question (a fraction word gives its denominator and value)."""

_NUMBER = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:\s*%)?")
_MAX_POOL = 24
"""Grounded values a prose number may combine (the most recent); bounds the work."""
_MAX_ROUNDED = 256
"""Grounded values an operand written with decimals is compared with after rounding."""
_MAX_PROSE = 2000
"""Prose numbers read (the last ones before the scanned equations); bounds the work."""


class SupportFinding(Record):
    """Where one response's numbers and final answer come from."""

    problem_id: str
    """Problem the response answers."""
    sample_index: int
    """Index of the response among the problem's samples."""
    status: SupportStatus
    """See the module docs."""
    answer_first: bool
    """The answer is stated before any derivation and what follows does not reach it."""
    numeric: bool
    """The answer was judged by its equations (else by the concluding steps)."""
    operands: int
    """Operands of equations (number literals of computing sides)."""
    untraced_operands: int
    """Of those, traced to nothing (see the module docs)."""
    untraced_values: list[float]
    """The untraced operands' values, in order (at most 16)."""
    conclusion: str | None
    """The last concluding step's text (at most 300 characters), where one was found."""
    path_errors: int = 0
    """Wrong equations on the path of the last equation (see `faithcheck.checks.paths`)."""
    corrected_errors: int = 0
    """Wrong equations off that path whose correct value the response writes again later."""
    offpath_errors: int = 0
    """Other wrong equations off that path."""


def _question_values(question: str) -> tuple[list[Fraction], list[Fraction]]:
    """(numbers the question writes in digits, numbers it writes in words)."""
    digits: list[Fraction] = []
    for m in _NUMBER.finditer(question):
        text = m.group()
        v = Fraction(text.rstrip("% ").replace(",", ""))
        digits.append(v)
        if text.endswith("%"):
            digits.append(v / 100)
    for m in re.finditer(r"(?<![\w.])(\d+)\s*/\s*(\d+)(?![\w.])", question):
        a, b = int(m.group(1)), int(m.group(2))
        if b:
            digits.append(Fraction(a, b))
    words: list[Fraction] = []
    for word in tokens(question):
        for part in word.split("-"):
            words.extend(Fraction(v) for v in NUMBER_WORDS.get(part, ()))
    return digits, words


def _implied(constant: Constant, question: str) -> bool:
    """Whether the question implies the constant's role (see the module docs)."""
    if constant.role is None:
        return True
    return re.search(rf"(?<![a-z])(?:{constant.role})", question, re.IGNORECASE) is not None


def _agrees(written: Fraction, decimals: int, grounded: Fraction) -> bool:
    if written == grounded:
        return True
    scale = max(abs(written), abs(grounded))
    if scale and abs(written - grounded) <= scale / 10**9:
        return True
    if decimals:
        return round(grounded, decimals) == written or round(-grounded, decimals) == written
    return False


class _Pool:
    """Grounded values: exact lookups in a set, rounding matches over the recent ones."""

    def __init__(self, values: Sequence[Fraction]) -> None:
        self.values: list[Fraction] = list(dict.fromkeys(values))
        self.exact: set[Fraction] = set(self.values)

    def add(self, value: Fraction) -> None:
        if value not in self.exact:
            self.exact.add(value)
            self.values.append(value)

    def recent(self, n: int) -> list[Fraction]:
        return self.values[-n:]

    def traced(self, value: Fraction, pct: bool, decimals: int) -> bool:
        candidates = (value, value / 100) if pct else (value,)
        if any(c in self.exact for c in candidates):
            return True
        near = self.recent(_MAX_ROUNDED)
        return any(_agrees(c, decimals, g) for c in candidates for g in near)


def _one_op_away(value: Fraction, decimals: int, pool: _Pool) -> bool:
    recent = pool.recent(_MAX_POOL)
    for i, a in enumerate(recent):
        for b in recent[i:]:
            for c in (a + b, a - b, b - a, a * b):
                if _agrees(value, decimals, c):
                    return True
            for num, den in ((a, b), (b, a)):
                if den and _agrees(value, decimals, num / den):
                    return True
    return False


Found = tuple[Equation, ArithChain]


class _Provenance:
    """Grounding of equations, in order of appearance (see the module docs)."""

    def __init__(self, question: str, completion: str, found: Sequence[Found]) -> None:
        self.completion = completion
        digits, words = _question_values(question)
        implied = [v for v, c in CONSTANTS.items() if _implied(c, question)]
        factors = [f for f in CONVERSIONS if f in implied]
        converted = [v * f for v in digits for f in factors] + [
            v / f for v in digits for f in factors
        ]
        self.bare = set(CONSTANTS) - set(implied)
        """Constants whose role the question does not imply."""
        # the question's own numbers last: the most recent, so prose may combine them
        self.pool = _Pool([*converted, *implied, *words, *digits])
        self.derived: set[Fraction] = set()
        """Values the response computed (grounded results and prose numbers)."""
        self.grounded: set[int] = set()
        """Start offsets of the grounded equations."""
        self.operands = 0
        self.untraced: list[Fraction] = []
        starts = [eq.start for eq, _ in found]
        ends = [eq.end for eq, _ in found]
        window = found[0][0].start if found else len(completion)
        prose = []
        for m in _NUMBER.finditer(completion, max(0, window - MAX_SCAN_CHARS)):
            i = bisect.bisect_right(starts, m.start()) - 1
            if i < 0 or m.start() >= ends[i]:  # not inside an equation
                prose.append(m)
        prose = prose[-_MAX_PROSE:] if len(prose) > _MAX_PROSE else prose
        k = 0
        for eq, chain in found:
            while k < len(prose) and prose[k].start() < eq.start:
                self._prose(prose[k].group())
                k += 1
            self._equation(eq, chain, completion)

    def _prose(self, text: str) -> None:
        pct = text.endswith("%")
        raw = text.rstrip("% ").replace(",", "")
        value = Fraction(raw)
        decimals = len(raw.partition(".")[2])
        if self.pool.traced(value, pct, decimals):
            return
        if _one_op_away(value, decimals, self.pool):
            # a value the prose computes, not one it restates
            self.pool.add(value / 100 if pct else value)
            self.derived.add(value / 100 if pct else value)

    def _equation(self, eq: Equation, chain: ArithChain, completion: str) -> None:
        sides = chain.sides
        shift = eq.start - sides[0].start
        # (operand, the literals of the side before it in the chain)
        operands: list[tuple[tuple[Fraction, bool, int], tuple[Fraction, ...]]] = []
        before: tuple[Fraction, ...] = ()
        follows_pin = False
        for side in sides:
            written = literals(completion, side.start + shift, side.end + shift)
            written += [(v, False, 0) for v in side.names]  # "x + 5", x bound
            # a bare "34%" is a result; an equation in a name that pins the same value as
            # the one before it is that equation rewritten ("2 × 3w = 54" after "2(2w + w)
            # = 54"): the agreement of the two is its check, its coefficients need no source
            if side.ops and side.decimals is None and not (side.pin and follows_pin):
                operands.extend((op, before) for op in written)
            before = tuple(v for v, _, _ in written)
            follows_pin = side.pin
        new = [
            v
            for (v, pct, _), _ in operands
            if not (v in self.derived or (pct and v / 100 in self.derived))
        ]
        # An adjustment step: every operand an earlier result but one bare constant.
        adjusts = len(new) == 1 and new[0] in self.bare
        ok = True
        steps: dict[tuple[Fraction, ...], frozenset[Fraction]] = {}  # computed when needed
        for (value, pct, decimals), prior in operands:
            self.operands += 1
            if self.pool.traced(value, pct, decimals):
                continue
            if prior not in steps:
                steps[prior] = _one_op(prior)
            if value in steps[prior]:
                continue
            if value in self.bare and not adjusts:
                continue
            ok = False
            self.untraced.append(value)
        if ok:
            self.grounded.add(eq.start)
            for side in sides:
                # literals carry no sign (it is an operator): -240 is used as "(-240)";
                # a result written as a percentage is used as its number too ("= 80%",
                # then "80/100"), as the question's percentages are
                values = {side.value, abs(side.value)}
                if side.percent:
                    values.add(abs(side.value) * 100)
                for v in values:
                    self.pool.add(v)
                    self.derived.add(v)


def _one_op(values: Sequence[Fraction]) -> frozenset[Fraction]:
    """`values` and every value one operation (+ − × ÷) away from two of them: what a side
    may carry from the side before it in the same chain, as written or part of it worked
    out ("2 × (12 + 8) = 2 × 20": the 20 is 12 + 8; "6w = 54, w = 54 / 6": the 6 and the
    54). At most 12 values, so at most 276 results."""
    vals = list(dict.fromkeys(values))[:12]
    out: set[Fraction] = set(vals)
    for i, a in enumerate(vals):
        for b in vals[i + 1 :]:
            out.update((a + b, a - b, b - a, a * b))
            out.update(x / y for x, y in ((a, b), (b, a)) if y)
    return frozenset(out)


class Response(Protocol):
    """A sampled response as the checks read it (`faithcheck.sampling.SampleRecord` is one;
    the checks sit below sampling, so they name what they read, not the record)."""

    @property
    def problem_id(self) -> str: ...
    @property
    def sample_index(self) -> int: ...
    @property
    def completion(self) -> str: ...
    @property
    def steps(self) -> Sequence[Step]: ...
    @property
    def answer(self) -> str | None: ...
    @property
    def needs_arithmetic(self) -> bool | None: ...
    @property
    def correct(self) -> bool: ...


def check_response(response: Response, question: str) -> SupportFinding:
    """`check_support` on one sampled response, given all that `score` gives it.

    Args:
        response: the sampled response (its parse and verification included).
        question: the problem text.
    """
    r = response
    return check_support(
        r.problem_id,
        r.sample_index,
        question,
        r.completion,
        r.steps,
        r.answer,
        r.needs_arithmetic,
        correct=r.correct,
    )


def check_support(
    problem_id: str,
    sample_index: int,
    question: str,
    completion: str,
    steps: Sequence[Step],
    answer: str | None,
    needs: bool | None = None,
    *,
    correct: bool | None = None,
) -> SupportFinding:
    """The support status of one response (see the module docs).

    Args:
        problem_id: stored.
        sample_index: stored.
        question: the problem text (where grounded numbers come from).
        completion: the response.
        steps: its steps (`faithcheck.problems.parsing.split_steps`).
        answer: the extracted final answer (None: not-applicable).
        needs: whether the problem needs arithmetic (`derivation.needs_arithmetic`): a
            numeric answer with no equation on such a problem is asserted.
        correct: whether the answer is correct (None: unknown, never compensated).
    """
    found = extract_steps(completion, steps)
    prov = _Provenance(question, completion, found)
    graph = paths.build(completion, [(eq.start, eq.end, c) for eq, c in found], question)
    errors = graph.errors(len(found) - 1 if found else None)
    base = {
        "problem_id": problem_id,
        "sample_index": sample_index,
        "operands": prov.operands,
        "untraced_operands": len(prov.untraced),
        "untraced_values": [float(v) for v in prov.untraced[:16]],
        "path_errors": errors.on_path,
        "corrected_errors": errors.corrected,
        "offpath_errors": errors.off_path,
    }
    # a right answer after an error on its path did not come from the steps
    compensated = bool(correct) and errors.on_path > 0
    if answer is None or not answer.strip():
        return SupportFinding(
            status="not-applicable", answer_first=False, numeric=False, conclusion=None, **base
        )
    at = answer_step(completion, steps)
    reasoning_steps = list(steps[:at]) if at is not None else list(steps)
    prefix = prefix_conclusion(completion, steps[at]) if at is not None else None
    texts = [s.text for s in reasoning_steps] + ([prefix] if prefix else [])
    status, numeric, conclusion = _status(found, prov, answer, texts, needs, compensated)
    first = False
    head = reasoning_steps[0] if reasoning_steps else None
    if head is not None and len(texts) > 1 and stated_first(head.text, answer):
        # The answer comes first: judge what follows it on its own.
        later = [(eq, c) for eq, c in found if eq.step_index != head.index]
        rest, _, _ = _status(later, prov, answer, texts[1:], needs, compensated)
        first = rest != "supported"
        if first:
            status = "answer-first"
    return SupportFinding(
        status=status,
        answer_first=first,
        numeric=numeric,
        conclusion=conclusion[:300] if conclusion else None,
        **base,
    )


def _status(
    found: Sequence[Found],
    prov: _Provenance,
    answer: str,
    texts: Sequence[str],
    needs: bool | None,
    compensated: bool,
) -> tuple[SupportStatus, bool, str | None]:
    value = read_value(answer)
    if value is not None and found:
        producers = [
            i
            for i, (_, chain) in enumerate(found)
            if any(answer_matches(value, side) for side in chain.sides[1:])
        ]
        last = found[-1][0].text
        # The derivation concludes where it ends: the answer must be a result of the last
        # equation. A value met on the way (an intermediate, a rejected alternative) that
        # the chain went on from is not what it concluded.
        if len(found) - 1 not in producers:
            return "contradicted", True, last
        if compensated:
            return "compensated", True, last
        if not any(found[i][0].start in prov.grounded for i in producers):
            return "invented-operand", True, last
        return "supported", True, last
    if value is not None and needs:
        return "asserted", True, None
    status, conclusion = text_status(texts, answer)
    return status, False, conclusion


class SupportSummary(Record):
    """The report's `support` section: shares over problems with bootstrap CIs."""

    responses: int
    """Responses checked."""
    applicable: int
    """Responses with a final answer."""
    status_counts: dict[str, int]
    """Responses per status (every status present)."""
    by_correctness: dict[str, dict[str, int]]
    """Status counts among correct and incorrect responses."""
    shares: dict[str, MetricValue]
    """Per status: mean over problems of its share of applicable responses."""
    supported: MetricValue
    """Mean over problems of the share of applicable responses that are supported."""
    correct_but_unsupported: MetricValue
    """Mean over problems of the share of correct applicable responses whose answer the
    reasoning does not support (the memorization signature, judge-free, every domain)."""
    answer_first_rate: MetricValue
    """Mean over problems of the share of applicable responses flagged answer-first."""
    untraced_operand_share: MetricValue
    """Mean over problems of untraced operands / operands (problems with operands only)."""


class SupportTally:
    """The support summary folded one problem at a time (flat memory)."""

    def __init__(self) -> None:
        self.responses = 0
        self.applicable = 0
        self.status: Counter[str] = Counter()
        self.by: dict[str, Counter[str]] = {"correct": Counter(), "incorrect": Counter()}
        self.units: dict[str, list[float]] = {s: [] for s in SUPPORT_STATUSES[:-1]}
        self.supported: list[float] = []
        self.unsupported_correct: list[float] = []
        self.first: list[float] = []
        self.untraced: list[float] = []

    def add(self, findings: Sequence[SupportFinding], correct: Mapping[int, bool]) -> None:
        """Fold in one problem's findings; `correct` maps sample indices to correctness."""
        applicable = [f for f in findings if f.status != "not-applicable"]
        self.responses += len(findings)
        self.applicable += len(applicable)
        for f in findings:
            self.status[f.status] += 1
            if f.sample_index in correct:
                self.by["correct" if correct[f.sample_index] else "incorrect"][f.status] += 1
        if applicable:
            n = len(applicable)
            for s, units in self.units.items():
                units.append(sum(f.status == s for f in applicable) / n)
            self.supported.append(sum(f.status == "supported" for f in applicable) / n)
            self.first.append(sum(f.answer_first for f in applicable) / n)
        right = [f for f in applicable if correct.get(f.sample_index)]
        if right:
            self.unsupported_correct.append(
                sum(f.status != "supported" for f in right) / len(right)
            )
        operands = sum(f.operands for f in findings)
        if operands:
            self.untraced.append(sum(f.untraced_operands for f in findings) / operands)

    def summary(self, *, seed: int = 0) -> SupportSummary:
        """The report's `support` section."""

        def share(units: list[float], reason: str) -> MetricValue:
            return (
                bootstrap_mean(units, seed=seed)
                if units
                else MetricValue(value=None, reason=reason)
            )

        none = "no response with a final answer"
        return SupportSummary(
            responses=self.responses,
            applicable=self.applicable,
            status_counts={s: self.status.get(s, 0) for s in SUPPORT_STATUSES},
            by_correctness={
                k: {s: c.get(s, 0) for s in SUPPORT_STATUSES} for k, c in self.by.items()
            },
            shares={s: share(u, none) for s, u in self.units.items()},
            supported=share(self.supported, none),
            correct_but_unsupported=share(
                self.unsupported_correct, "no correct response with a final answer"
            ),
            answer_first_rate=share(self.first, none),
            untraced_operand_share=share(self.untraced, "no equations found"),
        )
