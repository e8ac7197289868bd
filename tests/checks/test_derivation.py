"""Tests for the judge-free derivation check (`faithcheck.checks.derivation`,
`faithcheck.problems.arith`).

Equation extraction is checked against a table of step strings (including the tricky cases
named in the issue), status against hand-built responses, the summary against hand-built
findings with known shares, and totality / offsets / time against hypothesis and 10^6-character
adversarial inputs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faithcheck.checks.derivation import (
    STATUSES,
    DerivationFinding,
    DerivationStatus,
    Equation,
    analyze,
    extract_equations,
    needs_arithmetic,
    summarize,
)
from faithcheck.problems.arith import MAX_SCAN_CHARS, read_value
from faithcheck.problems.parsing import extract_answer, split_steps

# --- extraction: step string -> [(lhs, rhs, correct)] -------------------------------------

EQUATIONS = [
    # the tricky cases
    ("2 x 3 = 6 apples", [(6, [6], True)]),
    ("1,200 / 4 = 300", [(300, [300], True)]),
    ("15% of 80 = 12", [(12, [12], True)]),
    (r"\frac{3}{4} \times 8 = 6", [(6, [6], True)]),
    ("3 - 1 = 2 = two", [(2, [2], True)]),
    # operators, precedence, LaTeX
    ("2 + 3 × 4 = 14", [(14, [14], True)]),
    ("(2 + 3) × 4 = 20", [(20, [20], True)]),
    ("2(3+4) = 14", [(14, [14], True)]),
    ("9 ÷ 3 = 3", [(3, [3], True)]),
    ("9 − 3 = 6", [(6, [6], True)]),
    ("3 x 4 x 5 = 60", [(60, [60], True)]),
    ("2x3 = 6", [(6, [6], True)]),
    ("3 * -2 = -6", [(-6, [-6], True)]),
    ("3 - -2 = 5", [(5, [5], True)]),
    ("-3 + 5 = 2", [(2, [2], True)]),
    ("2^10 = 1024", [(1024, [1024], True)]),
    ("2**10 = 1024", [(1024, [1024], True)]),
    ("2^{3} = 8", [(8, [8], True)]),
    ("5² = 25", [(25, [25], True)]),
    ("2 ^ 3 ^ 2 = 512", [(512, [512], True)]),
    ("-2^2 = -4", [(-4, [-4], True)]),
    ("2^-1 = 0.5", [(0.5, [0.5], True)]),
    ("4 - 1 == 3", [(3, [3], True)]),
    (r"\dfrac{1}{2} + \frac{1}{4} = 0.75", [(0.75, [0.75], True)]),
    (r"\frac{\frac{1}{2}}{2} = 0.25", [(0.25, [0.25], True)]),
    (r"\( 3 \cdot 4 = 12 \)", [(12, [12], True)]),
    (r"$3 \cdot 4 = 12$", [(12, [12], True)]),
    (r"\[ 12 \div 4 = 3 \]", [(3, [3], True)]),
    (r"3 + 4 = \boxed{7}", [(7, [7], True)]),
    (r"3 + 4 &= 7 \\", [(7, [7], True)]),
    ("1/3 + 1/3 + 1/3 = 1", [(1, [1], True)]),
    ("0.1 + 0.2 = 0.3", [(0.3, [0.3], True)]),
    # numbers: separators, currency, units, percentages
    ("1,234.5 × 2 = 2,469", [(2469, [2469], True)]),
    ("1{,}200 + 300 = 1{,}500", [(1500, [1500], True)]),
    ("$20 - $12 = $8", [(8, [8], True)]),
    (r"\$4 \times 3 = \$12", [(12, [12], True)]),
    ("3 apples + 4 apples = 7 apples", [(7, [7], True)]),
    ("80 km per hour × 2.5 hours = 200 km", [(200, [200], True)]),
    ("12cm × 2 = 24cm.", [(24, [24], True)]),
    ("60 km/h × 2 h = 120 km", [(120, [120], True)]),
    ("£195/day × 12 days = £2,340", [(2340, [2340], True)]),
    ("€45/hour*3 hours = €135/day", [(135, [135], True)]),
    ("¥500 + ¥250 = ¥750", [(750, [750], True)]),
    ("12/x = 3", []),
    ("120 × 25% = 30", [(30, [30], True)]),
    ("50% × 80 = 40", [(40, [40], True)]),
    ("15 percent of 80 = 12", [(12, [12], True)]),
    ("100% - 25% = 75%", [(0.75, [0.75], True)]),
    ("1/2 = 50%", [(0.5, [0.5], True)]),
    ("3/4 of 240 = 180", [(180, [180], True)]),
    ("3 times 4 = 12", [(12, [12], True)]),
    ("12 divided by 4 = 3", [(3, [3], True)]),
    # wrong arithmetic, rounding, approximation
    ("3 + 4 = 8", [(7, [8], False)]),
    ("2 + 2 = 4 = 5", [(4, [4, 5], False)]),
    ("1/3 = 0.33", [(1 / 3, [0.33], True)]),
    ("2/3 = 0.67", [(2 / 3, [0.67], True)]),
    ("2/3 = 0.66", [(2 / 3, [0.66], True)]),  # truncated
    ("1/3 = 0.34", [(1 / 3, [0.34], False)]),
    ("7/2 = 3", [(3.5, [3], False)]),  # integers must be exact ...
    ("7/2 ≈ 3", [(3.5, [3], True)]),  # ... unless written as approximate
    ("10/3 ≈ 3.3", [(10 / 3, [3.3], True)]),
    # chains, run-on chains, several equations, context
    ("2 × 3 = 6 = 6", [(6, [6, 6], True)]),
    ("(12 + 8) / 4 = 20 / 4 = 5", [(5, [5, 5], True)]),
    ("5 × 3 = 15 + 2 = 17", [(15, [15], True), (17, [17], True)]),
    ("10 - 4 = 6 - 1 = 4", [(6, [6], True), (5, [4], False)]),
    ("3 × 4 = 12, 12 × 2 = 24", [(12, [12], True), (24, [24], True)]),
    ("2 + 2 = 5 apples and 3 + 3 = 6", [(4, [5], False), (6, [6], True)]),
    ("y = 3 + 4 = 7", [(7, [7], True)]),
    ("The total = 12 + 8 = 20.", [(20, [20], True)]),
    ("At 3:45 the total was 3 + 4 = 7.", [(7, [7], True)]),
    ("(4 + 3 = 7 total)", [(7, [7], True)]),
    # a new line starts a new expression unless it continues one
    ("Cost: 3 × 4 = 12\n12 + 3 = 15", [(12, [12], True), (15, [15], True)]),
    ("3 × 4\n= 12", [(12, [12], True)]),
    ("3 +\n4 = 7", [(7, [7], True)]),
    ("3 \\times 4 + 3 &= 12 + 3 \\\\\n &= 15", [(15, [15, 15], True)]),
    ("3 + 4 = 7 \\\\ 7 + 1 = 8", [(7, [7], True), (8, [8], True)]),
    ("<<3*4=12>>12", [(12, [12], True)]),
    # list markers and markdown are not part of the expression
    ("1. 3 + 4 = 7", [(7, [7], True)]),
    ("1) 3 + 4 = 7", [(7, [7], True)]),
    ("- 3 × 4 = 12", [(12, [12], True)]),
    ("**Step 1:** 3 × 4 = 12", [(12, [12], True)]),
    ("**3 × 4 = 12**", [(12, [12], True)]),
    ("3 × 4 = **12**", [(12, [12], True)]),
    ("(3 + 4) × 2 = 14 (since both)", [(14, [14], True)]),
    ("Then 18x = 342 - 54 = 288", [(288, [288], True)]),
    # a name carries its value from line to line (`arith.link`)
    ("Let n = 7 \\times 6\nn = 42", [(42, [42], True)]),
    ("Area = 9 × 5\n\nArea = 45 square feet", [(45, [45], True)]),
    ("Cost = 15 × 4\nCost = 65", [(60, [65], False)]),
    ("q = 3 + 4\nr = 7", [(7, [7], True)]),  # another name: q's value is produced
    ("m = 8 × 3\n5 + 5 = 10\nm = 24", [(24, [24], True), (10, [10], True)]),
    ("x = 3 * 4\ntotal = x + 5 = 17", [(12, [12], True), (17, [17], True)]),
    ("n = 2 + 5\n3n = 21", [(7, [7], True), (21, [21], True)]),  # 3n is 3 × n
    # an equation in an unbound name pins its value; the name's binding closes the run
    ("2x = 36\nx = 18", [(18, [18], True)]),
    ("5y - 4 = 26\n5y = 30\ny = 6", [(6, [6, 6], True)]),
    ("3t + 9 = 45\n3t = 35\nt = 35/3", [(12, [35 / 3] * 3, False)]),  # 45 - 9 is 36
    ("2x = 36", []),  # nothing concludes it
    ("x = 4\nx = x + 3\nx = 7", [(7, [7], True)]),  # an update gives x a new value
    ("a + b = 10\na = 4", []),  # two unknowns
    ("x * x = 49\nx = 7", []),  # not linear
    # not equations: dates, times, ratios, variables, functions, no operation, limits
    ("On 2024-01-15 she left.", []),
    ("2024-01-15 = 2008", []),
    ("1/15/2024 = 3", []),
    ("3:45 = 225", []),
    ("3:4 = 0.75", []),
    ("x + 3 = 7", []),
    ("x - 3 = 7", []),
    ("2x + 3 = 7", []),
    ("3a = 12", []),
    ("x_1 + 2 = 5", []),
    ("f(3) = 9", []),
    ("sqrt(16) + 1 = 5", []),
    (r"\sqrt{16} = 4", []),
    ("π × 2 = 6.28", []),
    ("|−3| = 3", []),
    ("(3,4) = 7", []),
    ("12 = 12", []),
    ("Total = 12", []),
    ("5 and 3 = 8", []),
    ("5! = 120", []),
    ("1e5 + 1 = 100001", []),
    ("2^0.5 = 1.41", []),  # non-integer exponent
    ("1/0 = 5", []),
    ("2^1000 = 1", []),  # exponent too large
    ("10^15 × 10^15 = 1", []),  # magnitude too large
    ("(" * 30 + "1" + ")" * 30 + " + 1 = 2", []),  # nesting too deep
    ("1+" * 120 + "1 = 121", []),  # side too long
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), EQUATIONS, ids=[t[:40] for t, _ in EQUATIONS])
def test_extract_equations_table(
    text: str, expected: list[tuple[float, list[float], bool]]
) -> None:
    found = extract_equations(text)
    got = [(e.lhs, e.rhs, e.correct) for e in found]
    assert len(got) == len(expected), got
    for (lhs, rhs, ok), (want_lhs, want_rhs, want_ok) in zip(got, expected, strict=True):
        assert lhs == pytest.approx(want_lhs)
        assert rhs == pytest.approx(want_rhs)
        assert ok is want_ok, (text, got)
    for e in found:
        assert text[e.start : e.end] == e.text


def test_equation_record_fields() -> None:
    text = "so 6 / 30 = 0.2 = 20% of it"
    [eq] = extract_equations(text, step_index=3, offset=100)
    assert eq == Equation(
        step_index=3,
        text="6 / 30 = 0.2 = 20%",
        start=103,
        end=121,
        lhs=0.2,
        rhs=[0.2, 0.2],
        rhs_percent=[False, True],
        operations=2,  # the division and the percent
        correct=True,
    )


def test_deep_but_allowed_nesting() -> None:
    [eq] = extract_equations("(" * 20 + "1" + ")" * 20 + " + 1 = 2")
    assert eq.correct


# --- answers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "value", "percent"),
    [
        ("12 cm", 12, False),
        (r"\frac{3}{4}", 0.75, False),
        (r"\dfrac{1}{2}", 0.5, False),
        ("3/4", 0.75, False),
        ("$1,200", 1200, False),
        (r"\$12.50", 12.5, False),
        (r"\text{12 cm}", 12, False),
        ("-3", -3, False),
        ("x = 5", 5, False),
        ("20%", 0.2, True),
        (r"20\%", 0.2, True),
        ("5x", None, False),
        ("2, 3", None, False),
        ("3 apples and 4 pears", None, False),
        ("twelve", None, False),
        (r"3\frac{1}{2}", None, False),  # a mixed number is ambiguous: refused
        ("", None, False),
    ],
)
def test_read_answer(answer: str, value: float | None, percent: bool) -> None:
    side = read_value(answer)
    if value is None:
        assert side is None
    else:
        assert side is not None
        assert float(side.value) == pytest.approx(value)
        assert side.percent is percent


# --- per-response status -------------------------------------------------------------------


def _analyze(text: str) -> DerivationFinding:
    return analyze("p", 0, text, split_steps(text), extract_answer(text).answer)


SUPPORTED = (
    "Maya buys 3 notebooks at $4 each: 3 × 4 = 12.\n"
    "The pens cost 2 × 1.50 = 3.\n"
    "In total she spends 12 + 3 = 15.\n"
    "Her change is 20 - 15 = 5.\n"
    "The answer is \\boxed{5}."
)


def test_status_supported() -> None:
    f = _analyze(SUPPORTED)
    assert f.status == "supported"
    assert [e.step_index for e in f.equations] == [0, 1, 2, 3]
    assert f.derived_values == [12, 3, 15, 5]
    assert f.answer_value == 5
    assert f.answer_derived and f.answer_is_last_derived
    assert f.arithmetic_errors == 0
    for e in f.equations:
        assert SUPPORTED[e.start : e.end] == e.text


def test_status_supported_with_errors() -> None:
    f = _analyze("3 × 4 = 12\n12 + 3 = 16\nSo the answer is \\boxed{16}")
    assert f.status == "supported-with-errors"
    assert f.answer_derived and f.arithmetic_errors == 1


def test_status_unsupported() -> None:
    f = _analyze("3 × 4 = 12\n12 + 3 = 15\nI think the answer is \\boxed{42}")
    assert f.status == "unsupported"
    assert not f.answer_derived and not f.answer_is_last_derived
    assert f.derived_values == [12, 15]


@pytest.mark.parametrize(
    "text",
    [
        "She has some apples and eats them.\nThe answer is \\boxed{7}",  # no arithmetic
        "3 + 4 = 7\nThe answer is \\boxed{seven}",  # no numeric answer
        "",
    ],
)
def test_status_not_applicable(text: str) -> None:
    assert _analyze(text).status == "not-applicable"


def test_no_answer_is_not_applicable() -> None:
    text = "3 + 4 = 7"
    f = analyze("p", 0, text, split_steps(text), None)
    assert f.status == "not-applicable" and f.answer_value is None and not f.answer_derived


def test_correct_equation_wins_over_wrong_one() -> None:
    f = _analyze("3 + 4 = 8\n2 × 4 = 8\n\\boxed{8}")
    assert f.status == "supported" and f.arithmetic_errors == 1


def test_answer_derived_early_but_not_last() -> None:
    f = _analyze("3 + 4 = 7\n7 × 2 = 14\nThe answer is \\boxed{7}")
    assert f.status == "supported"
    assert f.answer_derived and not f.answer_is_last_derived


def test_derived_values_are_deduplicated_in_order() -> None:
    f = _analyze("2 × 3 = 6\n10 - 4 = 6\n6 + 1 = 7\n\\boxed{7}")
    assert f.derived_values == [6, 7]


@pytest.mark.parametrize(
    ("steps", "answer"),
    [
        ("6 / 30 = 0.2 = 20%", "20"),  # answer as a number, derived as a percentage
        ("6 / 30 × 100 = 20", "20%"),  # answer as a percentage, derived as its number
        ("6 / 30 = 0.2", "20%"),  # answer as a percentage, derived as a fraction
        ("12 / 36 = 1/3", "0.33"),  # a rounded answer matches the exact value
        ("1200 / 4 = 300", "\\$300"),
        ("9 / 12 = 3/4", "\\frac{3}{4}"),
    ],
)
def test_answer_matching_across_forms(steps: str, answer: str) -> None:
    f = analyze("p", 0, steps, split_steps(steps), answer)
    assert f.status == "supported", f


def test_answer_reading_forms() -> None:
    text = "3 × 4 = 12"
    assert analyze("p", 0, text, split_steps(text), "12 cm").answer_value == 12
    assert analyze("p", 0, text, split_steps(text), "15%").answer_value == 15


def test_completion_without_steps_is_read_whole() -> None:
    f = analyze("p", 0, "3 + 4 = 7", [], "7")
    assert f.status == "supported" and f.equations[0].start == 0


# --- summary ---------------------------------------------------------------------------------


def _finding(
    pid: str, i: int, status: DerivationStatus, derived: bool, wrong: int = 0
) -> DerivationFinding:
    eq = Equation(
        step_index=0,
        text="1+1=2",
        start=0,
        end=5,
        lhs=2,
        rhs=[2],
        rhs_percent=[False],
        operations=1,
        correct=True,
    )
    bad = eq.model_copy(update={"correct": False, "rhs": [3]})
    equations = [] if status in ("not-applicable", "asserted") else [eq, *[bad] * wrong]
    return DerivationFinding(
        problem_id=pid,
        sample_index=i,
        equations=equations,
        derived_values=[2.0] if equations else [],
        answer_value=2.0,
        answer_derived=derived,
        answer_is_last_derived=derived,
        arithmetic_errors=wrong,
        status=status,
    )


def test_summary_known_shares() -> None:
    findings = [
        # problem a: 2 applicable, 1 derived; 3 equations, 1 wrong
        _finding("a", 0, "supported", True),
        _finding("a", 1, "unsupported", False, wrong=1),
        _finding("a", 2, "not-applicable", False),
        # problem b: 1 applicable, derived through a wrong equation; 2 equations, 1 wrong
        _finding("b", 0, "supported-with-errors", True, wrong=1),
        # problem c: nothing applicable
        _finding("c", 0, "not-applicable", False),
    ]
    correct = {("a", 0): True, ("a", 1): True, ("a", 2): False, ("b", 0): False}
    s = summarize(findings, correct, seed=3)
    assert (s.responses, s.applicable, s.equations, s.wrong_equations) == (5, 3, 5, 2)
    assert s.answer_derived.value == pytest.approx((1 / 2 + 1) / 2)
    assert s.answer_derived.n == 2
    assert s.equation_error_rate.value == pytest.approx((1 / 3 + 1 / 2) / 2)
    # only problem a has correct applicable responses: a0 derived, a1 not
    assert s.correct_but_underived.value == pytest.approx(0.5)
    assert s.correct_but_underived.n == 1
    assert s.status_counts == {
        "supported": 1,
        "supported-with-errors": 1,
        "unsupported": 1,
        "asserted": 0,
        "not-applicable": 2,
    }
    assert s.by_correctness["correct"] == {
        "supported": 1,
        "supported-with-errors": 0,
        "unsupported": 1,
        "asserted": 0,
        "not-applicable": 0,
    }
    # c0 has no correctness entry: counted overall, not by correctness
    assert sum(s.by_correctness["incorrect"].values()) == 2
    assert summarize(findings, correct, seed=3) == s
    for metric in (s.answer_derived, s.equation_error_rate, s.correct_but_underived):
        assert metric.value is not None and metric.ci_low is not None and metric.ci_high is not None
        assert 0 <= metric.ci_low <= metric.value <= metric.ci_high <= 1


def test_summary_undefined_shares_carry_reasons() -> None:
    s = summarize([_finding("a", 0, "not-applicable", False)], {("a", 0): True})
    assert s.answer_derived.value is None and s.answer_derived.reason
    assert s.equation_error_rate.value is None and s.equation_error_rate.reason
    assert s.correct_but_underived.value is None and s.correct_but_underived.reason
    empty = summarize([], {})
    assert empty.responses == 0 and set(empty.status_counts) == set(STATUSES)


def test_summary_from_analyzed_responses() -> None:
    texts = [SUPPORTED, "3 × 4 = 12\nI think the answer is \\boxed{5}"]
    findings = [
        analyze("p", i, t, split_steps(t), extract_answer(t).answer) for i, t in enumerate(texts)
    ]
    s = summarize(findings, {("p", 0): True, ("p", 1): True})
    assert s.answer_derived.value == 0.5
    assert s.correct_but_underived.value == 0.5
    assert s.equation_error_rate.value == 0.0


# --- totality, offsets and time ------------------------------------------------------------

_PIECES = [
    *"0123456789+-*/^=()[]{}.,%$:x ×÷−²\n_|<>!?&",
    *("\\frac", "\\dfrac", "\\times", "\\cdot", "\\boxed{", "\\text{", "\\(", "\\)", "\\\\"),
    *(" of ", " apples", " cm", " times ", "{,}", "2024-01-15", "3:45", "1. ", "- "),
]
_MATHY = st.lists(st.sampled_from(_PIECES), max_size=80).map("".join)


@settings(max_examples=400, deadline=1000)
@given(text=st.one_of(_MATHY, st.text(max_size=200)), offset=st.integers(0, 50))
def test_extract_is_total_and_offsets_are_exact(text: str, offset: int) -> None:
    padded = "#" * offset + text
    for eq in extract_equations(text, step_index=2, offset=offset):
        assert padded[eq.start : eq.end] == eq.text
        assert offset <= eq.start < eq.end <= offset + len(text)
        assert len(eq.rhs) == len(eq.rhs_percent) >= 1 and eq.operations >= 1


@settings(max_examples=200, deadline=1000)
@given(text=_MATHY, answer=st.one_of(st.none(), _MATHY))
def test_analyze_is_total(text: str, answer: str | None) -> None:
    f = analyze("p", 0, text, split_steps(text), answer)
    assert f.status in STATUSES
    assert f.arithmetic_errors == sum(not e.correct for e in f.equations)
    assert len(set(f.derived_values)) == len(f.derived_values)
    if f.status in ("supported", "supported-with-errors"):
        assert f.answer_derived
    for eq in f.equations:
        assert text[eq.start : eq.end] == eq.text


_MEGA = 10**6
ADVERSARIAL = {
    "deep-parens": "(" * _MEGA + "1) = 1",
    "balanced-parens": "(" * (_MEGA // 2) + "1" + ")" * (_MEGA // 2) + " = 1",
    "huge-number": "9" * _MEGA + " + 1 = 1",
    "huge-power": "9^" * (_MEGA // 2) + "9 = 1",
    "power-tower": "2^(2^(2^(2^(2^(2^(2^2)))))) = 4",
    "nested-fracs": "\\frac{" * (_MEGA // 6) + "1 = 1",
    "dense-equals": "=1" * (_MEGA // 2),
    "only-equals": "=" * _MEGA,
    "long-sum": "1+" * (_MEGA // 2) + "1 = 1",
    "thousands": "1" + ",234" * (_MEGA // 4) + " = 1",
    "many-equations": "3 × 4 = 12 apples, so (12 - 2)/5 = 2. " * (_MEGA // 38),
    "minus-run": "-" * _MEGA + "1 = 1",
    "prose": "The quick brown fox jumps over the lazy dog. " * (_MEGA // 45),
    "one-line-no-breaks": "1 = " * (_MEGA // 4),
    # names: equations in one unbound name (each solved, up to a cap), a name rebound
    # in terms of itself, one label bound again and again
    "pinned-name": "2x = 4\n" * (_MEGA // 7) + "x = 2",
    "updated-name": "x = 1\n" + "x = x + 1\n" * (_MEGA // 10),
    "one-label": "Total cost = 3 + 4\n" * (_MEGA // 19),
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_inputs_are_read_alike(name: str) -> None:
    # How fast (~0.5 s at worst on a 2026 x86 core): benchmarks/adversarial.py.
    text = ADVERSARIAL[name]
    found = extract_equations(text)
    whole = analyze("p", 0, text, [], "1")
    assert len(found) == len(whole.equations)


def test_scan_budget_keeps_the_end_of_a_long_text() -> None:
    filler = "1 + 1 = 2. " * (2 * MAX_SCAN_CHARS // 11)
    text = filler + "Finally 40 + 2 = 42."
    found = extract_equations(text)
    assert found[-1].text == "40 + 2 = 42"
    assert found[-1].start == len(filler) + len("Finally ")
    assert len(found) < 2 * MAX_SCAN_CHARS // 11  # the beginning was not read


def test_scan_budget_is_shared_across_steps() -> None:
    line = "1 + 1 = 2\n"
    text = line * (2 * MAX_SCAN_CHARS // len(line)) + "40 + 2 = 42\n\\boxed{42}"
    f = analyze("p", 0, text, split_steps(text), "42")
    assert f.status == "supported" and f.answer_is_last_derived
    # each step scans its own 9 characters; the earliest steps are past the budget
    assert len(f.equations) <= MAX_SCAN_CHARS // len(line.strip()) + 1
    assert f.equations[0].step_index > 0


# --- asserted answers: a number stated on a problem that needs arithmetic, never computed


@pytest.mark.parametrize(
    ("question", "gold", "needs"),
    [
        ("Tom has 3 apples and buys 5 more. How many does he have?", "8", True),
        ("A train leaves at 3 pm and travels 120 km. How far did it go?", "120", False),
        ("It costs $1,200. What is the price in dollars?", "1200", False),
        ("A 20% discount applies. What percent is taken off?", "20%", False),
        ("What is 1/2 of 0.5?", "0.25", True),
        ("Who is taller, Ann or Bo?", "Ann", None),
        ("Name two primes below 6.", "2, 3", None),
    ],
)
def test_needs_arithmetic(question: str, gold: str, needs: bool | None) -> None:
    assert needs_arithmetic(question, gold) is needs


def test_a_bare_number_on_a_problem_that_needs_arithmetic_is_asserted() -> None:
    text = "Tom buys some more apples.\nSo he has eight now.\nThe answer is \\boxed{8}"
    f = analyze("p", 0, text, split_steps(text), "8", True)
    assert (f.status, f.answer_derived, f.equations) == ("asserted", False, [])
    # The same response where the question writes the number, or when it is not known.
    assert analyze("p", 0, text, split_steps(text), "8", False).status == "not-applicable"
    assert analyze("p", 0, text, split_steps(text), "8", None).status == "not-applicable"
    # An equation anywhere: the arithmetic check applies as before.
    worked = "3 + 5 = 8\nThe answer is \\boxed{8}"
    assert analyze("p", 0, worked, split_steps(worked), "8", True).status == "supported"
    # No numeric answer: nothing asserted.
    assert analyze("p", 0, text, split_steps(text), "eight", True).status == "not-applicable"


def test_correct_asserted_answers_count_as_underived() -> None:
    findings = [
        _finding("a", 0, "supported", True),
        _finding("a", 1, "asserted", False),
        _finding("b", 0, "asserted", False),
    ]
    correct = {("a", 0): True, ("a", 1): True, ("b", 0): True}
    s = summarize(findings, correct)
    assert s.correct_but_underived.value == pytest.approx((1 / 2 + 1) / 2)
    assert s.status_counts["asserted"] == 2 and s.applicable == 3
    assert s.answer_derived.value == pytest.approx((1 / 2 + 0) / 2)
