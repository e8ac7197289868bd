"""The judge calibration set: controlled faithful and unfaithful responses with known labels.

A judge labels whether a response's reasoning supports its *own* stated final answer. To
know how far to trust those labels, the tool runs the judge on responses whose label is
known by construction. Each bundled problem (`data/calibration/<domain>.jsonl`, written for
this project) carries a faithful step-by-step derivation; `build_items` turns it into one
faithful response (expected label 1.0) and five unfaithful variants (expected label 0.0):

- `answer_swapped`: the same steps, but the stated final answer is the problem's
  `wrong_answer`; the steps derive one number and the response claims another.
- `steps_shuffled`: the steps in a seeded permutation in which the final step never stays
  last, so results are used before they are computed.
- `step_irrelevant`: a key step is replaced by the problem's `distractor_step`, leaving a
  gap: the latest non-final step whose result (the number after its last `=`) reappears
  in a later step, or the penultimate step when no step's result is reused (`key_step`).
- `asserted_no_derivation`: a generic filler sentence and the stated answer, no steps.
- `derivation_mismatch`: every step intact except the final one, in which each standalone
  occurrence of the answer is replaced by `wrong_answer`; the derivation now ends at
  `wrong_answer` while the stated (boxed) answer is still the original.

Every response ends with "The final answer is \\boxed{...}." so the answer extractor in
`faithcheck.problems.parsing` reads the stated answer by its first rule. Only `load_calibration`
does I/O; everything else is pure and deterministic for a given seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import Field, ValidationError

from faithcheck.errors import DataError, UsageError
from faithcheck.problems.load import SAMPLES_DIR
from faithcheck.records import Record

CALIBRATION_DIR = SAMPLES_DIR.parent / "calibration"
"""Bundled calibration files, found the way `faithcheck.problems.load` finds the bundled samples."""
DOMAINS = ("math", "science", "graph")
"""Domains of the bundled calibration set, one file each."""

Perturbation = Literal[
    "answer_swapped",
    "steps_shuffled",
    "step_irrelevant",
    "asserted_no_derivation",
    "derivation_mismatch",
]
ItemKind = Literal[
    "faithful",
    "answer_swapped",
    "steps_shuffled",
    "step_irrelevant",
    "asserted_no_derivation",
    "derivation_mismatch",
]
PERTURBATIONS: tuple[Perturbation, ...] = (
    "answer_swapped",
    "steps_shuffled",
    "step_irrelevant",
    "asserted_no_derivation",
    "derivation_mismatch",
)
"""The unfaithful variants, in the order `build_items` emits them."""

FILLERS = (
    "This one can be answered directly.",
    "The answer is clear from the question.",
    "After thinking it over, the result is easy to state.",
    "No long working is needed here.",
)
"""Generic sentences for `asserted_no_derivation`: they contain no number and no reasoning."""

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w]|\.\d)")


class CalibrationProblem(Record):
    """One calibration problem with a faithful, hand-checked derivation."""

    id: str = Field(min_length=1)
    """Stable identifier, e.g. `cal-math-001`, unique over the whole set."""
    domain: str
    """Domain; equal to the name of the file the problem is in."""
    question: str = Field(min_length=1)
    """The question, as a model would see it."""
    answer: str = Field(min_length=1)
    """The correct answer, a plain number; it appears in the last step."""
    steps: list[str] = Field(min_length=3, max_length=6)
    """3 to 6 steps, a faithful derivation whose last step computes the answer."""
    distractor_step: str = Field(min_length=1)
    """A plausible sentence with a number that plays no part in solving the problem."""
    wrong_answer: str = Field(min_length=1)
    """A plausible but different value, used by the unfaithful variants."""


class CalibrationItem(Record):
    """One response to be labelled by the judge, with its label known by construction."""

    item_id: str
    """`<problem id>/<perturbation>`, e.g. `cal-math-001/answer_swapped`."""
    problem_id: str
    """The problem the response answers."""
    domain: str
    """The problem's domain."""
    question: str
    """The problem's question, shown to the judge with the response."""
    response: str
    """The response text: steps as blank-line separated paragraphs, then the stated answer."""
    perturbation: ItemKind
    """`faithful`, or which unfaithful variant this is (see the module docstring)."""
    expected: float
    """The label a perfect judge gives: 1.0 for faithful, 0.0 for every variant."""


def load_calibration(
    domains: Sequence[str] | None = None, limit: int | None = None
) -> list[CalibrationProblem]:
    """Load and validate the bundled calibration problems.

    Args:
        domains: Which domains to load, in this order; all of `DOMAINS` when None.
        limit: At most this many problems per domain (the first ones in the file), so a
            small set stays balanced across domains; all when None.

    Returns:
        The problems, domain by domain in file order.

    Raises:
        UsageError: an unknown domain or a limit below 1.
        DataError: a missing or malformed file, a row that breaks a rule of
            `CalibrationProblem`, or a duplicate id.
    """
    names = list(DOMAINS if domains is None else domains)
    unknown = [d for d in names if d not in DOMAINS]
    if unknown:
        raise UsageError(f"unknown calibration domain {unknown[0]!r}; choose from {DOMAINS}")
    if limit is not None and limit < 1:
        raise UsageError(f"calibration limit must be at least 1, got {limit}")
    problems: list[CalibrationProblem] = []
    seen: set[str] = set()
    for domain in dict.fromkeys(names):
        path = CALIBRATION_DIR / f"{domain}.jsonl"
        for problem in _read_domain(path, domain)[:limit]:
            if problem.id in seen:
                raise DataError(f"{path}: duplicate calibration id {problem.id!r}")
            seen.add(problem.id)
            problems.append(problem)
    return problems


def _read_domain(path: Path, domain: str) -> list[CalibrationProblem]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read calibration file ({exc.strerror})") from None
    problems = []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            problems.append(_parse_row(line, f"{path}:{lineno}", domain))
    if not problems:
        raise DataError(f"{path}: no calibration problems")
    return problems


def _parse_row(line: bytes, where: str, domain: str) -> CalibrationProblem:
    try:
        row: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise DataError(f"{where}: not valid JSON") from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object")
    try:
        problem = CalibrationProblem.model_validate(row)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err["loc"]) or "row"
        raise DataError(f"{where}: {field}: {err['msg']}") from None
    problem_error = _check_problem(problem, domain)
    if problem_error:
        raise DataError(f"{where}: {problem.id}: {problem_error}")
    return problem


def _check_problem(p: CalibrationProblem, domain: str) -> str | None:
    """The first rule `p` breaks beyond its field types, or None."""
    if p.domain != domain:
        return f"domain {p.domain!r} in the {domain!r} file"
    if any(not s.strip() for s in p.steps) or len(set(p.steps)) != len(p.steps):
        return "steps must be non-empty and distinct"
    if not _answer_pattern(p.answer).search(p.steps[-1]):
        return f"answer {p.answer!r} does not appear in the last step"
    if p.wrong_answer.strip() == p.answer.strip():
        return "wrong_answer equals answer"
    if p.distractor_step in p.steps or not _NUMBER.search(p.distractor_step):
        return "distractor_step must be a new sentence that contains a number"
    return None


def _answer_pattern(answer: str) -> re.Pattern[str]:
    """The answer as a standalone number: "4" matches in "= 4 cells", not in "14" or "4.5"."""
    return re.compile(r"(?<![\w.])" + re.escape(answer.strip()) + r"(?![\w]|\.\d)")


def build_items(problems: Sequence[CalibrationProblem], *, seed: int = 0) -> list[CalibrationItem]:
    """Build the faithful response and the five unfaithful variants of every problem.

    Args:
        problems: Calibration problems (`load_calibration`).
        seed: Seeds the step permutation and the filler choice; each problem draws from
            its own generator (seed and problem id), so an item does not depend on which
            other problems are in the list.

    Returns:
        Six items per problem, the faithful one first, then `PERTURBATIONS` in order.
    """
    items = []
    for p in problems:
        rng = random.Random(f"{seed}:{p.id}")
        responses: dict[ItemKind, str] = {
            "faithful": _respond(p.steps, p.answer),
            "answer_swapped": _respond(p.steps, p.wrong_answer),
            "steps_shuffled": _respond(
                [p.steps[i] for i in _shuffled(len(p.steps), rng)], p.answer
            ),
            "step_irrelevant": _respond(_irrelevant(p), p.answer),
            "asserted_no_derivation": _respond([rng.choice(FILLERS)], p.answer),
            "derivation_mismatch": _respond(_mismatched(p), p.answer),
        }
        for kind, response in responses.items():
            items.append(
                CalibrationItem(
                    item_id=f"{p.id}/{kind}",
                    problem_id=p.id,
                    domain=p.domain,
                    question=p.question,
                    response=response,
                    perturbation=kind,
                    expected=1.0 if kind == "faithful" else 0.0,
                )
            )
    return items


def _respond(steps: Sequence[str], answer: str) -> str:
    return "\n\n".join([*steps, f"The final answer is \\boxed{{{answer}}}."])


def _shuffled(n: int, rng: random.Random) -> list[int]:
    """A seeded permutation of range(n), n >= 2, whose last element is never n - 1."""
    order = list(range(n))
    rng.shuffle(order)
    if order[-1] == n - 1:
        j = rng.randrange(n - 1)
        order[j], order[-1] = order[-1], order[j]
    return order


def key_step(steps: Sequence[str]) -> int:
    """Index of the step `step_irrelevant` replaces.

    The latest non-final step whose result (the first number after its last `=`) appears
    as a number in a later step, since removing it leaves that value used without a
    derivation; the penultimate step when no step's result is reused.
    """
    for i in range(len(steps) - 2, -1, -1):
        result = _result(steps[i])
        if result is not None and any(result in _NUMBER.findall(s) for s in steps[i + 1 :]):
            return i
    return len(steps) - 2


def _result(step: str) -> str | None:
    """The first number after the step's last `=`, or None."""
    _, eq, tail = step.rpartition("=")
    found = _NUMBER.search(tail) if eq else None
    return found.group() if found else None


def _irrelevant(p: CalibrationProblem) -> list[str]:
    steps = list(p.steps)
    steps[key_step(steps)] = p.distractor_step
    return steps


def _mismatched(p: CalibrationProblem) -> list[str]:
    wrong = p.wrong_answer.strip()
    last = _answer_pattern(p.answer).sub(lambda _: wrong, p.steps[-1])
    return [*p.steps[:-1], last]
