"""Tests for answer verification: math-verify, exact match, reasoning-gym, timeouts."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import reasoning_gym

from faithcheck.problems import verify as verify_mod
from faithcheck.problems.verify import Verification, exact_match, verify
from faithcheck.records import Problem


def _problem(answer: str, domain: str = "math") -> Problem:
    return Problem(id="p", question="q", answer=answer, domain=domain)


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("0.5", "\\frac{1}{2}"),
        ("\\frac{1}{2}", "0.5"),
        ("1200", "1,200"),
        ("3", "3.0"),
        ("-4", "-4.0"),
        ("\\frac{3}{4}", "0.75"),
        ("\\frac34", "3/4"),
        ("0.75", "\\dfrac{3}{4}"),
        ("x^2+1", "1+x^2"),
        ("\\sqrt{2}", "1.41421356"),
        ("\\text{B}", "B"),
        ("1,2,3", "3,2,1"),  # read as sets once wrapped in $...$
        ("$5$", "5"),
        ("106475279601", "106475279601"),
        # math-verify is lenient about units and percent signs; documented here on purpose.
        ("12", "12 cm"),
        ("50\\%", "0.5"),
    ],
)
def test_math_equivalent(gold: str, pred: str) -> None:
    assert verify(_problem(gold), pred) == Verification(correct=True, method="math_verify")


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("2", "3"),
        ("0.5", "0.55"),
        ("\\frac{1}{2}", "\\frac{1}{3}"),
        ("1,200", "1.2"),
        ("x+1", "x-1"),
        ("B", "C"),
        ("(1,2)", "(2,1)"),
    ],
)
def test_math_not_equivalent(gold: str, pred: str) -> None:
    assert verify(_problem(gold), pred) == Verification(correct=False, method="math_verify")


def test_science_domain_uses_math_verify() -> None:
    assert verify(_problem("0.5", "science"), "1/2").method == "math_verify"


@pytest.mark.parametrize(
    ("gold", "pred", "correct"),
    [("\\text{}", "", True), ("5", "  ", False)],
)
def test_math_falls_back_to_exact_when_nothing_parses(gold: str, pred: str, correct: bool) -> None:
    assert verify(_problem(gold), pred) == Verification(correct=correct, method="exact")


@pytest.mark.parametrize("domain", ["math", "graph", "unknown"])
def test_none_prediction(domain: str) -> None:
    assert verify(_problem("1", domain), None) == Verification(correct=False, method="none")


@pytest.mark.parametrize(
    ("gold", "pred", "correct"),
    [
        ("A-B-C", "a-b-c", True),
        ("A-B-C", "A-C-B", False),
        ("12", "12.0", True),
        ("1,200", "1200", True),
        ("3/4", "0.75", True),
        ("-3", "-3.00", True),
        ("$5$", "5.", True),
        ("\\text{Yes}", "yes", True),
        ("12 cm", "12", False),
        ("5", "6", False),
        ("1/0", "1/0", True),
        ("", "", True),
    ],
)
def test_graph_exact_match(gold: str, pred: str, correct: bool) -> None:
    assert verify(_problem(gold, "graph"), pred) == Verification(correct=correct, method="exact")
    assert exact_match(gold, pred) is correct


@pytest.fixture(scope="module")
def rg_entry() -> dict[str, Any]:
    entry: dict[str, Any] = reasoning_gym.create_dataset("basic_arithmetic", size=3, seed=0)[0]
    # Problems are stored as JSON, which turns the entry's tuples into lists.
    return json.loads(json.dumps(entry))


def _rg_problem(entry: dict[str, Any], name: str = "basic_arithmetic") -> Problem:
    return Problem(
        id="rg-0",
        question=entry["question"],
        answer=entry["answer"],
        domain="arithmetic",
        source="rg",
        metadata={"rg_dataset": name, "rg_entry": entry},
    )


def test_rg_scores_own_answer_correct(rg_entry: dict[str, Any]) -> None:
    problem = _rg_problem(rg_entry)
    expected = Verification(correct=True, method="reasoning_gym")
    assert verify(problem, rg_entry["answer"]) == expected
    assert verify(problem, f" {rg_entry['answer']}\n") == expected


@pytest.mark.parametrize("wrong", ["-1", "", "x{answer}", "{answer}.0"])
def test_rg_scores_wrong_answer_incorrect(rg_entry: dict[str, Any], wrong: str) -> None:
    # "x<gold>" gets partial credit (len(gold)/len(pred)) from reasoning-gym, still wrong.
    pred = wrong.format(answer=rg_entry["answer"])
    assert verify(_rg_problem(rg_entry), pred) == Verification(
        correct=False, method="reasoning_gym"
    )


def test_rg_unknown_dataset_reports_error(rg_entry: dict[str, Any]) -> None:
    result = verify(_rg_problem(rg_entry, name="no_such_dataset"), "1")
    assert result == Verification(correct=False, method="reasoning_gym", error="ValueError")


def test_rg_missing_metadata_reports_error() -> None:
    problem = Problem(id="p", question="q", answer="1", source="rg")
    assert verify(problem, "1").error == "KeyError"


@pytest.mark.parametrize(
    ("score", "correct"), [(1.0, True), (sum([0.1] * 10), True), (0.99, False)]
)
def test_rg_threshold(
    monkeypatch: pytest.MonkeyPatch, rg_entry: dict[str, Any], score: float, correct: bool
) -> None:
    monkeypatch.setattr(verify_mod, "_rg_score_fn", lambda name: lambda pred, entry: score)
    assert verify(_rg_problem(rg_entry), "1").correct is correct


def test_pathological_input_times_out() -> None:
    # factorial(10**7) makes sympy grind; the hard deadline kills the worker at 1 s.
    t0 = time.perf_counter()
    result = verify(_problem("10000000!"), "5", timeout_s=1.0)
    elapsed = time.perf_counter() - t0
    assert result == Verification(correct=False, method="math_verify", error="timeout")
    assert elapsed < 1.0 + 1.5
    # The replacement worker serves the next call.
    assert verify(_problem("3"), "3.0").correct


_SLOW_WORKER = """
import sys, time
sys.stdout.write("ready\\n"); sys.stdout.flush()
for line in sys.stdin:
    if "slow" in line:
        time.sleep(60)
    if "crash" in line:
        sys.exit(1)
    if "boom" in line:
        sys.stdout.write('{"error": "RecursionError"}\\n'); sys.stdout.flush()
        continue
    sys.stdout.write('{"result": true, "timed_out": false}\\n'); sys.stdout.flush()
"""


@pytest.fixture
def fake_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[verify_mod._MathWorker]:
    worker = verify_mod._MathWorker(argv=(sys.executable, "-c", _SLOW_WORKER))
    monkeypatch.setattr(verify_mod, "_WORKER", worker)
    yield worker
    worker.close()


@pytest.mark.parametrize("timeout_s", [0.2, 0.5])
def test_hung_worker_is_killed_within_deadline(
    fake_worker: verify_mod._MathWorker, timeout_s: float
) -> None:
    fake_worker.start()
    t0 = time.perf_counter()
    result = verify(_problem("slow"), "1", timeout_s=timeout_s)
    elapsed = time.perf_counter() - t0
    assert result.error == "timeout" and not result.correct
    assert timeout_s <= elapsed < timeout_s + 1.0
    assert verify(_problem("1"), "1").correct


def test_crashed_worker_reports_error(fake_worker: verify_mod._MathWorker) -> None:
    result = verify(_problem("crash"), "1")
    assert result == Verification(correct=False, method="math_verify", error="WorkerError")
    assert verify(_problem("1"), "1").correct


def test_exception_inside_worker_is_reported(fake_worker: verify_mod._MathWorker) -> None:
    result = verify(_problem("boom"), "1")
    assert result == Verification(correct=False, method="math_verify", error="RecursionError")


def test_worker_that_cannot_start_reports_error(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = verify_mod._MathWorker(argv=(sys.executable, "-c", "raise SystemExit(3)"))
    monkeypatch.setattr(verify_mod, "_WORKER", worker)
    result = verify(_problem("1"), "1")
    assert result == Verification(correct=False, method="math_verify", error="WorkerError")


def test_verify_works_off_the_main_thread() -> None:
    # math-verify's own signal-based timeouts would raise here; the worker does not care.
    def run(_: int) -> Verification:
        assert threading.current_thread() is not threading.main_thread()
        return verify(_problem("0.5"), "\\frac{1}{2}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(8)))
    assert all(r == Verification(correct=True, method="math_verify") for r in results)
