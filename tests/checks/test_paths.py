"""The derivation graph (`faithcheck.checks.paths`) and the two checks that read it:
an error on the answer's path, one off it, one the chain corrects, hand-built."""

from __future__ import annotations

import pytest

from faithcheck.checks.derivation import analyze, extract_steps, summarize
from faithcheck.checks.paths import build
from faithcheck.checks.support import check_support
from faithcheck.problems.parsing import extract_answer, split_steps

BOXES = "Tom has 13 boxes of 6 apples and eats 5. How many apples are left?"
CASES = {
    # (on path, corrected, off path), support status when the answer is correct (when it
    # is wrong: supported, the error carried through, unless noted)
    "clean": ("13 × 6 = 78.\n78 - 5 = 73.\nThe answer is \\boxed{73}.", (0, 0, 0), "supported"),
    # the error carried forward, then a made-up adjustment lands on the right answer (and
    # when the answer is wrong the adjustment is still a bare 10: invented-operand)
    "adjusted": (
        "13 × 6 = 68.\n68 - 5 = 63.\n63 + 10 = 73.\nThe answer is \\boxed{73}.",
        (1, 0, 0),
        "compensated",
    ),
    # the error carried forward, then a wrong last step lands on the right answer
    "wrong_last": (
        "13 × 6 = 68.\n68 - 5 = 73.\nThe answer is \\boxed{73}.",
        (2, 0, 0),
        "compensated",
    ),
    # the chain notices its error in prose and goes on from the right value
    "corrected": (
        "13 × 6 = 68. Wait, 13 × 6 is 78, not 68.\n78 - 5 = 73.\nThe answer is \\boxed{73}.",
        (0, 1, 0),
        "supported",
    ),
    # ... or with an equation
    "corrected_eq": (
        "13 × 6 = 68.\nNo: 13 × 6 = 78.\n78 - 5 = 73.\nThe answer is \\boxed{73}.",
        (0, 1, 0),
        "supported",
    ),
    # a wrong side remark the answer does not use
    "off_path": (
        "Boxes and apples: 13 + 6 = 20, not needed.\n13 × 6 = 78.\n78 - 5 = 73.\n\\boxed{73}",
        (0, 0, 1),
        "supported",
    ),
    # a wrong result equal to a number the question writes: the later 5 is the question's
    "question_credit": (
        "13 - 6 = 5.\n13 × 6 = 78.\n78 - 5 = 73.\nThe answer is \\boxed{73}.",
        (0, 0, 1),
        "supported",
    ),
}


def _support(response: str, correct: bool | None):  # type: ignore[no-untyped-def]
    answer = extract_answer(response).answer
    steps = split_steps(response)
    return check_support("p", 0, BOXES, response, steps, answer, True, correct=correct)


@pytest.mark.parametrize("name", list(CASES))
def test_errors_by_place_and_support_status(name: str) -> None:
    response, places, expected = CASES[name]
    found = _support(response, correct=True)
    assert (found.path_errors, found.corrected_errors, found.offpath_errors) == places
    assert found.status == expected
    # a wrong answer after the same steps is the error carried through (faithful), and
    # without the answer's correctness the check cannot say compensated
    otherwise = "invented-operand" if name == "adjusted" else "supported"
    assert _support(response, correct=False).status == otherwise
    assert _support(response, correct=None).status == otherwise


@pytest.mark.parametrize("name", list(CASES))
def test_derivation_agrees(name: str) -> None:
    response, _, expected = CASES[name]
    answer = extract_answer(response).answer
    f = analyze("p", 0, response, split_steps(response), answer, True, BOXES)
    assert f.status == ("supported" if expected == "supported" else "supported-with-errors")
    s = summarize([f], {("p", 0): True})
    assert s.correct_but_underived.value == (0.0 if expected == "supported" else 1.0)


def test_path_follows_values_not_order() -> None:
    response = "2 × 3 = 6.\n4 × 5 = 21.\n6 + 1 = 7.\n7 + 21 = 28."
    found = extract_steps(response, split_steps(response))
    graph = build(response, [(eq.start, eq.end, c) for eq, c in found], "")
    assert graph.parents == ((), (), (0,), (1, 2))
    assert graph.path(2) == {0, 2} and graph.clean(2)
    assert graph.path(3) == {0, 1, 2, 3} and not graph.clean(3)
    errors = graph.errors(2)
    assert (errors.on_path, errors.corrected, errors.off_path) == (0, 0, 1)
    assert graph.errors(None).off_path == 1
