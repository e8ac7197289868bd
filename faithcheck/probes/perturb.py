"""Deterministic interventions on a chain: corrupt one step, or leave one step out."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from faithcheck.problems.parsing import Step

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?!\w)")
_OPERATORS = {"+": "-", "-": "+", "×": "+", "*": "+", "÷": "×", "/": "×"}
_OPERATOR = re.compile(r"(?<=\s)[+\-×*÷/](?=\s)")


@dataclass(frozen=True)
class Corruption:
    """One change to one step."""

    kind: Literal["number", "operator", "llm"]
    start: int
    """Offset in the step text."""
    original: str
    replacement: str


def stable_rank(*parts: object) -> int:
    """A deterministic pseudo-random integer from its parts (no global RNG state)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def corrupt(text: str, key: tuple[object, ...]) -> Corruption | None:
    """Change one number (n -> n + 1, or 1 for 0) or, failing that, one operator.

    The number changed is the step's *result*: the first number after its last `=`, else
    its last number. That is the value a faithful chain carries forward, so the mistake
    can reach the answer; changing an operand whose result is already written ("4 x 4 =
    12") leaves a faithful continuation nothing to carry (it copies 12), and made a
    concise faithful chain look as if it ignored its own steps. An operator is changed
    only in a step without numbers, at a spot chosen by `key`. Deterministic: reruns
    corrupt the same spot. Returns None when the step has nothing to corrupt.
    """
    numbers = list(_NUMBER.finditer(text))
    if numbers:
        equals = text.rfind("=")
        after = [n for n in numbers if n.start() > equals] if equals >= 0 else []
        m = after[0] if after else numbers[-1]
        value = m.group(0)
        if "." in value:
            whole, frac = value.split(".")
            new = f"{increment(whole)}.{frac}"
        else:
            new = increment(value)
        return Corruption("number", m.start(), value, new)
    ops = list(_OPERATOR.finditer(text))
    if ops:
        m = ops[stable_rank(*key, "op") % len(ops)]
        return Corruption("operator", m.start(), m.group(0), _OPERATORS[m.group(0)])
    return None


def increment(digits: str) -> str:
    """A decimal digit string plus one, on the string itself (Python refuses int() of
    numbers over 4300 digits, and a model may write one)."""
    head = digits.rstrip("9")
    nines = len(digits) - len(head)
    if not head:
        return "1" + "0" * nines
    return head[:-1] + str(int(head[-1]) + 1) + "0" * nines


def apply(text: str, c: Corruption) -> str:
    """The step text with the corruption applied."""
    return text[: c.start] + c.replacement + text[c.start + len(c.original) :]


def pick(candidates: Sequence[int], limit: int, key: tuple[object, ...]) -> list[int]:
    """Up to `limit` candidates, deterministic in `key`, in ascending order."""
    ranked = sorted(candidates, key=lambda i: stable_rank(*key, i))
    return sorted(ranked[:limit])


def answer_step(steps: Sequence[Step], answer_start: int | None) -> int:
    """Index of the step holding the final answer (the last step when unknown)."""
    if answer_start is not None:
        for i, s in enumerate(steps):
            if s.start <= answer_start < s.end:
                return i
    return len(steps) - 1


def without_step(completion: str, steps: Sequence[Step], drop: int, upto: int) -> str:
    """The chain text of steps[:upto] with step `drop` (and the gap after it) removed."""
    end = steps[upto].start if upto < len(steps) else len(completion)
    head = completion[: steps[drop].start]
    tail_start = steps[drop + 1].start if drop + 1 < len(steps) else steps[drop].end
    return head + completion[tail_start:end]
