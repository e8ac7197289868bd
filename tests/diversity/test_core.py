"""Tests for the diversity metrics (`faithcheck.diversity.core`, `faithcheck.diversity.text`).

Known values on hand-built cases, then properties (hypothesis): bounds, invariance to
sample order, and `summarize_diversity` on records with a fake embedder (no model). The
streaming `summarize_diversity_groups` is checked against outputs recorded from the
in-memory implementation before it was rebuilt on top of the streaming one.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faithcheck.diversity.core import (
    NOT_GATED_NOTE,
    PER_PROBLEM_METRICS,
    DiversitySummary,
    answer_clusters,
    faithful_strategy_diversity,
    math_equivalent,
    normalized_entropy,
    pass_at_k_gain,
    shannon_entropy,
    strategy_diversity,
    summarize_diversity,
    summarize_diversity_groups,
)
from faithcheck.diversity.text import (
    distinct_n,
    mean_cosine_distance,
    self_bleu,
    vendi_score,
    word_tokens,
)
from faithcheck.metrics import bootstrap_mean, group_by
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


# --- streaming -------------------------------------------------------------------------------


class HashEmbedder:
    """Each text maps to a fixed vector from its hash, whatever else is in the same call.

    So batching cannot change any embedding, and streamed results must equal in-memory
    ones exactly; unlike one-hot vectors, the metrics take non-trivial values.
    """

    name = "hash"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = [
            np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) - 127.5
            for t in texts
        ]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 8)


def mixed_records() -> list[SampleRecord]:
    """Seven problems, interleaved and out of sample order, of 1 to 4 samples each."""
    return [
        sample("p1", 2, "we add the numbers", "4", correct=True),
        sample("p2", 3, "use the quadratic formula", None),
        sample("p1", 0, "we add the numbers", "4", correct=True),
        sample("p3", 0, "guess and check", "7", correct=True),
        sample("p2", 0, "try factoring first", "2", correct=True),
        sample("p4", 1, "draw a picture of the triangle", "5"),
        sample("p1", 3, "we add all the numbers up", "4.0", correct=True),
        sample("p2", 2, "use the quadratic formula then simplify", "3"),
        sample("p4", 0, "law of cosines gives the side", "5", correct=True),
        sample("p5", 1, "count the cases one by one", "12", correct=True),
        sample("p1", 1, "sum them", "4", correct=True),
        sample("p6", 0, "no idea", None),
        sample("p2", 1, "try factoring first", "2.0", correct=True),
        sample("p4", 2, "pythagoras on the right triangle", "6"),
        sample("p5", 0, "count the complement instead", "11"),
        sample("p7", 2, "induction on n", "8", correct=True),
        sample("p7", 0, "induction on n works", "8", correct=True),
        sample("p7", 1, "a direct bijection", "9"),
    ]


# Strategy labels: all samples (p1, p2, p7), a single sample (p3), a subset (p5), none (p4, p6).
STRATEGY: dict[str, dict[int, int]] = {
    "p1": {0: 0, 1: 0, 2: 1, 3: 0},
    "p2": {0: 0, 1: 0, 2: 1, 3: 1},
    "p3": {0: 0},
    "p5": {1: 2},
    "p7": {0: 0, 1: 1, 2: 0},
}
# Alignment: part of p1, p2 and p7; nothing of p3 or p5 (judged); p4 is aligned but not judged.
ALIGNED: dict[tuple[str, int], bool] = {
    ("p1", 0): True,
    ("p1", 2): True,
    ("p1", 3): False,
    ("p2", 0): True,
    ("p2", 2): True,
    ("p2", 3): True,
    ("p4", 0): True,
    ("p7", 0): True,
    ("p7", 1): True,
    ("p7", 2): True,
}

# `summarize_diversity` outputs on `mixed_records()` recorded from the implementation before
# streaming (one embedder call for all problems; numeric_equal, seed 0): metric name →
# (value, ci_low, ci_high, n, reason), or None when not computed. The CIs were recomputed for
# the intervals of issue #28 (the values are unchanged): metrics in [0, 1] get
# `share_interval` (distinct_1's equals it on the seven per-problem values), the others the
# expanded BCa bootstrap.
_Recorded = Mapping[str, object]
_RECORDED_JUDGED: _Recorded = {
    "distinct_1": (0.7467436974789915, 0.42886583335415684, 0.9204970741618879, 7, None),
    "distinct_2": (0.822278911564626, 0.4675310714962574, 0.9605998088723718, 7, None),
    "self_bleu": (0.44929274885929243, 0.12766709198463239, 0.8197548882190935, 5, None),
    "embedding_distance": (1.0202277381158376, 0.8583416390529861, 1.2615491797979848, 5, None),
    "vendi": (2.449811216002712, 2.053776210576486, 2.765572547022028, 5, None),
    "answer_entropy": (0.6011792575978977, 0.12730283365896256, 0.9590794503308968, 5, None),
    "answer_entropy_normalized": (
        0.581752065714278,
        0.17981451735365,
        0.898214802684153,
        5,
        None,
    ),
    "pass_at_k_gain": (0.4, 0.1141763412902031, 0.7751884346161124, 5, None),
    "strategy_diversity": (0.20597251419111914, 0.03197433594759602, 0.6707489363012294, 5, None),
    "faithful_strategy_diversity": (
        0.6299605249474366,
        0.07292442039899266,
        0.9735760839167826,
        3,
        None,
    ),
    "n_problems": 7,
    "samples_per_problem": None,
    "embedder": "hash",
}
_NEEDS_TWO_RECORDED = (None, None, None, 0, "needs at least 2 samples per problem")
_NO_ALIGNED_RECORDED = (None, None, None, 0, "no judge-aligned responses")
RECORDED: dict[str, tuple[Callable[[], list[SampleRecord]], bool, bool, bool | None, _Recorded]] = {
    # name: (records, embedder?, strategy?, aligned: ALIGNED / {} / None, recorded outputs)
    "judged": (mixed_records, True, True, True, _RECORDED_JUDGED),
    "strategy_only": (
        mixed_records,
        True,
        True,
        None,
        {**_RECORDED_JUDGED, "faithful_strategy_diversity": None},
    ),
    "nothing_aligned": (
        mixed_records,
        True,
        True,
        False,
        {**_RECORDED_JUDGED, "faithful_strategy_diversity": _NO_ALIGNED_RECORDED},
    ),
    "plain": (
        mixed_records,
        False,
        False,
        None,
        {
            **_RECORDED_JUDGED,
            "embedding_distance": None,
            "vendi": None,
            "strategy_diversity": None,
            "faithful_strategy_diversity": None,
            "embedder": None,
        },
    ),
    "single_only": (
        lambda: [r for r in mixed_records() if r.problem_id in {"p3", "p6"}],
        True,
        True,
        True,
        {
            "distinct_1": (1.0, 0.009205411082165493, 1.0, 2, None),
            "distinct_2": (1.0, 0.009205411082165493, 1.0, 2, None),
            "self_bleu": _NEEDS_TWO_RECORDED,
            "embedding_distance": _NEEDS_TWO_RECORDED,
            "vendi": _NEEDS_TWO_RECORDED,
            "answer_entropy": _NEEDS_TWO_RECORDED,
            "answer_entropy_normalized": _NEEDS_TWO_RECORDED,
            "pass_at_k_gain": _NEEDS_TWO_RECORDED,
            "strategy_diversity": (0.0, 0.0, 1.0, 1, None),
            "faithful_strategy_diversity": _NO_ALIGNED_RECORDED,
            "n_problems": 2,
            "samples_per_problem": 1,
            "embedder": "hash",
        },
    ),
}


def aligned_by_problem(
    aligned: Mapping[tuple[str, int], bool],
) -> Callable[[str], Mapping[int, bool]]:
    by_problem: dict[str, dict[int, bool]] = {}
    for (pid, index), ok in aligned.items():
        by_problem.setdefault(pid, {})[index] = ok
    return lambda pid: by_problem.get(pid, {})


def assert_matches_recorded(summary: DiversitySummary, recorded: _Recorded) -> None:
    dump = summary.model_dump()
    assert dump.pop("note") == NOT_GATED_NOTE
    assert dump.keys() == recorded.keys()
    for key, value in dump.items():
        expected = recorded[key]
        if isinstance(value, dict):
            value = (value["value"], value["ci_low"], value["ci_high"], value["n"], value["reason"])
            if key in {"embedding_distance", "vendi"} and value[0] is not None:
                # Linear algebra may round differently on another BLAS; all else is exact.
                assert isinstance(expected, tuple), key
                assert value[:3] == pytest.approx(expected[:3], rel=1e-12), key
                assert value[3:] == expected[3:], key
                continue
        assert value == expected, key


@pytest.mark.parametrize("batch", [1, 2, 3, 64])
@pytest.mark.parametrize("name", sorted(RECORDED))
def test_groups_match_recorded_outputs(name: str, batch: int) -> None:
    records, embed, judged, with_aligned, recorded = RECORDED[name]
    aligned = None if with_aligned is None else ALIGNED if with_aligned else {}
    old_style = summarize_diversity(
        records(),
        embedder=HashEmbedder() if embed else None,
        equivalent=numeric_equal,
        strategy_clusters=STRATEGY if judged else None,
        aligned=aligned,
    )
    # Groups as a reader of samples.jsonl would produce them: per problem, unsorted.
    streamed = summarize_diversity_groups(
        group_by(records(), lambda s: s.problem_id).values(),
        embedder=HashEmbedder() if embed else None,
        equivalent=numeric_equal,
        strategy=STRATEGY.get if judged else None,
        aligned=aligned_by_problem(aligned) if aligned is not None else None,
        embed_batch_problems=batch,
    )
    assert_matches_recorded(old_style, recorded)
    assert_matches_recorded(streamed, recorded)
    assert streamed.model_dump() == old_style.model_dump()


def test_groups_embed_once_per_batch_of_problems() -> None:
    problems = [
        [sample(f"q{i}", j, f"response {j} to problem {i}") for j in range(2)] for i in range(5)
    ]
    # Single-sample problems are not embedded and do not count towards a batch.
    singles = [[sample(f"s{i}", 0, f"lone response {i}")] for i in range(3)]
    groups = [problems[0], singles[0], problems[1], problems[2], singles[1], *problems[3:]]
    embedder = HashEmbedder()
    summary = summarize_diversity_groups(
        [*groups, singles[2]], embedder=embedder, equivalent=numeric_equal, embed_batch_problems=2
    )
    texts = [[s.completion for s in problem] for problem in problems]
    assert embedder.calls == [texts[0] + texts[1], texts[2] + texts[3], texts[4]]
    assert summary.n_problems == 8 and summary.vendi is not None and summary.vendi.n == 5
    assert summary.embedding_distance is not None and summary.embedding_distance.n == 5
    records = [s for group in [*groups, singles[2]] for s in group]
    one_call = HashEmbedder()
    expected = summarize_diversity(records, embedder=one_call, equivalent=numeric_equal)
    assert len(one_call.calls) == 1 and summary.model_dump() == expected.model_dump()


def test_groups_from_a_one_shot_generator() -> None:
    records = mixed_records()
    grouped = list(group_by(records, lambda s: s.problem_id).values())
    yielded: list[str] = []

    def read_problems() -> Iterator[list[SampleRecord]]:
        for group in grouped:
            yielded.append(group[0].problem_id)
            yield group

    class WatchingEmbedder(HashEmbedder):
        """Notes how far the generator had got at each call."""

        def __init__(self) -> None:
            super().__init__()
            self.seen: list[list[str]] = []

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            self.seen.append(list(yielded))
            return super().embed(texts)

    embedder = WatchingEmbedder()
    problems = read_problems()
    summary = summarize_diversity_groups(
        problems,
        embedder=embedder,
        equivalent=numeric_equal,
        strategy=STRATEGY.get,
        aligned=aligned_by_problem(ALIGNED),
        embed_batch_problems=2,
    )
    assert next(problems, None) is None  # consumed, once
    assert_matches_recorded(summary, _RECORDED_JUDGED)
    # Multi-sample problems are p1, p2, p4, p5, p7: each batch is embedded as soon as it
    # is full, before the next problem is read.
    assert embedder.seen == [
        ["p1", "p2"],
        ["p1", "p2", "p3", "p4", "p5"],
        ["p1", "p2", "p3", "p4", "p5", "p6", "p7"],
    ]


def test_groups_strategy_per_problem() -> None:
    """`strategy` is asked once per problem; None skips it, `aligned` only for judged ones."""
    asked: list[str] = []
    asked_aligned: list[str] = []

    def strategy(pid: str) -> Mapping[int, int] | None:
        asked.append(pid)
        return STRATEGY.get(pid)

    def aligned(pid: str) -> Mapping[int, bool]:
        asked_aligned.append(pid)
        return aligned_by_problem(ALIGNED)(pid)

    summary = summarize_diversity_groups(
        group_by(mixed_records(), lambda s: s.problem_id).values(),
        equivalent=numeric_equal,
        strategy=strategy,
        aligned=aligned,
    )
    assert asked == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    assert asked_aligned == ["p1", "p2", "p3", "p5", "p7"]
    assert summary.strategy_diversity is not None
    metric = summary.strategy_diversity
    assert (metric.value, metric.ci_low, metric.ci_high, metric.n, metric.reason) == (
        _RECORDED_JUDGED["strategy_diversity"]
    )


def test_groups_rejects_bad_input() -> None:
    groups = list(group_by(mixed_records(), lambda s: s.problem_id).values())
    with pytest.raises(
        ValueError, match=r"problem 'p1': strategy labels for unknown samples \[7\]"
    ):
        summarize_diversity_groups(
            groups, equivalent=numeric_equal, strategy={"p1": {0: 0, 7: 1}}.get
        )
    with pytest.raises(ValueError, match=r"group of problem 'p1' also holds problems \['p2'\]"):
        summarize_diversity_groups([groups[0] + groups[1]], equivalent=numeric_equal)
    with pytest.raises(ValueError, match="embed_batch_problems must be at least 1"):
        summarize_diversity_groups(groups, embedder=HashEmbedder(), embed_batch_problems=0)

    class ShortEmbedder(HashEmbedder):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            return super().embed(texts)[:-1]

    with pytest.raises(ValueError, match="embedder returned 3 vectors for 4 texts"):
        summarize_diversity_groups(groups[:1], embedder=ShortEmbedder(), equivalent=numeric_equal)


def test_groups_empty() -> None:
    embedder = HashEmbedder()
    summary = summarize_diversity_groups(
        iter([[], []]), embedder=embedder, strategy=STRATEGY.get, aligned=lambda pid: {}
    )
    assert summary.n_problems == 0 and summary.samples_per_problem is None
    assert embedder.calls == []
    for metric in (summary.distinct_1, summary.vendi, summary.faithful_strategy_diversity):
        assert metric is not None and metric.value is None and metric.reason == "no samples"
    assert (
        summary.model_dump()
        == summarize_diversity(
            [], embedder=HashEmbedder(), strategy_clusters=STRATEGY, aligned={}
        ).model_dump()
    )


# --- per-problem values ------------------------------------------------------------------------


def _per_problem_run(
    records: list[SampleRecord], batch: int, **kw: object
) -> tuple[DiversitySummary, list[tuple[str, dict[str, float | None]]], list[list[str]]]:
    """The summary of `records` grouped by problem, every `on_problem` call, and the
    problems reported before each embedder call."""
    seen: list[tuple[str, dict[str, float | None]]] = []

    class NotingEmbedder(HashEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.reported: list[list[str]] = []

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            self.reported.append([pid for pid, _ in seen])
            return super().embed(texts)

    embedder = NotingEmbedder()
    summary = summarize_diversity_groups(
        group_by(records, lambda s: s.problem_id).values(),
        embedder=embedder,
        equivalent=numeric_equal,
        embed_batch_problems=batch,
        on_problem=lambda pid, values: seen.append((pid, dict(values))),
        **kw,  # type: ignore[arg-type]
    )
    return summary, seen, embedder.reported


@pytest.mark.parametrize("batch", [1, 2, 64])
def test_on_problem_reports_each_problem_once_in_order_with_the_averaged_values(
    batch: int,
) -> None:
    summary, seen, _ = _per_problem_run(
        mixed_records(), batch, strategy=STRATEGY.get, aligned=aligned_by_problem(ALIGNED)
    )
    assert [pid for pid, _ in seen] == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    assert all(list(values) == list(PER_PROBLEM_METRICS) for _, values in seen)
    rows = dict(seen)
    # Single-sample problems have no between-sample metrics; p4 and p6 were not judged.
    for pid in ("p3", "p6"):
        assert rows[pid]["self_bleu"] is None and rows[pid]["vendi"] is None
        assert rows[pid]["distinct_1"] is not None
    assert rows["p4"]["strategy_diversity"] is None and rows["p6"]["strategy_diversity"] is None
    assert rows["p3"]["strategy_diversity"] == 0.0
    assert rows["p3"]["faithful_strategy_diversity"] is None  # nothing of p3 is aligned
    dump = summary.model_dump()
    for name in PER_PROBLEM_METRICS:
        present = [values[name] for _, values in seen if values[name] is not None]
        metric = dump[name]
        assert metric is not None, name
        assert metric["n"] == len(present), name
        # The summary is the bootstrap mean of exactly these values, in this order.
        expected = bootstrap_mean(present, seed=0)
        assert metric["value"] == pytest.approx(math.fsum(present) / len(present)), name
        assert (metric["value"], metric["ci_low"], metric["ci_high"]) == (
            expected.value,
            expected.ci_low,
            expected.ci_high,
        ), name
    # The streamed summary itself is unchanged by the callback.
    assert_matches_recorded(summary, _RECORDED_JUDGED)


@pytest.mark.parametrize("batch", [1, 2, 64])
def test_on_problem_values_equal_per_problem_computation(batch: int) -> None:
    """Each problem's values are those of summarizing that problem alone."""
    records = mixed_records()
    _, seen, _ = _per_problem_run(
        records, batch, strategy=STRATEGY.get, aligned=aligned_by_problem(ALIGNED)
    )
    for pid, values in seen:
        alone = summarize_diversity(
            [r for r in records if r.problem_id == pid],
            embedder=HashEmbedder(),
            equivalent=numeric_equal,
            strategy_clusters=STRATEGY,
            aligned=ALIGNED,
        ).model_dump()
        for name in PER_PROBLEM_METRICS:
            assert values[name] == (alone[name] or {}).get("value"), (pid, name)


@pytest.mark.parametrize(
    ("batch", "reported_at_each_call"),
    [
        # Multi-sample problems are p1, p2, p4, p5, p7 (p3, p6 have one sample each).
        (
            1,
            [
                [],
                ["p1"],
                ["p1", "p2", "p3"],
                ["p1", "p2", "p3", "p4"],
                ["p1", "p2", "p3", "p4", "p5", "p6"],
            ],
        ),
        (2, [[], ["p1", "p2", "p3"], ["p1", "p2", "p3", "p4", "p5", "p6"]]),
        (64, [[]]),
    ],
)
def test_on_problem_waits_for_the_batch_of_its_problem(
    batch: int, reported_at_each_call: list[list[str]]
) -> None:
    """A problem is reported once its batch is embedded; the problems after it (single
    samples too) wait with it, so the order is kept."""
    _, seen, reported = _per_problem_run(mixed_records(), batch)
    assert reported == reported_at_each_call
    assert [pid for pid, _ in seen] == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]


def test_on_problem_without_embedder_or_judge() -> None:
    """Not computed: None for every problem; the rest is reported problem by problem."""
    seen: list[str] = []
    yielded: list[str] = []
    grouped = list(group_by(mixed_records(), lambda s: s.problem_id).values())

    def read_problems() -> Iterator[list[SampleRecord]]:
        for group in grouped:
            yielded.append(group[0].problem_id)
            yield group

    def on_problem(pid: str, values: Mapping[str, float | None]) -> None:
        assert yielded[-1] == pid  # at once, before the next problem is read
        for name in ("embedding_distance", "vendi", "strategy_diversity"):
            assert values[name] is None
        assert values["faithful_strategy_diversity"] is None
        seen.append(pid)

    summary = summarize_diversity_groups(
        read_problems(), equivalent=numeric_equal, on_problem=on_problem
    )
    assert seen == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    assert summary.vendi is None and summary.strategy_diversity is None
