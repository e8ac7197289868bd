"""Output diversity, reported for contrast with faithfulness and never gated on.

Every metric is computed per problem over its k samples and then averaged over problems,
with a percentile bootstrap CI over problems (`metrics.bootstrap_mean`). Text and
embedding measures live in `faithcheck.diversity_text`; this module holds the answer,
pass@k and strategy measures and `summarize_diversity`, which puts them together.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from faithcheck.diversity_text import distinct_n, mean_cosine_distance, self_bleu, vendi_score
from faithcheck.embed import SentenceEmbedder
from faithcheck.metrics import MetricValue, bootstrap_mean, group_by, pass_at_k
from faithcheck.parsing import normalize_answer
from faithcheck.records import Problem, Record
from faithcheck.sampling import SampleRecord
from faithcheck.verify import verify

Equivalence = Callable[[str, str], bool]
"""Whether two final answers are the same answer."""

NOT_GATED_NOTE = (
    "Diversity is reported for contrast with faithfulness; it is not part of the verdict."
)

_NEEDS_TWO = "needs at least 2 samples per problem"
_NO_WORDS = "responses hold no n-grams"

# --- final answers ---------------------------------------------------------------------------


def math_equivalent(a: str, b: str) -> bool:
    """Default answer equivalence: `normalize_answer` equality, else math-verify.

    math-verify runs through `faithcheck.verify` (its worker process, with a timeout), with
    `a` in the role of the gold answer. Answers math-verify cannot parse fall back to
    `verify.exact_match`; a timeout or error counts as "not equivalent".
    """
    if normalize_answer(a) == normalize_answer(b):
        return True
    return verify(Problem(id="diversity", question="", answer=a), b).correct


def answer_clusters(
    answers: Sequence[str | None], equivalent: Equivalence | None = None
) -> list[int]:
    """Cluster final answers by equivalence; returns one cluster label per answer.

    Greedy: each answer joins the first cluster whose representative (its first member)
    it is equivalent to, else opens a new one, so `equivalent` is called at most once per
    distinct answer string and cluster. All None answers (nothing extracted) form one
    "no answer" cluster of their own: failing to answer counts as one more outcome.

    Args:
        answers: The problem's extracted final answers, in sample order.
        equivalent: Answer equivalence; `math_equivalent` by default.

    Returns:
        Labels 0, 1, ... in order of first appearance.
    """
    same = equivalent or math_equivalent
    reps: list[str | None] = []
    known: dict[str | None, int] = {}
    labels: list[int] = []
    for answer in answers:
        if answer not in known:
            label = None
            if answer is not None:
                label = next(
                    (i for i, r in enumerate(reps) if r is not None and same(r, answer)), None
                )
            if label is None:
                label = len(reps)
                reps.append(answer)
            known[answer] = label
        labels.append(known[answer])
    return labels


def shannon_entropy(labels: Sequence[int]) -> float:
    """Shannon entropy, in nats, of the distribution of cluster sizes (0 when empty)."""
    total = len(labels)
    counts = Counter(labels).values()
    return max(0.0, -math.fsum(c / total * math.log(c / total) for c in counts))


def normalized_entropy(labels: Sequence[int]) -> float | None:
    """Entropy divided by log(k), in [0, 1]; None for fewer than 2 labels."""
    if len(labels) < 2:
        return None
    return min(1.0, shannon_entropy(labels) / math.log(len(labels)))


def pass_at_k_gain(correct: Sequence[bool]) -> float | None:
    """pass@k − pass@1 for one problem, with k = its number of samples (unbiased estimator).

    Returns:
        A value in [0, 1): how much the best of k beats one try; None with no samples.
    """
    n = len(correct)
    if n == 0:
        return None
    c = sum(correct)
    return pass_at_k(n, c, n) - pass_at_k(n, c, 1)


# --- strategies ------------------------------------------------------------------------------


def strategy_diversity(cluster_labels: Sequence[int]) -> float | None:
    """The study's normalized Shannon diversity of strategy clusters: (exp(H) − 1)/(K − 1).

    H is the entropy of the cluster-size distribution and K the number of responses
    clustered, so exp(H), the effective number of strategies, lies in [1, K] and the
    value in [0, 1]: 0 when all responses share one strategy, 1 when each has its own.

    Args:
        cluster_labels: One strategy-cluster label per response (from the strategy judge).

    Returns:
        The diversity; 0 for one response, None for none.
    """
    k = len(cluster_labels)
    if k == 0:
        return None
    if k == 1:
        return 0.0
    effective = math.exp(shannon_entropy(cluster_labels))
    return min(1.0, max(0.0, (effective - 1.0) / (k - 1)))


def faithful_strategy_diversity(
    cluster_labels: Sequence[int], aligned_flags: Sequence[bool]
) -> float | None:
    """Strategy diversity over the judge-aligned responses only.

    The clusters are those of all responses; only aligned responses are counted, and K is
    their number. None when no response is aligned.

    Raises:
        ValueError: If the two sequences differ in length.
    """
    if len(cluster_labels) != len(aligned_flags):
        raise ValueError(
            f"{len(cluster_labels)} cluster labels but {len(aligned_flags)} alignment flags"
        )
    return strategy_diversity(
        [c for c, ok in zip(cluster_labels, aligned_flags, strict=True) if ok]
    )


# --- summary ---------------------------------------------------------------------------------


class DiversitySummary(Record):
    """Output diversity over a run's samples, each metric averaged over problems.

    A metric that is None was not computed at all (no embedder, no strategy judge); a
    MetricValue with value None was computed but is undefined on this data (see `reason`).
    """

    distinct_1: MetricValue
    """Unique words / total words over a problem's responses (lowercased, whitespace-split)."""
    distinct_2: MetricValue
    """Unique word bigrams / total bigrams over a problem's responses."""
    self_bleu: MetricValue
    """Mean BLEU of each response against the others, in [0, 1]; higher = less diverse."""
    embedding_distance: MetricValue | None
    """Mean pairwise cosine distance (1 − cos) of response embeddings, in [0, 2]."""
    vendi: MetricValue | None
    """Vendi score of response embeddings: effective number of distinct responses, in [1, k]."""
    answer_entropy: MetricValue
    """Shannon entropy (nats) of final answers clustered by equivalence; no answer = 1 cluster."""
    answer_entropy_normalized: MetricValue
    """Answer entropy divided by log(k), in [0, 1]."""
    pass_at_k_gain: MetricValue
    """pass@k − pass@1 with k = samples per problem (unbiased estimator)."""
    strategy_diversity: MetricValue | None
    """Normalized Shannon diversity (exp(H) − 1)/(K − 1) of the strategy judge's clusters."""
    faithful_strategy_diversity: MetricValue | None
    """Strategy diversity over judge-aligned responses only."""
    n_problems: int
    """Problems the samples cover."""
    samples_per_problem: int | None
    """Samples per problem, or None if it varies."""
    embedder: str | None
    """The sentence embedder's name, or None when no embedder ran."""
    note: str = NOT_GATED_NOTE
    """Diversity is contrast only: it never enters the verdict."""


def summarize_diversity(
    samples: Iterable[SampleRecord],
    *,
    embedder: SentenceEmbedder | None = None,
    equivalent: Equivalence | None = None,
    strategy_clusters: Mapping[str, Mapping[int, int]] | None = None,
    aligned: Mapping[tuple[str, int], bool] | None = None,
    seed: int = 0,
) -> DiversitySummary:
    """Compute every diversity metric per problem and average them over problems.

    Metrics that compare samples with each other (self-BLEU, embedding distance, Vendi,
    answer entropy, pass@k gain) skip problems with a single sample; when no problem has
    two, they come back with value None and a reason.

    Args:
        samples: The run's samples; grouped by problem and ordered by `sample_index`.
        embedder: Sentence embedder for the embedding metrics (all responses go in one
            call); None skips those metrics.
        equivalent: Final-answer equivalence; `math_equivalent` by default.
        strategy_clusters: Strategy-judge cluster label per sample index, per problem id;
            only the samples listed count (the judge may cluster a subset), problems
            missing here are skipped. None: no strategy judge ran.
        aligned: Judge alignment per (problem id, sample index); samples missing here count
            as not aligned. Needed, with `strategy_clusters`, for faithful diversity.
        seed: Bootstrap seed.

    Raises:
        ValueError: If cluster labels name a sample index the problem does not have.
    """
    groups = {
        pid: sorted(group, key=lambda s: s.sample_index)
        for pid, group in group_by(samples, lambda s: s.problem_id).items()
    }
    texts = {pid: [s.completion for s in group] for pid, group in groups.items()}
    multi = [pid for pid, group in groups.items() if len(group) >= 2]

    def average(per_problem: Iterable[float | None], *, reason: str) -> MetricValue:
        values = [v for v in per_problem if v is not None]
        if not values:
            return MetricValue(value=None, n=0, reason=reason if groups else "no samples")
        return bootstrap_mean(values, seed=seed)

    clusters = {pid: answer_clusters([s.answer for s in groups[pid]], equivalent) for pid in multi}
    sizes = {len(group) for group in groups.values()}
    return DiversitySummary(
        distinct_1=average((distinct_n(texts[pid], 1) for pid in groups), reason=_NO_WORDS),
        distinct_2=average((distinct_n(texts[pid], 2) for pid in groups), reason=_NO_WORDS),
        self_bleu=average((self_bleu(texts[pid]) for pid in multi), reason=_NEEDS_TWO),
        **_embedding_metrics(embedder, [texts[pid] for pid in multi], average),
        answer_entropy=average(
            (shannon_entropy(clusters[pid]) for pid in multi), reason=_NEEDS_TWO
        ),
        answer_entropy_normalized=average(
            (normalized_entropy(clusters[pid]) for pid in multi), reason=_NEEDS_TWO
        ),
        pass_at_k_gain=average(
            (pass_at_k_gain([s.correct for s in groups[pid]]) for pid in multi), reason=_NEEDS_TWO
        ),
        **_strategy_metrics(groups, strategy_clusters, aligned, average),
        n_problems=len(groups),
        samples_per_problem=sizes.pop() if len(sizes) == 1 else None,
        embedder=embedder.name if embedder is not None else None,
    )


_Average = Callable[..., MetricValue]


def _embedding_metrics(
    embedder: SentenceEmbedder | None, texts: list[list[str]], average: _Average
) -> dict[str, MetricValue | None]:
    if embedder is None:
        return {"embedding_distance": None, "vendi": None}
    flat = [t for group in texts for t in group]
    vectors = np.asarray(embedder.embed(flat)) if flat else np.zeros((0, 1))
    bounds = np.cumsum([0, *(len(group) for group in texts)])
    blocks = [vectors[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    return {
        "embedding_distance": average((mean_cosine_distance(b) for b in blocks), reason=_NEEDS_TWO),
        "vendi": average((vendi_score(b) for b in blocks), reason=_NEEDS_TWO),
    }


def _strategy_metrics(
    groups: Mapping[str, list[SampleRecord]],
    strategy_clusters: Mapping[str, Mapping[int, int]] | None,
    aligned: Mapping[tuple[str, int], bool] | None,
    average: _Average,
) -> dict[str, MetricValue | None]:
    if strategy_clusters is None:
        return {"strategy_diversity": None, "faithful_strategy_diversity": None}
    judged = [pid for pid in groups if pid in strategy_clusters]
    for pid in judged:
        unknown = set(strategy_clusters[pid]) - {s.sample_index for s in groups[pid]}
        if unknown:
            raise ValueError(
                f"problem {pid!r}: strategy labels for unknown samples {sorted(unknown)}"
            )
    # Only the clustered samples count (the strategy judge may see a subset per problem).
    members = {
        pid: [s for s in groups[pid] if s.sample_index in strategy_clusters[pid]] for pid in judged
    }
    labels = {pid: [strategy_clusters[pid][s.sample_index] for s in members[pid]] for pid in judged}
    overall = average(
        (strategy_diversity(labels[pid]) for pid in judged),
        reason="no problem was judged",
    )
    if aligned is None:
        return {"strategy_diversity": overall, "faithful_strategy_diversity": None}
    faithful = average(
        (
            faithful_strategy_diversity(
                labels[pid],
                [aligned.get((pid, s.sample_index), False) for s in members[pid]],
            )
            for pid in judged
        ),
        reason="no judge-aligned responses",
    )
    return {"strategy_diversity": overall, "faithful_strategy_diversity": faithful}
