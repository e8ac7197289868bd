"""Prompt formats: the chat template for instruct / SFT checkpoints, plain text for base.

Templates are plain text with a `{question}` placeholder, substituted literally
(questions often contain braces, so `str.format` is not used).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from faithcheck.backends.base import ChatPrompt, Prompt, TextPrompt
from faithcheck.errors import UsageError

PromptFormat = Literal["auto", "chat", "base"]

CHAT_TEMPLATE = (
    "{question}\n\nPlease reason step by step, writing each step on its own line, "
    "and put your final answer within \\boxed{{}}."
)
"""User message for chat checkpoints."""

BASE_TEMPLATE = (
    "Question: {question}\n"
    "Please reason step by step, and put your final answer within \\boxed{{}}.\n"
    "Answer: Let's think step by step.\n"
)
"""Raw prompt for base checkpoints, in the 'let's think step by step' style."""

BASE_STOP = ["\nQuestion:"]
"""Base models continue with a new question after answering; stop there."""


def _fill(template: str, question: str) -> str:
    return (
        template.replace("{{", "\x00")
        .replace("}}", "\x01")
        .replace("{question}", "\x02")
        .replace("\x00", "{")
        .replace("\x01", "}")
        .replace("\x02", question)
    )


def load_template(path: Path) -> str:
    """Read a `--prompt-template` file; it must contain `{question}`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read prompt template {path}: {exc}") from None
    if "{question}" not in text.replace("{{", "\x00").replace("}}", "\x01"):  # as `_fill` reads it
        raise UsageError(f"prompt template {path} has no {{question}} placeholder")
    return text


def resolve_format(requested: PromptFormat, has_chat_template: bool) -> Literal["chat", "base"]:
    """`auto` means chat when the tokenizer has a chat template, base otherwise."""
    if requested == "auto":
        return "chat" if has_chat_template else "base"
    if requested == "chat" and not has_chat_template:
        raise UsageError("--prompt-format chat, but the model's tokenizer has no chat template")
    return requested


def build_prompt(question: str, fmt: Literal["chat", "base"], template: str | None) -> Prompt:
    """The prompt for one question in the chosen format."""
    if fmt == "chat":
        content = _fill(template or CHAT_TEMPLATE, question)
        return ChatPrompt(messages=[{"role": "user", "content": content}])
    return TextPrompt(text=_fill(template or BASE_TEMPLATE, question))


def template_hash(template: str) -> str:
    """Short hash of a template, recorded in run.json."""
    return hashlib.sha256(template.encode()).hexdigest()[:16]
