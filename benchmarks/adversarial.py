"""Wall time of the text checks and loaders on adversarial inputs, and of `verify`'s
common case: the speed bounds the test suite used to assert.

The tests keep what these inputs must give (a span inside the text, every equation found
twice alike, a status, the whole question loaded); how long that takes depends on the
machine and on what else runs, so it is measured here instead, against the bound each test
once asserted. The inputs are the tests' own tables (`tests/checks/test_derivation.py`,
`tests/checks/test_support.py`, `tests/problems/test_parsing.py`), so both always see the
same cases. A row over its bound prints `OVER` and the script exits 1: quadratic behaviour
on 1 MB takes minutes, far past any bound, so even a contended machine shows it.

    python benchmarks/adversarial.py [--only derivation,support,parsing,load,verify]

Pure Python, no model: about a minute on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' input tables

# The bounds the tests asserted (seconds), for the same work.
BOUNDS = {
    "derivation": 2.0,  # extract_equations, then analyze, each on 1 MB
    "support": 20.0,  # check_support on 1 MB (a hang detector)
    "parsing": 5.0,  # extract_answer + split_steps on 1 MB
    "load": 10.0,  # load_problems with one 10 MB question
    "verify": 0.05,  # one math_verify call on a plain number, worker warm
}


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def derivation() -> Iterator[tuple[str, float]]:
    from faithcheck.checks.derivation import analyze, extract_equations
    from tests.checks.test_derivation import ADVERSARIAL

    for name, text in ADVERSARIAL.items():
        yield f"{name} (extract)", _timed(lambda t=text: extract_equations(t))
        yield f"{name} (analyze)", _timed(lambda t=text: analyze("p", 0, t, [], "1"))


def support() -> Iterator[tuple[str, float]]:
    from tests.checks.test_support import ADVERSARIAL, status

    for name, text in ADVERSARIAL.items():
        full = text + "\nThe answer is \\boxed{10}."
        yield name, _timed(lambda t=full: status("What is 3 × 4 - 2?", t))


def parsing() -> Iterator[tuple[str, float]]:
    from faithcheck.problems.parsing import extract_answer, split_steps
    from tests.problems.test_parsing import _ADVERSARIAL

    for text in _ADVERSARIAL:
        yield repr(text[:10]), _timed(lambda t=text: (extract_answer(t), split_steps(t)))


def load() -> Iterator[tuple[str, float]]:
    from faithcheck.problems.load import load_problems
    from tests.reliability.conftest import problems, write_jsonl
    from tests.reliability.test_data_errors import _big_question

    rows = [*problems(1), {"id": "big", "question": _big_question(), "answer": "42"}]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "big.jsonl", rows)
        yield "10 MB question", _timed(lambda: load_problems(str(path)))


def verify() -> Iterator[tuple[str, float]]:
    from faithcheck.problems import verify as verify_mod
    from faithcheck.records import Problem

    verify_mod.warm_up()
    n = 50

    def run() -> None:
        for i in range(n):
            verify_mod.verify(Problem(id="p", question="q", answer=str(i)), f"{i}.0")

    yield f"per call, mean of {n}", _timed(run) / n


GROUPS = {
    "derivation": derivation,
    "support": support,
    "parsing": parsing,
    "load": load,
    "verify": verify,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups")
    args = parser.parse_args()
    from faithcheck.backends.precision import describe_machine

    print(describe_machine())
    over = 0
    print(f"{'group':<11} {'input':<34} {'seconds':>9} {'bound':>7}")
    for group in args.only.split(","):
        bound = BOUNDS[group]
        for name, seconds in GROUPS[group]():
            flag = "  OVER" if seconds >= bound else ""
            over += bool(flag)
            print(f"{group:<11} {name:<34} {seconds:>9.3f} {bound:>7.2f}{flag}")
    print(f"{over} over their bound")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
