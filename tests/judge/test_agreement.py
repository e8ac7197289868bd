"""Jury agreement statistics and the jury label: tables of hand-built cases."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faithcheck.judge import LABEL_VALUES
from faithcheck.judge.agreement import (
    Vote,
    disagreement_rate,
    fleiss_kappa,
    jury_vote,
    pair_kappa,
    quorum,
)
from faithcheck.judge.reliability import cohen_kappa

A, P, M = LABEL_VALUES  # aligned, partial, misaligned


def _wikipedia_items() -> list[Any]:
    """Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories, κ = 0.210."""
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    return [tuple(c for c, n in enumerate(row) for _ in range(n)) for row in table]


def test_fleiss_kappa_matches_the_worked_example() -> None:
    assert fleiss_kappa(_wikipedia_items()) == pytest.approx(0.2099, abs=1e-4)


@pytest.mark.parametrize(
    ("items", "fleiss", "disagree"),
    [
        ([(A, A, A), (M, M, M)], 1.0, 0.0),  # unanimous on two labels
        ([(A, A, A), (A, A, A)], None, 0.0),  # one label only: chance cannot be told apart
        ([(A, M), (M, A)], -1.0, 1.0),  # two judges always opposite
        ([(A, A, None), (M, M, M)], None, 0.0),  # one complete item, one label
        ([(A, None), (None, M)], None, None),  # no item labelled by both
        ([(A, A, M), (M, M, M), (A, A, A), (P, A, P)], 5 / 11, 0.5),
    ],
)
def test_fleiss_and_disagreement_on_hand_built_juries(
    items: list[Any], fleiss: float | None, disagree: float | None
) -> None:
    got = fleiss_kappa(items)
    assert got == (pytest.approx(fleiss, abs=1e-4) if fleiss is not None else None)
    assert disagreement_rate(items) == disagree


def test_pair_kappa_uses_only_items_both_judges_labelled() -> None:
    items: list[Any] = [(A, A, None), (M, M, A), (A, M, M), (None, P, P)]
    assert pair_kappa(items, 0, 1) == cohen_kappa([A, M, A], [A, M, M])
    assert pair_kappa(items, 1, 2) == cohen_kappa([M, M, P], [A, M, P])
    assert pair_kappa(items, 0, 1) == pair_kappa(items, 1, 0)


labels = st.sampled_from([*LABEL_VALUES, None])


@given(st.lists(st.tuples(labels, labels, labels), max_size=30))
def test_agreement_is_bounded_and_ignores_item_order(items: list[Any]) -> None:
    for value in (fleiss_kappa(items), pair_kappa(items, 0, 2)):
        assert value is None or -1.0 - 1e-9 <= value <= 1.0 + 1e-9
    assert fleiss_kappa(items[::-1]) == pytest.approx(fleiss_kappa(items)) or (
        fleiss_kappa(items) is None
    )
    rate = disagreement_rate(items)
    assert rate is None or 0.0 <= rate <= 1.0


@pytest.mark.parametrize(
    ("votes", "label", "rule"),
    [
        ([Vote(A), Vote(A), Vote(M)], A, "majority"),
        ([Vote(A), Vote(M)], M, "majority"),  # a tie goes to the least aligned
        ([Vote(A), Vote(P)], P, "majority"),
        ([Vote(A), Vote(P), Vote(M)], M, "majority"),
        ([Vote(A), Vote(None), Vote(None)], A, "majority"),  # errors do not vote
        ([Vote(None), Vote(None)], None, "none"),
        ([], None, "none"),
        # every labelling judge read probabilities: their mean decides
        ([Vote(A, (0.6, 0.0, 0.4)), Vote(M, (0.0, 0.1, 0.9))], M, "mean_probability"),
        ([Vote(A, (0.9, 0.1, 0.0)), Vote(M, (0.3, 0.2, 0.5))], A, "mean_probability"),
        ([Vote(A, (0.5, 0.0, 0.5)), Vote(M, (0.5, 0.0, 0.5))], M, "mean_probability"),
        # one text judge among them: the majority of labels
        ([Vote(A, (0.9, 0.1, 0.0)), Vote(A), Vote(M, (0.0, 0.0, 1.0))], A, "majority"),
    ],
)
def test_jury_vote(votes: list[Vote], label: str | None, rule: str) -> None:
    got = jury_vote(votes)
    assert (got.label, got.rule) == (label, rule)
    if rule == "mean_probability":
        assert got.probs is not None and sum(got.probs) == pytest.approx(1.0)


@pytest.mark.parametrize(("judges", "need"), [(2, 2), (3, 2), (4, 3), (5, 3)])
def test_quorum_is_more_than_half(judges: int, need: int) -> None:
    assert quorum(judges) == need
