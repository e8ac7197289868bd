"""All cuts of several chains in a handful of forward passes (the transformers fast path).

Chains are encoded once each and their KV caches packed side by side into ONE cache
(positions restart at 0 for each chain, as they are baked into the keys). Every cut's
segment (cue + draft of the answer) is then appended to that cache in one forward pass,
under a 4D attention mask that lets the segment of cut `c` of chain `j` see only the
first `c` tokens of chain `j` and itself, with position ids that continue from `c`: each
segment computes exactly what it would after a fresh prefill of its own prefix. Greedy
read-outs that leave the draft are decoded for all cuts of all chains together, one
token per still-open cut per step, under the same kind of mask.

Token layout in the cache (chain j packed at offset o_j, longest cut C_j)::

    [chain_0 0..C_0) [chain_1 0..C_1) ... [segments of every cut] [step-1 tokens] ...

Packing turns per-chain forward calls (segments, each decode step) into per-pack calls,
which is what dominates on CPU for small models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faithcheck.backends.base import CutReadout, CutReadRequest

Done = Callable[[list[int]], bool]


@dataclass
class _Lane:
    """One cut's view of the shared cache."""

    start: int
    """Cache column where its chain begins."""
    cut: int
    """Chain tokens it sees (columns start .. start + cut)."""
    done_fn: Done
    visible: list[int] = field(default_factory=list)
    """Cache columns this cut attends to besides its chain prefix."""
    next_pos: int = 0
    """Position id of the next token fed for this cut."""
    generated: list[int] = field(default_factory=list)
    done: bool = False


def pack_sizes(requests: Sequence[CutReadRequest], budget: int) -> list[int]:
    """Split requests (in order) into packs whose chain prefixes total <= `budget` tokens
    (a single longer chain gets a pack of its own). Returns the pack lengths."""
    sizes: list[int] = []
    total = count = 0
    for req in requests:
        need = max(req.cuts)
        if count and total + need > budget:
            sizes.append(count)
            total = count = 0
        total += need
        count += 1
    if count:
        sizes.append(count)
    return sizes


def read_pack(
    model: Any, reqs: Sequence[CutReadRequest], *, device: str, done: Sequence[Done]
) -> list[list[CutReadout]]:
    """Read every cut of every request; `done[j](generated)` says when a read-out of
    request j is complete."""
    import torch

    starts: list[int] = []
    n_chain = 0
    caches: list[Any] = []
    previous: list[int] = []
    for req in reqs:
        # Each chain is encoded on its own (plain causal attention, the efficient kernel);
        # the caches are then packed side by side. A block-diagonal mask over the packed
        # prefix would do the same work in one call but with quadratic masked attention.
        n = max(req.cuts)
        ids = req.chain_ids[:n]
        starts.append(n_chain)
        n_chain += n
        # Chains of one problem share its prompt: the previous chain's cache already holds
        # it (causal keys and values of a prefix do not depend on what follows), so only
        # the rest is encoded.
        shared = min(_common_prefix(previous, ids), n - 1)
        past = _prefix(caches[-1], shared) if shared >= MIN_SHARED and caches else None
        skip = shared if past is not None else 0  # no reuse: encode the whole chain
        out = model(
            torch.tensor([ids[skip:]], device=device),
            past_key_values=past,
            use_cache=True,
            logits_to_keep=1,
        )
        caches.append(out.past_key_values)
        previous = ids
    cache = _pack(caches)
    return _segments(model, cache, reqs, starts, n_chain, device=device, done=done)


MIN_SHARED = 16
"""Shortest shared prefix worth reusing from the previous chain's cache."""


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _prefix(cache: Any, length: int) -> Any:
    """A cache holding the first `length` tokens of `cache` (views; the model's next
    update concatenates into new tensors, so `cache` itself is left as it is), or None
    for caches whose layers are not plain full-attention layers (a sliding window may
    have dropped early tokens)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if not all(type(layer) is DynamicLayer for layer in cache.layers):
        return None
    head = DynamicCache()
    for layer in range(len(cache.layers)):
        keys = cache.layers[layer].keys[:, :, :length]
        values = cache.layers[layer].values[:, :, :length]
        head.update(keys, values, layer)
    return head


def _pack(caches: Sequence[Any]) -> Any:
    """One cache holding the given caches' tokens one after the other (per layer, keys
    and values concatenated along the sequence; positions stay baked into the keys)."""
    import torch
    from transformers import DynamicCache

    if len(caches) == 1:
        return caches[0]
    packed = DynamicCache()
    for layer in range(len(caches[0].layers)):
        keys = torch.cat([c.layers[layer].keys for c in caches], dim=-2)
        values = torch.cat([c.layers[layer].values for c in caches], dim=-2)
        packed.update(keys, values, layer)
    return packed


def _segments(
    model: Any,
    cache: Any,
    reqs: Sequence[CutReadRequest],
    starts: list[int],
    n_chain: int,
    *,
    device: str,
    done: Sequence[Done],
) -> list[list[CutReadout]]:
    """One forward for all segments of all cuts, then the greedy decode of open lanes."""
    import torch

    rows_of: list[tuple[int, int, int, int]] = []  # (request, cut, first row, length)
    tokens: list[int] = []
    positions: list[int] = []
    for j, req in enumerate(reqs):
        seg = req.cue_ids + (req.target_ids or req.draft_ids)
        for cut in req.cuts:
            rows_of.append((j, cut, len(tokens), len(seg)))
            tokens.extend(seg)
            positions.extend(range(cut, cut + len(seg)))
    q = len(tokens)
    mask = torch.zeros((1, 1, q, n_chain + q), dtype=torch.bool)
    for j, cut, row, s in rows_of:
        mask[0, 0, row : row + s, starts[j] : starts[j] + cut] = True
        block = torch.ones((s, s), dtype=torch.bool).tril()
        mask[0, 0, row : row + s, n_chain + row : n_chain + row + s] = block
    logits = (
        model(
            torch.tensor([tokens], device=device),
            attention_mask=mask.to(device),
            position_ids=torch.tensor([positions], device=device),
            past_key_values=cache,
            use_cache=True,
        )
        .logits[0]
        .float()
    )
    results: list[list[CutReadout]] = [[] for _ in reqs]
    lanes: list[tuple[int, _Lane]] = []
    for j, cut, row, s in rows_of:
        req = reqs[j]
        guess = req.target_ids or req.draft_ids
        first = row + len(req.cue_ids) - 1  # row predicting guess[0]
        rows = logits[first : row + s]  # len(guess) + 1 rows
        logprob_sum = greedy = None
        if req.target_ids:
            pred = rows[: len(guess)].log_softmax(-1)
            target = torch.tensor(guess, device=logits.device)
            lps = pred.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            logprob_sum, greedy = float(lps.sum()), bool((pred.argmax(-1) == target).all())
        results[j].append(CutReadout(logprob_sum=logprob_sum, greedy=greedy))
        if req.max_new_tokens:
            lane = _Lane(start=starts[j], cut=cut, done_fn=done[j])
            _accept_draft(lane, rows, guess, n_chain + row, len(req.cue_ids))
            lanes.append((j, lane))
    if lanes:
        _decode(model, cache, [lane for _, lane in lanes], device=device)
    by_cut: dict[int, list[_Lane]] = {}
    for j, lane in lanes:
        by_cut.setdefault(j, []).append(lane)
    return [
        [
            r.model_copy(update={"generated_ids": lane.generated})
            for r, lane in zip(row, by_cut[j], strict=True)
        ]
        if j in by_cut
        else row
        for j, row in enumerate(results)
    ]


def _accept_draft(lane: _Lane, rows: Any, guess: list[int], seg_start: int, cue_len: int) -> None:
    """Accept draft tokens while they are the arg-max, then the model's own choice."""
    best = rows.argmax(-1).tolist()
    accepted = 0
    for tok in [*guess, None]:
        choice = best[accepted]
        lane.generated.append(choice)
        if lane.done_fn(lane.generated) or tok is None or choice != tok:
            break
        accepted += 1
    lane.done = lane.done_fn(lane.generated)
    # The cut sees the cue and the accepted draft tokens; the last generated token is
    # not in the cache yet (it is fed by the next decode step).
    lane.visible = list(range(seg_start, seg_start + cue_len + accepted))
    lane.next_pos = lane.cut + cue_len + accepted


def _mask(torch: Any, lanes: Sequence[_Lane], kv_len: int, first_new: int) -> Any:
    """Boolean [1, 1, q, kv] mask: row r sees its chain prefix, its columns, itself."""
    mask = torch.zeros((1, 1, len(lanes), kv_len), dtype=torch.bool)
    for r, lane in enumerate(lanes):
        mask[0, 0, r, lane.start : lane.start + lane.cut] = True
        if lane.visible:
            mask[0, 0, r, lane.visible] = True
        mask[0, 0, r, first_new + r] = True
    return mask


def _decode(model: Any, cache: Any, lanes: list[_Lane], *, device: str) -> None:
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
            lane.done = lane.done_fn(lane.generated)
