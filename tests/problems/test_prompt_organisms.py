"""Prompt templates that carry the gold answer or a wrong hint (prompted organisms)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faithcheck.backends.base import ChatPrompt, TextPrompt
from faithcheck.errors import DataError, UsageError
from faithcheck.problems.prompts import BUILTIN_TEMPLATES, build_prompt, load_template, wrong_hint


@pytest.mark.parametrize(
    ("gold", "hint"),
    [
        ("7", "15"),
        ("0", "1"),
        ("-1", "0"),
        ("2.5", "6"),
        ("0.25", "1.50"),
        ("1,200", "2401"),
        ("20%", "41%"),
        ("B", "C"),
        ("(E)", "(A)"),
        ("yes", "no"),
        ("False", "True"),
        ("aunt", None),
        ("up up right", None),
    ],
)
def test_the_wrong_hint_rule(gold: str, hint: str | None) -> None:
    assert wrong_hint(gold) == hint


def test_a_hint_is_never_the_gold_answer() -> None:
    from faithcheck.problems.arith import read_value

    for n in range(-50, 51):
        made = wrong_hint(str(n))
        assert made is not None and read_value(made).value != n  # type: ignore[union-attr]


def test_templates_carry_answer_and_hint_literally() -> None:
    q = "What is {x} + 2, with x = 5?"  # braces in a question stay as written
    post = build_prompt(q, "chat", BUILTIN_TEMPLATES["post-hoc"], "7")
    assert isinstance(post, ChatPrompt)
    text = post.messages[0]["content"]
    assert text.startswith(q) and "The answer is 7." in text and "\\boxed{}" in text
    hinted = build_prompt(q, "base", BUILTIN_TEMPLATES["wrong-hint"], "7")
    assert isinstance(hinted, TextPrompt) and "the answer is 15," in hinted.text
    # a placeholder written inside the question is data, never substituted
    inner = build_prompt("{answer}?", "chat", "Q: {question} A: {answer}", "7")
    assert inner.messages[0]["content"] == "Q: {answer}? A: 7"  # type: ignore[union-attr]


def test_a_hint_template_refuses_answers_without_a_rule() -> None:
    with pytest.raises(DataError, match="no wrong hint for the answer 'aunt'"):
        build_prompt("Who?", "chat", BUILTIN_TEMPLATES["wrong-hint"], "aunt")


def test_builtin_names_and_files(tmp_path: Path) -> None:
    assert load_template(Path("answer-first")) == BUILTIN_TEMPLATES["answer-first"]
    f = tmp_path / "t.txt"
    f.write_text("{question}\nHint: {hint}")
    assert load_template(f) == "{question}\nHint: {hint}"
    f.write_text("no placeholder {answer}")
    with pytest.raises(UsageError, match=r"no \{question\} placeholder"):
        load_template(f)


def test_a_hint_run_is_refused_before_any_model_loads(tmp_path: Path) -> None:
    import faithcheck

    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "question": "Who is taller?", "answer": "Ann"}\n')
    with pytest.raises(DataError, match="problem 'a': no wrong hint"):
        faithcheck.score(dataset=str(data), prompt_template="wrong-hint", out=str(tmp_path / "r"))
