"""Tests for prompt construction (`faithcheck.problems.prompts`) and per-request seeds.

Prompts: chat vs base shapes, literal brace handling, custom templates and their
validation, and prompt-format resolution. Seeds: `sampling.request_seed` is a stable
31-bit function of the run seed and the problem id.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faithcheck.backends.base import ChatPrompt, TextPrompt
from faithcheck.errors import UsageError
from faithcheck.problems.prompts import (
    BASE_TEMPLATE,
    CHAT_TEMPLATE,
    build_prompt,
    load_template,
    resolve_format,
)
from faithcheck.sampling import request_seed

QUESTION = "What is 6 * 7?"

# --- build_prompt --------------------------------------------------------------------------


def test_chat_prompt_is_one_user_message() -> None:
    prompt = build_prompt(QUESTION, "chat", None)
    assert isinstance(prompt, ChatPrompt)
    assert len(prompt.messages) == 1
    assert prompt.messages[0]["role"] == "user"
    content = prompt.messages[0]["content"]
    assert content.startswith(QUESTION + "\n\n")
    # An empty box: a placeholder word in it gets copied by small models as their answer.
    assert content.endswith("within \\boxed{}.")
    assert "{question}" not in content


def test_base_prompt_is_plain_text() -> None:
    prompt = build_prompt(QUESTION, "base", None)
    assert isinstance(prompt, TextPrompt)
    assert prompt.text.startswith(f"Question: {QUESTION}\n")
    assert prompt.text.endswith("Answer: Let's think step by step.\n")
    assert "within \\boxed{}." in prompt.text


@pytest.mark.parametrize(
    "question",
    [
        "What is {x}?",
        "Evaluate \\frac{1}{2} + {{y}}",
        "Set {question} = 3; what is it?",
        "Unbalanced } and { braces",
    ],
)
@pytest.mark.parametrize("fmt", ["chat", "base"])
def test_question_braces_survive_verbatim(question: str, fmt: str) -> None:
    prompt = build_prompt(question, fmt, None)  # type: ignore[arg-type]
    text = prompt.messages[0]["content"] if isinstance(prompt, ChatPrompt) else prompt.text
    template = CHAT_TEMPLATE if fmt == "chat" else BASE_TEMPLATE
    before, after = template.replace("{{", "{").replace("}}", "}").split("{question}")
    assert text == before + question + after


@pytest.mark.parametrize("fmt", ["chat", "base"])
def test_custom_template_is_substituted(fmt: str) -> None:
    template = "Q: {question}\nPut it in \\boxed{{}} please. {question}!"
    prompt = build_prompt("2+2", fmt, template)  # type: ignore[arg-type]
    text = prompt.messages[0]["content"] if isinstance(prompt, ChatPrompt) else prompt.text
    assert text == "Q: 2+2\nPut it in \\boxed{} please. 2+2!"


def test_custom_template_keeps_single_braces() -> None:
    prompt = build_prompt("x", "base", "{question} in \\boxed{} form")
    assert isinstance(prompt, TextPrompt)
    assert prompt.text == "x in \\boxed{} form"


# --- load_template -------------------------------------------------------------------------


def test_load_template_returns_the_text(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("Solve: {question}\n", encoding="utf-8")
    assert load_template(path) == "Solve: {question}\n"


@pytest.mark.parametrize("text", ["no placeholder here", "{Question}", "{ question }", ""])
def test_load_template_without_placeholder(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=r"no \{question\} placeholder"):
        load_template(path)


def test_load_template_rejects_escaped_placeholder_only(tmp_path: Path) -> None:
    """'{{question}}' is a literal '{question}' after filling: the question never arrives."""
    path = tmp_path / "t.txt"
    path.write_text("Solve {{question}} now", encoding="utf-8")
    with pytest.raises(UsageError, match=r"no \{question\} placeholder"):
        load_template(path)


@pytest.mark.parametrize(
    "text", ["{{question}} and {question}", "{{}}{question}", "\\boxed{{}}: {question}"]
)
def test_load_template_accepts_a_real_placeholder_next_to_escapes(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    template = load_template(path)
    prompt = build_prompt(QUESTION, "base", template)
    assert isinstance(prompt, TextPrompt)
    assert QUESTION in prompt.text


@pytest.mark.parametrize("text", ["Solve {{{question}}} now", "Q: {question}}}"])
def test_an_accepted_template_always_receives_the_question(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    try:
        template = load_template(path)
    except UsageError:
        return  # rejecting it is fine too; accepting it and dropping the question is not
    prompt = build_prompt(QUESTION, "base", template)
    assert isinstance(prompt, TextPrompt)
    assert QUESTION in prompt.text


def test_load_template_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read prompt template"):
        load_template(tmp_path / "absent.txt")


def test_load_template_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(b"caf\xe9 {question}")
    with pytest.raises(UsageError, match="cannot read prompt template"):
        load_template(path)


# --- resolve_format ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "has_chat_template", "expected"),
    [
        ("auto", True, "chat"),
        ("auto", False, "base"),
        ("chat", True, "chat"),
        ("base", True, "base"),
        ("base", False, "base"),
    ],
)
def test_resolve_format(requested: str, has_chat_template: bool, expected: str) -> None:
    assert resolve_format(requested, has_chat_template) == expected  # type: ignore[arg-type]


def test_chat_without_chat_template_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no chat template"):
        resolve_format("chat", False)


# --- request_seed --------------------------------------------------------------------------


def test_request_seed_is_deterministic() -> None:
    assert request_seed(0, "math-001") == request_seed(0, "math-001")


@pytest.mark.parametrize(("run_seed", "expected"), [(0, 538070422), (7, 556960707)])
def test_request_seed_pinned_values(run_seed: int, expected: int) -> None:
    """Changing the derivation silently changes every sample of every run; this pins it."""
    assert request_seed(run_seed, "math-001") == expected


def test_request_seed_differs_across_problems_and_run_seeds() -> None:
    ids = [f"p{i}" for i in range(200)]
    assert len({request_seed(0, pid) for pid in ids}) == len(ids)
    assert len({request_seed(s, "p0") for s in range(200)}) == 200


@pytest.mark.parametrize("run_seed", [0, 1, -1, 2**40, 123456789])
def test_request_seed_fits_in_31_bits(run_seed: int) -> None:
    seeds = [request_seed(run_seed, f"id-{i}") for i in range(300)]
    assert all(0 <= s < 2**31 for s in seeds)
    assert max(seeds) >= 2**30  # the top bit of the 31 is actually used
