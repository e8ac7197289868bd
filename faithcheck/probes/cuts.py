"""Where to cut a chain: step boundaries mapped onto the response's own tokens.

Cutting in token space (rather than re-tokenizing a text prefix) keeps every cut an
exact prefix of the sampled sequence, so a backend can encode the chain once and crop.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from faithcheck.backends.base import Backend
from faithcheck.problems.parsing import Step

DEFAULT_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def grid(n_steps: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[int]:
    """Step counts k to keep: round(f * n) for each fraction, always 0 and n, sorted."""
    ks = {round(f * n_steps) for f in fractions} | {0, n_steps}
    return sorted(k for k in ks if 0 <= k <= n_steps)


WIGGLE = 8
"""Tokens before a binary-search hit that are checked one by one (see `step_token_cuts`)."""


def step_token_cuts(
    backend: Backend, completion: str, ids: Sequence[int], steps: Sequence[Step]
) -> list[int] | None:
    """Completion-token count covering steps[:k], for k = 0..n.

    A step ending inside a token is covered by including that token: the cut after a step
    is the first token count whose decoded text reaches the step's end. None when the
    tokens do not decode to the completion text (the caller re-tokenizes instead).

    Each cut is found by binary search over prefix decodes (O(steps x log tokens)
    decodes, so long rollouts stay cheap). Decoded length grows with the token count
    except inside a multi-byte character split over tokens, where a partial character
    decodes to replacement characters; that wiggle spans a few tokens, so the `WIGGLE`
    tokens before each hit are checked one by one for an earlier one.
    """
    if backend.decode(ids) != completion:
        return None
    n = len(ids)

    @functools.cache
    def reaches(count: int, end: int) -> bool:
        return len(backend.decode(ids[:count])) >= end

    cuts = [0]
    t = 0
    for step in steps:
        lo, hi = t, n  # first t in [lo, n) whose first t + 1 tokens reach the end; n if none
        while lo < hi:
            mid = (lo + hi) // 2
            if reaches(mid + 1, step.end):
                hi = mid
            else:
                lo = mid + 1
        t = next((u for u in range(max(t, lo - WIGGLE), lo) if reaches(u + 1, step.end)), lo)
        cuts.append(min(t + 1, n))
    return cuts
