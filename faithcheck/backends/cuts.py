"""Read-out helpers shared by every backend, and the naive `read_cuts` baseline.

A read-out continues a cue that ends inside `\\boxed{`, so it is complete once the box
closes (or at EOS). `read_cuts_naive` builds `Backend.read_cuts` from the generic verbs:
a full prefill and a fresh generation per cut. It is the baseline that backends' fast
paths are checked and benchmarked against.
"""

from __future__ import annotations

from collections.abc import Sequence

from faithcheck.backends.base import (
    Backend,
    CutReadout,
    CutReadRequest,
    GenerationRequest,
    ScoreRequest,
)


def box_close(text: str) -> int | None:
    """Index of the brace that closes an already-open `\\boxed{`, or None if still open."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
    return None


def trim_readout(ids: list[int], backend: Backend) -> tuple[list[int], str]:
    """Cut generated ids after the token that closes the box (or at EOS)."""
    eos = backend.eos_ids()
    for n in range(1, len(ids) + 1):
        if ids[n - 1] in eos:
            return ids[: n - 1], backend.decode(ids[: n - 1])
        text = backend.decode(ids[:n])
        if box_close(text) is not None:
            return ids[:n], text
    return ids, backend.decode(ids)


def read_cuts_naive(
    backend: Backend, requests: Sequence[CutReadRequest], *, isolate: bool = True
) -> list[list[CutReadout]]:
    """Baseline: every cut re-encoded from scratch, generated and scored separately.

    Args:
        backend: any backend.
        requests: cut read requests.
        isolate: give each generation its own prefix-cache salt, so that vLLM cannot
            reuse one cut's prefill for another (the honest naive cost).
    """
    flat = [(i, c) for i, r in enumerate(requests) for c in r.cuts]
    gens: list[list[int]] = [[] for _ in flat]
    gen_jobs = [
        (
            j,
            GenerationRequest(
                prompt_ids=requests[i].chain_ids[:c] + requests[i].cue_ids,
                n=1,
                seed=0,
                temperature=0.0,
                top_p=1.0,
                max_tokens=requests[i].max_new_tokens,
                cache_salt=f"naive-{j}" if isolate else None,
            ),
        )
        for j, (i, c) in enumerate(flat)
        if requests[i].max_new_tokens > 0
    ]
    if gen_jobs:
        outs = backend.generate([g for _, g in gen_jobs])
        for (j, _), out in zip(gen_jobs, outs, strict=True):
            gens[j] = out[0].token_ids
    score_jobs = [
        (
            j,
            ScoreRequest(
                prefix_ids=requests[i].chain_ids[:c] + requests[i].cue_ids,
                continuation_ids=requests[i].target_ids,
            ),
        )
        for j, (i, c) in enumerate(flat)
        if requests[i].target_ids
    ]
    scores = dict(
        zip(
            [j for j, _ in score_jobs],
            backend.score([s for _, s in score_jobs]) if score_jobs else [],
            strict=True,
        )
    )
    results: list[list[CutReadout]] = [[] for _ in requests]
    for j, (i, _) in enumerate(flat):
        ids, text = trim_readout(gens[j], backend) if gens[j] else ([], "")
        sc = scores.get(j)
        results[i].append(
            CutReadout(
                generated_ids=ids,
                text=text,
                logprob_sum=sc.logprob_sum if sc else None,
                greedy=sc.greedy if sc else None,
            )
        )
    return results
