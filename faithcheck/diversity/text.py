"""Per-problem diversity of response texts: distinct-n, self-BLEU and embedding spread.

Pure functions over one problem's k responses (or their embedding matrix); the averaging
over problems lives in `faithcheck.diversity.core`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np


def word_tokens(text: str) -> list[str]:
    """Lowercased whitespace tokens: the tokenization of distinct-n.

    Punctuation stays attached ("x." and "x" differ); this is the common distinct-n
    convention and needs no tokenizer model.
    """
    return text.lower().split()


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Unique n-grams over total n-grams, pooled over one problem's responses.

    N-grams do not cross response boundaries. Identical responses score at most 1/k.

    Args:
        texts: The problem's responses.
        n: N-gram order (1 for distinct-1, 2 for distinct-2).

    Returns:
        A value in (0, 1], or None when the responses hold no n-gram at all.
    """
    if n < 1:
        raise ValueError(f"n-gram order must be >= 1, got {n}")
    grams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = word_tokens(text)
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else None


@cache
def _bleu() -> Any:
    from sacrebleu.metrics import BLEU  # deferred: only the diversity report needs it

    return BLEU(effective_order=True)


def self_bleu(texts: Sequence[str]) -> float | None:
    """Mean sentence BLEU of each response against all the others as references.

    sacrebleu's defaults (13a tokenizer, case-sensitive) with effective order, so short
    responses are not zeroed by missing 4-grams; scaled from [0, 100] to [0, 1]. An empty
    response scores 0.

    Args:
        texts: The problem's responses.

    Returns:
        A value in [0, 1] (1 for identical responses), or None for fewer than 2 responses.
    """
    if len(texts) < 2:
        return None
    bleu = _bleu()
    scores = [
        bleu.sentence_score(text, [*texts[:i], *texts[i + 1 :]]).score / 100.0
        for i, text in enumerate(texts)
    ]
    # sacrebleu returns 100.00000000000004 for a perfect match.
    return min(1.0, max(0.0, math.fsum(scores) / len(scores)))


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a (k, d) matrix, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an embedding row is zero; cosine similarity is undefined")
    unit: np.ndarray = matrix / norms
    return unit


def cosine_similarity_matrix(embeddings: np.ndarray) -> np.ndarray:
    """The (k, k) cosine similarities of the rows (re-normalized, so any scale works)."""
    unit = _unit_rows(embeddings)
    sim: np.ndarray = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(sim, 1.0)
    return sim


def mean_cosine_distance(embeddings: np.ndarray) -> float | None:
    """Mean of 1 − cos over all unordered pairs of rows.

    Args:
        embeddings: A (k, d) matrix, one row per response.

    Returns:
        A value in [0, 2] (0 for identical rows), or None for fewer than 2 rows.
    """
    k = len(embeddings)
    if k < 2:
        return None
    sim = cosine_similarity_matrix(embeddings)
    upper = sim[np.triu_indices(k, 1)]
    return float(np.clip(np.mean(1.0 - upper), 0.0, 2.0))


def vendi_score(embeddings: np.ndarray) -> float | None:
    """Vendi score: exp of the Shannon entropy of the eigenvalues of K/k.

    K is the cosine similarity matrix of the rows (Friedman & Dieng 2023). It reads as an
    effective number of distinct responses: 1 when all are the same, k when all are
    orthogonal. Tiny negative eigenvalues from rounding are clipped to 0.

    Args:
        embeddings: A (k, d) matrix, one row per response.

    Returns:
        A value in [1, k], or None for an empty matrix.
    """
    k = len(embeddings)
    if k == 0:
        return None
    eig = np.clip(np.linalg.eigvalsh(cosine_similarity_matrix(embeddings) / k), 0.0, None)
    eig = eig[eig > 0] / eig.sum()
    entropy = float(-np.sum(eig * np.log(eig)))
    return min(float(k), max(1.0, math.exp(entropy)))
