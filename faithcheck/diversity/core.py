"""Output diversity, reported for contrast with faithfulness and never gated on.

Every metric is computed per problem over its k samples and then averaged over problems,
with a 95% CI over problems (`metrics.bootstrap_mean`). Text and
embedding measures live in `faithcheck.diversity.text`; this module holds the answer,
pass@k and strategy measures and puts them together: `summarize_diversity_groups` streams
one problem at a time (memory flat in the number of problems), and can hand each problem's
values to a callback as they become known (`score`'s diversity stage writes them to
diversity.jsonl, which `faithcheck compare` pairs on problem ids); `summarize_diversity`
is its in-memory front end. `DiversityTally` averages per-problem values: the streaming
summary uses it, and the report folds diversity.jsonl's rows with it.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from faithcheck.diversity.embed import SentenceEmbedder
from faithcheck.diversity.text import distinct_n, mean_cosine_distance, self_bleu, vendi_score
from faithcheck.metrics import MetricValue, bootstrap_mean, group_by, pass_at_k
from faithcheck.problems.parsing import normalize_answer
from faithcheck.problems.verify import verify
from faithcheck.records import Problem, Record
from faithcheck.sampling import SampleRecord

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

    math-verify runs through `faithcheck.problems.verify` (its worker process, with a timeout), with
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


class ProblemDiversity(Record):
    """One problem's value of every per-problem diversity metric: a line of diversity.jsonl.

    None where the metric does not apply to the problem (a single sample, no n-grams, not
    judged, no aligned response) or was not computed in the run (no embedder, no strategy
    judge). The run's `DiversitySummary` averages the non-None values over problems.
    """

    problem_id: str
    """The problem."""
    distinct_1: float | None = None
    """Unique words / total words over its responses."""
    distinct_2: float | None = None
    """Unique word bigrams / total bigrams over its responses."""
    self_bleu: float | None = None
    """Mean BLEU of each response against the others."""
    embedding_distance: float | None = None
    """Mean pairwise cosine distance of its response embeddings."""
    vendi: float | None = None
    """Vendi score of its response embeddings."""
    answer_entropy: float | None = None
    """Shannon entropy (nats) of its final answers clustered by equivalence."""
    answer_entropy_normalized: float | None = None
    """Answer entropy divided by log(k)."""
    pass_at_k_gain: float | None = None
    """pass@k − pass@1 with k = its samples."""
    strategy_diversity: float | None = None
    """Normalized Shannon diversity of its strategy clusters."""
    faithful_strategy_diversity: float | None = None
    """Strategy diversity over its judge-aligned responses only."""
    embedder: str | None = None
    """The sentence embedder behind `embedding_distance` and `vendi` (`Embedder.name`:
    model and dtype), None when none ran. The report names the embedder from these rows,
    so a run rebuilt on another machine keeps the name of the one that computed them."""


PER_PROBLEM_METRICS: tuple[str, ...] = tuple(
    name for name in ProblemDiversity.model_fields if name not in ("problem_id", "embedder")
)
"""The `DiversitySummary` metrics that are averages of per-problem values, in field order."""

OnProblem = Callable[[str, dict[str, float | None]], None]
"""Receives a problem id and its value of every metric of `PER_PROBLEM_METRICS`."""


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

    The in-memory entry point: it groups `samples` by problem (first-appearance order) and
    hands the groups to `summarize_diversity_groups`, so both share one implementation.
    Since the samples are all in memory anyway, every response goes to the embedder in a
    single call, as the best batching it can get. Runs too large to hold should stream
    problem groups into `summarize_diversity_groups` instead.

    Args:
        samples: The run's samples; grouped by problem and ordered by `sample_index`.
        embedder: Sentence embedder for the embedding metrics; None skips those metrics.
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
    groups = list(group_by(samples, lambda s: s.problem_id).values())
    by_problem: dict[str, dict[int, bool]] = {}
    for (pid, index), ok in (aligned or {}).items():
        by_problem.setdefault(pid, {})[index] = ok
    return summarize_diversity_groups(
        groups,
        embedder=embedder,
        equivalent=equivalent,
        strategy=strategy_clusters.get if strategy_clusters is not None else None,
        aligned=(lambda pid: by_problem.get(pid, {})) if aligned is not None else None,
        seed=seed,
        embed_batch_problems=max(1, len(groups)),
    )


def summarize_diversity_groups(
    groups: Iterable[Sequence[SampleRecord]],
    *,
    embedder: SentenceEmbedder | None = None,
    equivalent: Equivalence | None = None,
    strategy: Callable[[str], Mapping[int, int] | None] | None = None,
    aligned: Callable[[str], Mapping[int, bool]] | None = None,
    seed: int = 0,
    embed_batch_problems: int = 64,
    on_problem: OnProblem | None = None,
) -> DiversitySummary:
    """Compute every diversity metric per problem, one problem at a time, and average them.

    Streaming, so that memory stays flat in the number of problems: `groups` is consumed
    once, lazily, and each problem's samples are reduced to its metric values (floats) as
    soon as they arrive. The one exception is embedding, which is far cheaper in batches:
    the texts of up to `embed_batch_problems` problems are held and embedded together in
    one `embedder.embed` call. Problems are then averaged in the order they came, so the
    results (bootstrap CIs included) equal those of `summarize_diversity` on the same
    samples, up to the embedder's own numerical batch effects.

    Metrics that compare samples with each other (self-BLEU, embedding distance, Vendi,
    answer entropy, pass@k gain) skip problems with a single sample; when no problem has
    two, they come back with value None and a reason.

    Args:
        groups: All sample records of one problem per item, problems in first-appearance
            order; within a group the records are ordered by `sample_index` here. Each
            problem must come as one group: a problem split across groups counts twice.
            Empty groups are skipped.
        embedder: Sentence embedder for the embedding metrics; None skips those metrics.
        equivalent: Final-answer equivalence; `math_equivalent` by default.
        strategy: A problem's strategy-judge cluster label per sample index, or None when
            the problem has no strategy record (it is then skipped). Only the samples
            listed count, since the judge may cluster a subset. None (the argument): no
            strategy judge ran, and the strategy metrics are not computed.
        aligned: A problem's judge alignment per sample index; samples missing there count
            as not aligned. Needed, with `strategy`, for faithful diversity; only called
            for problems that have strategy labels.
        seed: Bootstrap seed.
        embed_batch_problems: Problems whose texts are embedded together in one call.
            Single-sample problems are never embedded (no metric needs them), so they
            do not count towards a batch.
        on_problem: Called once per problem, in problem order, with the problem id and its
            value of every metric of `PER_PROBLEM_METRICS` (None where the metric does not
            apply to it or is not computed): the values the summary averages. A problem's
            call comes as soon as its values are known: at once without an embedder, else
            when its batch is embedded (problems after the first one awaiting the
            embedder, single-sample ones included, wait for that batch, to keep the
            order).

    Raises:
        ValueError: If cluster labels name a sample index the problem does not have, if
            a group mixes problems, if the embedder returns the wrong number of rows, or
            if `embed_batch_problems` is below 1.
    """
    if embed_batch_problems < 1:
        raise ValueError(f"embed_batch_problems must be at least 1, got {embed_batch_problems}")
    queue = _ProblemQueue(embedder, embed_batch_problems, on_problem)
    for group in groups:
        records = _problem_records(group)
        if not records:
            continue
        pid = records[0].problem_id
        texts = [s.completion for s in records]
        row = _sample_values(records, texts, equivalent)
        if strategy is not None and (labels := strategy(pid)) is not None:
            _add_strategy_values(row, pid, records, labels, aligned)
        queue.add(pid, row, len(records), texts if len(records) >= 2 else None)
    queue.flush()
    return queue.tally.summary(
        seed=seed,
        embedder=embedder.name if embedder is not None else None,
        strategy=strategy is not None,
        faithful=strategy is not None and aligned is not None,
    )


def _problem_records(group: Sequence[SampleRecord]) -> list[SampleRecord]:
    """One problem's records ordered by `sample_index` (none for an empty group).

    Raises:
        ValueError: If the group mixes problems.
    """
    records = sorted(group, key=lambda s: s.sample_index)
    if records:
        pid = records[0].problem_id
        if any(s.problem_id != pid for s in records):
            others = sorted({s.problem_id for s in records} - {pid})
            raise ValueError(f"group of problem {pid!r} also holds problems {others}")
    return records


def _sample_values(
    records: Sequence[SampleRecord], texts: Sequence[str], equivalent: Equivalence | None
) -> dict[str, float | None]:
    """A problem's row of `PER_PROBLEM_METRICS` with the values its records alone give
    (text and answer measures); the embedding and strategy values are added later."""
    row: dict[str, float | None] = dict.fromkeys(PER_PROBLEM_METRICS)
    row["distinct_1"] = distinct_n(texts, 1)
    row["distinct_2"] = distinct_n(texts, 2)
    if len(records) >= 2:
        row["self_bleu"] = self_bleu(texts)
        clusters = answer_clusters([s.answer for s in records], equivalent)
        row["answer_entropy"] = shannon_entropy(clusters)
        row["answer_entropy_normalized"] = normalized_entropy(clusters)
        row["pass_at_k_gain"] = pass_at_k_gain([s.correct for s in records])
    return row


class _ProblemQueue:
    """Problems in order, each held until its embedding values are known, then folded into
    the tally and reported to `on_problem` (see `summarize_diversity_groups`)."""

    def __init__(
        self, embedder: SentenceEmbedder | None, batch: int, on_problem: OnProblem | None
    ) -> None:
        self.tally = DiversityTally()
        self.embedder = embedder
        self.batch = batch
        self.on_problem = on_problem
        self.waiting: list[tuple[str, dict[str, float | None], int]] = []
        """Problems not yet reported: id, row, number of samples."""
        self.pending: list[tuple[dict[str, float | None], list[str]]] = []
        """The rows and texts of the waiting problems that await the embedder."""

    def add(
        self, pid: str, row: dict[str, float | None], size: int, texts: list[str] | None
    ) -> None:
        """Queue one problem (`texts`: what to embed, None when it needs no embedding);
        report the queue once nothing awaits the embedder or a batch is full."""
        if texts is not None and self.embedder is not None:
            self.pending.append((row, texts))
        self.waiting.append((pid, row, size))
        if not self.pending or len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Embed the pending texts, then report every waiting problem, in order."""
        if self.embedder is not None and self.pending:
            _add_embedding_values(self.embedder, self.pending)
        self.pending.clear()
        for pid, row, size in self.waiting:
            self.tally.add(row, size)
            if self.on_problem is not None:
                self.on_problem(pid, row)
        self.waiting.clear()


class DiversityTally:
    """The diversity summary folded one problem at a time from its per-problem values.

    What `summarize_diversity_groups` computes as it goes, and what the report folds from
    the rows of diversity.jsonl: both give the same summary from the same rows in the same
    problem order (bootstrap CIs depend on the order). Keeps only floats (flat memory).
    """

    def __init__(self) -> None:
        self.values = _PerProblem()
        self.n_problems = 0
        self.sizes: set[int] = set()

    def add(self, row: Mapping[str, float | None], size: int) -> None:
        """Fold in one problem: its value of each metric of `PER_PROBLEM_METRICS` (None or
        missing where it does not apply) and its number of samples."""
        self.n_problems += 1
        self.sizes.add(size)
        for name in PER_PROBLEM_METRICS:
            self.values.add(name, row.get(name))

    def summary(
        self, *, seed: int, embedder: str | None, strategy: bool, faithful: bool
    ) -> DiversitySummary:
        """The report's `diversity` section.

        Args:
            seed: Bootstrap seed.
            embedder: The embedder's name, None when no embedder ran (the embedding
                metrics are then not computed).
            strategy: A strategy judge ran (else the strategy metrics are not computed).
            faithful: Judge alignment was known too (faithful strategy diversity).
        """
        values, n_problems = self.values, self.n_problems

        def average(name: str, reason: str) -> MetricValue:
            if not values[name]:
                return MetricValue(value=None, n=0, reason=reason if n_problems else "no samples")
            return bootstrap_mean(values[name], seed=seed)

        embedded = embedder is not None
        return DiversitySummary(
            distinct_1=average("distinct_1", _NO_WORDS),
            distinct_2=average("distinct_2", _NO_WORDS),
            self_bleu=average("self_bleu", _NEEDS_TWO),
            embedding_distance=average("embedding_distance", _NEEDS_TWO) if embedded else None,
            vendi=average("vendi", _NEEDS_TWO) if embedded else None,
            answer_entropy=average("answer_entropy", _NEEDS_TWO),
            answer_entropy_normalized=average("answer_entropy_normalized", _NEEDS_TWO),
            pass_at_k_gain=average("pass_at_k_gain", _NEEDS_TWO),
            strategy_diversity=average("strategy_diversity", "no problem was judged")
            if strategy
            else None,
            faithful_strategy_diversity=average(
                "faithful_strategy_diversity", "no judge-aligned responses"
            )
            if strategy and faithful
            else None,
            n_problems=n_problems,
            samples_per_problem=next(iter(self.sizes)) if len(self.sizes) == 1 else None,
            embedder=embedder,
        )


class _PerProblem(dict[str, list[float]]):
    """Per-problem values of each metric, in problem order: all a streamed run keeps.

    Undefined values (None) are dropped as they come, which is what averaging over
    problems does with them anyway.
    """

    def __missing__(self, name: str) -> list[float]:
        return self.setdefault(name, [])

    def add(self, name: str, value: float | None) -> None:
        if value is not None:
            self[name].append(value)


def _add_embedding_values(
    embedder: SentenceEmbedder, pending: list[tuple[dict[str, float | None], list[str]]]
) -> None:
    """Embed a batch of problems' texts in one call, then score each problem's block into
    its row."""
    flat = [t for _, texts in pending for t in texts]
    vectors = np.asarray(embedder.embed(flat))
    if len(vectors) != len(flat):
        raise ValueError(f"embedder returned {len(vectors)} vectors for {len(flat)} texts")
    bounds = np.cumsum([0, *(len(texts) for _, texts in pending)])
    for (row, _), (lo, hi) in zip(pending, itertools.pairwise(bounds), strict=True):
        row["embedding_distance"] = mean_cosine_distance(vectors[lo:hi])
        row["vendi"] = vendi_score(vectors[lo:hi])


def _add_strategy_values(
    row: dict[str, float | None],
    pid: str,
    records: Sequence[SampleRecord],
    labels: Mapping[int, int],
    aligned: Callable[[str], Mapping[int, bool]] | None,
) -> None:
    """Strategy diversity of one judged problem, over all and over aligned responses, into
    its row."""
    unknown = set(labels) - {s.sample_index for s in records}
    if unknown:
        raise ValueError(f"problem {pid!r}: strategy labels for unknown samples {sorted(unknown)}")
    # Only the clustered samples count (the strategy judge may see a subset per problem).
    members = [s.sample_index for s in records if s.sample_index in labels]
    clusters = [labels[i] for i in members]
    row["strategy_diversity"] = strategy_diversity(clusters)
    if aligned is not None:
        flags = aligned(pid)
        row["faithful_strategy_diversity"] = faithful_strategy_diversity(
            clusters, [flags.get(i, False) for i in members]
        )
