"""Tests for the metric functions (`faithcheck.metrics`) and `report.summarize_samples`.

pass@k is checked against hand values and the closed form 1 - C(n-c, k) / C(n, k);
the intervals (`share_interval` for shares, the expanded BCa `bootstrap` otherwise) against
hand-derived values and their defining properties; the summary against hand-built records.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faithcheck.metrics import (
    bootstrap,
    bootstrap_mean,
    bootstrap_pooled,
    mean_or_nan,
    pass_at_k,
    pooled_ratio,
    share_interval,
    t_quantile,
)
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
    """Values outside [0, 1] are resampled, so the seed matters (shares: see below)."""
    values = [float(i) for i in range(11)]
    intervals = {
        (m.ci_low, m.ci_high) for m in (bootstrap_mean(values, n_boot=50, seed=s) for s in range(5))
    }
    assert len(intervals) > 1


def test_share_intervals_do_not_depend_on_the_seed() -> None:
    values = [i / 10 for i in range(11)]
    intervals = {(m.ci_low, m.ci_high) for m in (bootstrap_mean(values, seed=s) for s in range(5))}
    assert len(intervals) == 1
    units = [(1.0, 4.0), (0.0, 2.0), (3.0, 3.0)]
    assert len({bootstrap_pooled(units, seed=s) for s in range(5)}) == 1


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


@pytest.mark.parametrize(("constant", "size"), [(0.0, 10), (1.0, 7), (0.25, 12), (0.5, 3)])
def test_constant_shares_still_get_an_interval(constant: float, size: int) -> None:
    """No spread among a few problems does not prove there is none: the interval keeps a
    width (a percentile bootstrap gave [c, c] here, which says nothing at these sizes)."""
    got = bootstrap_mean([constant] * size)
    assert got.value == constant
    assert got.ci_low is not None and got.ci_high is not None
    assert got.ci_low <= constant <= got.ci_high
    assert got.ci_high - got.ci_low > 0.1


def test_one_problem_says_nothing_about_a_share() -> None:
    got = bootstrap_mean([0.3])
    assert (got.value, got.ci_low, got.ci_high, got.n) == (0.3, 0.0, 1.0, 1)
    assert share_interval([2.0], [5.0]) == (0.0, 1.0)


@pytest.mark.parametrize(("constant", "size"), [(3.0, 1), (7.5, 4), (-2.0, 12)])
def test_bootstrap_constant_input_gives_degenerate_ci(constant: float, size: int) -> None:
    """Outside [0, 1] nothing bounds the spread: constant values resample to themselves."""
    got = bootstrap_mean([constant] * size)
    assert (got.value, got.ci_low, got.ci_high) == (constant, constant, constant)


def test_bootstrap_ci_is_wider_than_a_point_for_varied_input() -> None:
    got = bootstrap_mean([0.0, 1.0] * 10)
    assert got.ci_low is not None and got.ci_high is not None
    assert got.ci_low < 0.5 < got.ci_high


def test_bootstrap_of_one_unit_is_its_point() -> None:
    got = bootstrap([5.0], mean_or_nan)
    assert (got.value, got.ci_low, got.ci_high, got.n) == (5.0, 5.0, 5.0, 1)


def test_bootstrap_empty_input() -> None:
    got = bootstrap_mean([])
    assert got.value is None
    assert got.ci_low is None and got.ci_high is None
    assert got.n == 0
    assert got.reason == "no data"


# --- share_interval, t_quantile ----------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "df", "expected"),
    [
        (0.975, 1, 12.706204736),
        (0.975, 2, 4.302652730),
        (0.975, 4, 2.776445105),
        (0.975, 9, 2.262157163),
        (0.975, 29, 2.045229642),
        (0.995, 9, 3.249835542),
        (0.975, 300, 1.967903011),
        (0.975, 1000, 1.962339081),
    ],
)
def test_t_quantile_known_values(q: float, df: int, expected: float) -> None:
    assert t_quantile(q, df) == pytest.approx(expected, abs=1e-8)


def test_t_quantile_rejects_bad_arguments() -> None:
    for q, df in [(0.5, 3), (1.0, 3), (0.975, 0)]:
        with pytest.raises(ValueError, match=r"need 0\.5 < q < 1"):
            t_quantile(q, df)


def _wilson(p: float, effective: float, t: float) -> tuple[float, float]:
    """The Wilson score interval at an effective size, by its textbook formula."""
    t2 = t * t / effective
    centre = (p + t2 / 2) / (1 + t2)
    half = t / (1 + t2) * math.sqrt(p * (1 - p) / effective + t * t / (4 * effective**2))
    return centre - half, centre + half


@pytest.mark.parametrize("n", [5, 10, 20, 30])
def test_all_zero_shares_by_hand(n: int) -> None:
    """n problems of m items, no hit. With the two pseudo-problems (one of m hits, one of
    none) the share is 1/(n+2), every residual is m/(n+2) in size but the pseudo-hit's
    m(n+1)/(n+2), so the CR1 variance is 1/(n+2)^2 and the effective size (n+1) n/(n+2):
    the upper end is t^2 / (effective + t^2), at n = 10 about 0.36, above the exact
    Clopper-Pearson 97.5% bound for 0 of 10 all-or-nothing problems (0.31)."""
    t = t_quantile(0.975, n - 1)
    effective = (n + 1) * n / (n + 2)
    for m in (1, 2, 16):
        lo, hi = share_interval([0.0] * n, [float(m)] * n)
        assert lo == 0.0
        assert hi == pytest.approx(t * t / (effective + t * t), rel=1e-12)
        assert hi > 1 - 0.025 ** (1 / n)
    assert bootstrap_pooled([(0.0, 16.0)] * 10).ci_high == pytest.approx(0.3582573, abs=1e-7)


def test_half_share_by_hand() -> None:
    """Ten problems, five all hits, five none (one item each): with the pseudo-problems
    every residual is 1/2, so the CR1 variance is (12/11)(12/4)/12^2 and the effective
    size 11 * 10/12; the Wilson interval there, with t_9."""
    lo, hi = share_interval([0.0, 1.0] * 5, [1.0] * 10)
    want = _wilson(0.5, 11 * 10 / 12, t_quantile(0.975, 9))
    assert (lo, hi) == pytest.approx(want, rel=1e-12)
    assert (lo, hi) == pytest.approx((0.2007270, 0.7992730), abs=1e-7)


def test_share_interval_is_the_mirror_for_the_complement() -> None:
    num, den = [0.0, 1.0, 3.0, 2.0, 0.0], [2.0, 1.0, 4.0, 2.0, 3.0]
    lo, hi = share_interval(num, den)
    c_lo, c_hi = share_interval([d - x for x, d in zip(num, den, strict=True)], den)
    assert (c_lo, c_hi) == pytest.approx((1 - hi, 1 - lo), abs=1e-12)


@pytest.mark.parametrize("pattern", [[0.0, 1.0], [0.0, 0.0, 0.0, 1.0], [0.2, 0.9, 0.5]])
def test_share_interval_narrows_with_more_problems(pattern: list[float]) -> None:
    widths = []
    for copies in (2, 4, 8, 16, 32):
        values = pattern * copies
        lo, hi = share_interval(values, [1.0] * len(values))
        widths.append(hi - lo)
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == len(widths)


def test_bootstrap_narrows_with_more_units() -> None:
    widths = []
    for copies in (2, 4, 8, 16):
        got = bootstrap([1.0, 4.0, 2.0, 8.0, 5.0] * copies, mean_or_nan, n_boot=400)
        assert got.ci_low is not None and got.ci_high is not None
        widths.append(got.ci_high - got.ci_low)
    assert widths == sorted(widths, reverse=True)


def test_bootstrap_is_wider_than_the_percentile_interval() -> None:
    """The expanded level reaches further into the same resamples than 2.5% / 97.5%."""
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0]
    rng = random.Random(7)
    stats = sorted(mean_or_nan([rng.choice(values) for _ in values]) for _ in range(1000))
    got = bootstrap(values, mean_or_nan, seed=7)
    assert got.ci_low is not None and got.ci_high is not None
    assert got.ci_low < stats[24] and got.ci_high > stats[975]


_share_units = st.lists(
    st.tuples(st.integers(0, 16), st.integers(1, 16)).map(lambda u: (min(u), max(u))),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_share_units)
def test_share_interval_is_within_bounds_and_holds_the_share(units: list[tuple[int, int]]) -> None:
    got = bootstrap_pooled([(float(x), float(d)) for x, d in units])
    assert got.value == pooled_ratio(units)
    assert got.ci_low is not None and got.ci_high is not None
    assert 0.0 <= got.ci_low <= got.value <= got.ci_high <= 1.0
    assert got.ci_high > got.ci_low  # never a point: n problems cannot rule out spread


@settings(max_examples=100, deadline=None)
@given(_share_units, st.randoms(use_true_random=False))
def test_share_interval_ignores_problem_order(
    units: list[tuple[int, int]], rnd: random.Random
) -> None:
    shuffled = list(units)
    rnd.shuffle(shuffled)
    a, b = bootstrap_pooled(units), bootstrap_pooled(shuffled)
    assert (a.ci_low, a.ci_high) == pytest.approx((b.ci_low, b.ci_high), abs=1e-12)


def test_pooled_ratios_that_are_not_shares_are_bootstrapped() -> None:
    """A paired difference (negative numerators) has no [0, 1] bound: the bootstrap, whose
    interval depends on the seed and may reach below 0."""
    units = [(1.0, 2.0), (-1.0, 2.0), (0.0, 3.0), (2.0, 2.0)] * 3
    got = bootstrap_pooled(units, n_boot=300)
    assert got.value == pytest.approx(6 / 27) and got.units == 27 and got.n == 12
    assert got.ci_low is not None and got.ci_low < 0
    assert got == bootstrap_pooled(units, n_boot=300)
    assert len({bootstrap_pooled(units, n_boot=300, seed=s).ci_low for s in range(4)}) > 1


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
