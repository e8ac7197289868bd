"""Reward-saturation computations on synthetic curves with known answers, edge cases, and
hypothesis properties (order, duplicate, shift and scale invariance, monotonicity in epsilon)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faithcheck.saturation.core import (
    RunInput,
    SaturationSettings,
    Series,
    analyze_run,
    build_report,
    clean_series,
    ema,
    eval_summary,
    find_t_sat,
)
from faithcheck.store.jsonio import dumps

DEFAULT = SaturationSettings()


def ramp(k: float, steps: range, low: float = 0.0, high: float = 1.0) -> list[tuple[int, float]]:
    """Linear climb from `low` at step 0 to `high` at step k, flat afterwards."""
    return [(s, low + (high - low) * min(1.0, s / k)) for s in steps]


def run(points, evals=(), **kw):
    """analyze_run on in-memory points; returns the record."""
    settings = SaturationSettings(**kw)
    inp = RunInput(
        name="r",
        path="r",
        format="jsonl",
        step_column="step",
        reward_column="reward",
        reward_points=points,
        eval_column="eval" if evals else None,
        eval_points=evals,
    )
    return analyze_run(inp, settings)[0]


# --- known t_sat ------------------------------------------------------------------------------

KNOWN = [
    # (points, settings, status, t_sat, pre_saturation_steps, rapid)
    pytest.param(ramp(80, range(1, 301)), {}, "saturated", 80, 79, True, id="rapid-ramp"),
    # The level is measured from the first logged reward, 1/200 here: 0.005 + 0.99 * 0.995.
    pytest.param(ramp(200, range(1, 401)), {}, "saturated", 199, 198, False, id="slow-ramp"),
    pytest.param(
        ramp(200, range(1, 401)), {"floor": "zero"}, "saturated", 198, 197, False, id="slow-zero"
    ),
    pytest.param(ramp(80, range(0, 300)), {}, "saturated", 80, 80, True, id="zero-based-steps"),
    pytest.param(
        ramp(200, range(1, 241)), {}, "not_saturated", None, None, False, id="not-within-T-50"
    ),
    pytest.param(
        ramp(100, range(1, 141)), {}, "not_saturated", None, None, None, id="window-too-short"
    ),
    pytest.param(ramp(80, range(1, 301)), {"epsilon": 1.0}, "saturated", 80, 79, True, id="eps-1"),
    pytest.param(
        ramp(80, range(1, 301)), {"epsilon": 0.5}, "saturated", 41, 40, True, id="eps-0.5"
    ),
    pytest.param(
        ramp(80, range(1, 301)), {"rapid_steps": 50}, "saturated", 80, 79, False, id="rapid-50"
    ),
    pytest.param(
        ramp(80, range(10, 3001, 10)), {}, "saturated", 80, 79, True, id="logged-every-10"
    ),
    pytest.param(ramp(60, range(1, 101)), {"margin": 10}, "saturated", 60, 59, True, id="margin"),
    # Rewards in [-1, 0]: measured from the first reward, t_sat is the shifted curve's.
    pytest.param(
        ramp(80, range(1, 301), low=-1.0, high=0.0), {}, "saturated", 80, 79, True, id="neg"
    ),
    pytest.param(
        ramp(80, range(1, 301), low=-1.0, high=1.0), {}, "saturated", 80, 79, True, id="neg-pos"
    ),
    pytest.param(
        ramp(80, range(1, 301), low=-1.0, high=0.0),
        {"floor": "zero"},
        "undefined",
        None,
        None,
        None,
        id="neg-floor-zero",
    ),
    pytest.param([(s, 0.0) for s in range(1, 301)], {}, "flat", None, None, False, id="flat"),
    pytest.param([(s, 0.0) for s in range(1, 121)], {}, "flat", None, None, None, id="flat-short"),
    # A constant never rose above its start, whatever its level; nor did a falling reward. Under
    # the study's epsilon*max (floor zero) both are at their maximum from the first step.
    pytest.param([(s, 1.0) for s in range(1, 301)], {}, "flat", None, None, False, id="const-1"),
    pytest.param(
        [(s, 1.0) for s in range(1, 301)], {"floor": "zero"}, "saturated", 1, 0, True, id="c-zero"
    ),
    pytest.param(
        [(1, 1.0)] + [(s, 0.999) for s in range(2, 301)],
        {},
        "flat",
        None,
        None,
        False,
        id="max-then-0.999",
    ),
    pytest.param(
        [(1, 1.0)] + [(s, 0.999) for s in range(2, 301)],
        {"floor": "zero"},
        "saturated",
        1,
        0,
        True,
        id="max-then-0.999-zero",
    ),
    pytest.param(
        [(s, 0.5) for s in range(1, 301)], {"floor": "min"}, "flat", None, None, False, id="min"
    ),
    pytest.param([(s, -0.5) for s in range(1, 301)], {}, "flat", None, None, False, id="neg-flat"),
    pytest.param(
        [(s, 1 - s / 300) for s in range(1, 301)], {}, "flat", None, None, False, id="decreasing"
    ),
    pytest.param(
        [(s, 1 - s / 300) for s in range(1, 301)],
        {"floor": "min"},
        "saturated",
        1,
        0,
        True,
        id="decreasing-min",
    ),
    pytest.param(ramp(10, range(1, 51)), {}, "too_short", None, None, None, id="T=50"),
    pytest.param(ramp(10, range(1, 52)), {}, "not_saturated", None, None, None, id="T=51"),
]


@pytest.mark.parametrize(("points", "kw", "status", "t_sat", "pre", "rapid"), KNOWN)
def test_known_t_sat(points, kw, status, t_sat, pre, rapid) -> None:
    record = run(points, **kw)
    assert record.status == status, record.reason
    assert record.t_sat == t_sat
    assert record.pre_saturation_steps == pre
    assert record.rapid is rapid
    assert (record.reason is None) == (status == "saturated")


def test_threshold_is_measured_from_the_first_reward() -> None:
    record = run(ramp(80, range(0, 301), low=0.2, high=0.8))
    assert record.reward_floor == 0.2
    assert record.threshold == pytest.approx(0.2 + 0.99 * 0.6)
    assert record.t_sat == 80  # 0.2 + 0.6 * s / 80 >= 0.794 first at s = 79.2


def test_floor_zero_is_the_study_formula() -> None:
    record = run(ramp(80, range(1, 301), low=0.2, high=0.8), floor="zero")
    assert record.reward_floor == 0.0
    assert record.threshold == pytest.approx(0.99 * 0.8)
    # 0.2 + 0.6 * s / 80 >= 0.792 first at s = 78.93 -> step 79 (not 80: the floor is 0)
    assert record.t_sat == 79


def test_start_and_min_are_shift_invariant_and_zero_is_not() -> None:
    base = ramp(80, range(1, 301))
    shifted = [(s, v + 100.0) for s, v in base]
    assert run(base).t_sat == run(shifted).t_sat == 80
    assert run(base, floor="min").t_sat == run(shifted, floor="min").t_sat == 80
    # epsilon * max depends on where zero is: 0.99 * 101 = 99.99 < 100 + 1/80 at step 1.
    assert run(shifted, floor="zero").t_sat == 1


def test_too_short_message_is_clear() -> None:
    record = run(ramp(10, range(1, 41)))
    assert record.status == "too_short"
    assert "spanning more than 50 steps" in (record.reason or "")
    assert record.rapid is None


def test_not_saturated_reason() -> None:
    record = run(ramp(200, range(1, 241)))
    assert record.reason == "not saturated within T-50 (step <= 190)"


def test_saturating_at_the_first_step_gets_a_note() -> None:
    record = run([(s, 1 - s / 300) for s in range(1, 301)], floor="min")
    assert any("at the first step" in n for n in record.notes)


def test_nan_rows_are_dropped_and_counted() -> None:
    points = ramp(80, range(1, 301))
    points[10] = (11, math.nan)
    points[79] = (80, math.inf)  # the t_sat step itself
    record = run(points)
    assert record.dropped_rows == 2
    assert record.t_sat == 81
    assert any("NaN/inf" in n for n in record.notes)
    dumps(record)  # nothing non-finite reaches JSON


def test_all_nan_is_undefined_not_a_crash() -> None:
    record = run([(s, math.nan) for s in range(1, 301)])
    assert record.status == "undefined"
    assert record.reason == "no finite reward values"
    assert record.points == 0


def test_unsorted_rows_are_sorted() -> None:
    points = ramp(80, range(1, 301))
    shuffled = points[:]
    random.Random(0).shuffle(shuffled)
    a, b = run(points), run(shuffled)
    assert b.unsorted and not a.unsorted
    assert (a.t_sat, a.threshold, a.reward_max) == (b.t_sat, b.threshold, b.reward_max)


def test_duplicate_steps_mean_and_last() -> None:
    points = ramp(80, range(1, 301))
    dup = [*points, (80, 0.5)]  # step 80 again, lower: mean 0.75 < 0.99
    assert run(dup).t_sat == 81
    assert run(dup).duplicate_steps == 1
    assert run(dup, duplicates="last").t_sat == 81
    resumed = [(80, 0.5), *points]  # the later (resumed) row is the good one
    assert run(resumed, duplicates="last").t_sat == 80


def test_max_is_over_the_whole_run_including_the_last_margin_steps() -> None:
    # Plateau 0.9 from step 50, then a late climb to 1.0 in the last 50 steps.
    points = [(s, min(0.9, s / 50)) for s in range(1, 251)]
    points += [(s, 1.0) for s in range(251, 301)]
    record = run(points)
    assert record.reward_max == 1.0
    assert record.status == "not_saturated"


def test_ema_identity_constant_and_known_values() -> None:
    assert ema([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
    assert ema([2.0] * 5, 0.9) == pytest.approx([2.0] * 5)
    assert ema([1.0, 0.0], 0.5) == pytest.approx([1.0, 1 / 3])


def test_ema_removes_a_lone_spike() -> None:
    points = [(s, min(0.9, s / 50)) for s in range(1, 401)]
    points[29] = (30, 1.0)  # one lucky batch
    points[200:] = [(s, 1.0) for s in range(201, 401)]
    assert run(points).t_sat == 30
    smoothed = run(points, ema=0.9)
    assert smoothed.t_sat is not None and smoothed.t_sat > 200
    assert smoothed.rapid is False


def test_report_any_rapid_and_json() -> None:
    rapid, slow = run(ramp(80, range(1, 301))), run(ramp(200, range(1, 401)))
    report = build_report([rapid, slow], DEFAULT)
    assert report.any_rapid
    assert not build_report([slow], DEFAULT).any_rapid
    assert b'"t_sat":80' in dumps(report)


# --- edge cases of the rise (#28) ------------------------------------------------------------


def jump(low: float, high: float, at: int = 10, n: int = 300) -> list[tuple[int, float]]:
    """`low` for steps 1..at-1, `high` from step `at` to step n."""
    return [(s, low if s < at else high) for s in range(1, n + 1)]


EDGES = [
    # (points, settings, status, t_sat): a rise of at most min_rise above the floor is no rise.
    pytest.param(jump(0.0, 1e-9), {}, "flat", None, id="0-to-1e-9"),
    pytest.param(jump(0.0, 1e-9), {"floor": "zero"}, "flat", None, id="0-to-1e-9-zero"),
    pytest.param(jump(0.0, 1e-9), {"floor": "min"}, "flat", None, id="0-to-1e-9-min"),
    pytest.param(jump(0.0, 1e-9), {"min_rise": 0.0}, "saturated", 10, id="0-to-1e-9-no-min"),
    # 0 -> 1e-9 is 0 -> 1 scaled by 1e-9: with min_rise scaled alike, the same answer.
    pytest.param(jump(0.0, 1e-9), {"min_rise": 1e-12}, "saturated", 10, id="scaled-min-rise"),
    pytest.param(jump(0.0, 1.0), {}, "saturated", 10, id="0-to-1"),
    pytest.param(jump(0.0, 0.001), {}, "flat", None, id="rise-equal-to-min"),
    pytest.param(jump(0.0, 0.002), {}, "saturated", 10, id="rise-above-min"),
    # Constant negative: flat under every floor (0.99 * -0.5 = -0.495 is above it).
    pytest.param(jump(-0.5, -0.5), {}, "flat", None, id="const-neg"),
    pytest.param(jump(-0.5, -0.5), {"floor": "min"}, "flat", None, id="const-neg-min"),
    pytest.param(jump(-0.5, -0.5), {"floor": "zero"}, "flat", None, id="const-neg-zero"),
    # A fall is no rise, below zero or above it (the curve shifted by +1), whatever min_rise.
    pytest.param(jump(-0.5, -0.5001), {}, "flat", None, id="neg-fall"),
    pytest.param(jump(0.5, 0.4999), {}, "flat", None, id="pos-fall"),
    pytest.param(jump(-0.5, -0.5001), {"min_rise": 0.0}, "flat", None, id="neg-fall-no-min"),
    pytest.param(jump(0.5, 0.4999), {"min_rise": 0.0}, "flat", None, id="pos-fall-no-min"),
    # A rise of 1e-4 is below min_rise on either side of zero, and a rise once min_rise is 0.
    pytest.param(jump(-0.5, -0.4999), {}, "flat", None, id="neg-tiny-rise"),
    pytest.param(jump(0.5, 0.5001), {}, "flat", None, id="pos-tiny-rise"),
    pytest.param(jump(-0.5, -0.4999), {"min_rise": 0.0}, "saturated", 10, id="neg-rise-no-min"),
    pytest.param(jump(0.5, 0.5001), {"min_rise": 0.0}, "saturated", 10, id="pos-rise-no-min"),
    # A real rise below zero saturates where the same rise does above it.
    pytest.param(jump(-1.0, 0.0), {}, "saturated", 10, id="neg-jump"),
    pytest.param(jump(-1.0, 0.0), {"floor": "zero"}, "undefined", None, id="neg-jump-zero"),
    pytest.param(ramp(80, range(1, 301), -1.0, 0.0), {}, "saturated", 80, id="neg-ramp"),
    pytest.param(ramp(80, range(1, 301), 0.0, 1.0), {}, "saturated", 80, id="pos-ramp"),
]


@pytest.mark.parametrize(("points", "kw", "status", "t_sat"), EDGES)
def test_rise_edge_cases(points, kw, status, t_sat) -> None:
    record = run(points, **kw)
    assert (record.status, record.t_sat) == (status, t_sat), record.reason
    assert record.rapid is (None if status == "undefined" else t_sat is not None)


def test_flat_reason_names_the_floor_and_min_rise() -> None:
    assert run(jump(0.0, 1e-9)).reason == (
        "no rise: reward never exceeds its first value (0) by more than min_rise 0.001 (max 1e-09)"
    )


def _logistic(center: float, width: float, n: int = 400) -> list[tuple[int, float]]:
    return [(s, 1 / (1 + math.exp(-(s - center) / width))) for s in range(1, n + 1)]


SHAPES = [
    pytest.param(ramp(80, range(1, 301)), 80, id="ramp"),
    pytest.param(ramp(200, range(1, 401)), 199, id="slow-ramp"),
    pytest.param(_logistic(60, 8), 97, id="logistic"),
    pytest.param(_logistic(250, 20), 341, id="slow-logistic"),
    pytest.param(
        [(s, min(0.9, s / 50) + (0.1 if s > 200 else 0.0)) for s in range(1, 401)],
        201,
        id="two-plateaus",
    ),
]


@pytest.mark.parametrize(("points", "t_sat"), SHAPES)
@pytest.mark.parametrize("floor", ["start", "min"])
def test_a_rise_from_minus_one_saturates_where_the_rise_from_zero_does(
    points, t_sat, floor
) -> None:
    record = run(points, floor=floor)
    assert record.t_sat == t_sat
    for shift, scale in ((-1.0, 1.0), (5.0, 1.0), (0.0, 3.0), (-1.0, 0.5), (100.0, 40.0)):
        moved = run(
            [(s, scale * v + shift) for s, v in points], floor=floor, min_rise=0.001 * scale
        )
        assert (moved.status, moved.t_sat, moved.rapid) == ("saturated", t_sat, record.rapid)


# --- eval -------------------------------------------------------------------------------------

EVALS = Series(steps=(0, 50, 100, 150, 200), values=(0.3, 0.4, 0.5, 0.45, 0.55))


def test_eval_gain_and_residual_use_the_nearest_eval() -> None:
    s = eval_summary("eval", EVALS, 80)
    assert (s.start_step, s.at_tsat_step, s.best_later_step) == (0, 100, 200)
    assert s.pre_saturation_gain == pytest.approx(0.2)
    assert s.post_saturation_residual == pytest.approx(0.05)
    assert s.reason is None


def test_eval_tie_takes_the_earlier_step() -> None:
    assert eval_summary("eval", EVALS, 75).at_tsat_step == 50


def test_eval_residual_can_be_negative() -> None:
    falling = Series(steps=(0, 100, 200), values=(0.3, 0.5, 0.4))
    assert eval_summary("e", falling, 100).post_saturation_residual == pytest.approx(-0.1)


def test_eval_edge_cases() -> None:
    assert eval_summary("e", EVALS, None).reason == "no t_sat"
    late = Series(steps=(150, 200), values=(0.4, 0.5))
    s = eval_summary("e", late, 80)
    assert s.pre_saturation_gain is None and "after t_sat" in (s.reason or "")
    early = Series(steps=(0, 50), values=(0.3, 0.4))
    s = eval_summary("e", early, 80)
    assert s.pre_saturation_gain == pytest.approx(0.1)
    assert s.post_saturation_residual is None and "no eval logged after" in (s.reason or "")
    assert eval_summary("e", Series((), ()), 80).reason == "no finite eval values"


def test_analyze_run_with_eval() -> None:
    evals = [(s, 0.3 + 0.001 * s) for s in range(0, 301, 25)]
    record = run(ramp(80, range(1, 301)), evals=evals)
    assert record.eval is not None
    assert record.eval.at_tsat_step == 75
    assert record.eval.pre_saturation_gain == pytest.approx(0.075)
    assert record.eval.post_saturation_residual == pytest.approx(0.225)


# --- properties -------------------------------------------------------------------------------

values = st.floats(min_value=-5, max_value=5, allow_nan=False).map(lambda v: round(v, 3))
rows = st.lists(st.tuples(st.integers(0, 150), values), min_size=1, max_size=120)


def _t(points, **kw):
    return run(points, **kw)


@settings(max_examples=150, deadline=None)
@given(rows, st.randoms(use_true_random=False))
def test_t_sat_is_invariant_to_row_order(points, rnd) -> None:
    shuffled = points[:]
    rnd.shuffle(shuffled)
    a, b = _t(points), _t(shuffled)
    assert (a.status, a.t_sat, a.threshold, a.rapid) == (b.status, b.t_sat, b.threshold, b.rapid)


@settings(max_examples=150, deadline=None)
@given(rows)
def test_t_sat_is_invariant_to_repeating_every_row(points) -> None:
    a, b = _t(points), _t(points + points)
    assert (a.status, a.t_sat, a.threshold) == (b.status, b.t_sat, b.threshold)


@settings(max_examples=150, deadline=None)
@given(rows, st.floats(0.01, 1.0), st.floats(0.01, 1.0), st.sampled_from(["start", "min", "zero"]))
def test_t_sat_is_monotone_in_epsilon(points, e1, e2, floor) -> None:
    lo, hi = sorted((e1, e2))
    a, b = _t(points, epsilon=lo, floor=floor), _t(points, epsilon=hi, floor=floor)
    inf = math.inf
    assert (a.t_sat if a.t_sat is not None else inf) <= (b.t_sat if b.t_sat is not None else inf)


@settings(max_examples=150, deadline=None)
@given(rows, st.floats(0.0, 0.95), st.sampled_from(["start", "min"]))
def test_t_sat_satisfies_its_definition(points, weight, floor) -> None:
    record, curves = analyze_run(
        RunInput("r", "r", "jsonl", "step", "reward", points),
        SaturationSettings(ema=weight, floor=floor),
    )
    curve = curves.reward
    window = [
        (s, v)
        for s, v in zip(curve.steps, curve.values, strict=True)
        if s <= (record.window_end or -1)
    ]
    top, low = record.reward_max, record.reward_floor
    if record.status in ("saturated", "not_saturated"):
        # The definition as written: within (1 - epsilon) * rise of the maximum.
        assert top is not None and low is not None and record.threshold is not None
        assert top - low > DEFAULT.min_rise
        gap = (1 - DEFAULT.epsilon) * (top - low)
        assert record.threshold == top - gap
        reached = [s for s, v in window if top - v <= gap]
        assert record.t_sat == (reached[0] if reached else None)
    if record.status == "saturated":
        assert record.t_sat is not None and record.window_end is not None
        assert record.t_sat <= record.window_end
        assert record.threshold is not None and record.threshold <= (top or 0)
    if record.status == "flat":
        assert top is not None and low is not None and top - low <= DEFAULT.min_rise
        assert record.t_sat is None and record.rapid is not True
    dumps(record)


# Eighths are exact in binary floating point, and so are their sums, differences and products
# with powers of two at these sizes: shifting or scaling such a curve rounds nothing, so the
# invariance must hold exactly. (Steps are unique: a mean of three rows would round.)
eighths = st.integers(-8000, 8000).map(lambda k: k / 8)
exact_rows = st.lists(
    st.tuples(st.integers(0, 150), eighths), min_size=1, max_size=120, unique_by=lambda p: p[0]
)


@settings(max_examples=200, deadline=None)
@given(
    exact_rows,
    eighths,
    st.integers(-12, 12),
    st.floats(0.01, 1.0),
    st.sampled_from([0.0, 0.001, 0.125, 3.0]),
    st.sampled_from(["start", "min"]),
)
def test_t_sat_and_status_are_shift_and_scale_invariant(
    points, shift, power, epsilon, min_rise, floor
) -> None:
    scale = 2.0**power
    kw = {"epsilon": epsilon, "floor": floor}
    base = _t(points, min_rise=min_rise, **kw)
    shifted = _t([(s, v + shift) for s, v in points], min_rise=min_rise, **kw)
    scaled = _t([(s, v * scale) for s, v in points], min_rise=min_rise * scale, **kw)
    for other in (shifted, scaled):
        assert (other.status, other.t_sat, other.rapid) == (base.status, base.t_sat, base.rapid)


@settings(max_examples=100, deadline=None)
@given(rows)
def test_clean_series_is_sorted_unique_finite(points) -> None:
    s = clean_series(points)
    assert list(s.steps) == sorted(set(s.steps))
    assert all(math.isfinite(v) for v in s.values)
    assert len(s.steps) == len({p[0] for p in points})


def test_find_t_sat_empty() -> None:
    assert find_t_sat((), (), DEFAULT).status == "undefined"


def test_settings_validate_ranges() -> None:
    with pytest.raises(ValueError):
        SaturationSettings(epsilon=0.0)
    with pytest.raises(ValueError):
        SaturationSettings(ema=1.0)
