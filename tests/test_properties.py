"""Property tests of the functions that read raw model output: step splitting, answer
extraction and normalization, the arithmetic evaluator, and verification.

All of them must be total (never raise) and quick on any text, adversarial or not;
the per-example deadlines below are far above their normal cost, and catch the super-
linear cases that matter. (tests/problems/test_parsing.py and tests/checks/test_derivation.py
hold the example-based tables; these are the invariants.)
"""

from __future__ import annotations

import time
from datetime import timedelta

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from faithcheck.checks.derivation import STATUSES, analyze
from faithcheck.problems.arith import find_chains, read_value, scan_size
from faithcheck.problems.parsing import extract_answer, normalize_answer, split_steps
from faithcheck.problems.verify import Verification, verify
from faithcheck.records import Problem

RULES = {"boxed", "answer_is", "last_number", "none"}

# Pieces that exercise the rules: separators, answer cues, boxes, numbers, LaTeX, markdown.
_PIECES = st.sampled_from(
    [
        "a",
        "7",
        "42",
        "-3",
        "3.5",
        "1,200",
        "3/4",
        "0",
        " ",
        "  ",
        "\n",
        "\n\n",
        "\n \n",
        "\t",
        "\r\n",
        ".",
        ". ",
        "!",
        "?",
        ",",
        ":",
        "=",
        "+",
        "-",
        "×",
        "*",
        "**",
        "$",
        "$$",
        "{",
        "}",
        "\\",
        "\\{",
        "\\}",
        "\\boxed{",
        "\\fbox{",
        "\\frac{",
        "\\text{",
        "}}",
        "The answer is ",
        "answer: ",
        "**Answer:** ",
        "Final answer: ",
        "e.g. ",
        "i.e. ",
        "Step 1. ",
        "1. ",
        "- ",
        "%",
        "\\%",
        "(",
        ")",
        "é",
        "ß",
        "１２",
        "−",
        "\u200b",
        "🤖",
    ]
)
TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(_PIECES, max_size=80).map("".join),
)
SLOW_OK = settings(max_examples=300, deadline=timedelta(seconds=2))


# -- split_steps ---------------------------------------------------------------------------


@SLOW_OK
@given(TEXT)
def test_steps_index_back_into_the_text_in_order_without_overlap(text: str) -> None:
    steps = split_steps(text)
    end = 0
    for i, step in enumerate(steps):
        assert step.index == i
        assert end <= step.start < step.end <= len(text)
        assert text[step.start : step.end] == step.text
        assert step.text == step.text.strip() and step.text
        end = step.end
    # Nothing but whitespace and separators is left out: every non-space character of
    # the text lies inside some step.
    covered = sum(len(s.text.replace(" ", "")) for s in steps)
    assert covered <= len(text)
    if not text.strip():
        assert steps == []


@SLOW_OK
@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\n\r"), min_size=1)))
def test_blank_line_paragraphs_are_the_steps(paragraphs: list[str]) -> None:
    paragraphs = [p.strip() for p in paragraphs]
    assume(len([p for p in paragraphs if p]) >= 2 and all(paragraphs))
    assume(not any(c.isspace() and c not in " \t" for p in paragraphs for c in p))
    steps = split_steps("\n\n".join(paragraphs))
    assert [s.text for s in steps] == paragraphs


# -- extract_answer ------------------------------------------------------------------------


@SLOW_OK
@given(TEXT)
def test_extract_answer_is_total_and_its_span_is_exact(text: str) -> None:
    found = extract_answer(text)
    assert found.rule in RULES
    if found.answer is None:
        assert (found.rule, found.start, found.end) == ("none", None, None)
    else:
        assert found.rule != "none"
        assert found.start is not None and found.end is not None
        assert text[found.start : found.end] == found.answer
        assert found.answer and found.answer == found.answer.strip()


_PLAIN = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="{}\\"),
    max_size=40,
)


@SLOW_OK
@given(answer=_PLAIN, before=_PLAIN, after=_PLAIN)
def test_boxed_answer_comes_back(answer: str, before: str, after: str) -> None:
    """`\\boxed{a}` gives back a (stripped) for any a without braces or backslashes,
    whatever plain text surrounds it."""
    assume(answer.strip())
    found = extract_answer(f"{before}\\boxed{{{answer}}}{after}")
    assert (found.answer, found.rule) == (answer.strip(), "boxed")


@SLOW_OK
@given(TEXT)
def test_extraction_is_idempotent_on_what_it_extracts(text: str) -> None:
    """Extracting again from an extracted number, or from its box, changes nothing."""
    found = extract_answer(text)
    assume(found.answer is not None)
    assert found.answer is not None
    if found.rule == "last_number":
        assert extract_answer(found.answer).answer == found.answer
    if "{" not in found.answer and "}" not in found.answer and "\\" not in found.answer:
        assert extract_answer(f"\\boxed{{{found.answer}}}").answer == found.answer


# -- normalize_answer ----------------------------------------------------------------------


@SLOW_OK
@given(TEXT)
@example("$1,200$.")
@example("**$\\text{12}$**")
@example("\\(\\dfrac{1}{2}\\).")
def test_normalize_answer_is_idempotent(answer: str) -> None:
    once = normalize_answer(answer)
    assert normalize_answer(once) == once
    assert once == once.strip() and once == once.lower()


# -- the arithmetic evaluator and the derivation check --------------------------------------

_MATH_PIECES = st.sampled_from(
    [
        "1",
        "2",
        "12",
        "3.5",
        ".5",
        "1,000",
        "10^15",
        "9",
        " ",
        "\n",
        "+",
        "-",
        "−",
        "*",
        "×",
        "/",
        "÷",
        "^",
        "**",
        "²",
        "%",
        "(",
        ")",
        "=",
        "==",
        "≈",
        "$",
        "\\frac{",
        "\\times",
        "\\div",
        "\\cdot",
        "{",
        "}",
        "\\left(",
        "\\right)",
        "of",
        "x",
        "times",
        "divided by",
        "cm",
        "2024-01-15",
        "3:45",
        "\\boxed{",
        "\\\\",
        "&=",
        ",",
        ".",
        ":",
    ]
)
MATH_TEXT = st.one_of(st.text(max_size=300), st.lists(_MATH_PIECES, max_size=120).map("".join))


@settings(max_examples=300, deadline=timedelta(seconds=2))
@given(MATH_TEXT)
@example("(" * 500 + "1" + ")" * 500 + " = 1")
@example("9^9^9^9^9 = 1")
@example("2 ** 64 ** 64 = 3")
@example("1/0 = 0 = 0/0")
@example("= " * 2000)
def test_arith_is_total_and_bounded(text: str) -> None:
    for chain in find_chains(text):
        assert len(chain.sides) >= 2
        for side in chain.sides:
            assert 0 <= side.start < side.end <= len(text)
    read_value(text)
    assert 0 <= scan_size(text) <= len(text)


@settings(max_examples=200, deadline=timedelta(seconds=2))
@given(MATH_TEXT, st.one_of(st.none(), MATH_TEXT))
def test_derivation_check_is_total(text: str, answer: str | None) -> None:
    finding = analyze("p", 0, text, split_steps(text), answer)
    assert finding.status in STATUSES
    assert finding.arithmetic_errors <= len(finding.equations)


# -- verification (math-verify runs in a worker with a hard deadline) -------------------------

VERIFY_TIMEOUT_S = 2.0
WORKER_RESTART_S = 20.0
"""A call that timed out replaces the worker; the next call may wait for it to start."""


@settings(
    max_examples=25,
    deadline=None,  # bounded below, with room for a worker restart
    suppress_health_check=[HealthCheck.too_slow],
)
@given(gold=st.one_of(st.just("42"), MATH_TEXT), pred=MATH_TEXT)
@example(gold="42", pred="9^9^9^9^9")
@example(gold="10000000!", pred="10000000!")
@example(gold="\\frac{1}{0}", pred="\\infty")
def test_verify_never_raises_and_respects_its_timeout(gold: str, pred: str) -> None:
    assume(gold.strip())
    problem = Problem(id="p", question="?", answer=gold, domain="math")
    start = time.perf_counter()
    result = verify(problem, pred, timeout_s=VERIFY_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    assert isinstance(result, Verification)
    assert result.method in {"math_verify", "exact"}
    assert not (result.correct and result.error)
    assert elapsed < VERIFY_TIMEOUT_S + WORKER_RESTART_S
