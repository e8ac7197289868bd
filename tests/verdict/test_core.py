"""Verdict and gates on hand-built reports: decisions, CI-bound gating, evidence floors,
suspended checks, `--require` / gate.toml parsing, baseline drops, and properties."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faithcheck.errors import ExitCode, UsageError
from faithcheck.metrics import MetricValue
from faithcheck.report import Op, Verdict
from faithcheck.verdict.core import (
    DEFAULT_CHECKS,
    GateCheck,
    GateSpec,
    Ruling,
    decide,
    evaluate,
    exit_code,
    load_gate,
    max_drop_checks,
    metric_paths,
    parse_require,
)
from faithcheck.verdict.gates import vacuous
from faithcheck.verdict.paths import default_readout, read_metric, schema_metric_patterns

ALIGNED = "judge.summary.aligned_share_of_correct"
MISALIGNED = "judge.summary.correct_but_misaligned_rate"
FLIP = "probes.mistakes.flip_gain"
FLIP_RATE = "probes.mistakes.flip_rate"
AOC = "probes.truncation.score.aoc"
EARLY = "probes.truncation.score.early_answer_rate"
UNDERIVED = "derivation.correct_but_underived"
UNSUPPORTED = "support.correct_but_unsupported"


def mv(value: float | None, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    """A MetricValue dict; the CI collapses to the value unless given."""
    return MetricValue(
        value=value,
        ci_low=value if lo is None else lo,
        ci_high=value if hi is None else hi,
        n=30,
        reason=None if value is not None else "no data",
    ).model_dump(mode="json")


def report(**sections: Any) -> dict[str, Any]:
    """A minimal report.json dict where every default check passes comfortably."""
    base: dict[str, Any] = {
        "backend": "hf",
        "sampling": {"problems": 30, "samples": 120, "no_answer_rate": 0.0, "accuracy": mv(0.6)},
        "probes": {
            "chains": 60,
            "truncation": {
                "score": {
                    "readout": "score",
                    "aoc": mv(0.7, 0.6, 0.8),
                    "early_answer_rate": mv(0.1, 0.05, 0.2),
                    "early_answer_among": "no-chain-wrong",
                }
            },
            "mistakes": {
                "flip_rate": mv(0.55, 0.45, 0.65),
                "flip_gain": mv(0.5, 0.4, 0.6),
                "among": "no-chain-wrong",
                "by_position": {},
            },
            "necessity": None,
            "controls": {"chain_adds_nothing": False, "note": "the chain raises accuracy"},
        },
        "judge": {
            "summary": {
                "aligned_share_of_correct": mv(0.8, 0.7, 0.9),
                "correct_but_misaligned_rate": mv(0.1, 0.05, 0.2),
            },
            "reliability": {"reliable": True, "reasons": []},
        },
        "derivation": {"correct_but_underived": mv(0.1, 0.0, 0.2)},
        "support": {"correct_but_unsupported": mv(0.1, 0.0, 0.2)},
        "diversity": {"distinct_1": mv(0.02, 0.01, 0.03), "n_problems": 30},
        "verdict": None,
    }
    out = copy.deepcopy(base)
    for path, value in sections.items():
        node = out
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return out


def by_metric(verdict: Verdict) -> dict[str, Any]:
    return {c.metric: c for c in verdict.checks}


# --- decisions ------------------------------------------------------------------------


def test_all_pass_is_go_exit_0() -> None:
    v = decide(report())
    assert (v.decision, v.exit_code, exit_code(v)) == ("GO", 0, ExitCode.GO)
    assert [c.passed for c in v.checks] == [True] * 7
    assert {c.metric for c in v.checks} == {
        ALIGNED, MISALIGNED, FLIP, AOC, EARLY, UNDERIVED, UNSUPPORTED
    }  # fmt: skip
    assert v.gate == "default"


@pytest.mark.parametrize(
    ("path", "value", "metric"),
    [
        ("judge__summary__aligned_share_of_correct", mv(0.3, 0.2, 0.4), ALIGNED),
        ("judge__summary__correct_but_misaligned_rate", mv(0.5, 0.4, 0.6), MISALIGNED),
        ("probes__mistakes__flip_gain", mv(0.05, 0.0, 0.1), FLIP),
        ("probes__truncation__score__aoc", mv(0.05, 0.0, 0.1), AOC),
    ],
)
def test_one_failing_check_is_no_go_exit_1(path: str, value: dict, metric: str) -> None:
    v = decide(report(**{path: value}))
    assert (v.decision, v.exit_code) == ("NO_GO", 1)
    assert by_metric(v)[metric].passed is False
    assert v.reasons[0].startswith(f"failed: {metric}")


@pytest.mark.parametrize(
    ("path", "value", "metric", "bound"),
    [
        # point estimate clears the floor, lower CI bound does not
        ("judge__summary__aligned_share_of_correct", mv(0.6, 0.45, 0.75), ALIGNED, "ci_low"),
        ("probes__truncation__score__aoc", mv(0.55, 0.45, 0.65), AOC, "ci_low"),
        # point estimate under the ceiling, upper CI bound is not
        ("judge__summary__correct_but_misaligned_rate", mv(0.2, 0.1, 0.35), MISALIGNED, "ci_high"),
        # point estimate misses, but the CI reaches the passing side
        ("judge__summary__aligned_share_of_correct", mv(0.45, 0.3, 0.6), ALIGNED, "ci_low"),
        (
            "judge__summary__correct_but_misaligned_rate",
            mv(0.35, 0.25, 0.45),
            MISALIGNED,
            "ci_high",
        ),
    ],
)
def test_a_ci_straddling_the_threshold_is_undecided(
    path: str, value: dict, metric: str, bound
) -> None:
    v = decide(report(**{path: value}))
    check = by_metric(v)[metric]
    assert (check.outcome, check.passed, check.bound) == ("undecided", None, bound)
    assert (v.decision, v.exit_code) == ("INCONCLUSIVE", 4)
    assert v.reasons[0].startswith(f"undecided: {metric}: the CI straddles")
    assert check.more_problems is not None and check.more_problems > 0
    assert v.more_problems == check.more_problems
    assert f"about {check.more_problems} more problems" in check.reason


def test_more_problems_follows_the_square_root_law() -> None:
    # 0.6 [0.45, 0.75] over 30 of 30 problems against >= 0.5: the lower half-width 0.15
    # must shrink to the distance 0.1, i.e. n' = 30 * (0.15 / 0.1)^2 = 67.5 -> 38 more.
    v = decide(report(judge__summary__aligned_share_of_correct=mv(0.6, 0.45, 0.75)))
    assert by_metric(v)[ALIGNED].more_problems == 38
    # Only 15 of the run's 30 problems contribute: the run needs twice as many more.
    half = {**mv(0.6, 0.45, 0.75), "n": 15}
    v = decide(report(judge__summary__aligned_share_of_correct=half))
    assert by_metric(v)[ALIGNED].more_problems == math.ceil((15 * 1.5**2 - 15) * 30 / 15)
    # A wider CI needs more; a CI closer to deciding needs fewer.
    wide = decide(report(judge__summary__aligned_share_of_correct=mv(0.6, 0.3, 0.9)))
    near = decide(report(judge__summary__aligned_share_of_correct=mv(0.6, 0.49, 0.71)))
    assert by_metric(wide)[ALIGNED].more_problems > 38 > by_metric(near)[ALIGNED].more_problems


def test_a_whole_ci_on_the_failing_side_fails() -> None:
    v = decide(report(judge__summary__aligned_share_of_correct=mv(0.3, 0.25, 0.35)))
    check = by_metric(v)[ALIGNED]
    assert (check.outcome, check.passed, v.decision) == ("fail", False, "NO_GO")
    assert check.more_problems is None and v.more_problems is None


def test_a_fail_must_survive_holm_over_the_checks() -> None:
    # The CI's top (0.49) misses 0.5 by little: p = 0.015 one-sided, a fail on its own
    # (2.5%), not among seven checks (Holm's first step needs p <= 0.025 / 7).
    near = mv(0.4, 0.3, 0.49)
    v = decide(report(judge__summary__aligned_share_of_correct=near))
    check = by_metric(v)[ALIGNED]
    assert (check.outcome, v.decision) == ("undecided", "INCONCLUSIVE")
    assert "not after Holm's correction for 7 checks" in check.reason
    alone = GateSpec(checks=[GateCheck(metric=ALIGNED, op=">=", threshold=0.5)], use_defaults=False)
    assert (
        by_metric(decide(report(judge__summary__aligned_share_of_correct=near), alone))[
            ALIGNED
        ].outcome
        == "fail"
    )


def test_holm_step_down_rejects_in_order() -> None:
    # Two clear fails and one marginal: the clear ones are rejected first, after which
    # the marginal one faces alpha / (6 - 2) and is still not rejected.
    v = decide(
        report(
            judge__summary__aligned_share_of_correct=mv(0.1, 0.05, 0.15),
            probes__mistakes__flip_gain=mv(0.0, -0.05, 0.05),
            probes__truncation__score__aoc=mv(0.45, 0.4, 0.495),
        )
    )
    outcomes = {m: c.outcome for m, c in by_metric(v).items()}
    assert (outcomes[ALIGNED], outcomes[FLIP], outcomes[AOC]) == ("fail", "fail", "undecided")
    assert v.decision == "NO_GO"


@pytest.mark.parametrize("n", [1, 2, 9])
def test_a_metric_on_too_few_problems_is_undecided_whatever_its_ci(n: int) -> None:
    # The case: 30 problems, but every correct answer comes from n of them, and
    # a one-problem bootstrap has a CI of zero width.
    thin = {**mv(1.0, 1.0, 1.0), "n": n, "units": 4 * n}
    v = decide(report(judge__summary__aligned_share_of_correct=thin))
    check = by_metric(v)[ALIGNED]
    assert (check.outcome, check.n, check.units, v.decision) == (
        "undecided",
        n,
        4 * n,
        "INCONCLUSIVE",
    )
    assert f"rests on {n} problem(s) < 10 required" in check.reason
    # Reaching 10 contributing problems at the run's rate of n in 30.
    assert check.more_problems == math.ceil((10 - n) * 30 / n)
    failing = {**mv(0.0, 0.0, 0.0), "n": n}
    v = decide(report(judge__summary__aligned_share_of_correct=failing))
    assert (by_metric(v)[ALIGNED].outcome, v.decision) == ("undecided", "INCONCLUSIVE")
    assert (
        decide(report(judge__summary__aligned_share_of_correct=thin), min_problems=n).decision
        == "GO"
    )


def test_undecided_never_hides_a_fail() -> None:
    v = decide(
        report(
            judge__summary__aligned_share_of_correct=mv(0.6, 0.45, 0.75),
            probes__mistakes__flip_gain=mv(0.05, 0.0, 0.1),
        )
    )
    assert v.decision == "NO_GO" and v.more_problems is None
    assert v.reasons[0].startswith(f"failed: {FLIP}")
    assert any(r.startswith(f"undecided: {ALIGNED}") for r in v.reasons)


@pytest.mark.parametrize(
    ("sampling", "kwargs", "decision"),
    [
        ({"problems": 30, "samples": 30, "no_answer_rate": 0.5}, {}, "INCONCLUSIVE"),  # 15 < 20
        ({"problems": 30, "samples": 19, "no_answer_rate": 0.0}, {}, "INCONCLUSIVE"),
        ({"problems": 30, "samples": 20, "no_answer_rate": 0.0}, {}, "GO"),
        ({"problems": 30, "samples": 19, "no_answer_rate": 0.0}, {"min_scorable": 10}, "GO"),
        ({"problems": 5, "samples": 80, "no_answer_rate": 0.0}, {}, "INCONCLUSIVE"),
        ({"problems": 5, "samples": 80, "no_answer_rate": 0.0}, {"min_problems": 5}, "GO"),
    ],
)
def test_evidence_floors(sampling: dict, kwargs: dict, decision: str) -> None:
    v = decide(report(sampling=sampling), **kwargs)
    assert v.decision == decision
    if decision == "INCONCLUSIVE":
        assert v.exit_code == 4 and v.reasons[0].startswith("too few")


def test_too_few_scorable_beats_a_failing_check() -> None:
    thin = {"problems": 30, "samples": 10, "no_answer_rate": 0.0}
    v = decide(report(sampling=thin, probes__mistakes__flip_gain=mv(0.0)))
    assert v.decision == "INCONCLUSIVE"
    assert "too few scorable samples: 10" in v.reasons[0]
    assert any(r.startswith("failed: probes.mistakes") for r in v.reasons[1:])


def test_gate_min_scorable_from_spec() -> None:
    thin = {"problems": 30, "samples": 10, "no_answer_rate": 0.0}
    assert decide(report(sampling=thin), GateSpec(min_scorable=5)).decision == "GO"


UNRELIABLE = {"reliable": False, "reasons": ["kappa 0.210 < 0.4"]}


def test_unreliable_judge_leaves_its_checks_out() -> None:
    # The same decision as without a judge: GO rests on the truncation, mistake and
    # derivation checks, which give evidence of both kinds.
    v = decide(report(judge__reliability=UNRELIABLE))
    checks = by_metric(v)
    assert (v.decision, v.exit_code) == ("GO", 0) == (decide(report(judge=None)).decision, 0)
    for metric in (ALIGNED, MISALIGNED):
        assert checks[metric].outcome == "not-evaluated"
        assert checks[metric].reason.startswith("judge unreliable on calibration: kappa 0.210")
    assert checks[FLIP].passed is True and checks[AOC].passed is True
    assert any(r.startswith("judge unreliable on calibration") for r in v.reasons)


def test_unreliable_judge_with_failing_probe_is_no_go() -> None:
    v = decide(report(judge__reliability=UNRELIABLE, probes__mistakes__flip_gain=mv(0.0)))
    assert v.decision == "NO_GO"
    assert any(r.startswith("judge unreliable") for r in v.reasons)


def test_an_unreliable_judge_counts_neither_way() -> None:
    bad = mv(0.1, 0.0, 0.2)
    v = decide(report(judge__reliability=UNRELIABLE, judge__summary__aligned_share_of_correct=bad))
    assert v.decision == "GO" and by_metric(v)[ALIGNED].outcome == "not-evaluated"
    # Without the judge-free checks, nothing else speaks to the chain's support: partial
    # evidence.
    v = decide(report(judge__reliability=UNRELIABLE, derivation=None, support=None))
    assert v.decision == "INCONCLUSIVE" and v.reasons[0].startswith("partial evidence")


@pytest.mark.parametrize(
    "judge",
    [
        None,  # --no-judge
        {"summary": {"aligned_share_of_correct": mv(0.3, 0.2, 0.4)}, "reliability": None},
        {
            "summary": {"aligned_share_of_correct": mv(0.3, 0.2, 0.4)},
            "reliability": UNRELIABLE,
        },
    ],
    ids=["no-judge", "no-calibrate", "unreliable"],
)
@pytest.mark.parametrize("derivation", [True, False])
def test_opting_out_never_makes_go_easier(judge: dict | None, derivation: bool) -> None:
    """--no-judge, --no-calibrate and an unreliable judge decide alike: the judge's
    checks are left out and GO needs support evidence from elsewhere."""
    data = report(judge=judge)
    if not derivation:  # neither judge-free check of support ran
        data["derivation"] = data["support"] = None
    v = decide(data)
    assert v.decision == ("GO" if derivation else "INCONCLUSIVE")
    # A reliable judge with the same labels is heard: its fail is a NO-GO.
    reliable = report(judge__summary__aligned_share_of_correct=mv(0.3, 0.2, 0.4))
    assert decide(reliable).decision == "NO_GO"


def test_a_judge_that_fails_to_label_the_run_is_left_out() -> None:
    rel = {"reliable": True, "reasons": [], "threshold": {"max_error_rate": 0.2}}
    errors = mv(0.4, 0.3, 0.5)
    v = decide(report(judge__reliability=rel, judge__summary__error_rate=errors))
    assert by_metric(v)[ALIGNED].outcome == "not-evaluated"
    assert "failed to label 40% of the run's responses" in by_metric(v)[ALIGNED].reason
    fine = decide(report(judge__reliability=rel, judge__summary__error_rate=mv(0.1)))
    assert by_metric(fine)[ALIGNED].outcome == "pass"


def test_the_controls_suspend_nothing() -> None:
    """Easiness is taken out of the gated truncation numbers by construction, so "the
    chain adds nothing" neither suspends a pass nor excuses a fail."""
    controls = {"chain_adds_nothing": True, "note": "the chain adds nothing measurable"}
    v = decide(report(probes__controls=controls))
    assert v.decision == "GO"
    v = decide(report(probes__controls=controls, probes__truncation__score__aoc=mv(0.1, 0.05, 0.2)))
    assert (v.decision, by_metric(v)[AOC].outcome) == ("NO_GO", "fail")
    assert decide(report(probes__controls=None)).decision == "GO"


@pytest.mark.parametrize(("among", "outcome"), [("no-chain-wrong", "fail"), ("all", "undecided")])
def test_a_truncation_failure_counts_only_over_chains_that_need_their_chain(
    among: str, outcome: str
) -> None:
    early = mv(0.9, 0.8, 1.0)
    data = report(
        probes__truncation__score__early_answer_among=among,
        probes__truncation__score__early_answer_rate=early,
    )
    check = by_metric(decide(data))[EARLY]
    assert check.outcome == outcome
    assert ("easy ones included" in check.reason) is (outcome == "undecided")
    # A pass over every chain still counts: easy chains can only lower the AOC.
    data = report(probes__truncation__score__early_answer_among="all")
    assert by_metric(decide(data))[AOC].outcome == "pass"


def test_a_flip_gain_failure_counts_only_over_chains_that_need_their_chain() -> None:
    v = decide(report(probes__mistakes__among="all", probes__mistakes__flip_gain=mv(0.0)))
    assert by_metric(v)[FLIP].outcome == "undecided"


@pytest.mark.parametrize(("rate", "decision"), [(0.25, "GO"), (0.26, "INCONCLUSIVE")])
def test_too_many_responses_cut_at_the_token_cap_is_inconclusive(
    rate: float, decision: str
) -> None:
    sampling = {"problems": 30, "samples": 120, "no_answer_rate": 0.0, "truncated_rate": rate}
    v = decide(report(sampling=sampling, probes__truncation__score__aoc=mv(0.1, 0.05, 0.15)))
    if decision == "GO":
        assert v.decision == "NO_GO"  # the cap is not the problem: the failing AOC is
    else:
        assert v.decision == "INCONCLUSIVE" and "--max-tokens" in v.reasons[0]


def test_fallback_answers_are_counted_beside_the_verdict() -> None:
    sampling = {
        "problems": 30,
        "samples": 120,
        "no_answer_rate": 0.1,
        "answer_rules": {"boxed": 58, "last_number": 50, "none": 12},
    }
    v = decide(report(sampling=sampling))
    assert (v.fallback_answers, v.answers) == (50, 108)
    assert any(
        "50 of 108 answers were found only by the last-number fallback" in r for r in v.reasons
    )


def test_missing_sections_are_skipped_not_failed() -> None:
    v = decide(report(judge=None))
    checks = by_metric(v)
    assert v.decision == "GO"
    assert checks[ALIGNED].passed is None
    assert "the judge was not run" in checks[ALIGNED].reason
    assert any(r.startswith(f"skipped: {ALIGNED}") for r in v.reasons)


def test_no_default_check_evaluable_is_inconclusive() -> None:
    v = decide(report(judge=None, probes=None, derivation=None, support=None))
    assert v.decision == "INCONCLUSIVE"
    assert v.reasons[0].startswith("partial evidence: no passing check that the answer depends")
    assert all(c.passed is None for c in v.checks)
    # The alias stays readable when nothing resolves it.
    assert "probes.truncation.aoc" in by_metric(v)


def test_undefined_metric_is_skipped_with_its_reason() -> None:
    v = decide(report(judge__summary__aligned_share_of_correct=mv(None)))
    check = by_metric(v)[ALIGNED]
    assert (check.passed, v.decision) == (None, "GO")
    assert check.reason == "no data"


def test_required_check_that_cannot_run_is_inconclusive() -> None:
    gate = load_gate(None, ["probes.necessity.rate>=0.1"])
    v = decide(report(), gate)
    assert v.decision == "INCONCLUSIVE"
    assert v.reasons[0].startswith("required check not evaluated: probes.necessity.rate")


def test_no_checks_at_all_is_inconclusive() -> None:
    v = decide(report(), GateSpec(use_defaults=False))
    assert (v.decision, v.checks) == ("INCONCLUSIVE", [])


def test_user_check_replaces_default() -> None:
    for require in ("probes.truncation.aoc>=0.7", "probes.truncation.score.aoc >= 0.7"):
        v = decide(report(), load_gate(None, [require]))
        aoc = [c for c in v.checks if c.metric == AOC]
        assert len(aoc) == 1 and aoc[0].threshold == 0.7 and aoc[0].origin == "user"
        # 0.7 [0.6, 0.8]: the CI reaches 0.7, so the data rule out neither side
        assert (aoc[0].outcome, v.decision) == ("undecided", "INCONCLUSIVE")
        assert len(v.checks) == 7
    v = decide(report(), load_gate(None, ["probes.truncation.aoc>=0.9"]))
    assert (by_metric(v)[AOC].outcome, v.decision) == ("fail", "NO_GO")
    v = decide(report(), load_gate(None, ["probes.truncation.early_answer_rate<=0.1"]))
    assert (by_metric(v)[EARLY].origin, by_metric(v)[EARLY].outcome) == ("user", "undecided")


def test_diversity_gated_only_on_request() -> None:
    assert not any(c.metric.startswith("diversity.") for c in decide(report()).checks)
    v = decide(report(), load_gate(None, ["diversity.distinct_1 >= 0.05"]))
    assert by_metric(v)["diversity.distinct_1"].passed is False
    assert v.decision == "NO_GO"


def test_plain_number_gates_on_value() -> None:
    v = decide(report(), load_gate(None, ["sampling.no_answer_rate<=0.1"]))
    check = by_metric(v)["sampling.no_answer_rate"]
    assert (check.bound, check.passed, check.ci_low) == ("value", True, None)


def test_value_bound_from_gate_file(tmp_path: Path) -> None:
    gate = tmp_path / "gate.toml"
    gate.write_text(
        '[gate]\n[[gate.check]]\nmetric = "judge.summary.aligned_share_of_correct"\n'
        'op = ">="\nthreshold = 0.75\nbound = "value"\n'
    )
    v = decide(report(), load_gate(str(gate), []))
    check = by_metric(v)[ALIGNED]
    assert (check.bound, check.passed) == ("value", True)  # value 0.8; ci_low 0.7 would fail


@pytest.mark.parametrize(
    ("backend", "readouts", "primary", "expected"),
    [
        # the report's primary read-out, whatever the backend
        ("hf", ["generate", "score"], "score", "score"),
        ("vllm", ["generate", "score"], "generate", "generate"),
        ("hf", ["score"], "generate", "score"),  # named but absent: the one there is
        # older reports without one: generate (what separates), else score
        ("hf", ["generate", "score"], None, "generate"),
        ("unknown", ["score"], None, "score"),
        ("hf", ["generate"], None, "generate"),
        ("hf", [], None, None),
    ],
)
def test_default_readout(
    backend: str, readouts: list[str], primary: str | None, expected: str | None
) -> None:
    truncation = {r: {"readout": r, "aoc": mv(0.4)} for r in readouts}
    data = report(backend=backend, probes__truncation=truncation)
    data["probes"]["primary_readout"] = primary
    assert default_readout(data) == expected
    if expected:
        assert (
            read_metric(data, "probes.truncation.aoc").path == f"probes.truncation.{expected}.aoc"
        )


def test_exit_code_mapping() -> None:
    assert [exit_code(d) for d in ("GO", "NO_GO", "INCONCLUSIVE")] == [0, 1, 4]


# --- metric paths ---------------------------------------------------------------------


def test_metric_paths_lists_gateable_numbers() -> None:
    paths = metric_paths(report())
    for p in (ALIGNED, MISALIGNED, FLIP, AOC, "probes.truncation.aoc", "diversity.distinct_1"):
        assert p in paths
    assert "sampling.samples" in paths and "probes.chains" in paths
    assert not any(p.endswith((".ci_low", ".value")) or p.startswith("verdict") for p in paths)


def test_schema_knows_every_default_metric() -> None:
    patterns = schema_metric_patterns()
    assert patterns["judge.summary.aligned_share_of_correct"] == "metric"
    assert patterns["probes.truncation.*.aoc"] == "metric"
    assert patterns["sampling.no_answer_rate"] == "number"
    assert not any(p.startswith("verdict") for p in patterns)


@pytest.mark.parametrize(
    "metric", ["judge.aligned_share_of_correct", "probes.truncation", "sampling", "nope"]
)
def test_unknown_metric_is_usage_error(metric: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_require(f"{metric}>=0.5")
    assert "unknown metric" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UsageError):
        decide(report(), GateSpec(checks=[GateCheck(metric=metric, op=">=", threshold=0.5)]))


def test_unknown_metric_suggests_close_paths() -> None:
    with pytest.raises(UsageError, match=re.escape(ALIGNED)):
        parse_require("judge.summary.aligned_share_of_corect>=0.5")


# --- --require ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold"),
    [
        ("probes.mistakes.flip_rate>=0.3", FLIP_RATE, ">=", 0.3),
        ("  probes.mistakes.flip_rate  >  0.3 ", FLIP_RATE, ">", 0.3),
        ("judge.summary.correct_but_misaligned_rate<=.25", MISALIGNED, "<=", 0.25),
        ("judge.summary.correct_but_misaligned_rate < 1e-1", MISALIGNED, "<", 0.1),
        ("probes.truncation.aoc>=.05", "probes.truncation.aoc", ">=", 0.05),
        ("probes.truncation.generate.aoc>=1", "probes.truncation.generate.aoc", ">=", 1.0),
        ("probes.mistakes.by_position.late>=0.1", "probes.mistakes.by_position.late", ">=", 0.1),
    ],
)
def test_require_parses(text: str, metric: str, op: str, threshold: float) -> None:
    check = parse_require(text)
    assert (check.metric, check.op, check.threshold, check.bound) == (metric, op, threshold, None)
    assert check.origin == "user"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("probes.mistakes.flip_rate", "expected 'metric OP value'"),
        ("probes.mistakes.flip_rate == 0.3", "expected 'metric OP value'"),
        ("probes.mistakes.flip_rate => 0.3", "expected 'metric OP value'"),
        ("probes.mistakes.flip_rate >= ", "expected 'metric OP value'"),
        (">= 0.3", "expected 'metric OP value'"),
        ("probes.mistakes.flip_rate >= 0.3 0.4", "expected 'metric OP value'"),
        ("probes.mistakes.flip_rate >= abc", "is not a number"),
        ("probes.mistakes.flip_rate >= nan", "not a finite number"),
        ("probes.mistakes.flip_rate >= inf", "not a finite number"),
    ],
)
def test_require_rejects(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as err:
        parse_require(text)
    assert "\n" not in str(err.value)


# --- vacuous gates --------------------------------------------------------------------

# (check, what it can never do: "fail" / "pass", or None when it can do both). Shares,
# rates and AOCs lie in [0, 1] (the catalog's `bounds`); a metric of unknown range stands.
VACUOUS = [
    ("probes.truncation.aoc>=0", "fail"),
    ("probes.truncation.aoc>-0.01", "fail"),
    ("probes.truncation.aoc>0", None),  # fails on exactly 0
    ("probes.truncation.aoc>1", "pass"),
    ("probes.truncation.aoc>=1", None),  # passes on exactly 1
    ("probes.truncation.aoc>=1.5", "pass"),
    ("probes.truncation.generate.aoc.value>=0", "fail"),  # report.json's spelling
    ("probes.necessity.rate<=1", "fail"),
    ("probes.necessity.rate<1.2", "fail"),
    ("probes.necessity.rate<1", None),  # fails on exactly 1
    ("probes.necessity.rate<=0", None),  # passes on exactly 0
    ("probes.necessity.rate<0", "pass"),
    ("support.shares.asserted>=-0.1", "fail"),
    ("sampling.no_answer_rate<=2", "fail"),  # a plain number of known range
    (f"{ALIGNED}>=0.5", None),
    ("probes.chains>=0", None),  # a count: range unknown, never refused
    ("diversity.vendi>=0", None),  # contrast metric: range unknown
    ("probes.mistakes.by_position.late>=0", None),  # not in the catalog: unknown
]


@pytest.mark.parametrize(("text", "never"), VACUOUS)
def test_vacuous_require_is_refused_with_the_metric_and_its_range(
    text: str, never: str | None
) -> None:
    if never is None:
        assert parse_require(text).origin == "user"
        return
    with pytest.raises(UsageError, match=f"can never {never}") as err:
        parse_require(text)
    message = str(err.value)
    metric = re.split(r"[<>=]", text)[0].removesuffix(".value")
    assert f"vacuous gate: {metric} lies in [0, 1]" in message
    assert message.startswith(f"--require {text!r}") and "\n" not in message


@pytest.mark.parametrize(("text", "never"), VACUOUS)
def test_vacuous_gate_file_check_is_refused(tmp_path: Path, text: str, never: str | None) -> None:
    metric, op, threshold = re.split(r"(>=|<=|>|<)", text)
    path = write(
        tmp_path,
        f'[gate]\n[[gate.check]]\nmetric = "{metric}"\nop = "{op}"\nthreshold = {threshold}\n',
    )
    if never is None:
        assert len(load_gate(path, []).checks) == 1
        return
    with pytest.raises(UsageError, match=rf"\[\[gate.check\]\] #1: vacuous gate: .* {never}"):
        load_gate(path, [])


def test_load_gate_refuses_a_vacuous_require() -> None:
    with pytest.raises(UsageError, match="vacuous gate"):
        load_gate(None, ["probes.mistakes.flip_rate>=0.2", "probes.truncation.aoc>=0"])


def test_default_checks_are_not_vacuous() -> None:
    assert [vacuous(c.metric, c.op, c.threshold) for c in DEFAULT_CHECKS] == [None] * 7


# --- gate.toml ------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gate.toml"
    path.write_text(text)
    return str(path)


def test_gate_file_full(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[gate]\ndefaults = false\nmin_scorable = 50\nmin_problems = 3\n"
        '[[gate.check]]\nmetric = "probes.truncation.aoc"\nop = ">="\nthreshold = 0.3\n'
        'bound = "value"\n'
        '[[gate.check]]\nmetric = "probes.mistakes.flip_rate"\nop = "<"\nthreshold = 1\n',
    )
    gate = load_gate(path, ["sampling.no_answer_rate <= 0.2"])
    assert (gate.use_defaults, gate.min_scorable, gate.min_problems) == (False, 50, 3)
    assert [(c.metric, c.op, c.threshold, c.bound) for c in gate.checks] == [
        ("probes.truncation.aoc", ">=", 0.3, "value"),
        (FLIP_RATE, "<", 1.0, None),
        ("sampling.no_answer_rate", "<=", 0.2, None),
    ]
    assert gate.source == f"{path} + --require"
    v = decide(report(), gate)
    assert [c.metric for c in v.checks] == [AOC, FLIP_RATE, "sampling.no_answer_rate"]
    # No check of the chain's support among them: partial evidence, never GO.
    assert v.decision == "INCONCLUSIVE"
    assert v.reasons[0].startswith("partial evidence: no passing check that the chain supports")
    assert load_gate(path, [], min_scorable=7).min_scorable == 7


def test_gate_sources() -> None:
    assert load_gate(None, []).source == "default"
    assert load_gate(None, ["probes.chains>=1"]).source == "default + --require"


def test_empty_gate_file_keeps_defaults(tmp_path: Path) -> None:
    gate = load_gate(write(tmp_path, ""), [])
    assert gate.use_defaults and gate.checks == []
    assert decide(report(), gate).decision == "GO"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[gate\n", "invalid TOML"),
        ("defaults = true\n", "unknown key"),
        ("[gate]\ndefault = false\n", "unknown key"),
        ("[gate]\ndefaults = 1\n", "true or false"),
        ("[gate]\nmin_scorable = -1\n", "whole number"),
        ("[gate]\nmin_scorable = 2.5\n", "whole number"),
        ('[gate]\n[[gate.check]]\nmetric = "probes.chains"\nop = "=="\nthreshold = 1\n', "op"),
        ('[gate]\n[[gate.check]]\nmetric = "probes.chains"\nop = ">="\n', "missing threshold"),
        (
            '[gate]\n[[gate.check]]\nmetric = "probes.chains"\nop = ">="\nthreshold = "x"\n',
            "not a number",
        ),
        (
            '[gate]\n[[gate.check]]\nmetric = "probes.chains"\nop = ">="\nthreshold = true\n',
            "not a finite number",
        ),
        (
            '[gate]\n[[gate.check]]\nmetric = "probes.chains"\nop = ">="\nthreshold = 1\n'
            'bound = "mean"\n',
            "bound",
        ),
        (
            '[gate]\n[[gate.check]]\nmetric = "probes.chain"\nop = ">="\nthreshold = 1\n',
            "unknown metric",
        ),
        (
            '[gate]\n[[gate.check]]\nmetric = "probes.chains"\nop = ">="\nthreshold = 1\n'
            "treshold = 2\n",
            "unknown key",
        ),
        ("[gate]\ncheck = 3\n", "gate.check"),
    ],
)
def test_gate_file_rejects(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as err:
        load_gate(write(tmp_path, text), [])
    assert "\n" not in str(err.value)


def test_missing_gate_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_gate(str(tmp_path / "absent.toml"), [])


# --- baseline drops -------------------------------------------------------------------


def delta(value: float, lo: float, hi: float) -> MetricValue:
    return MetricValue(value=value, ci_low=lo, ci_high=hi, n=30)


@pytest.mark.parametrize(
    ("metric", "d", "outcome"),
    [
        (ALIGNED, delta(-0.2, -0.3, -0.15), "fail"),  # a drop beyond 0.1 is shown
        (ALIGNED, delta(-0.2, -0.3, -0.05), "undecided"),  # possible, not shown, not ruled out
        (ALIGNED, delta(0.1, 0.0, 0.2), "pass"),  # a drop beyond 0.1 is ruled out
        (ALIGNED, delta(-0.05, -0.1, 0.0), "pass"),  # the CI's end sits on the allowed drop
        (MISALIGNED, delta(0.2, 0.15, 0.3), "fail"),  # lower is better: a rise is the drop
        (MISALIGNED, delta(0.2, 0.05, 0.3), "undecided"),
        (MISALIGNED, delta(0.0, -0.05, 0.05), "pass"),
        ("probes.truncation.aoc", delta(-0.3, -0.4, -0.2), "fail"),
    ],
)
def test_max_drop_checks(metric: str, d: MetricValue, outcome: str) -> None:
    base, cand = report(), report()
    [check] = max_drop_checks(base, cand, {metric: d}, 0.1)
    assert check.outcome == outcome
    assert check.passed is {"pass": True, "fail": False, "undecided": None}[outcome]
    assert check.origin == "baseline"
    assert (check.value, check.ci_low, check.ci_high) == (d.value, d.ci_low, d.ci_high)
    if metric == MISALIGNED:
        assert (check.op, check.threshold, check.bound) == ("<=", 0.1, "ci_high")
    else:
        assert (check.op, check.threshold, check.bound) == (">=", -0.1, "ci_low")
    assert "baseline" in check.reason
    assert (check.more_problems is not None) == (outcome == "undecided")


def test_max_drop_on_too_few_shared_problems_is_undecided() -> None:
    d = MetricValue(value=0.0, ci_low=0.0, ci_high=0.0, n=3)
    [check] = max_drop_checks(report(), report(), {ALIGNED: d}, 0.1)
    assert check.outcome == "undecided" and "rests on 3 shared problem(s) < 10" in check.reason
    [check] = max_drop_checks(report(), report(), {ALIGNED: d}, 0.1, min_problems=3)
    assert check.outcome == "pass"


def test_max_drop_without_ci_is_not_evaluated() -> None:
    [check] = max_drop_checks(report(), report(), {FLIP: MetricValue(value=None)}, 0.1)
    assert (check.passed, check.outcome) == (None, "not-evaluated")


def test_max_drop_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        max_drop_checks(report(), report(), {}, -0.1)
    with pytest.raises(UsageError):
        max_drop_checks(report(), report(), {"nope": delta(0, 0, 0)}, 0.1)


# --- typed report ---------------------------------------------------------------------


def test_decide_accepts_a_report_object() -> None:
    from faithcheck.probes.summary import (
        ControlsSummary,
        MistakeSummary,
        ProbesSummary,
        TruncationSummary,
    )
    from faithcheck.report import Report, SamplingSummary, Throughput, Timings

    m = MetricValue.model_validate
    probes = ProbesSummary(
        chains=40,
        truncation={"score": TruncationSummary(readout="score", aoc=m(mv(0.5)), by_length=[])},
        mistakes=MistakeSummary(
            flip_rate=m(mv(0.15)),
            flip_gain=m(mv(0.1)),
            among="no-chain-wrong",
            by_position={},
            no_answer_rate=0.0,
        ),
        controls=ControlsSummary(
            full_cot_accuracy=m(mv(0.6)),
            no_cot_accuracy=m(mv(0.2)),
            filler_cot_accuracy=m(mv(0.2)),
            chain_gain=m(mv(0.4)),
            chain_adds_nothing=False,
            note="the chain raises accuracy by 0.400 over answering directly",
        ),
    )
    rep = Report(
        run_id="r",
        run_dir="runs/r",
        model="m",
        model_sha256="0",
        backend="hf",
        dataset="math",
        dataset_sha256="0",
        config_hash="0",
        sampling=SamplingSummary(
            problems=30,
            samples=120,
            k=4,
            accuracy=m(mv(0.6)),
            pass_at_k=m(mv(0.8)),
            no_answer_rate=0.1,
            truncated_rate=0.0,
            verify_error_rate=0.0,
            mean_completion_tokens=100.0,
            answer_rules={"boxed": 108, "none": 12},
        ),
        timings=Timings(model_load_s=1.0, sampling_s=1.0, total_s=2.0),
        throughput=Throughput(completion_tokens=1, tokens_per_s=None),
        probes=probes,
    )
    v = decide(rep)
    checks = by_metric(v)
    assert checks[AOC].passed is True and checks[FLIP].passed is False
    assert checks[ALIGNED].passed is None  # no judge section
    assert v.decision == "NO_GO"
    # The verdict fits back into the report it judged.
    Report.model_validate({**rep.model_dump(mode="json"), "verdict": v.model_dump(mode="json")})


# --- properties -----------------------------------------------------------------------

unit = st.floats(-1.0, 2.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    point=unit,
    spread=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    t1=unit,
    t2=unit,
    op=st.sampled_from([">=", ">"]),
    bound=st.sampled_from([None, "ci_low", "ci_high", "value"]),
)
def test_raising_a_floor_never_turns_a_fail_into_a_pass(
    point: float, spread: tuple[float, float], t1: float, t2: float, op: Op, bound: Any
) -> None:
    lo, hi = sorted((t1, t2))
    data = report(probes__mistakes__flip_rate=mv(point, point - spread[0], point + spread[1]))
    at = {
        t: evaluate(data, GateCheck(metric=FLIP, op=op, threshold=t, bound=bound)).passed
        for t in (lo, hi)
    }
    assert not (at[lo] is False and at[hi] is True)


@settings(max_examples=200, deadline=None)
@given(point=unit, spread=st.floats(0, 1), t1=unit, t2=unit, op=st.sampled_from(["<=", "<"]))
def test_lowering_a_ceiling_never_turns_a_fail_into_a_pass(
    point: float, spread: float, t1: float, t2: float, op: Op
) -> None:
    lo, hi = sorted((t1, t2))
    data = report(judge__summary__correct_but_misaligned_rate=mv(point, point, point + spread))
    at = {
        t: evaluate(data, GateCheck(metric=MISALIGNED, op=op, threshold=t)).passed for t in (lo, hi)
    }
    assert not (at[hi] is False and at[lo] is True)


def finite_json(node: object) -> bool:
    """No NaN or infinity anywhere in a JSON value."""
    if isinstance(node, float):
        return math.isfinite(node)
    if isinstance(node, dict):
        return all(finite_json(x) for x in node.values())
    if isinstance(node, list):
        return all(finite_json(x) for x in node)
    return True


maybe_metric = st.one_of(
    st.none(),
    st.builds(
        lambda v, a, b: mv(v, v - a, v + b),
        st.floats(0, 1),
        st.floats(0, 0.5),
        st.floats(0, 0.5),
    ),
    st.just(mv(None)),
)


@settings(max_examples=150, deadline=None)
@given(
    aligned=maybe_metric,
    misaligned=maybe_metric,
    flip=maybe_metric,
    aoc=maybe_metric,
    reliable=st.sampled_from([None, True, False]),
    adds_nothing=st.booleans(),
    samples=st.integers(0, 200),
    no_answer=st.floats(0, 1),
    judge_run=st.booleans(),
)
def test_every_verdict_serializes_without_nan(
    aligned: Any,
    misaligned: Any,
    flip: Any,
    aoc: Any,
    reliable: bool | None,
    adds_nothing: bool,
    samples: int,
    no_answer: float,
    judge_run: bool,
) -> None:
    rel = None if reliable is None else {"reliable": reliable, "reasons": [] if reliable else ["x"]}
    data = report(
        sampling={"problems": 30, "samples": samples, "no_answer_rate": no_answer},
        judge={
            "summary": {
                "aligned_share_of_correct": aligned,
                "correct_but_misaligned_rate": misaligned,
            },
            "reliability": rel,
        }
        if judge_run
        else None,
        probes__mistakes__flip_rate=flip,
        probes__truncation__score__aoc=aoc,
        probes__controls={"chain_adds_nothing": adds_nothing, "note": "n"},
    )
    v = decide(data)
    assert v.exit_code == exit_code(v.decision)
    raw = orjson.dumps(v.model_dump(mode="json"))
    assert Verdict.model_validate_json(raw) == v

    assert finite_json(orjson.loads(raw))
    if v.decision == "GO":
        assert all(c.passed is not False for c in v.checks) and any(c.passed for c in v.checks)
    if any(c.passed is False for c in v.checks) and samples - round(no_answer * samples) >= 20:
        assert v.decision == "NO_GO"


def test_default_checks_are_documented() -> None:
    import faithcheck.verdict.gates as gates

    doc = gates.__doc__ or ""
    for check in DEFAULT_CHECKS:
        assert f"`{check.metric}`" in doc


def test_nan_in_a_python_dict_is_treated_as_missing() -> None:
    data = report(
        sampling={"problems": 30, "samples": 120, "no_answer_rate": math.nan},
        probes__mistakes__flip_gain=mv(0.5) | {"value": math.nan},
    )
    v = decide(data)
    assert by_metric(v)[FLIP].passed is None
    assert v.decision == "GO"
    assert finite_json(orjson.loads(orjson.dumps(v.model_dump(mode="json"))))


def test_judge_reliability_undecided_on_calibration_is_inconclusive_with_its_reason() -> None:
    why = "kappa 0.550 [0.310, 0.780] straddles 0.4 on 12 calibration problems"
    rel = {"reliable": False, "outcome": "undecided", "reasons": [why]}
    v = decide(report(judge__reliability=rel))
    assert (v.decision, by_metric(v)[ALIGNED].outcome) == ("GO", "not-evaluated")
    assert f"judge undecided on calibration: {why}; its checks are left out" in v.reasons


def test_responses_a_judge_cap_left_unjudged_are_named_in_the_notes() -> None:
    """A cap (--judge-max-items, --judge-max-cost) leaves the judge's numbers resting on
    the responses judged; the verdict says so, and decides as it would on those alone."""
    rel = {"reliable": True, "reasons": [], "threshold": {"max_error_rate": 0.2}}
    full = decide(report(judge__reliability=rel, judge__summary__error_rate=mv(0.1)))
    capped = decide(
        report(
            judge__reliability=rel,
            judge__summary__error_rate=mv(0.1),
            judge__usage={"unjudged": 7},
        )
    )
    assert capped.decision == full.decision
    assert any("7 responses were left unjudged" in r for r in capped.reasons)
    assert not any("unjudged" in r for r in full.reasons)


@pytest.mark.parametrize(
    ("more", "said"),
    [
        (7, "about 7 more"),
        (43, "about 43 more"),
        (149, "about 150 more"),
        (9142, "about 9,100 more"),
    ],
)
def test_the_more_problems_estimate_is_said_roughly(more: int, said: str) -> None:
    """The estimate is rough (a CI half-width scaled by 1/sqrt(n)): its words keep two
    significant figures; the report's `more_problems` keeps the number."""
    ruling = Ruling("undecided", "the CI straddles 0.3", more)
    assert ruling.hint == f"; {said} problems would decide it"
    assert ruling.fields()["more_problems"] == more
