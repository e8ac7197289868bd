"""Prefill once, decode many: the transformers backend's prompt-prefix reuse.

Two kinds of prompt tokens get computed over and over by a plain `model.generate` loop:

- **A prefix the requests share.** Every judge prompt opens with the same rubric (the
  system message, a few hundred tokens) and differs only in the item placed after it.
  `PrefixCache.plan` computes the keys and values of the longest prefix all requests of
  a call share once and holds them; each request then prefills only its own tail. The
  held prefix stays for later calls (a retry round of one question reuses it).
- **The n copies of one prompt.** `generate(num_return_sequences=n)` expands the prompt
  to n rows before the prefill, so an n = 16 sample pays 16 prompt prefills. Here the
  prompt (but its last token) is encoded once and its cache repeated n times.

vLLM does the same with its prefix cache; this is the transformers counterpart. The
reads are the same computation in other batch shapes: in fp32 the logits agree with a
plain prefill to rounding, and greedy continuations are token-identical (tested).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from faithcheck.backends.base import PrefillCount

MIN_PREFIX_TOKENS = 32
"""A shared prefix shorter than this (a chat template's header) is not worth holding."""


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest prefix every sequence shares (0 for none)."""
    if not seqs:
        return 0
    first, n = seqs[0], min(len(s) for s in seqs)
    for i in range(n):
        tok = first[i]
        if any(s[i] != tok for s in seqs):
            return i
    return n


class PrefixCache:
    """The keys and values of one held prompt prefix, and the caches built from it."""

    def __init__(self, model: Any, device: str, *, enabled: bool = True) -> None:
        self.model = model
        self.device = device
        self.enabled = enabled
        """False: every request prefills its whole prompt in every copy (the plain path,
        kept for measuring and for checking the reuse against)."""
        self.ids: tuple[int, ...] = ()
        self.cache: Any = None
        self.count = PrefillCount()

    def plan(self, prompts: Sequence[Sequence[int]]) -> None:
        """Hold the longest prefix the prompts of a call share, if it is long enough.

        Each prompt keeps at least one token of its own (generation needs an input
        token). A prefix already held is kept when the new prompts start with it.
        """
        if not self.enabled or len(prompts) < 2:
            return
        n = min(common_prefix_len(prompts), min(len(p) for p in prompts) - 1)
        if n < MIN_PREFIX_TOKENS or tuple(prompts[0][:n]) == self.ids:
            return
        import torch
        from transformers import DynamicCache

        cache = DynamicCache()
        ids = torch.tensor([list(prompts[0][:n])], device=self.device)
        with torch.inference_mode():
            self.model(ids, past_key_values=cache, use_cache=True)
        self.ids, self.cache = tuple(prompts[0][:n]), cache
        self.count.computed_tokens += n

    def _held_len(self, prompt: Sequence[int]) -> int:
        n = len(self.ids)
        if n and n < len(prompt) and tuple(prompt[:n]) == self.ids:
            return n
        return 0

    def cache_for(self, prompt: Sequence[int], copies: int) -> Any | None:
        """A cache holding `prompt`'s leading tokens for `copies` rows, or None (plain
        generation). The caller's `generate` then computes only what is not cached."""
        if not self.enabled:
            self.count.add(len(prompt) * copies, len(prompt) * copies)
            return None
        held = self._held_len(prompt)
        if copies == 1:
            self.count.add(len(prompt), len(prompt) - held)
            return copy.deepcopy(self.cache) if held else None
        own = list(prompt[held:-1])
        if not held and not own:  # a one-token prompt: nothing to share
            self.count.add(len(prompt) * copies, len(prompt) * copies)
            return None
        import torch
        from transformers import DynamicCache

        cache = copy.deepcopy(self.cache) if held else DynamicCache()
        if own:
            with torch.inference_mode():
                self.model(
                    torch.tensor([own], device=self.device), past_key_values=cache, use_cache=True
                )
        cache.batch_repeat_interleave(copies)
        # The prompt's own tokens once, then its last token in every copy.
        self.count.add(len(prompt) * copies, len(own) + copies)
        return cache

    def last_logits(self, prompt: Sequence[int]) -> Any:
        """The logits after `prompt`'s last token (a 1-D float tensor), computing only
        what the held prefix does not cover."""
        import torch

        held = self._held_len(prompt) if self.enabled else 0
        cache = copy.deepcopy(self.cache) if held else None
        ids = torch.tensor([list(prompt[held:])], device=self.device)
        with torch.inference_mode():
            out = self.model(
                ids, past_key_values=cache, use_cache=cache is not None, logits_to_keep=1
            )
        self.count.add(len(prompt), len(prompt) - held)
        return out.logits[0, -1].float()

    def clear(self) -> None:
        """Drop the held prefix (and its memory)."""
        self.ids, self.cache = (), None
