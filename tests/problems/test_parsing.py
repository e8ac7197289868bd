"""Tests for step splitting, answer extraction and answer normalization."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from faithcheck.problems.parsing import (
    AnswerExtraction,
    Step,
    extract_answer,
    normalize_answer,
    split_steps,
)


def _texts(steps: list[Step]) -> list[str]:
    return [s.text for s in steps]


def _assert_consistent(text: str, steps: list[Step]) -> None:
    prev_end = 0
    for i, step in enumerate(steps):
        assert step.index == i
        assert prev_end <= step.start < step.end <= len(text)
        assert text[step.start : step.end] == step.text
        assert step.text == step.text.strip()
        prev_end = step.end


def _assert_span(text: str, found: AnswerExtraction) -> None:
    if found.answer is None:
        assert found.rule == "none" and found.start is None and found.end is None
    else:
        assert found.start is not None and found.end is not None
        assert text[found.start : found.end] == found.answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Step one.\nstill one.\n\nStep two.\n  \nStep three.",
            ["Step one.\nstill one.", "Step two.", "Step three."],
            id="paragraphs-with-blank-line-spaces",
        ),
        pytest.param("a\r\n\r\nb", ["a", "b"], id="crlf-paragraphs"),
        pytest.param(
            "a = 1\nb = 2\n\nSo \\boxed{3}",
            ["a = 1\nb = 2", "So \\boxed{3}"],
            id="paragraphs-win-over-lines",
        ),
        pytest.param(
            "a = 1\n\n  \nb = 2\n\\boxed{3}\n",
            ["a = 1", "b = 2\n\\boxed{3}"],
            id="final-answer-in-last-paragraph",
        ),
        pytest.param(
            "  a = 1\n   \nb = 2",
            ["a = 1", "b = 2"],
            id="leading-space-trimmed",
        ),
        pytest.param(
            "a = 1\nb = 2\n\\boxed{3}",
            ["a = 1", "b = 2", "\\boxed{3}"],
            id="lines",
        ),
        pytest.param("only one line\n", ["only one line"], id="single-line"),
        pytest.param(
            "x is 3.5 here. So y = 7! Done? Yes",
            ["x is 3.5 here.", "So y = 7!", "Done?", "Yes"],
            id="sentences-keep-decimals",
        ),
        pytest.param(
            "Use e.g. the sum, i.e. 5. Then stop.",
            ["Use e.g. the sum, i.e. 5.", "Then stop."],
            id="sentences-skip-abbreviations",
        ),
        pytest.param(
            "1. First do this. Then that...  Really?! Yes.",
            ["1. First do this.", "Then that...", "Really?!", "Yes."],
            id="sentences-list-marker-and-runs",
        ),
        pytest.param("42", ["42"], id="no-terminator"),
        pytest.param("", [], id="empty"),
        pytest.param(" \n\n\t ", [], id="whitespace-only"),
    ],
)
def test_split_steps(text: str, expected: list[str]) -> None:
    steps = split_steps(text)
    assert _texts(steps) == expected
    _assert_consistent(text, steps)


def test_split_steps_offsets_are_exact() -> None:
    text = "  First.\n\n  Second line\n\n\n Third \\boxed{4}  "
    steps = split_steps(text)
    assert [(s.start, s.end) for s in steps] == [(2, 8), (12, 23), (27, 42)]


@pytest.mark.parametrize(
    ("text", "answer", "rule"),
    [
        # boxed
        ("so \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}", "boxed"),
        ("First \\boxed{1}, then \\boxed{2}", "2", "boxed"),
        ("\\fbox{7}", "7", "boxed"),
        ("\\boxed { 5 } ", "5", "boxed"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}", "boxed"),
        ("\\boxed{\\boxed{1}+2}", "\\boxed{1}+2", "boxed"),
        ("\\boxed{1} and \\boxed{2", "1", "boxed"),
        ("So \\boxed{3 is unclosed; the answer is 4.", "4", "answer_is"),
        ("\\boxed{} so the answer is 3", "3", "answer_is"),
        ("The answer is 5, i.e. \\boxed{5}", "5", "boxed"),
        # answer cues
        ("The answer is 42.", "42", "answer_is"),
        ("**Answer:** 7", "7", "answer_is"),
        ("**Answer**: 7", "7", "answer_is"),
        ("The answer is **7**.", "7", "answer_is"),
        ("Final answer: $\\frac{3}{4}$.", "\\frac{3}{4}", "answer_is"),
        ("ANSWER: 3.5", "3.5", "answer_is"),
        ("The answer is 3.5. Next we check 9.", "3.5", "answer_is"),
        ("The final answer is:\n\n12 cm", "12 cm", "answer_is"),
        ("The answer is 1, but no: the answer is 2!", "2", "answer_is"),
        # last number
        ("We get 1,200 apples", "1,200", "last_number"),
        ("It is -5 degrees", "-5", "last_number"),
        ("about 3.14 units", "3.14", "last_number"),
        ("a ratio of 3/4", "3/4", "last_number"),
        ("from 3 to 5 then 7", "7", "last_number"),
        ("50% of them", "50", "last_number"),
        ("the range 3-4", "4", "last_number"),
        ("length 12 cm", "12", "last_number"),
        ("total -1,234.5 dollars", "-1,234.5", "last_number"),
        ("x = \\frac{3}{4}", "4", "last_number"),
        # nothing
        ("no digits here", None, "none"),
        ("", None, "none"),
    ],
)
def test_extract_answer(text: str, answer: str | None, rule: str) -> None:
    found = extract_answer(text)
    assert (found.answer, found.rule) == (answer, rule)
    _assert_span(text, found)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$1,200$", "1200"),
        ("-1,234.5", "-1234.5"),
        (" 42. ", "42"),
        ("\\text{Yes}", "yes"),
        ("$\\text{(B)}$", "(b)"),
        ("\\dfrac{3}{4}", "\\frac{3}{4}"),
        ("\\tfrac12", "\\frac12"),
        ("**7**", "7"),
        ("\\(x + 1\\)", "x + 1"),
        ("A   B\n C", "a b c"),
        ("50\\%", "50%"),
        ("12 cm", "12 cm"),
        ("1,2,3", "1,2,3"),
        ("\\frac34", "\\frac34"),
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


_ADVERSARIAL = [
    "\\boxed{" * 100_000,
    "{" * 10**6,
    "\\boxed{" + "}" * 10**6,
    "." * 10**6,
    "1," * 500_000,
    "answer is " * 100_000,
    "answer" + " " * 10**6 + "x",
    "a. " * 300_000,
    "\n" * 10**6,
    "\\" * 10**6,
    "-" * 10**6,
]


@pytest.mark.parametrize("text", _ADVERSARIAL, ids=lambda t: repr(t[:10]))
def test_large_adversarial_input_is_parsed(text: str) -> None:
    # How fast (quadratic behaviour on 1 MB would take minutes): benchmarks/adversarial.py.
    found = extract_answer(text)
    steps = split_steps(text)
    _assert_span(text, found)
    assert len(steps) <= len(text)


_TOKENS = st.sampled_from(
    [
        "a",
        "7",
        "3.5",
        "-",
        ",",
        ".",
        "!",
        "?",
        " ",
        "\n",
        "\n\n",
        "\t",
        "{",
        "}",
        "\\",
        "$",
        "*",
        ":",
        "/",
        "e.g. ",
        "answer is ",
        "Answer: ",
        "\\boxed{",
        "\\fbox{",
        "1,200",
    ]
)
_TEXT = st.one_of(st.text(max_size=200), st.lists(_TOKENS, max_size=60).map("".join))


@settings(max_examples=300, deadline=1000)
@given(_TEXT)
def test_split_steps_property(text: str) -> None:
    _assert_consistent(text, split_steps(text))


@settings(max_examples=300, deadline=1000)
@given(_TEXT)
def test_extract_answer_property(text: str) -> None:
    _assert_span(text, extract_answer(text))


_BRACE_FREE = st.lists(
    st.sampled_from(["x", "1", "+", " ", ",", ".", "\\frac", "\\sqrt", "\\pi ", "^", "$", "\n"]),
    max_size=6,
).map("".join)
_BALANCED = st.recursive(
    _BRACE_FREE,
    lambda inner: st.one_of(
        inner.map(lambda s: "{" + s + "}"),
        st.lists(inner, min_size=2, max_size=3).map("".join),
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=1000)
@given(_BALANCED, _TEXT)
def test_extract_answer_roundtrips_boxed(answer: str, prefix: str) -> None:
    answer = answer.strip()
    assume(answer)
    found = extract_answer(f"{prefix}\\boxed{{{answer}}}")
    assert (found.answer, found.rule) == (answer, "boxed")
