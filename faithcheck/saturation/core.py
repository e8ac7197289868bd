"""Reward-saturation diagnostics: pure functions from logged (step, value) points to records.

Definitions (DESIGN.md, "Reward saturation"), made precise here:

- The reward curve is the logged per-step mean reward. Rows with a missing or non-finite value
  are dropped (and counted); rows are sorted by step; several rows for one step are merged
  (mean by default, which makes every result independent of row order; `last` keeps the
  latest row in file order, for logs of resumed runs).
- Optional smoothing: a debiased exponential moving average over the logged points (the
  TensorBoard smoothing slider: weight w, 0 = off). Everything below then uses the smoothed
  curve, and the setting is reported.
- T is the last logged step. The search window is the first T - margin steps: steps
  <= T - margin (margin = 50). For a log of steps 1..T that is exactly "the first T - 50
  steps", and a log that starts at step 0 gets the same window end.
- The maximum is taken over the whole run, window or not.
- The saturation level is measured from a floor: t_sat is the first step in the window whose
  reward is within (1 - epsilon) * rise of the maximum, rise = max - floor; that is, reward
  >= floor + epsilon * rise. The default floor is the reward at the first step (`start`; the
  debiased EMA leaves it as logged), so adding a constant to every reward never changes t_sat
  or the status, and neither does multiplying every reward and min_rise by a positive
  constant (up to the rounding of the shifted rewards themselves). The study's epsilon * max
  is floor 0 (`zero`): it means "within 1% of the maximum" only for rewards that start at 0;
  for a negative maximum it lies *above* the maximum (`undefined`), and a reward offset by a
  constant (always >= 5, say) reaches it at once. `min` measures from the run's minimum.
- A run whose maximum is no more than min_rise above its floor never rose: `flat`, neither
  saturated nor rapid. With the default floor a constant reward (at any level) and a reward
  that only falls (-0.5 then -0.5001, and its mirror 0.5 then 0.4999) are flat. min_rise is
  in reward units (default 0.001: one more correct answer in a batch of 1,000 0/1 rewards)
  because no rule stated in the curve's own shape can tell 0 -> 1e-9 from 0 -> 1: the two
  differ only by a scale factor. Under `min` a falling reward saturates at its first step
  (it is at its maximum from the start), as does a constant above 0 under `zero`.
- Pre-saturation length = number of steps before t_sat: t_sat - 1 for logs counting from
  step 1 (the study's t_sat - 1), t_sat for logs that start at step 0.
- Rapid saturation: t_sat < rapid_steps (100). When nothing saturates and the window ends
  before rapid_steps - 1, rapid saturation cannot be ruled out: `rapid` is None.
- Eval (optional, never smoothed, higher is better): gain = eval at t_sat - eval at the first
  eval step; residual = best eval after t_sat - eval at t_sat. Evals are logged sparsely, so
  "eval at t_sat" is the eval logged nearest to t_sat (the earlier one on a tie) and the
  steps actually used are reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from pydantic import Field

from faithcheck.records import Record

SCHEMA_VERSION = 2

Floor = Literal["start", "min", "zero"]
Duplicates = Literal["mean", "last"]
Status = Literal["saturated", "not_saturated", "too_short", "flat", "undefined"]


class SaturationSettings(Record):
    """The knobs of the saturation diagnostic, reported with every result."""

    epsilon: float = Field(default=0.99, gt=0.0, le=1.0)
    """Saturation level: t_sat is where reward reaches floor + epsilon * (max - floor)."""
    margin: int = Field(default=50, ge=0)
    """t_sat is searched among steps <= T - margin (T = last logged step)."""
    rapid_steps: int = Field(default=100, ge=1)
    """A run saturates rapidly when t_sat < rapid_steps."""
    ema: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Debiased EMA smoothing weight applied to the reward curve (0 = no smoothing)."""
    floor: Floor = "start"
    """Reward floor: start = the first (smoothed) reward, min = the run minimum, zero = 0."""
    min_rise: float = Field(default=1e-3, ge=0.0)
    """A run whose maximum is no more than this above its floor is flat (reward units)."""
    duplicates: Duplicates = "mean"
    """How rows that share a step are merged: mean, or last in file order."""


class EvalSummary(Record):
    """Evaluation metric around t_sat (higher is better)."""

    column: str
    """Column or tag the eval values came from."""
    points: int
    """Distinct steps with a finite eval value."""
    start_step: int | None = None
    """First eval step (the baseline, ideally step 0)."""
    start_value: float | None = None
    """Eval value at start_step."""
    at_tsat_step: int | None = None
    """Eval step used for "eval at t_sat": the nearest logged one."""
    at_tsat_value: float | None = None
    """Eval value at at_tsat_step."""
    best_later_step: int | None = None
    """Step of the best eval logged after at_tsat_step."""
    best_later_value: float | None = None
    """Best eval value logged after at_tsat_step."""
    pre_saturation_gain: float | None = None
    """at_tsat_value - start_value; None with a reason when undefined."""
    post_saturation_residual: float | None = None
    """best_later_value - at_tsat_value (negative: eval fell after saturation)."""
    reason: str | None = None
    """Why gain or residual is missing, when one is."""


class RunSaturation(Record):
    """Saturation diagnostic of one training log."""

    name: str
    """Label of the run (the log path as given)."""
    path: str
    """Path of the log file or TensorBoard folder."""
    format: str
    """Log format that was read: jsonl, json, csv, tensorboard or wandb."""
    step_column: str
    """Column holding the step."""
    reward_column: str
    """Column (or tag) holding the per-step mean reward."""
    points: int
    """Distinct steps with a finite reward."""
    dropped_rows: int = 0
    """Rows whose reward or step was present but not a finite number (NaN, text)."""
    duplicate_steps: int = 0
    """Steps that had more than one reward row (merged per `duplicates`)."""
    unsorted: bool = False
    """Whether the rows were out of step order (they are sorted before use)."""
    first_step: int | None = None
    """First logged step."""
    last_step: int | None = None
    """Last logged step: T."""
    window_end: int | None = None
    """Last step where t_sat may fall: T - margin."""
    reward_first: float | None = None
    """(Smoothed) reward at the first step."""
    reward_max: float | None = None
    """(Smoothed) maximum reward over the whole run."""
    reward_max_step: int | None = None
    """First step where the maximum is reached."""
    reward_floor: float | None = None
    """Floor of the threshold: the first reward, the run minimum, or 0."""
    threshold: float | None = None
    """floor + epsilon * (max - floor)."""
    status: Status
    """saturated, not_saturated (within T - margin), too_short, flat, or undefined."""
    t_sat: int | None = None
    """First step <= T - margin with reward >= threshold; None with `reason` otherwise."""
    pre_saturation_steps: int | None = None
    """Steps logged before t_sat, counting from step 1 (or 0 when the log has step 0)."""
    rapid: bool | None = None
    """t_sat < rapid_steps; None when the log cannot tell."""
    reason: str | None = None
    """Why t_sat or rapid is missing, when one is."""
    notes: list[str] = Field(default_factory=list)
    """Things worth knowing about the log (merged duplicates, dropped rows, columns chosen)."""
    eval: EvalSummary | None = None
    """Eval metric around t_sat, when an eval column was found or named."""


class SaturationReport(Record):
    """Output of `faithcheck saturation`: one entry per log, same settings for all."""

    schema_version: int = SCHEMA_VERSION
    """Version of this JSON layout."""
    settings: SaturationSettings
    """Settings used for every run."""
    runs: list[RunSaturation]
    """One result per log, in command-line order."""
    any_rapid: bool
    """Whether some run saturated rapidly (what --fail-on-rapid gates on)."""


@dataclass(frozen=True)
class Series:
    """A cleaned curve: strictly increasing steps, finite values."""

    steps: tuple[int, ...]
    """Distinct steps, ascending."""
    values: tuple[float, ...]
    """One finite value per step."""
    dropped: int = 0
    """Input points dropped for a non-finite value."""
    duplicate_steps: int = 0
    """Steps that had more than one input point."""
    unsorted: bool = False
    """Whether the input was out of step order."""


def clean_series(points: Sequence[tuple[int, float]], duplicates: Duplicates = "mean") -> Series:
    """Drop non-finite values, sort by step and merge points that share a step.

    Args:
        points: (step, value) in file order.
        duplicates: `mean` (order-independent; math.fsum is exactly rounded) or `last`.
    """
    kept = [(s, v) for s, v in points if math.isfinite(v)]
    unsorted = any(b[0] < a[0] for a, b in pairwise(kept))
    by_step: dict[int, list[float]] = {}
    for step, value in kept:
        by_step.setdefault(step, []).append(value)
    steps = tuple(sorted(by_step))
    if duplicates == "mean":
        values = tuple(math.fsum(by_step[s]) / len(by_step[s]) for s in steps)
    else:
        values = tuple(by_step[s][-1] for s in steps)
    return Series(
        steps=steps,
        values=values,
        dropped=len(points) - len(kept),
        duplicate_steps=sum(len(v) > 1 for v in by_step.values()),
        unsorted=unsorted,
    )


def ema(values: Sequence[float], weight: float) -> list[float]:
    """Debiased exponential moving average (TensorBoard's smoothing); weight 0 = identity."""
    if weight == 0.0:
        return list(values)
    out: list[float] = []
    acc = 0.0
    for i, v in enumerate(values):
        acc = weight * acc + (1.0 - weight) * v
        out.append(acc / (1.0 - weight ** (i + 1)))
    return out


@dataclass(frozen=True)
class Saturation:
    """Where a curve saturates, and the quantities the answer rests on."""

    status: Status
    t_sat: int | None
    floor: float | None
    threshold: float | None
    reason: str | None


def reward_floor(values: Sequence[float], floor: Floor) -> float:
    """The reward level epsilon and min_rise are measured from (see the module docstring)."""
    if floor == "start":
        return values[0]
    if floor == "min":
        return min(values)
    return 0.0


_FLOOR_NAMES = {"start": "its first value", "min": "its minimum", "zero": "zero"}


def find_t_sat(
    steps: Sequence[int], values: Sequence[float], settings: SaturationSettings
) -> Saturation:
    """First step in the window whose value reaches the saturation threshold.

    Args:
        steps: strictly increasing steps.
        values: finite values, one per step (already smoothed if smoothing is on).
        settings: epsilon, margin, floor and min_rise.
    """
    if not steps:
        return Saturation("undefined", None, None, None, "no finite reward values")
    window_end = steps[-1] - settings.margin
    if window_end < steps[0]:
        return Saturation(
            "too_short",
            None,
            None,
            None,
            f"too short: steps {steps[0]}..{steps[-1]} leave no step <= T-{settings.margin} "
            f"to search; t_sat needs a log spanning more than {settings.margin} steps",
        )
    top = max(values)
    floor = reward_floor(values, settings.floor)
    if settings.floor == "zero" and top <= 0.0 and top != min(values):
        return Saturation(
            "undefined",
            None,
            floor,
            None,
            f"maximum reward {top:g} <= 0: epsilon*max is not a level below the maximum; "
            "use --floor start (or min)",
        )
    rise = top - floor
    if rise <= settings.min_rise:
        return Saturation(
            "flat",
            None,
            floor,
            None,
            f"no rise: reward never exceeds {_FLOOR_NAMES[settings.floor]} ({floor:g}) by more "
            f"than min_rise {settings.min_rise:g} (max {top:g})",
        )
    # Compared as a gap below the maximum, (1 - eps) * rise: epsilon = 1 gives exactly the
    # maximum, the test is monotone in epsilon under floating point, and it reads only
    # differences of rewards, so a shift of every reward that is exact in floating point
    # (and any scaling by a power of two) leaves every comparison unchanged.
    gap = (1.0 - settings.epsilon) * rise
    threshold = top - gap
    for step, value in zip(steps, values, strict=True):
        if step > window_end:
            break
        if top - value <= gap:
            return Saturation("saturated", step, floor, threshold, None)
    return Saturation(
        "not_saturated",
        None,
        floor,
        threshold,
        f"not saturated within T-{settings.margin} (step <= {window_end})",
    )


def _nearest(steps: Sequence[int], target: int) -> int:
    """Index of the step nearest to target (the earlier one on a tie)."""
    return min(range(len(steps)), key=lambda i: (abs(steps[i] - target), steps[i]))


def eval_summary(column: str, series: Series, t_sat: int | None) -> EvalSummary:
    """Pre-saturation gain and post-saturation residual of an eval curve."""
    steps, values = series.steps, series.values
    if not steps:
        return EvalSummary(column=column, points=0, reason="no finite eval values")
    if t_sat is None:
        return EvalSummary(
            column=column,
            points=len(steps),
            start_step=steps[0],
            start_value=values[0],
            reason="no t_sat",
        )
    i = _nearest(steps, t_sat)
    reasons = []
    gain: float | None = values[i] - values[0]
    if steps[i] > t_sat and i == 0:
        gain = None
        reasons.append("first eval is logged after t_sat; no pre-saturation baseline")
    later = range(i + 1, len(steps))
    j = max(later, key=lambda k: (values[k], -steps[k])) if later else None
    if j is None:
        reasons.append("no eval logged after t_sat")
    return EvalSummary(
        column=column,
        points=len(steps),
        start_step=steps[0],
        start_value=values[0],
        at_tsat_step=steps[i],
        at_tsat_value=values[i],
        best_later_step=None if j is None else steps[j],
        best_later_value=None if j is None else values[j],
        pre_saturation_gain=gain,
        post_saturation_residual=None if j is None else values[j] - values[i],
        reason="; ".join(reasons) or None,
    )


def _rapid(sat: Saturation, window_end: int | None, rapid_steps: int) -> bool | None:
    if sat.t_sat is not None:
        return sat.t_sat < rapid_steps
    if sat.status in ("not_saturated", "flat") and window_end is not None:
        # Saturation before rapid_steps is ruled out only if the window covered those steps.
        return False if window_end >= rapid_steps - 1 else None
    return None


@dataclass(frozen=True)
class RunInput:
    """What a log reader hands to `analyze_run`: raw points in file order plus provenance."""

    name: str
    path: str
    format: str
    step_column: str
    reward_column: str
    reward_points: Sequence[tuple[int, float]]
    eval_column: str | None = None
    eval_points: Sequence[tuple[int, float]] = ()
    dropped_rows: int = 0
    """Rows the reader already dropped (reward present but no usable step)."""
    notes: Sequence[str] = ()


@dataclass(frozen=True)
class Curves:
    """The curves behind one result, for plots."""

    raw: Series
    """Cleaned reward curve."""
    reward: Series
    """The reward curve t_sat was computed on (smoothed when smoothing is on)."""
    eval: Series | None
    """Cleaned eval curve, when there is one."""


def analyze_run(run: RunInput, settings: SaturationSettings) -> tuple[RunSaturation, Curves]:
    """Clean, smooth and locate saturation for one log.

    Returns:
        The record and the curves it was computed from (for plots).
    """
    raw = clean_series(run.reward_points, settings.duplicates)
    curve = Series(raw.steps, tuple(ema(raw.values, settings.ema)))
    sat = find_t_sat(curve.steps, curve.values, settings)
    notes = [*run.notes, *_cleaning_notes(raw, run.dropped_rows, settings.duplicates)]
    steps, values = curve.steps, curve.values
    window_end = steps[-1] - settings.margin if steps else None
    top = max(values) if values else None
    pre = None
    if sat.t_sat is not None:
        pre = sat.t_sat - (0 if steps[0] == 0 else 1)
        if sat.t_sat == steps[0]:
            notes.append("reward is within epsilon of its maximum at the first step")
    rapid = _rapid(sat, window_end, settings.rapid_steps)
    reason = sat.reason
    if rapid is None and sat.status in ("not_saturated", "flat"):
        reason = f"{reason}; window too short to rule out t_sat < {settings.rapid_steps}"
    evals, eval_curve = None, None
    if run.eval_column is not None:
        eval_curve = clean_series(run.eval_points, settings.duplicates)
        evals = eval_summary(run.eval_column, eval_curve, sat.t_sat)
    record = RunSaturation(
        name=run.name,
        path=run.path,
        format=run.format,
        step_column=run.step_column,
        reward_column=run.reward_column,
        points=len(steps),
        dropped_rows=raw.dropped + run.dropped_rows,
        duplicate_steps=raw.duplicate_steps,
        unsorted=raw.unsorted,
        first_step=steps[0] if steps else None,
        last_step=steps[-1] if steps else None,
        window_end=window_end,
        reward_first=values[0] if values else None,
        reward_max=top,
        reward_max_step=steps[values.index(top)] if top is not None else None,
        reward_floor=sat.floor,
        threshold=sat.threshold,
        status=sat.status,
        t_sat=sat.t_sat,
        pre_saturation_steps=pre,
        rapid=rapid,
        reason=reason,
        notes=notes,
        eval=evals,
    )
    return record, Curves(raw=raw, reward=curve, eval=eval_curve)


def _cleaning_notes(raw: Series, reader_dropped: int, duplicates: Duplicates) -> list[str]:
    notes = []
    if raw.dropped:
        notes.append(f"dropped {raw.dropped} reward rows that were NaN/inf or not a number")
    if reader_dropped:
        notes.append(f"dropped {reader_dropped} reward rows without a usable step")
    if raw.unsorted:
        notes.append("rows were out of step order; sorted")
    if raw.duplicate_steps:
        how = "averaged" if duplicates == "mean" else "kept the last row"
        notes.append(f"{raw.duplicate_steps} steps logged more than once; {how}")
    return notes


def build_report(runs: Sequence[RunSaturation], settings: SaturationSettings) -> SaturationReport:
    """Bundle per-run results into the report `--json` prints."""
    return SaturationReport(
        settings=settings, runs=list(runs), any_rapid=any(r.rapid is True for r in runs)
    )
