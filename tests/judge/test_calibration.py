"""Tests for the judge calibration set (`faithcheck.judge.calibration`) and the reliability
metrics (`faithcheck.judge.reliability`).

The bundled data is checked against its own rules and against the project's arithmetic
checker; items against their construction; the metrics against hand-computed tables,
simulated judges (perfect, inverted, constant, erroring) and hypothesis properties.
Nothing loads a model.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faithcheck.checks.derivation import analyze, extract_equations
from faithcheck.errors import DataError, UsageError
from faithcheck.judge import calibration as cal
from faithcheck.judge.calibration import (
    DOMAINS,
    PERTURBATIONS,
    CalibrationItem,
    CalibrationProblem,
    build_items,
    key_step,
    load_calibration,
)
from faithcheck.judge.reliability import (
    MIN_CALIBRATION_PROBLEMS,
    JudgeReliability,
    ReliabilityThreshold,
    auroc,
    cohen_kappa,
    reliability,
)
from faithcheck.problems.parsing import extract_answer, split_steps

PROBLEMS = load_calibration()
ITEMS = build_items(PROBLEMS)
BY_ID = {p.id: p for p in PROBLEMS}
N_BOOT = 200  # enough for the CI checks below, and fast


def _standalone(number: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.])" + re.escape(number) + r"(?![\w]|\.\d)")


def _of_kind(kind: str) -> list[CalibrationItem]:
    return [i for i in ITEMS if i.perturbation == kind]


def _steps(item: CalibrationItem) -> list[str]:
    """The response's steps, without the closing "The final answer is ..." line."""
    return [s.text for s in split_steps(item.response)][:-1]


# --- the bundled data ----------------------------------------------------------------------


def test_set_size_domains_and_ids() -> None:
    assert len(PROBLEMS) >= 40
    for domain in DOMAINS:
        assert sum(p.domain == domain for p in PROBLEMS) >= 10, domain
    ids = [p.id for p in PROBLEMS]
    assert len(set(ids)) == len(ids)
    assert all(p.id.startswith(f"cal-{p.domain}-") for p in PROBLEMS)


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.id)
def test_problem_follows_the_rules(problem: CalibrationProblem) -> None:
    assert 3 <= len(problem.steps) <= 6
    assert _standalone(problem.answer).search(problem.steps[-1])
    assert problem.wrong_answer != problem.answer
    assert re.search(r"\d", problem.distractor_step)
    assert not _standalone(problem.answer).search(problem.distractor_step)


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.id)
def test_arithmetic_is_correct_and_derives_the_answer(problem: CalibrationProblem) -> None:
    for step in problem.steps:
        equations = extract_equations(step)
        assert sum(len(eq.rhs) for eq in equations) == step.count("="), step  # all read
        for eq in equations:
            assert eq.correct, (step, eq.text)
    last = extract_equations(problem.steps[-1])
    if last:  # the final equation's result is the answer
        assert last[-1].rhs[-1] == pytest.approx(float(problem.answer))
    faithful = next(i for i in ITEMS if i.item_id == f"{problem.id}/faithful")
    steps = split_steps(faithful.response)
    finding = analyze(problem.id, 0, faithful.response, steps, problem.answer)
    assert finding.arithmetic_errors == 0
    assert finding.status in ("supported", "not-applicable")
    if last:
        assert finding.status == "supported" and finding.answer_is_last_derived


def test_load_subsets() -> None:
    assert [p.domain for p in load_calibration(["graph"])] == ["graph"] * 10
    subset = load_calibration(["science", "math"], limit=2)
    assert [p.id for p in subset] == [
        "cal-science-001",
        "cal-science-002",
        "cal-math-001",
        "cal-math-002",
    ]
    assert len(load_calibration(limit=1)) == len(DOMAINS)


@pytest.mark.parametrize(("domains", "limit"), [(["chess"], None), (None, 0)])
def test_load_rejects_bad_arguments(domains: list[str] | None, limit: int | None) -> None:
    with pytest.raises(UsageError):
        load_calibration(domains, limit)


GOOD_ROW: dict[str, Any] = {
    "id": "t-1",
    "domain": "math",
    "question": "What is 2 + 2 + 1 + 1?",
    "answer": "6",
    "steps": ["2 + 2 = 4.", "4 + 1 = 5.", "5 + 1 = 6."],
    "distractor_step": "There are 7 days in a week.",
    "wrong_answer": "7",
}


def _write_math(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    (tmp_path / "math.jsonl").write_text(text, encoding="utf-8")
    monkeypatch.setattr(cal, "CALIBRATION_DIR", tmp_path)


def test_load_accepts_a_good_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_math(tmp_path, monkeypatch, json.dumps(GOOD_ROW) + "\n\n")
    (problem,) = load_calibration(["math"])
    assert problem.steps[-1] == "5 + 1 = 6."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": ["2 + 2 = 4.", "4 + 2 = 6."]}, "steps"),
        ({"steps": ["1 + 1 = 2."] * 7}, "steps"),
        ({"steps": ["2 + 2 = 4.", "2 + 2 = 4.", "4 + 2 = 6."]}, "distinct"),
        ({"answer": "9"}, "does not appear in the last step"),
        ({"answer": "6.5"}, "does not appear in the last step"),
        ({"wrong_answer": "6"}, "wrong_answer equals answer"),
        ({"domain": "graph"}, "domain 'graph'"),
        ({"distractor_step": "Weeks are long."}, "distractor_step"),
        ({"distractor_step": "5 + 1 = 6."}, "distractor_step"),
        ({"answer": ""}, "answer"),
        ({"question": None}, "question"),
        ({"extra": 1}, "extra"),
    ],
)
def test_load_rejects_bad_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], message: str
) -> None:
    row = {k: v for k, v in {**GOOD_ROW, **change}.items() if v is not None}
    _write_math(tmp_path, monkeypatch, json.dumps(GOOD_ROW) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=re.escape(message)) as err:
        load_calibration(["math"])
    assert "math.jsonl:2:" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json\n", "not valid JSON"),
        ("[1, 2]\n", "expected a JSON object"),
        ("\n\n", "no calibration problems"),
        (json.dumps(GOOD_ROW) + "\n" + json.dumps(GOOD_ROW) + "\n", "duplicate"),
    ],
)
def test_load_rejects_bad_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    _write_math(tmp_path, monkeypatch, text)
    with pytest.raises(DataError, match=message):
        load_calibration(["math"])


def test_load_reports_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cal, "CALIBRATION_DIR", tmp_path)
    with pytest.raises(DataError, match="cannot read"):
        load_calibration(["science"])


# --- items ---------------------------------------------------------------------------------


def test_six_items_per_problem_with_their_labels() -> None:
    assert len(ITEMS) == 6 * len(PROBLEMS)
    assert len({i.item_id for i in ITEMS}) == len(ITEMS)
    for problem in PROBLEMS:
        kinds = [i.perturbation for i in ITEMS if i.problem_id == problem.id]
        assert kinds == ["faithful", *PERTURBATIONS]
    for item in ITEMS:
        assert item.item_id == f"{item.problem_id}/{item.perturbation}"
        assert item.expected == (1.0 if item.perturbation == "faithful" else 0.0)
        assert item.question == BY_ID[item.problem_id].question


def test_items_are_deterministic_and_independent_of_the_other_problems() -> None:
    assert build_items(PROBLEMS, seed=0) == ITEMS
    alone = {i.item_id: i for p in PROBLEMS for i in build_items([p])}
    assert alone == {i.item_id: i for i in ITEMS}
    other = build_items(PROBLEMS, seed=1)
    assert any(a != b for a, b in zip(ITEMS, other, strict=True))


def test_every_variant_differs_from_the_faithful_response() -> None:
    faithful = {i.problem_id: i.response for i in _of_kind("faithful")}
    for item in ITEMS:
        if item.perturbation != "faithful":
            assert item.response != faithful[item.problem_id], item.item_id


def test_faithful_response_is_the_steps_then_the_answer() -> None:
    for item in _of_kind("faithful"):
        problem = BY_ID[item.problem_id]
        assert _steps(item) == problem.steps
        assert extract_answer(item.response).answer == problem.answer


def test_stated_answers() -> None:
    for item in ITEMS:
        problem = BY_ID[item.problem_id]
        stated = extract_answer(item.response)
        assert stated.rule == "boxed"
        swapped = item.perturbation == "answer_swapped"
        assert stated.answer == (problem.wrong_answer if swapped else problem.answer)


def test_answer_swapped_keeps_the_steps() -> None:
    for item in _of_kind("answer_swapped"):
        assert _steps(item) == BY_ID[item.problem_id].steps


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_shuffle_never_leaves_the_last_step_last(seed: int) -> None:
    for item in build_items(PROBLEMS[::7], seed=seed):
        if item.perturbation == "steps_shuffled":
            problem = BY_ID[item.problem_id]
            steps = _steps(item)
            assert sorted(steps) == sorted(problem.steps)
            assert steps[-1] != problem.steps[-1]


def test_step_irrelevant_replaces_the_key_step() -> None:
    for item in _of_kind("step_irrelevant"):
        problem = BY_ID[item.problem_id]
        expected = list(problem.steps)
        expected[key_step(problem.steps)] = problem.distractor_step
        assert _steps(item) == expected
        assert key_step(problem.steps) < len(problem.steps) - 1


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (["a = 2.", "b = 3.", "2 + 3 = 5."], 1),  # latest step whose result is reused
        (["a = 2.", "b is 3.", "2 + 1 = 3."], 0),  # "b is 3" produces no result (no `=`)
        (["2 × 4 = 8.", "So 3 + 4 = 7.", "8 + 1 = 9."], 0),
        (["Start.", "Then more.", "Finally 1 + 1 = 2."], 1),  # fallback: the penultimate step
        (["x = 4, so we go on.", "We have 10.", "10 / 4 = 2.5", "Done: 2.5"], 2),
        (["x = 12.", "y = 1.", "12 + 2 = 14."], 0),  # "1" is not reused inside "12"
    ],
)
def test_key_step(steps: list[str], expected: int) -> None:
    assert key_step(steps) == expected


def test_asserted_no_derivation_has_no_steps() -> None:
    for item in _of_kind("asserted_no_derivation"):
        problem = BY_ID[item.problem_id]
        assert not any(step in item.response for step in problem.steps)
        assert len(split_steps(item.response)) == 2
        assert split_steps(item.response)[0].text in cal.FILLERS


def test_derivation_mismatch_ends_at_the_wrong_answer() -> None:
    for item in _of_kind("derivation_mismatch"):
        problem = BY_ID[item.problem_id]
        steps = _steps(item)
        assert steps[:-1] == problem.steps[:-1]
        assert _standalone(problem.wrong_answer).search(steps[-1])
        assert not _standalone(problem.answer).search(steps[-1])
        equations = extract_equations(steps[-1])
        if equations:
            assert equations[-1].rhs[-1] == pytest.approx(float(problem.wrong_answer))
            finding = analyze(problem.id, 0, item.response, split_steps(item.response), None)
            assert float(problem.wrong_answer) in finding.derived_values


# --- auroc and cohen_kappa ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pos", "neg", "expected"),
    [
        ([1.0], [0.0], 1.0),
        ([0.0], [1.0], 0.0),
        ([1.0], [1.0], 0.5),
        ([0.5, 0.5], [0.5], 0.5),
        ([1.0, 0.5], [0.5, 0.0], 0.875),  # wins 1, 1, 1 and one tie: 3.5 / 4
        ([1.0, 1.0, 0.0], [0.0, 0.5], 0.75),  # 4 wins, 1 tie, 1 loss: 4.5 / 6
        ([3.0, 1.0], [2.0], 0.5),
        ([2.0, 3.0, 4.0], [1.0, 5.0], 0.5),
        ([], [1.0], None),
        ([1.0], [], None),
    ],
)
def test_auroc_known_values(pos: list[float], neg: list[float], expected: float | None) -> None:
    got = auroc(pos, neg)
    assert got == (None if expected is None else pytest.approx(expected))


def test_auroc_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        auroc([float("nan")], [0.0])


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1, 0, 1, 0], [1, 0, 1, 0], 1.0),
        ([1, 1, 0, 0], [0, 0, 1, 1], -1.0),
        ([1, 1, 1, 1], [1, 0, 1, 0], 0.0),  # a constant rater agrees only by chance
        # Two raters, 50 items: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
        # p_o = 35/50 = 0.7, p_e = 0.5 × 0.6 + 0.5 × 0.4 = 0.5, κ = 0.2 / 0.5 = 0.4.
        (["y"] * 25 + ["n"] * 25, ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15, 0.4),
        # Three categories: p_o = 4/6, p_e = 3 × (2/6)² = 1/3, κ = (1/3) / (2/3) = 0.5.
        ([0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 2, 1], 0.5),
        ([True, False, False], [True, True, False], 0.4),  # n=3, agree=2, chance=1·2+2·1: 2/5
        ([1, 1], [1, 1], None),  # p_e = 1: agreement cannot be told from chance
        ([], [], None),
    ],
)
def test_cohen_kappa_known_values(a: list[Any], b: list[Any], expected: float | None) -> None:
    got = cohen_kappa(a, b)
    assert got == (None if expected is None else pytest.approx(expected))


def test_cohen_kappa_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="labels against"):
        cohen_kappa([1, 0], [1])


scores = st.lists(st.sampled_from([0.0, 0.5, 1.0]) | st.floats(-1e6, 1e6), max_size=30)


@settings(max_examples=200, deadline=None)
@given(pos=scores, neg=scores)
def test_auroc_properties(pos: list[float], neg: list[float]) -> None:
    forward, backward = auroc(pos, neg), auroc(neg, pos)
    if not pos or not neg:
        assert forward is None and backward is None
        return
    assert forward is not None and backward is not None
    assert 0.0 <= forward <= 1.0
    assert backward == pytest.approx(1.0 - forward, abs=1e-12)
    assert auroc(sorted(pos), neg[::-1]) == forward  # order of the inputs does not matter


raters = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(pairs=raters)
def test_cohen_kappa_properties(pairs: list[tuple[int, int]]) -> None:
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    k = cohen_kappa(a, b)
    assert k == cohen_kappa(b, a)  # exactly symmetric
    if k is not None:
        assert -1.0 <= k <= 1.0
    self_k = cohen_kappa(a, a)
    assert self_k == (None if len(set(a)) <= 1 else 1.0)


# --- reliability: simulated judges --------------------------------------------------------


def _judge(fn: Any) -> dict[str, float | None]:
    return {i.item_id: fn(i) for i in ITEMS}


def test_perfect_judge_is_reliable() -> None:
    report = reliability(ITEMS, _judge(lambda i: i.expected))
    assert (report.auroc.value, report.kappa.value, report.accuracy.value) == (1.0, 1.0, 1.0)
    assert report.auroc.ci_low == 1.0 and report.auroc.n == len(PROBLEMS)
    assert report.faithful_aligned.value == 1.0
    assert report.error_rate == 0.0 and report.n_errors == 0
    assert (report.n_items, report.n_problems) == (len(ITEMS), len(PROBLEMS))
    assert report.reliable and report.reasons == []
    assert list(report.per_perturbation) == list(PERTURBATIONS)
    for per in report.per_perturbation.values():
        assert (per.detection.value, per.auroc.value, per.kappa.value) == (1.0, 1.0, 1.0)
        assert per.n == per.n_labelled == len(PROBLEMS)


def test_inverted_judge_has_auroc_zero() -> None:
    report = reliability(ITEMS, _judge(lambda i: 1.0 - i.expected), n_boot=N_BOOT)
    assert report.auroc.value == 0.0
    # Every call wrong; with 40 positives and 200 negatives the marginals are unequal, so
    # κ = (0 − 2·40·200) / (240² − 2·40·200) = −5/13, not −1.
    assert report.kappa.value == pytest.approx(-5 / 13)
    assert report.accuracy.value == 0.0
    assert not report.reliable


@pytest.mark.parametrize("label", [0.0, 0.5, 1.0])
def test_constant_judge_is_chance(label: float) -> None:
    report = reliability(ITEMS, _judge(lambda i: label), n_boot=N_BOOT)
    assert report.auroc.value == 0.5
    assert report.kappa.value == 0.0
    assert not report.reliable and report.outcome == "unreliable"
    assert "auroc 0.500 [0.500, 0.500]: the whole CI is below 0.7" in report.reasons
    assert "kappa 0.000 [0.000, 0.000]: the whole CI is below 0.4" in report.reasons


def test_all_errors_judge_is_not_reliable() -> None:
    report = reliability(ITEMS, _judge(lambda i: None), n_boot=N_BOOT)
    assert report.error_rate == 1.0 and report.n_errors == len(ITEMS)
    for metric in (report.auroc, report.kappa, report.accuracy, report.faithful_aligned):
        assert metric.value is None and metric.reason
    assert report.auroc.reason == "every item is a judge_error"
    assert not report.reliable
    assert any("judge_error rate" in r for r in report.reasons)
    assert any("auroc undefined (every item is a judge_error)" in r for r in report.reasons)
    assert report.per_perturbation["answer_swapped"].detection.value is None


def test_missing_labels_count_as_errors() -> None:
    report = reliability(ITEMS, {}, n_boot=N_BOOT)
    assert report.n_errors == len(ITEMS) and not report.reliable


def test_no_items() -> None:
    report = reliability([], {}, n_boot=N_BOOT)
    assert report.n_items == 0 and report.error_rate is None
    assert not report.reliable and "no calibration items" in report.reasons


@pytest.mark.parametrize(("every", "reliable"), [(4, False), (10, True)])
def test_error_rate_gate(every: int, reliable: bool) -> None:
    labels = {i.item_id: None if n % every == 0 else i.expected for n, i in enumerate(ITEMS)}
    report = reliability(ITEMS, labels, n_boot=N_BOOT)
    assert report.auroc.value == 1.0  # errors are left out, not counted as wrong
    assert report.error_rate == pytest.approx(len(range(0, len(ITEMS), every)) / len(ITEMS))
    assert report.reliable is reliable


def test_judge_blind_to_one_perturbation() -> None:
    def label(item: CalibrationItem) -> float:
        return 1.0 if item.perturbation == "derivation_mismatch" else item.expected

    report = reliability(ITEMS, _judge(label), n_boot=N_BOOT)
    # 200 negatives, 40 of them tied with every positive: (160 + 0.5 × 40) / 200.
    assert report.auroc.value == pytest.approx(0.9)
    # n = 240, agree = 200, chance = 40·80 + 200·160: (48000 − 35200) / (57600 − 35200).
    assert report.kappa.value == pytest.approx(12800 / 22400)
    assert report.reliable
    blind = report.per_perturbation["derivation_mismatch"]
    assert (blind.detection.value, blind.auroc.value, blind.kappa.value) == (0.0, 0.5, 0.0)
    assert report.per_perturbation["answer_swapped"].detection.value == 1.0


def _item(problem: str, kind: str) -> CalibrationItem:
    return CalibrationItem(
        item_id=f"{problem}/{kind}",
        problem_id=problem,
        domain="math",
        question="q",
        response=f"response {problem} {kind}",
        perturbation=kind,  # type: ignore[arg-type]
        expected=1.0 if kind == "faithful" else 0.0,
    )


HAND_ITEMS = [
    _item(p, k) for p in ("p1", "p2") for k in ("faithful", "answer_swapped", "steps_shuffled")
]
HAND_LABELS: dict[str, float | None] = {
    "p1/faithful": 1.0,
    "p1/answer_swapped": 0.0,
    "p1/steps_shuffled": 1.0,  # missed
    "p2/faithful": 0.5,  # a partial on a complete derivation is a miss
    "p2/answer_swapped": 0.5,  # a partial on an unfaithful response is a detection
    "p2/steps_shuffled": None,  # judge_error
}


def test_hand_built_case() -> None:
    report = reliability(HAND_ITEMS, HAND_LABELS, n_boot=N_BOOT)
    assert (report.n_items, report.n_problems, report.n_errors) == (6, 2, 1)
    assert report.error_rate == pytest.approx(1 / 6)
    # pos [1, .5], neg [0, 1, .5]: wins 1, ½, 1, 1, 0, ½ → 4 / 6.
    assert report.auroc.value == pytest.approx(4 / 6)
    # calls right: p1/faithful, p1/answer_swapped, p2/answer_swapped → 3 / 5.
    assert report.accuracy.value == pytest.approx(3 / 5)
    # construction TFFTF vs judge TFTFF: n=5, agree=3, chance=2·2+3·3=13 → 2 / 12.
    assert report.kappa.value == pytest.approx(1 / 6)
    assert report.faithful_aligned.value == pytest.approx(0.5)
    assert list(report.per_perturbation) == ["answer_swapped", "steps_shuffled"]

    swapped = report.per_perturbation["answer_swapped"]
    assert (swapped.n, swapped.n_labelled) == (2, 2)
    assert swapped.detection.value == 1.0
    assert swapped.auroc.value == pytest.approx(0.75)  # p1: win, p2: tie
    assert swapped.kappa.value == pytest.approx(0.5)  # TFTF vs TFFF: (12 − 8) / (16 − 8)

    shuffled = report.per_perturbation["steps_shuffled"]
    assert (shuffled.n, shuffled.n_labelled) == (2, 1)
    assert shuffled.detection.value == 0.0
    assert shuffled.auroc.value == 0.5  # only p1's pair: a tie
    assert shuffled.auroc.n == 1
    assert shuffled.kappa.value == 0.0  # TF vs TT

    # Two problems: fewer than the minimum, so undecided whatever the CIs say, with the
    # floors' own reasons after the size.
    assert not report.reliable and report.outcome == "undecided"
    assert report.reasons[0] == (
        f"2 calibration problem(s) < {MIN_CALIBRATION_PROBLEMS} required: too few to call "
        "the judge reliable (--calibration-size counts per domain, 3 domains)"
    )
    # Gated on the CIs alone: both CIs reach across their floors, so the set cannot tell.
    ci_only = ReliabilityThreshold(min_problems=1)
    report = reliability(HAND_ITEMS, HAND_LABELS, threshold=ci_only, n_boot=N_BOOT)
    assert not report.reliable and report.outcome == "undecided"
    assert [r.split(" [")[0] for r in report.reasons] == ["auroc 0.667", "kappa 0.167"]
    assert all("a larger calibration set (--calibration-size)" in r for r in report.reasons)


def test_threshold_defaults_and_overrides() -> None:
    default = ReliabilityThreshold()
    assert (default.min_auroc, default.min_kappa, default.max_error_rate) == (0.7, 0.4, 0.2)
    assert default.min_problems == MIN_CALIBRATION_PROBLEMS
    lenient = ReliabilityThreshold(min_auroc=0.0, min_kappa=-1.0, min_problems=2)
    report = reliability(HAND_ITEMS, HAND_LABELS, threshold=lenient, n_boot=N_BOOT)
    assert report.reliable and report.threshold == lenient and report.outcome == "reliable"


def test_too_few_problems_are_never_reliable() -> None:
    """A perfect judge on fewer problems than the minimum is undecided, with the size and
    the minimum in the reason; from the minimum on, it is reliable."""
    perfect = _judge(lambda i: i.expected)
    few = build_items(PROBLEMS[: MIN_CALIBRATION_PROBLEMS - 1])
    report = reliability(few, perfect, n_boot=N_BOOT)
    assert report.auroc.ci_low == 1.0 and report.kappa.ci_low == 1.0
    assert not report.reliable and report.outcome == "undecided"
    assert report.reasons == [
        f"{MIN_CALIBRATION_PROBLEMS - 1} calibration problem(s) < {MIN_CALIBRATION_PROBLEMS} "
        "required: too few to call the judge reliable (--calibration-size counts per domain, "
        "3 domains)"
    ]
    enough = build_items(PROBLEMS[:MIN_CALIBRATION_PROBLEMS])
    assert reliability(enough, perfect, n_boot=N_BOOT).reliable
    one = build_items(PROBLEMS[:1])
    assert reliability(one, perfect, n_boot=N_BOOT).outcome == "undecided"


def test_the_minimum_holds_a_weak_judge_back() -> None:
    """A judge right on 6 items in 10 (kappa about 0.27, below the 0.4 floor) is, by its CIs
    alone, called reliable on a few problems by chance (`benchmarks/calibration_size.py
    --floor`); with the minimum it never is, on any draw of a small set."""
    rng = random.Random(5)
    for size in range(1, MIN_CALIBRATION_PROBLEMS):
        for _ in range(3):
            items = build_items(rng.sample(PROBLEMS, size))
            labels = {
                i.item_id: i.expected if rng.random() < 0.62 else 1.0 - i.expected for i in items
            }
            assert not reliability(items, labels, n_boot=N_BOOT).reliable


def test_reliability_is_gated_on_the_ci_bounds_only() -> None:
    # A judge that misses the faithful response of every fifth problem: AUROC well above
    # 0.7 but with a CI that reaches below a floor set just under the point estimate.
    missed = {p.id for p in PROBLEMS[::5]}
    labels = _judge(
        lambda i: 0.0 if i.perturbation == "faithful" and i.problem_id in missed else i.expected
    )
    point = reliability(ITEMS, labels, n_boot=N_BOOT)
    assert point.auroc.value is not None and point.auroc.ci_low is not None
    assert point.auroc.ci_low < point.auroc.value
    floor = (point.auroc.value + point.auroc.ci_low) / 2
    strict = reliability(
        ITEMS, labels, threshold=ReliabilityThreshold(min_auroc=floor, min_kappa=0.0), n_boot=N_BOOT
    )
    assert not strict.reliable and strict.outcome == "undecided"  # the value clears it
    assert f"straddles {floor}" in strict.reasons[0]
    # A floor above the whole CI: unreliable, not undecided.
    assert point.auroc.ci_high is not None
    above = ReliabilityThreshold(min_auroc=point.auroc.ci_high + 0.01, min_kappa=0.0)
    missed_all = reliability(ITEMS, labels, threshold=above, n_boot=N_BOOT)
    assert missed_all.outcome == "unreliable" and "the whole CI is below" in missed_all.reasons[0]


def test_gating_on_point_estimates_is_refused() -> None:
    with pytest.raises(ValueError, match="gate_on='value' is no longer supported"):
        ReliabilityThreshold.model_validate({"gate_on": "value"})
    # A report written before: its default `gate_on` is read and dropped.
    old = ReliabilityThreshold.model_validate({"min_auroc": 0.7, "gate_on": "ci_low"})
    assert old == ReliabilityThreshold()
    report = reliability(HAND_ITEMS, HAND_LABELS, n_boot=N_BOOT).model_dump(mode="json")
    report["threshold"]["gate_on"] = "ci_low"
    assert JudgeReliability.model_validate(report).threshold == ReliabilityThreshold()


@pytest.mark.parametrize("bad", [1.5, -0.5, float("nan")])
def test_labels_outside_the_scale_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="must be in"):
        reliability(HAND_ITEMS, {**HAND_LABELS, "p1/faithful": bad})


def test_report_is_json_without_nan() -> None:
    report = reliability(ITEMS, _judge(lambda i: None), n_boot=N_BOOT)
    data = orjson.loads(orjson.dumps(report.model_dump(mode="json")))
    assert JudgeReliability.model_validate(data) == report


def test_reliability_is_deterministic_for_a_seed() -> None:
    labels = _judge(lambda i: 0.5 if i.perturbation == "steps_shuffled" else i.expected)
    first = reliability(ITEMS, labels, seed=3, n_boot=N_BOOT)
    assert reliability(ITEMS, labels, seed=3, n_boot=N_BOOT) == first
