"""All cuts of one chain in a handful of forward passes (the transformers fast path).

The chain is encoded once. Every cut's segment (cue + draft of the answer) is then
appended to the same KV cache in ONE forward pass, with a 4D attention mask that lets
segment i see only the first `cut_i` chain tokens and itself, and position ids that
continue from `cut_i`: each segment computes exactly what it would after a fresh
prefill of its own prefix. Greedy read-outs that leave the draft are decoded for all
cuts together, one token per still-open cut per step, under the same kind of mask.

Token layout in the cache (C = longest cut, S = segment length)::

    [chain 0..C) [seg_0 (S)] [seg_1 (S)] ... [step-1 tokens] [step-2 tokens] ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faithcheck.backends.base import CutReadout, CutReadRequest


@dataclass
class _Lane:
    """One cut's view of the shared cache."""

    cut: int
    visible: list[int]
    """Cache columns this cut attends to (besides its chain prefix)."""
    next_pos: int
    """Position id of the next token fed for this cut."""
    generated: list[int] = field(default_factory=list)
    done: bool = False


def _mask(torch: Any, lanes: Sequence[_Lane], kv_len: int, first_new: int) -> Any:
    """Boolean [1, 1, q, kv] mask: row r sees its chain prefix, its columns, itself."""
    mask = torch.zeros((1, 1, len(lanes), kv_len), dtype=torch.bool)
    for r, lane in enumerate(lanes):
        mask[0, 0, r, : lane.cut] = True
        if lane.visible:
            mask[0, 0, r, lane.visible] = True
        mask[0, 0, r, first_new + r] = True
    return mask


def read_chain(
    model: Any,
    req: CutReadRequest,
    *,
    device: str,
    done: Callable[[list[int]], bool],
) -> list[CutReadout]:
    """Read every cut of `req`; `done(generated)` says when a read-out is complete."""
    import torch

    cuts = list(req.cuts)
    guess = req.target_ids or req.draft_ids
    seg = req.cue_ids + guess
    longest = max(cuts)
    out = model(
        torch.tensor([req.chain_ids[:longest]], device=device), use_cache=True, logits_to_keep=1
    )
    cache = out.past_key_values
    # One forward for all segments: segment i occupies rows [i*S, (i+1)*S).
    s = len(seg)
    q = s * len(cuts)
    mask = torch.zeros((1, 1, q, longest + q), dtype=torch.bool)
    positions: list[int] = []
    for i, cut in enumerate(cuts):
        rows = slice(i * s, (i + 1) * s)
        mask[0, 0, rows, :cut] = True
        block = torch.ones((s, s), dtype=torch.bool).tril()
        mask[0, 0, rows, longest + i * s : longest + (i + 1) * s] = block
        positions.extend(range(cut, cut + s))
    logits = (
        model(
            torch.tensor([seg * len(cuts)], device=device),
            attention_mask=mask.to(device),
            position_ids=torch.tensor([positions], device=device),
            past_key_values=cache,
            use_cache=True,
        )
        .logits[0]
        .float()
    )
    results: list[CutReadout] = []
    lanes: list[_Lane] = []
    first = len(req.cue_ids) - 1  # row predicting guess[0] within a segment
    for i, cut in enumerate(cuts):
        rows = logits[i * s + first : (i + 1) * s]  # len(guess) + 1 rows
        logprob_sum = greedy = None
        if req.target_ids:
            pred = rows[: len(guess)].log_softmax(-1)
            target = torch.tensor(guess, device=device)
            lps = pred.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            logprob_sum, greedy = float(lps.sum()), bool((pred.argmax(-1) == target).all())
        results.append(CutReadout(logprob_sum=logprob_sum, greedy=greedy))
        if req.max_new_tokens:
            lanes.append(_accept_draft(rows, guess, cut, longest + i * s, len(req.cue_ids), done))
    if lanes:
        _decode(model, cache, lanes, device=device, done=done)
    if not lanes:
        return results
    return [
        r.model_copy(update={"generated_ids": lane.generated})
        for r, lane in zip(results, lanes, strict=True)
    ]


def _accept_draft(
    rows: Any,
    guess: list[int],
    cut: int,
    seg_start: int,
    cue_len: int,
    done: Callable[[list[int]], bool],
) -> _Lane:
    """Accept draft tokens while they are the arg-max, then the model's own choice."""
    best = rows.argmax(-1).tolist()
    lane = _Lane(cut=cut, visible=[], next_pos=0)
    accepted = 0
    for tok in [*guess, None]:
        choice = best[accepted]
        lane.generated.append(choice)
        if done(lane.generated) or tok is None or choice != tok:
            break
        accepted += 1
    lane.done = done(lane.generated)
    # The cut sees the cue and the accepted draft tokens; the last generated token is
    # not in the cache yet (it is fed by the next decode step).
    lane.visible = list(range(seg_start, seg_start + cue_len + accepted))
    lane.next_pos = cut + cue_len + accepted
    return lane


def _decode(
    model: Any, cache: Any, lanes: list[_Lane], *, device: str, done: Callable[[list[int]], bool]
) -> None:
    """Greedy steps for every open lane at once until all are done."""
    import torch

    while open_lanes := [lane for lane in lanes if not lane.done]:
        kv_before = cache.get_seq_length()
        mask = _mask(torch, open_lanes, kv_before + len(open_lanes), kv_before)
        step = model(
            torch.tensor([[lane.generated[-1] for lane in open_lanes]], device=device),
            attention_mask=mask.to(device),
            position_ids=torch.tensor([[lane.next_pos for lane in open_lanes]], device=device),
            past_key_values=cache,
            use_cache=True,
        ).logits[0]
        for r, lane in enumerate(open_lanes):
            lane.visible.append(kv_before + r)
            lane.next_pos += 1
            lane.generated.append(int(step[r].argmax()))
            lane.done = done(lane.generated)
