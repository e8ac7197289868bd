"""Tests for the diversity metrics (`faithcheck.diversity`, `faithcheck.diversity_text`).

Known values on hand-built cases, then properties (hypothesis): bounds, invariance to
sample order, and `summarize_diversity` on records with a fake embedder (no model).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faithcheck.diversity import (
    NOT_GATED_NOTE,
    DiversitySummary,
    answer_clusters,
    faithful_strategy_diversity,
    math_equivalent,
    normalized_entropy,
    pass_at_k_gain,
    shannon_entropy,
    strategy_diversity,
    summarize_diversity,
)
from faithcheck.diversity_text import (
    distinct_n,
    mean_cosine_distance,
    self_bleu,
    vendi_score,
    word_tokens,
)
from faithcheck.sampling import SampleRecord


def numeric_equal(a: str, b: str) -> bool:
    """A transitive stand-in for math-verify: equal as numbers."""
    return float(a) == float(b)


# --- known values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "n", "expected"),
    [
        (["a b c"], 1, 1.0),
        (["a b c"] * 4, 1, 3 / 12),
        (["a b c"] * 4, 2, 2 / 8),
        (["A b", "a B"], 1, 2 / 4),  # lowercased
        (["a a a a"], 1, 1 / 4),
        (["a b", "c d"], 2, 1.0),  # bigrams do not cross responses
        (["x. x"], 1, 1.0),  # punctuation stays attached
        (["one"], 2, None),
        (["", "  "], 1, None),
        ([], 1, None),
    ],
)
def test_distinct_n_known_values(texts: list[str], n: int, expected: float | None) -> None:
    assert distinct_n(texts, n) == (pytest.approx(expected) if expected is not None else None)


def test_distinct_n_rejects_bad_order() -> None:
    with pytest.raises(ValueError, match="n-gram order"):
        distinct_n(["a"], 0)


def test_word_tokens_lowercase_whitespace() -> None:
    assert word_tokens("The  Cat\nsat.") == ["the", "cat", "sat."]


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["the cat sat on the mat"] * 3, 1.0),
        (["x"] * 2, 1.0),  # effective order: no 4-grams needed
        (["alpha beta gamma", "delta epsilon zeta"], 0.0),
        (["", ""], 0.0),  # empty responses score 0
        (["only one"], None),
        ([], None),
    ],
)
def test_self_bleu_known_values(texts: list[str], expected: float | None) -> None:
    assert self_bleu(texts) == (pytest.approx(expected) if expected is not None else None)


def test_self_bleu_partial_overlap_is_between() -> None:
    value = self_bleu(["the cat sat on the mat", "the cat sat on a rug", "dogs bark loudly"])
    assert value is not None and 0.0 < value < 1.0


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_orthogonal_vectors(k: int) -> None:
    eye = np.eye(k, 16)
    assert vendi_score(eye) == pytest.approx(k)
    assert mean_cosine_distance(eye) == (pytest.approx(1.0) if k >= 2 else None)


@pytest.mark.parametrize("k", [1, 2, 4, 16])
def test_identical_vectors(k: int) -> None:
    rows = np.tile(np.array([[0.6, 0.8, 0.0]]), (k, 1))
    assert vendi_score(rows) == pytest.approx(1.0)
    assert mean_cosine_distance(rows) == (pytest.approx(0.0, abs=1e-12) if k >= 2 else None)


def test_embedding_known_values() -> None:
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert mean_cosine_distance(opposite) == pytest.approx(2.0)
    # Two clusters of two identical vectors, orthogonal to each other: 2 effective items.
    blocks = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert vendi_score(blocks) == pytest.approx(2.0)
    assert mean_cosine_distance(blocks) == pytest.approx(4 / 6)
    # Scale does not matter: rows are re-normalized.
    assert vendi_score(blocks * 7.0) == pytest.approx(2.0)


def test_embedding_metrics_reject_bad_input() -> None:
    assert vendi_score(np.zeros((0, 4))) is None
    with pytest.raises(ValueError, match="zero"):
        vendi_score(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(k, d\)"):
        mean_cosine_distance(np.ones((2, 2, 2)))


@pytest.mark.parametrize(
    ("answers", "labels"),
    [
        (["1", "1.0", "2", "01"], [0, 0, 1, 0]),
        (["1", None, "1", None, "3"], [0, 1, 0, 1, 2]),  # one "no answer" cluster
        ([None, None], [0, 0]),
        (["5"], [0]),
        ([], []),
    ],
)
def test_answer_clusters_known_values(answers: list[str | None], labels: list[int]) -> None:
    assert answer_clusters(answers, numeric_equal) == labels


def test_answer_clusters_compare_only_with_representatives() -> None:
    calls: list[tuple[str, str]] = []

    def counting(a: str, b: str) -> bool:
        calls.append((a, b))
        return numeric_equal(a, b)

    answers = ["1", "2", "1.0", "3", "2", "2.0", "1", None, "3"]
    assert answer_clusters(answers, counting) == [0, 1, 0, 2, 1, 1, 0, 3, 2]
    # Repeated strings and None cost nothing; each new string meets at most 3 representatives.
    assert len(calls) == 0 + 1 + 1 + 2 + 2
    assert all(a in {"1", "2", "3"} for a, _ in calls)


def test_default_equivalence_normalizes_then_math_verify() -> None:
    assert math_equivalent("$\\dfrac{1}{2}$", "\\frac{1}{2}")  # normalize_answer alone
    assert math_equivalent("1/2", "0.5")  # math-verify
    assert not math_equivalent("1/2", "0.6")
    assert answer_clusters(["\\frac{1}{2}", "0.5", "3", None]) == [0, 0, 1, 2]


@pytest.mark.parametrize(
    ("labels", "entropy", "normalized"),
    [
        ([0, 0, 0, 0], 0.0, 0.0),
        ([0, 1], math.log(2), 1.0),
        ([0, 0, 1, 1], math.log(2), 0.5),
        ([0, 1, 2, 3], math.log(4), 1.0),
        ([7], 0.0, None),
        ([], 0.0, None),
    ],
)
def test_entropy_known_values(labels: list[int], entropy: float, normalized: float | None) -> None:
    assert shannon_entropy(labels) == pytest.approx(entropy)
    assert normalized_entropy(labels) == (
        pytest.approx(normalized) if normalized is not None else None
    )


@pytest.mark.parametrize(
    ("correct", "expected"),
    [
        ([False] * 4, 0.0),
        ([True] * 4, 0.0),
        ([True, False, False, False], 1.0 - 0.25),
        ([True, True, False, False], 1.0 - 0.5),
        ([True], 0.0),
        ([], None),
    ],
)
def test_pass_at_k_gain_known_values(correct: list[bool], expected: float | None) -> None:
    assert pass_at_k_gain(correct) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([0, 0, 1, 1], 1 / 3),  # exp(H) = 2 → (2 − 1)/(4 − 1)
        ([0, 0, 0, 0], 0.0),
        ([0, 1, 2, 3], 1.0),
        ([3, 1, 4, 5, 9], 1.0),
        ([0], 0.0),  # K = 1
        ([], None),
    ],
)
def test_strategy_diversity_known_values(labels: list[int], expected: float | None) -> None:
    assert strategy_diversity(labels) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("labels", "flags", "expected"),
    [
        ([0, 0, 1, 2], [True, True, False, False], 0.0),
        ([0, 0, 1, 2], [False, True, True, True], 1.0),
        ([0, 0, 1, 1], [True] * 4, 1 / 3),
        ([0, 1], [False, False], None),
    ],
)
def test_faithful_strategy_diversity_known_values(
    labels: list[int], flags: list[bool], expected: float | None
) -> None:
    assert faithful_strategy_diversity(labels, flags) == (
        pytest.approx(expected) if expected is not None else None
    )


def test_faithful_strategy_diversity_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 cluster labels but 1 alignment flags"):
        faithful_strategy_diversity([0, 1], [True])


# --- properties ------------------------------------------------------------------------------

words = st.sampled_from(["a", "b", "c", "the", "x=1", "So,", "Answer"])
texts_st = st.lists(st.lists(words, max_size=12).map(" ".join), min_size=2, max_size=6)
labels_st = st.lists(st.integers(0, 5), min_size=1, max_size=12)


@st.composite
def matrices(draw: st.DrawFn) -> np.ndarray:
    k = draw(st.integers(1, 6))
    d = draw(st.integers(1, 5))
    cells = st.floats(-1, 1, allow_nan=False).filter(lambda v: v == 0 or abs(v) > 1e-3)
    rows = draw(
        st.lists(
            st.lists(cells, min_size=d, max_size=d).filter(lambda r: any(v != 0 for v in r)),
            min_size=k,
            max_size=k,
        )
    )
    return np.array(rows)


@given(texts_st, st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_text_metrics_bounded_and_order_invariant(texts: list[str], rnd: random.Random) -> None:
    shuffled = rnd.sample(texts, len(texts))
    for n in (1, 2):
        value = distinct_n(texts, n)
        assert value is None or 0.0 < value <= 1.0
        assert distinct_n(shuffled, n) == value
    bleu = self_bleu(texts)
    assert bleu is not None and 0.0 <= bleu <= 1.0
    assert self_bleu(shuffled) == pytest.approx(bleu, abs=1e-9)


@given(matrices(), st.randoms(use_true_random=False))
@settings(max_examples=80, deadline=None)
def test_embedding_metrics_bounded_and_order_invariant(
    matrix: np.ndarray, rnd: random.Random
) -> None:
    k = len(matrix)
    perm = rnd.sample(range(k), k)
    vendi = vendi_score(matrix)
    assert vendi is not None and 1.0 <= vendi <= k
    assert vendi_score(matrix[perm]) == pytest.approx(vendi, abs=1e-9)
    distance = mean_cosine_distance(matrix)
    if k < 2:
        assert distance is None
    else:
        assert distance is not None and 0.0 <= distance <= 2.0
        assert mean_cosine_distance(matrix[perm]) == pytest.approx(distance, abs=1e-9)


@given(labels_st, st.randoms(use_true_random=False))
def test_strategy_diversity_bounded_and_invariant(labels: list[int], rnd: random.Random) -> None:
    value = strategy_diversity(labels)
    assert value is not None and 0.0 <= value <= 1.0
    assert strategy_diversity(rnd.sample(labels, len(labels))) == pytest.approx(value)
    assert strategy_diversity([label + 10 for label in labels]) == pytest.approx(value)
    flags = [rnd.random() < 0.5 for _ in labels]
    faithful = faithful_strategy_diversity(labels, flags)
    assert faithful is None or 0.0 <= faithful <= 1.0


@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["1", "1.0", "2", "2.00", "3"]))),
    st.randoms(use_true_random=False),
)
def test_answer_entropy_bounded_and_order_invariant(
    answers: list[str | None], rnd: random.Random
) -> None:
    labels = answer_clusters(answers, numeric_equal)
    shuffled = answer_clusters(rnd.sample(answers, len(answers)), numeric_equal)
    assert len(set(labels)) <= 4  # three numbers and "no answer"
    assert shannon_entropy(shuffled) == pytest.approx(shannon_entropy(labels))
    normalized = normalized_entropy(labels)
    assert normalized is None or 0.0 <= normalized <= 1.0


@given(st.lists(st.booleans(), min_size=1, max_size=20))
def test_pass_at_k_gain_bounded(correct: list[bool]) -> None:
    gain = pass_at_k_gain(correct)
    assert gain is not None and 0.0 <= gain < 1.0


# --- summary ---------------------------------------------------------------------------------


class OneHotEmbedder:
    """Identical texts map to the same vector, different texts to orthogonal ones."""

    name = "one-hot"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        vocab = {t: i for i, t in enumerate(dict.fromkeys(texts))}
        out = np.zeros((len(texts), max(1, len(vocab))), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, vocab[text]] = 1.0
        return out


def sample(
    pid: str, index: int, text: str, answer: str | None = "1", correct: bool = False
) -> SampleRecord:
    return SampleRecord(
        problem_id=pid,
        sample_index=index,
        seed=0,
        prompt_tokens=3,
        completion=text,
        completion_token_ids=[1, 2],
        finish_reason="stop",
        steps=[],
        answer=answer,
        answer_rule="boxed" if answer is not None else "none",
        correct=correct,
        verify_method="exact" if answer is not None else "none",
    )


def run_records() -> list[SampleRecord]:
    same = [sample("p1", i, "we add the numbers", "4", correct=True) for i in range(4)]
    mixed = [
        sample("p2", 0, "try factoring first", "2", correct=True),
        sample("p2", 1, "try factoring first", "2.0", correct=True),
        sample("p2", 2, "use the quadratic formula", "3"),
        sample("p2", 3, "use the quadratic formula", None),
    ]
    return same + mixed


def test_summary_known_values() -> None:
    embedder = OneHotEmbedder()
    summary = summarize_diversity(
        run_records(),
        embedder=embedder,
        equivalent=numeric_equal,
        strategy_clusters={
            "p1": dict(enumerate([0, 0, 0, 0])),
            "p2": dict(enumerate([0, 0, 1, 1])),
        },
        aligned={("p1", 0): True, ("p2", 0): True, ("p2", 2): True},
    )
    assert summary.n_problems == 2 and summary.samples_per_problem == 4
    assert summary.embedder == "one-hot" and summary.note == NOT_GATED_NOTE
    assert len(embedder.calls) == 1 and len(embedder.calls[0]) == 8
    assert summary.distinct_1.value == pytest.approx((4 / 16 + 7 / 14) / 2)
    assert summary.self_bleu.value == pytest.approx(1.0)  # every response has a twin
    assert summary.vendi is not None and summary.vendi.value == pytest.approx((1 + 2) / 2)
    assert summary.embedding_distance is not None
    assert summary.embedding_distance.value == pytest.approx((0 + 4 / 6) / 2)
    # p2's answers: {2, 2.0}, {3}, {no answer} → sizes 2, 1, 1.
    h2 = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert summary.answer_entropy.value == pytest.approx(h2 / 2)
    assert summary.answer_entropy_normalized.value == pytest.approx(h2 / math.log(4) / 2)
    assert summary.pass_at_k_gain.value == pytest.approx((0 + 0.5) / 2)
    assert summary.strategy_diversity is not None
    assert summary.strategy_diversity.value == pytest.approx((0 + 1 / 3) / 2)
    # Aligned: p1 → [0] (K = 1 → 0); p2 → labels [0, 1] → 1.
    assert summary.faithful_strategy_diversity is not None
    assert summary.faithful_strategy_diversity.value == pytest.approx(0.5)
    assert summary.strategy_diversity.n == 2 and summary.strategy_diversity.ci_low is not None


def assert_summaries_close(a: DiversitySummary, b: DiversitySummary) -> None:
    da, db = a.model_dump(), b.model_dump()
    assert da.keys() == db.keys()
    for key, value in da.items():
        if isinstance(value, dict):
            for field in ("value", "ci_low", "ci_high"):
                expected = db[key][field]
                assert value[field] == (pytest.approx(expected) if expected is not None else None)
            assert (value["n"], value["reason"]) == (db[key]["n"], db[key]["reason"])
        else:
            assert value == db[key], key


def test_summary_invariant_to_record_order() -> None:
    records = run_records()
    clusters = {"p1": dict(enumerate([0, 0, 0, 0])), "p2": dict(enumerate([0, 0, 1, 1]))}
    aligned = {("p2", 1): True, ("p2", 3): True}

    def summarize(recs: list[SampleRecord]) -> DiversitySummary:
        return summarize_diversity(
            recs,
            embedder=OneHotEmbedder(),
            equivalent=numeric_equal,
            strategy_clusters=clusters,
            aligned=aligned,
        )

    base = summarize(records)
    rnd = random.Random(1)
    for _ in range(3):
        assert_summaries_close(summarize(rnd.sample(records, len(records))), base)


def test_summary_without_optional_parts() -> None:
    summary = summarize_diversity(run_records(), equivalent=numeric_equal)
    assert summary.embedder is None
    assert summary.embedding_distance is None and summary.vendi is None
    assert summary.strategy_diversity is None and summary.faithful_strategy_diversity is None
    assert summary.distinct_2.value is not None
    summary.model_dump_json()  # serializable as it stands


def test_summary_single_sample_problems() -> None:
    records = [sample("a", 0, "one response"), sample("b", 0, "another one", None)]
    summary = summarize_diversity(
        records,
        embedder=OneHotEmbedder(),
        equivalent=numeric_equal,
        strategy_clusters={"a": {0: 0}},
    )
    assert summary.distinct_1.value == pytest.approx(1.0) and summary.distinct_1.n == 2
    for metric in (
        summary.self_bleu,
        summary.vendi,
        summary.answer_entropy,
        summary.pass_at_k_gain,
    ):
        assert metric is not None and metric.value is None
        assert metric.reason == "needs at least 2 samples per problem"
    assert summary.strategy_diversity is not None and summary.strategy_diversity.value == 0.0


def test_summary_variable_sample_counts_and_empty() -> None:
    records = [*run_records(), sample("p3", 0, "alone")]
    summary = summarize_diversity(records, equivalent=numeric_equal)
    assert summary.samples_per_problem is None and summary.n_problems == 3
    assert summary.self_bleu.n == 2  # p3 has one sample
    empty = summarize_diversity([], embedder=OneHotEmbedder())
    assert empty.n_problems == 0 and empty.distinct_1.reason == "no samples"
    assert empty.vendi is not None and empty.vendi.value is None


def test_summary_rejects_mismatched_strategy_labels() -> None:
    with pytest.raises(ValueError, match=r"unknown samples \[7\]"):
        summarize_diversity(
            run_records(), equivalent=numeric_equal, strategy_clusters={"p1": {0: 0, 7: 1}}
        )


def test_summary_strategy_over_a_subset_of_samples() -> None:
    summary = summarize_diversity(
        run_records(),
        equivalent=numeric_equal,
        strategy_clusters={"p2": {0: 0, 2: 1}},
        aligned={("p2", 0): True, ("p2", 2): True},
    )
    assert summary.strategy_diversity is not None
    assert summary.strategy_diversity.value == pytest.approx(1.0)  # 2 of 2 differ
    assert summary.faithful_strategy_diversity is not None
    assert summary.faithful_strategy_diversity.value == pytest.approx(1.0)


def test_summary_faithful_without_aligned_responses() -> None:
    summary = summarize_diversity(
        run_records(),
        equivalent=numeric_equal,
        strategy_clusters={"p2": dict(enumerate([0, 0, 1, 1]))},
        aligned={},
    )
    assert summary.strategy_diversity is not None and summary.strategy_diversity.n == 1
    assert summary.faithful_strategy_diversity is not None
    assert summary.faithful_strategy_diversity.value is None
    assert summary.faithful_strategy_diversity.reason == "no judge-aligned responses"
