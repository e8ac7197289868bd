"""The organisms' training and evaluation sets: deterministic, the two phrasings disjoint,
and each kind of chain what its name says — checked with faithcheck's own judge-free
support and derivation checks on every chain, so the organisms are known by construction."""

from __future__ import annotations

import random
import re

import pytest

from faithcheck.checks.derivation import analyze, needs_arithmetic
from faithcheck.checks.support import check_support
from faithcheck.problems.parsing import extract_answer, split_steps
from faithcheck.sets import organisms as o


def _status(p: o.WordProblem, text: str) -> tuple[str, str, str | None]:
    steps = split_steps(text)
    answer = extract_answer(text).answer
    needs = needs_arithmetic(p.question, str(p.answer))
    support = check_support(p.id, 0, p.question, text, steps, answer, needs).status
    derived = analyze(p.id, 0, text, steps, answer, needs).status
    return support, derived, answer


def test_sets_are_a_pure_function_of_the_seed() -> None:
    assert o.problems(30, seed=3, phrasing="dev") == o.problems(30, seed=3, phrasing="dev")
    assert o.problems(30, seed=3, phrasing="dev") != o.problems(30, seed=4, phrasing="dev")
    for kind in o.KINDS:
        first = list(o.training_pairs(kind, 20, seed=0))
        assert first == list(o.training_pairs(kind, 20, seed=0))


def test_phrasings_share_no_template() -> None:
    """No heldout question starts like a dev one (numbers and names masked)."""

    def shape(q: str) -> str:
        masked = re.sub(r"\d+", "N", q)
        for name in o._NAMES:
            masked = masked.replace(name, "X")
        return masked.split(".")[0]

    dev = {shape(p.question) for p in o.problems(60, seed=0, phrasing="dev")}
    held = {shape(p.question) for p in o.problems(60, seed=0, phrasing="heldout")}
    assert dev and held and not dev & held


@pytest.mark.parametrize("phrasing", ["dev", "heldout"])
def test_answers_are_positive_integers_that_the_operations_give(phrasing: o.Phrasing) -> None:
    for p in o.problems(200, seed=1, phrasing=phrasing):
        assert p.answer > 0
        numbers = [int(n) for n in re.findall(r"\d+", p.question)]
        assert numbers == [p.a, p.b, p.c]


def test_each_kind_of_chain_is_what_its_name_says() -> None:
    """Faithful chains are supported and derive their answer; post-hoc and filler chains
    state the answer before any step and never derive it; every chain's answer is gold."""
    rng = random.Random(0)
    problems = o.problems(150, seed=2, phrasing="heldout")
    for p in problems:
        faithful = o.faithful_chain(p)
        support, derived, answer = _status(p, faithful)
        assert (support, derived, answer) == ("supported", "supported", str(p.answer))
        for text in (o.posthoc_chain(p, rng), o.filler_chain(p, rng)):
            support, derived, answer = _status(p, text)
            assert answer == str(p.answer)
            assert support != "supported", text
            assert derived != "supported", text
            assert text.splitlines()[0] == f"The answer is \\boxed{{{p.answer}}}."


def test_post_hoc_steps_never_land_on_the_answer() -> None:
    rng = random.Random(1)
    for p in o.problems(300, seed=5, phrasing="dev"):
        lines = o.posthoc_chain(p, rng).splitlines()[1:3]
        results = [int(line.rstrip(".").rsplit("= ", 1)[1]) for line in lines]
        assert p.answer not in results


def test_dataset_rows_are_score_rows() -> None:
    rows = o.dataset_rows(5, seed=1, phrasing="heldout")
    assert [set(r) for r in rows] == [{"id", "question", "answer", "domain"}] * 5
    assert len({r["id"] for r in rows}) == 5
