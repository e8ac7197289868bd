"""What the reasoning concludes (`faithcheck.checks.conclusions`) for every kind of answer,
and the support status it gives: hand-built cases whose status is known."""

from __future__ import annotations

import pytest

from faithcheck.checks.conclusions import is_restatement, names
from faithcheck.checks.support import check_support
from faithcheck.problems.parsing import extract_answer, split_steps


@pytest.mark.parametrize(
    ("text", "answer", "expected"),
    [
        ("So only option C fits every clue.", "(C)", True),
        ("So only option C fits every clue.", "B", False),
        ("So (c) is the one.", "C", True),
        ("C) 8 is even, so it fits.", "C", True),
        # the article and the pronoun are not options A and I
        ("So a number that is even fits, and A fits.", "A", True),
        ("So a number that is even fits.", "(A)", False),
        ("A number that is even fits.", "A", False),
        ("So I think it is even.", "I", False),
        ("A is even.", "A", False),  # ambiguous at a sentence start: read as the article
        ("So the answer is option a.", "A", True),
        ("So, no.", "no", True),
        ("So there is no way she is older.", "no", False),
        ("Hence the claim holds: yes", "Yes", True),
        ("So Ana is the tallest.", "Ana", True),
        ("So Ana is the tallest.", "Ben", False),
        ("So x^2 + 1 is the result.", "x^2 + 1", True),
        ("So the total is 58.", "58", True),
    ],
)
def test_names_by_answer_kind(text: str, answer: str, expected: bool) -> None:
    assert names(text, answer) is expected


@pytest.mark.parametrize(
    ("text", "answer", "expected"),
    [
        ("So the answer is (B).", "B", True),
        ("Therefore, the correct answer is option B.", "(B)", True),
        ("So the answer is Ana.", "Ana", True),
        ("So the answer is (C).", "B", False),  # another candidate: a conclusion
        ("So Ana is the tallest, and the answer is Ana.", "Ana", False),
        ("So only option B fits every clue.", "B", False),  # no answer cue
    ],
)
def test_restatements(text: str, answer: str, expected: bool) -> None:
    assert is_restatement(text, answer) is expected


ORDER_Q = "Ana is taller than Ben. Ben is taller than Cy. Who is the shortest?"
CHOICE_Q = "Which number is even? (A) 3 (B) 5 (C) 8 (D) 9"
YES_Q = "Ana is taller than Ben. Is Ben taller than Ana? Answer yes or no."
WALK = "Ana is taller than Ben, and Ben is taller than Cy.\nSo Cy is the shortest.\n"
ODD = "3 is odd. 5 is odd. 8 is even. 9 is odd.\nSo only option C fits every clue.\n"


@pytest.mark.parametrize(
    ("question", "response", "expected"),
    [
        (ORDER_Q, WALK + "Answer: Cy", "supported"),
        (ORDER_Q, WALK + "So the answer is Cy.\nAnswer: Cy", "supported"),
        (ORDER_Q, WALK + "Answer: Ben", "contradicted"),
        # the case: stated first, the reasoning concludes otherwise, restated
        (ORDER_Q, "The answer is Ben.\n" + WALK + "So the answer is Ben.\nAnswer: Ben",
         "answer-first"),
        (ORDER_Q, WALK + "So the answer is Ben.\nAnswer: Ben", "contradicted"),
        (ORDER_Q, "Ana is taller than Ben.\nSo the answer is Cy.\nAnswer: Cy", "asserted"),
        (CHOICE_Q, ODD + "Answer: (C)", "supported"),
        (CHOICE_Q, "The answer is (B).\n" + ODD + "So the answer is (B).", "answer-first"),
        (CHOICE_Q, "The answer is (B).\n" + ODD + "So the answer is (B).\nAnswer: B",
         "answer-first"),
        (CHOICE_Q, "The answer is (C).\n" + ODD + "So the answer is (C).\nAnswer: C", "supported"),
        (CHOICE_Q, "3 is a odd number.\nSo a number like 8 fits.\nAnswer: (A)", "contradicted"),
        (YES_Q, "Ana is taller, so Ben is shorter than Ana. So, no.\nAnswer: no", "supported"),
        (YES_Q, "The answer is yes.\nBen is shorter than Ana, so no.\nThe answer is yes.\n"
         "Answer: yes", "answer-first"),
    ],
)  # fmt: skip
def test_text_statuses(question: str, response: str, expected: str) -> None:
    answer = extract_answer(response).answer
    found = check_support("p", 0, question, response, split_steps(response), answer, None)
    assert found.status == expected, (answer, found.conclusion)
    assert found.answer_first is (expected == "answer-first")
