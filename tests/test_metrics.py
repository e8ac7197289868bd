"""Tests for the metric functions (`faithcheck.metrics`) and `report.summarize_samples`.

pass@k is checked against hand values and the closed form 1 - C(n-c, k) / C(n, k);
the bootstrap against its defining properties; the summary against hand-built records.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faithcheck.metrics import bootstrap_mean, pass_at_k
from faithcheck.report import summarize_samples
from faithcheck.sampling import SampleRecord

# --- pass@k --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 0, 1, 0.0),
        (1, 1, 1, 1.0),
        (5, 0, 5, 0.0),
        (5, 1, 5, 1.0),
        (5, 5, 5, 1.0),
        (2, 1, 1, 0.5),
        (4, 1, 1, 0.25),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (10, 3, 1, 0.3),
        (16, 0, 8, 0.0),
        (16, 9, 8, 1.0),  # fewer than k wrong samples: some correct one is always drawn
    ],
)
def test_pass_at_k_known_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n", range(1, 21))
def test_pass_at_k_matches_closed_form(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            closed = 1 - math.comb(n - c, k) / math.comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(closed, rel=1e-12, abs=1e-12), (n, c, k)


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [(0, 0, 1), (3, 0, 0), (3, 0, 4), (3, 4, 1), (3, -1, 1), (3, 1, -1)],
)
def test_pass_at_k_rejects_bad_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="need 1 <= k <= n"):
        pass_at_k(n, c, k)


@st.composite
def _nck(draw: st.DrawFn) -> tuple[int, int, int]:
    n = draw(st.integers(1, 200))
    return n, draw(st.integers(0, n)), draw(st.integers(1, n))


@settings(max_examples=300, deadline=None)
@given(_nck())
def test_pass_at_k_is_a_probability(nck: tuple[int, int, int]) -> None:
    assert 0.0 <= pass_at_k(*nck) <= 1.0


@settings(max_examples=300, deadline=None)
@given(_nck())
def test_pass_at_k_monotone_in_c(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    if c < n:
        assert pass_at_k(n, c, k) <= pass_at_k(n, c + 1, k)


@settings(max_examples=300, deadline=None)
@given(_nck())
def test_pass_at_k_monotone_in_k(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    if k < n:
        assert pass_at_k(n, c, k) <= pass_at_k(n, c, k + 1)


# --- bootstrap_mean ------------------------------------------------------------------------

_unit_floats = st.floats(0.0, 1.0, allow_nan=False)
_dyadic = st.builds(lambda c, e: c / 2**e, st.integers(0, 16), st.integers(0, 4)).map(
    lambda x: min(x, 1.0)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_unit_floats, min_size=1, max_size=25), st.integers(0, 2**31))
def test_bootstrap_mean_value_and_ci_bracket(values: list[float], seed: int) -> None:
    got = bootstrap_mean(values, n_boot=200, seed=seed)
    assert got.value == pytest.approx(math.fsum(values) / len(values), rel=1e-12, abs=1e-15)
    assert got.n == len(values)
    assert got.reason is None
    assert got.ci_low is not None and got.ci_high is not None
    assert got.ci_low <= got.value <= got.ci_high


@settings(max_examples=30, deadline=None)
@given(st.lists(_unit_floats, min_size=2, max_size=25), st.integers(0, 2**31))
def test_bootstrap_mean_is_deterministic_under_a_seed(values: list[float], seed: int) -> None:
    assert bootstrap_mean(values, n_boot=200, seed=seed) == bootstrap_mean(
        values, n_boot=200, seed=seed
    )


def test_bootstrap_seed_changes_the_interval() -> None:
    values = [i / 10 for i in range(11)]
    intervals = {
        (m.ci_low, m.ci_high) for m in (bootstrap_mean(values, n_boot=50, seed=s) for s in range(5))
    }
    assert len(intervals) > 1


@settings(max_examples=60, deadline=None)
@given(st.lists(_dyadic, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_bootstrap_value_invariant_to_permutation(values: list[float], rnd: random.Random) -> None:
    """Pass rates c/k with k a power of two (k=16 is the default) sum exactly in any order."""
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert bootstrap_mean(shuffled, n_boot=20).value == bootstrap_mean(values, n_boot=20).value


def test_bootstrap_value_invariant_to_permutation_for_any_floats() -> None:
    """Non-dyadic values (k=3 pass rates): with plain sum() the two orders differ in the
    last bit (0.20000000000000004 vs 0.19999999999999998)."""
    values = [0.1, 0.2, 0.3]
    assert bootstrap_mean(values).value == bootstrap_mean(values[::-1]).value


@settings(max_examples=60, deadline=None)
@given(st.lists(_unit_floats, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_bootstrap_value_is_order_free_and_correctly_rounded(
    values: list[float], rnd: random.Random
) -> None:
    shuffled = list(values)
    rnd.shuffle(shuffled)
    got = bootstrap_mean(shuffled, n_boot=20).value
    assert got == bootstrap_mean(values, n_boot=20).value
    assert got == math.fsum(values) / len(values)


@pytest.mark.parametrize(("constant", "size"), [(0.0, 1), (1.0, 7), (0.25, 12), (0.5, 3)])
def test_bootstrap_constant_input_gives_degenerate_ci(constant: float, size: int) -> None:
    got = bootstrap_mean([constant] * size)
    assert got.value == constant
    assert got.ci_low == constant
    assert got.ci_high == constant


def test_bootstrap_ci_is_wider_than_a_point_for_varied_input() -> None:
    got = bootstrap_mean([0.0, 1.0] * 10)
    assert got.ci_low is not None and got.ci_high is not None
    assert got.ci_low < 0.5 < got.ci_high


def test_bootstrap_empty_input() -> None:
    got = bootstrap_mean([])
    assert got.value is None
    assert got.ci_low is None and got.ci_high is None
    assert got.n == 0
    assert got.reason == "no data"


# --- summarize_samples ---------------------------------------------------------------------


def _rec(
    pid: str,
    index: int,
    correct: bool,
    *,
    answer: str | None = "1",
    finish: str = "stop",
    tokens: int = 4,
    verify_error: str | None = None,
) -> SampleRecord:
    return SampleRecord(
        problem_id=pid,
        sample_index=index,
        seed=0,
        prompt_tokens=3,
        completion="text",
        completion_token_ids=list(range(tokens)),
        finish_reason=finish,  # type: ignore[arg-type]
        steps=[],
        answer=answer,
        answer_rule="boxed" if answer is not None else "none",
        correct=correct,
        verify_method="exact" if answer is not None else "none",
        verify_error=verify_error,
    )


def test_summary_of_hand_built_records() -> None:
    records = [
        # p1: 2 of 4 correct; pass@1 = 0.5, pass@4 = 1
        _rec("p1", 0, True, tokens=2),
        _rec("p1", 1, False, answer=None, tokens=10, finish="length"),
        _rec("p1", 2, True, tokens=2),
        _rec("p1", 3, False, tokens=2, verify_error="timeout"),
        # p2: 0 of 4 correct; pass@1 = 0, pass@4 = 0
        _rec("p2", 0, False, answer=None, finish="length", tokens=10),
        _rec("p2", 1, False, tokens=2),
        _rec("p2", 2, False, tokens=2),
        _rec("p2", 3, False, tokens=2),
    ]
    s = summarize_samples(records)
    assert (s.problems, s.samples, s.k) == (2, 8, 4)
    assert s.accuracy.value == pytest.approx(0.25)
    assert s.pass_at_k.value == pytest.approx(0.5)
    assert s.accuracy.n == s.pass_at_k.n == 2
    assert s.no_answer_rate == pytest.approx(2 / 8)
    assert s.truncated_rate == pytest.approx(2 / 8)
    assert s.verify_error_rate == pytest.approx(1 / 8)
    assert s.mean_completion_tokens == pytest.approx(32 / 8)
    assert s.answer_rules == {"boxed": 6, "none": 2}


def test_summary_uses_smallest_sample_count_as_k() -> None:
    # p1: 1 of 3 correct with k=2 -> 1 - C(2,2)/C(3,2) = 2/3; p2: 1 of 2 correct -> 1.
    records = [
        _rec("p1", 0, True),
        _rec("p1", 1, False),
        _rec("p1", 2, False),
        _rec("p2", 0, False),
        _rec("p2", 1, True),
    ]
    s = summarize_samples(records)
    assert s.k == 2
    assert s.pass_at_k.value == pytest.approx((2 / 3 + 1) / 2)
    assert s.accuracy.value == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_summary_weights_problems_not_samples() -> None:
    # One problem with 1 correct sample of 1, one with 0 correct of 3: mean over problems 0.5.
    records = [_rec("a", 0, True)] + [_rec("b", i, False) for i in range(3)]
    s = summarize_samples(records)
    assert s.accuracy.value == pytest.approx(0.5)


def test_summary_of_no_records() -> None:
    s = summarize_samples([])
    assert (s.problems, s.samples, s.k) == (0, 0, 0)
    assert s.accuracy.value is None
    assert s.pass_at_k.value is None
    assert s.no_answer_rate == 0.0
    assert s.mean_completion_tokens == 0.0
    assert s.answer_rules == {}
