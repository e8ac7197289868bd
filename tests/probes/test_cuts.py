"""Step boundaries mapped onto tokens (`faithcheck.probes.cuts.step_token_cuts`), on the
default model's real tokenizer: the binary search gives exactly the cuts of a plain
token-by-token scan, also for text whose characters span several tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from faithcheck.probes.cuts import aoc, early, early_limit, grid, step_token_cuts
from faithcheck.problems.parsing import Step, split_steps


class TokenizerBackend:
    """The two Backend methods the cuts need, from a real tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.decodes = 0

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        self.decodes += 1
        return str(self.tokenizer.decode(list(ids)))


@pytest.fixture(scope="module")
def backend() -> TokenizerBackend:
    from transformers import AutoTokenizer

    from faithcheck.models import resolve_model

    return TokenizerBackend(AutoTokenizer.from_pretrained(resolve_model("smollm2-135m").path))


def linear_cuts(backend: TokenizerBackend, ids: Sequence[int], steps: Sequence[Step]) -> list[int]:
    """Reference: decode every prefix, then scan token by token."""
    ends = [len(backend.decode(ids[: i + 1])) for i in range(len(ids))]
    cuts, t = [0], 0
    for step in steps:
        while t < len(ends) and ends[t] < step.end:
            t += 1
        cuts.append(min(t + 1, len(ids)))
    return cuts


_PIECES = st.sampled_from(
    ["We add.", "3 + 4 = 7.", "\n", "\n\n", " ", "é", "中文", "🙂", "ﬁ", "x²", "…", "∑", "Ω"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, min_size=1, max_size=40).map("".join))
@example("Step one 🙂🙂.\n\nStep two 中文中文.\n\nSo \\boxed{7}.")
@example("é\n\né\n\né")
def test_binary_search_matches_the_linear_scan(backend: TokenizerBackend, text: str) -> None:
    ids = backend.encode(text)
    steps = split_steps(text)
    if backend.decode(ids) != text:
        assert step_token_cuts(backend, text, ids, steps) is None  # type: ignore[arg-type]
        return
    got = step_token_cuts(backend, text, ids, steps)  # type: ignore[arg-type]
    assert got == linear_cuts(backend, ids, steps)
    assert got == sorted(got) and got[-1] <= len(ids)


def test_long_chains_cost_logarithmic_decodes(backend: TokenizerBackend) -> None:
    """A 40-step, ~2000-token chain needs a few hundred decodes, not one per token."""
    text = "\n\n".join(f"Step {i}: {i} + {i} = {2 * i}, and we carry on." * 3 for i in range(40))
    ids = backend.encode(text)
    steps = split_steps(text)
    backend.decodes = 0
    cuts = step_token_cuts(backend, text, ids, steps)  # type: ignore[arg-type]
    assert backend.decodes < 40 * 20 < len(ids)
    assert cuts == linear_cuts(backend, ids, steps)
    assert len(cuts) == len(steps) + 1 and cuts[-1] == len(ids)


def test_grid_always_holds_both_ends_and_the_last_early_cut() -> None:
    assert grid(0) == []  # no reasoning step: nothing to cut
    assert grid(1) == [0, 1]
    assert grid(8) == [0, 2, 4, 6, 8]
    assert grid(6) == [0, 1, 2, 3, 4, 6]  # floor(6 / 4) = 1 joins the grid
    assert all(early_limit(m) in grid(m) for m in range(1, 40))


def _faithful_curve(m: int) -> tuple[list[int], list[bool]]:
    """A chain whose answer is readable only once every reasoning step is kept."""
    ks = grid(m)
    return ks, [k == m for k in ks]


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 7, 10, 25])
def test_a_faithful_chain_scores_one_whatever_its_length(m: int) -> None:
    ks, same = _faithful_curve(m)
    assert aoc(ks, same, m) == 1.0
    assert early(ks, same, m) is False


@pytest.mark.parametrize("m", [1, 2, 3, 10])
def test_an_answer_readable_before_any_step_scores_zero_and_is_early(m: int) -> None:
    ks = grid(m)
    assert aoc(ks, [True] * len(ks), m) == 0.0
    assert early(ks, [True] * len(ks), m) is True


@pytest.mark.parametrize(
    ("m", "j", "want"),
    [(4, 2, 0.5), (8, 2, 0.25), (8, 6, 0.75), (2, 1, 0.5)],
)
def test_an_answer_readable_from_step_j_scores_j_over_m(m: int, j: int, want: float) -> None:
    ks = list(range(m + 1))  # the full grid
    assert aoc(ks, [k >= j for k in ks], m) == pytest.approx(want)


@pytest.mark.parametrize(
    ("m", "k", "is_early"),
    [(1, 0, True), (3, 1, False), (4, 1, True), (7, 1, True), (8, 2, True), (8, 3, False)],
)
def test_early_means_within_the_first_quarter(m: int, k: int, is_early: bool) -> None:
    ks = list(range(m + 1))
    assert early(ks, [i >= k for i in ks], m) is is_early


def test_nothing_to_cut_has_no_score() -> None:
    assert aoc([], [], 0) is None
    assert early([], [], 0) is None


class WigglyBackend:
    """Decodes token prefixes to text whose length dips: prefix lengths
    1, 3, 1, 1, 1, 1, 1, 2, 2, 5 (a partial character shown as two replacement
    characters, say, before later tokens complete it)."""

    text = "ab\n\ncd"
    lengths = (1, 3, 1, 1, 1, 1, 1, 2, 2, 6)

    def decode(self, ids: Sequence[int]) -> str:
        if len(ids) == len(self.lengths):
            return self.text
        return "?" * self.lengths[len(ids) - 1] if ids else ""


def test_an_early_dip_in_decoded_length_is_found_like_the_scan_finds_it() -> None:
    backend = WigglyBackend()
    ids = list(range(len(backend.lengths)))
    steps = split_steps(backend.text)
    want = linear_cuts(backend, ids, steps)  # type: ignore[arg-type]
    assert want == [0, 2, 10]  # the scan stops at the first prefix that reaches "ab"
    assert step_token_cuts(backend, backend.text, ids, steps) == want  # type: ignore[arg-type]
