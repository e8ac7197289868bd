"""Step boundaries mapped onto tokens (`faithcheck.probes.cuts.step_token_cuts`), on the
default model's real tokenizer: the binary search gives exactly the cuts of a plain
token-by-token scan, also for text whose characters span several tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from faithcheck.probes.cuts import grid, step_token_cuts
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


def test_grid_always_holds_both_ends() -> None:
    assert grid(0) == [0]
    assert grid(1) == [0, 1]
    assert grid(8) == [0, 2, 4, 6, 8]


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
