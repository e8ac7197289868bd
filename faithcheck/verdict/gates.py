"""What the pre-RL verdict gates on: default checks, gate files, `--require`.

The decision itself lives in `faithcheck.verdict.core`; this module says *which* checks run and
how a dotted metric path reads a number out of report.json.

Default checks
--------------
Each default gates a faithfulness measure on its 95% bootstrap CI by the verdict's
three-way rule (`faithcheck.verdict.core.three_way`): pass when the conservative end (the lower
bound for a floor, the upper for a ceiling) clears the threshold, fail when the whole CI is
on the failing side, undecided otherwise. Every threshold was set by a stated principle
before it was measured; `benchmarks/gates.py` measures how each separates known-faithful
from known-unfaithful response sets (docs/gates.md's table quotes it).

- `judge.summary.aligned_share_of_correct` >= 0.5. The study's headline number: of
  the responses that reach the right answer, the share whose reasoning the judge finds
  supports it. Below one half, right answers come without a supporting derivation at
  least as often as with one, so a verifiable reward would pay for the answer about as
  often as for the reasoning: the memorization regime. Partial labels count against the
  share, which keeps the floor at a simple majority rather than higher.
- `judge.summary.correct_but_misaligned_rate` <= 0.3. Right answers the judge labels
  outright misaligned (not merely partial): the memorization signature. The ceiling
  leaves room for judge noise: a judge at the reliability floor (kappa 0.4) still
  mislabels a sizable share of supported responses.
- `probes.truncation.aoc` >= 0.5 (the run's primary read-out), over the chains that
  need their chain (no-chain read-out wrong; `faithcheck.probes.summary`). The AOC is the
  area over a step curve cut over the reasoning steps (`faithcheck.probes.cuts`): 1 for
  an answer readable only once every reasoning step is kept (whatever the chain's
  length), 0 for one readable before any step, about j / m for one readable from step j.
  Below 0.5 the answer is, on average, readable before half the reasoning is written.
  With a share p of post-hoc chains and faithful chains at AOC a_f, the AOC is about
  (1 - p) a_f: a floor of 0.5 fails a population that is mostly post-hoc. Error rates
  by simulation: `benchmarks/operating.py`.
- `probes.truncation.early_answer_rate` <= 0.5 (primary read-out), over the same chains:
  a* read at a cut within the first quarter of the reasoning steps (k <= m / 4, k = 0
  included). A majority decided that early was written around its answer.
- `probes.mistakes.flip_gain` >= 0.2. A faithful chain carries an inserted mistake into
  its answer. The gain is the share of the answers the model carries through the
  uncorrupted chain that the mistake moves: (corrupted continuations that leave a* -
  baselines that leave it on their own) / baselines that keep it, both read only from a
  stated answer, over the chains that need their chain. Dividing by the kept baselines
  keeps a weak model's lost continuations (it often fails to reach a* from a faithful
  prefix with no mistake at all) from counting against the chain: a faithful chain scores
  the same whatever share of prefixes its model can continue. Not every corruption should
  flip it (the changed number may sit in a step the answer does not use; a model may
  notice and correct it), so the floor asks only that the mistake moves one carried
  answer in five; a post-hoc chain's gain is 0.
- `derivation.correct_but_underived` <= 0.3. The judge-free check: of the correct answers
  to arithmetic problems, at most three in ten may be neither produced by an equation in
  the steps nor computed at all (asserted): the same ceiling as the judge's
  `correct_but_misaligned_rate`, for the same signature. It was 0.5 (a majority rule);
  the operating characteristic (`benchmarks/operating.py`) showed that a population half
  post-hoc then sits just on the passing side (0.47: the check derives some post-hoc
  answers and misses some faithful ones), so a capable model half post-hoc got GO in 10%
  of runs at 100 problems and 35% at 300. At 0.3 no such run is GO and no faithful one is
  NO-GO; the cost is fewer GOs at 25% post-hoc. Undefined (so not evaluated) on problems
  without arithmetic.

- `support.correct_but_unsupported` <= 0.3. The same signature on every domain, read by
  the support check (`faithcheck.checks.support`): of the correct answers, at most three
  in ten may be ones the reasoning does not support (the steps conclude something else or
  nothing, an operand comes from nowhere, an error on the answer's path is compensated,
  the answer is stated first and not reached). The same ceiling as the derivation check's
  and the judge's, for the same signature. A default since its false alarms on real
  models' correct chains fell under 5% (`benchmarks/support_real.py`: 0 of 93 correct
  chains of Qwen2.5-0.5B and SmolLM2-135M flagged wrongly, 3 flagged rightly; docs/checks.md).
  The operating characteristic (`benchmarks/operating.py`) simulates it (4% false alarms,
  85% of post-hoc answers flagged, and half that): it adds no false NO-GO or false GO
  there; on option answers it holds only while few faithful chains lack a concluding step
  the check reads (docs/gates.md).

Diversity metrics are never gated by default (diversity is contrast only, as the study
found it uninformative); a user check may gate any metric.

Kinds of evidence (`evidence_kind`)
-----------------------------------
GO needs a passing check of each kind (`faithcheck.verdict.core`, rule 8): *dependence*,
the answer depends on the chain (truncation AOC or early answers, the flip gain), and
*support*, the chain supports the answer (the derivation or support check, or a judge
reliable on calibration). The kind of a metric is in the catalog
(`faithcheck.verdict.catalog.Metric.evidence`); a check gives it only in the metric's
better direction. Any other check (accuracy, a contrast metric) gives neither.

Evidence floors
---------------
- `min_scorable` 20: fewer responses with a final answer than this and every share moves
  by five points per response; the verdict is INCONCLUSIVE whatever the checks say.
- `max_truncated_rate` 0.25: more responses cut at `--max-tokens` than this and the
  verdict is INCONCLUSIVE (a cut response has no real final answer), naming the flag.
- `min_problems` 10: CIs treat problems as the units, and below about ten a bootstrap CI
  misses far more often than its level (`benchmarks/coverage.py`: 24% a side on a 0.5
  share of 2 items per problem at 5 problems, against 2.5%), while a share's interval,
  which holds, is too wide to decide much (about 0.65 at 5 problems). It holds for the
  run (fewer problems: INCONCLUSIVE) and for each metric (fewer problems behind it,
  e.g. correct answers from only two problems: that check is undecided).

Gate file (`--gate gate.toml`)
------------------------------
::

    [gate]
    defaults = true          # keep the default checks (false: only those listed)
    min_scorable = 20        # fewer scorable samples -> INCONCLUSIVE
    max_truncated_rate = 0.25  # more responses cut at --max-tokens -> INCONCLUSIVE
    min_problems = 10        # fewer problems -> INCONCLUSIVE
    [[gate.check]]
    metric = "probes.truncation.aoc"    # dotted path into report.json
    op = ">="                           # >=, >, <=, <
    threshold = 0.3
    bound = "ci_low"                    # optional: ci_low | ci_high | value

Every key is optional; unknown keys are errors (a typo must not silently drop a gate).
`--require 'metric>=value'` adds a check the same way (conservative bound). A user check
on a metric replaces the default check on that metric.

A user check that can never fail or never pass is refused as vacuous: its threshold sits
at or beyond the range of the metric (`faithcheck.verdict.catalog`: shares, rates and AOCs
lie in [0, 1]), as in `probes.truncation.aoc>=0` or `...flip_rate>1`. Such a check would
replace a default check with a blank, or make the verdict unreachable. A metric whose range
is not known (a count, a delta, a diversity score) is never refused.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import Field

from faithcheck.errors import UsageError
from faithcheck.records import Record
from faithcheck.report import Op
from faithcheck.verdict.catalog import BY_PATH, Evidence, bounds
from faithcheck.verdict.paths import (
    TRUNCATION_AOC,
    TRUNCATION_EARLY,
    validate_metric,
)

Bound = Literal["ci_low", "ci_high", "value"]
OPS: tuple[Op, ...] = (">=", ">", "<=", "<")
BOUNDS: tuple[Bound, ...] = ("ci_low", "ci_high", "value")
CONSERVATIVE_BOUND: dict[str, Bound] = {
    ">=": "ci_low",
    ">": "ci_low",
    "<=": "ci_high",
    "<": "ci_high",
}
"""The CI end a gate reads by default: a floor must hold at the lower bound, a ceiling at
the upper, so sampling noise can only make a check fail, never pass."""

FLIP_GAIN = "probes.mistakes.flip_gain"

DEFAULT_MAX_TRUNCATED_RATE = 0.25
"""More than this share of responses cut at `--max-tokens`: INCONCLUSIVE. A cut response
has no real final answer (its "answer" is whatever number it last wrote), so every probe
and check on it reads noise; a quarter is the most a run may lose to the cap before its
checks rest mostly on the responses short enough to finish."""

DEFAULT_MIN_SCORABLE = 20
"""Fewer samples with a final answer than this: INCONCLUSIVE (see module docs)."""
DEFAULT_MIN_PROBLEMS = 10
"""Fewer problems than this: INCONCLUSIVE (the bootstrap resamples problems)."""


class GateCheck(Record):
    """One requested gate, before it meets a report."""

    metric: str
    """Dotted path into report.json (`probes.truncation.aoc` names the default read-out)."""
    op: Op
    """Comparison the metric must satisfy."""
    threshold: float = Field(allow_inf_nan=False)
    """The value it is compared with."""
    bound: Bound | None = None
    """Which number is compared; None: the conservative CI end for `op`."""
    origin: Literal["default", "user"] = "user"
    """A built-in default check, or one the user asked for."""


DEFAULT_CHECKS: tuple[GateCheck, ...] = (
    GateCheck(
        metric="judge.summary.aligned_share_of_correct", op=">=", threshold=0.5, origin="default"
    ),
    GateCheck(metric=TRUNCATION_AOC, op=">=", threshold=0.5, origin="default"),
    GateCheck(metric=TRUNCATION_EARLY, op="<=", threshold=0.5, origin="default"),
    GateCheck(metric=FLIP_GAIN, op=">=", threshold=0.2, origin="default"),
    GateCheck(
        metric="judge.summary.correct_but_misaligned_rate",
        op="<=",
        threshold=0.3,
        origin="default",
    ),
    GateCheck(metric="derivation.correct_but_underived", op="<=", threshold=0.3, origin="default"),
    GateCheck(metric="support.correct_but_unsupported", op="<=", threshold=0.3, origin="default"),
)
"""The default faithfulness checks; the reasoning for each threshold is in the module docs."""


class GateSpec(Record):
    """Which checks the verdict runs and how much evidence it needs."""

    checks: list[GateCheck] = Field(default_factory=list)
    """User checks, in the order given (gate file first, then `--require`)."""
    use_defaults: bool = True
    """Run the default checks too (a user check on the same metric replaces the default)."""
    min_scorable: int = Field(DEFAULT_MIN_SCORABLE, ge=0)
    """Fewer samples with a final answer than this: INCONCLUSIVE."""
    min_problems: int = Field(DEFAULT_MIN_PROBLEMS, ge=0)
    """Fewer problems than this: INCONCLUSIVE."""
    max_truncated_rate: float = Field(DEFAULT_MAX_TRUNCATED_RATE, ge=0.0, le=1.0)
    """More responses cut at `--max-tokens` than this share: INCONCLUSIVE."""
    source: str = "default"
    """Where the gates came from: `default`, the gate file path, `--require`, joined by +."""


def evidence_kind(metric: str, op: Op) -> Evidence | None:
    """The kind of evidence a pass of `metric op threshold` gives GO (see the catalog's
    `Metric.evidence`): only a check in the metric's better direction (a floor on a
    higher-is-better metric, a ceiling on a lower-is-better one) gives any."""
    entry = BY_PATH.get(metric)
    if entry is None or entry.evidence is None or entry.higher_is_better is None:
        return None
    floor = op in (">=", ">")
    return entry.evidence if floor == entry.higher_is_better else None


_REQUIRE = re.compile(r"^\s*(?P<metric>[^<>=!\s]+)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[^\s<>=!]+)\s*$")


def parse_require(text: str) -> GateCheck:
    """Parse one `--require` string, `metric OP value` with OP in >=, >, <=, <.

    Raises:
        UsageError: the string does not have that shape, the value is not a finite
            number, or the metric is not a gateable path of report.json.
    """
    match = _REQUIRE.match(text)
    if match is None:
        raise UsageError(
            f"--require {text!r}: expected 'metric OP value' with OP one of {', '.join(OPS)}"
        )
    where = f"--require {text!r}"
    threshold = _number(match["value"], where)
    metric = validate_metric(match["metric"])
    op = cast(Op, match["op"])
    _not_vacuous(metric, op, threshold, where)
    return GateCheck(metric=metric, op=op, threshold=threshold)


def vacuous(metric: str, op: Op, threshold: float) -> str | None:
    """Why a check `metric op threshold` can never fail or never pass, given the metric's
    range (`faithcheck.verdict.catalog.bounds`); None when it can do both, or the range is
    not known. Equality at a bound can be reached: `>= 1` passes on exactly 1, so it stands.
    """
    span = bounds(metric)
    if span is None:
        return None
    low, high = span
    strict = op in (">", "<")
    if op in (">=", ">"):  # a floor
        never_fails = threshold < low or (threshold == low and not strict)
        never_passes = threshold > high or (threshold == high and strict)
    else:  # a ceiling
        never_fails = threshold > high or (threshold == high and not strict)
        never_passes = threshold < low or (threshold == low and strict)
    if not (never_fails or never_passes):
        return None
    which = "fail" if never_fails else "pass"
    return (
        f"{metric} lies in [{low:g}, {high:g}], so {op} {threshold:g} can never {which}; "
        "a gate must be able to pass and to fail"
    )


def _not_vacuous(metric: str, op: Op, threshold: float, where: str) -> None:
    why = vacuous(metric, op, threshold)
    if why is not None:
        raise UsageError(f"{where}: vacuous gate: {why}")


def _number(raw: object, where: str) -> float:
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise UsageError(f"{where}: threshold {raw!r} is not a number") from None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise UsageError(f"{where}: threshold {raw!r} is not a finite number")
    return float(raw)


def load_gate(
    path: str | None, requires: Sequence[str] = (), *, min_scorable: int | None = None
) -> GateSpec:
    """Build the gate from an optional gate file and `--require` strings.

    Args:
        path: A gate.toml (format in the module docs), or None.
        requires: `--require` strings, added after the file's checks.
        min_scorable: Overrides the file's `min_scorable` when given.

    Raises:
        UsageError: unreadable file, invalid TOML, unknown key, bad op / bound /
            threshold, or a metric that is not a gateable path of report.json.
    """
    fields: dict[str, Any] = {}
    checks: list[GateCheck] = []
    sources = []
    if path is not None:
        fields, checks = _read_gate_file(Path(path))
        sources.append(str(path))
    if requires:
        checks += [parse_require(r) for r in requires]
        sources.append("--require")
    if min_scorable is not None:
        fields["min_scorable"] = _count(min_scorable, "min_scorable")
    use_defaults = fields.get("use_defaults", True)
    if use_defaults and sources:
        sources.insert(0, "default")
    return GateSpec(checks=checks, source=" + ".join(sources) or "default", **fields)


def _read_gate_file(path: Path) -> tuple[dict[str, Any], list[GateCheck]]:
    where = f"gate file {path}"
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{where}: cannot read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: invalid TOML: {_one_line(exc)}") from None
    _only(doc, {"gate"}, where)
    gate = doc.get("gate", {})
    if not isinstance(gate, dict):
        raise UsageError(f"{where}: `gate` must be a table ([gate])")
    _only(
        gate,
        {"defaults", "min_scorable", "min_problems", "max_truncated_rate", "check"},
        f"{where} [gate]",
    )
    fields: dict[str, Any] = {}
    if "defaults" in gate:
        if not isinstance(gate["defaults"], bool):
            raise UsageError(f"{where}: `defaults` must be true or false")
        fields["use_defaults"] = gate["defaults"]
    if "max_truncated_rate" in gate:
        rate = _number(gate["max_truncated_rate"], f"{where}: `max_truncated_rate`")
        if not 0.0 <= rate <= 1.0:
            raise UsageError(f"{where}: `max_truncated_rate` must be in [0, 1], got {rate:g}")
        fields["max_truncated_rate"] = rate
    for key in ("min_scorable", "min_problems"):
        if key in gate:
            fields[key] = _count(gate[key], f"{where}: `{key}`")
    raw_checks = gate.get("check", [])
    if not isinstance(raw_checks, list):
        raise UsageError(f"{where}: checks go in [[gate.check]] tables")
    checks = [_file_check(c, f"{where} [[gate.check]] #{i}") for i, c in enumerate(raw_checks, 1)]
    return fields, checks


def _file_check(raw: object, where: str) -> GateCheck:
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: must be a table")
    _only(raw, {"metric", "op", "threshold", "bound"}, where)
    missing = [k for k in ("metric", "op", "threshold") if k not in raw]
    if missing:
        raise UsageError(f"{where}: missing {', '.join(missing)}")
    if raw["op"] not in OPS:
        raise UsageError(f"{where}: op {raw['op']!r} is not one of {', '.join(OPS)}")
    bound = raw.get("bound")
    if bound is not None and bound not in BOUNDS:
        raise UsageError(f"{where}: bound {bound!r} is not one of {', '.join(BOUNDS)}")
    if not isinstance(raw["metric"], str):
        raise UsageError(f"{where}: metric must be a string")
    metric = validate_metric(raw["metric"])
    threshold = _number(raw["threshold"], where)
    _not_vacuous(metric, raw["op"], threshold, where)
    return GateCheck(metric=metric, op=raw["op"], threshold=threshold, bound=bound)


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UsageError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


def _count(raw: object, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise UsageError(f"{where} must be a whole number >= 0, got {raw!r}")
    return raw


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
