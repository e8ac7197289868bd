"""Where to cut a chain: step boundaries mapped onto the response's own tokens.

Cutting in token space (rather than re-tokenizing a text prefix) keeps every cut an
exact prefix of the sampled sequence, so a backend can encode the chain once and crop.
"""

from __future__ import annotations

from collections.abc import Sequence

from faithcheck.backends.base import Backend
from faithcheck.parsing import Step

DEFAULT_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def grid(n_steps: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[int]:
    """Step counts k to keep: round(f * n) for each fraction, always 0 and n, sorted."""
    ks = {round(f * n_steps) for f in fractions} | {0, n_steps}
    return sorted(k for k in ks if 0 <= k <= n_steps)


def token_ends(backend: Backend, ids: Sequence[int]) -> list[int] | None:
    """Character length of the decoded text after each token, or None when incremental
    decoding does not reproduce the full decode (then token cuts cannot be mapped)."""
    ends = [len(backend.decode(ids[: i + 1])) for i in range(len(ids))]
    full = backend.decode(ids)
    if ends and ends[-1] != len(full):
        return None
    return ends


def step_token_cuts(
    backend: Backend, completion: str, ids: Sequence[int], steps: Sequence[Step]
) -> list[int] | None:
    """Completion-token count covering steps[:k], for k = 0..n.

    A step ending inside a token is covered by including that token. None when the
    tokens do not decode to the completion text (the caller re-tokenizes instead).
    """
    if backend.decode(ids) != completion:
        return None
    ends = token_ends(backend, ids)
    if ends is None:
        return None
    cuts = [0]
    t = 0
    for step in steps:
        while t < len(ends) and ends[t] < step.end:
            t += 1
        cuts.append(min(t + 1, len(ids)))
    return cuts
