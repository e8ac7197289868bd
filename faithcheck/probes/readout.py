"""Reading the model's answer after an intervention on its chain of thought.

The cue ends inside `\\boxed{`, so a read-out is the text up to the brace that closes
the box. `read_cuts_naive` is the protocol-level baseline built from the generic
verbs (a full prefill and a fresh generation per cut); backends offer faster exact
versions through `Backend.read_cuts`.
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
from faithcheck.parsing import extract_answer, normalize_answer
from faithcheck.records import Problem
from faithcheck.verify import verify

ANSWER_CUE = "\nTherefore, the final answer is \\boxed{"
"""Appended after a cut; the model's next tokens are its answer."""


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


def readout_answer(text: str) -> str | None:
    """The answer in a read-out continuation of `\\boxed{` (None when empty)."""
    end = box_close(text)
    inner = text[:end] if end is not None else text.split("\n", 1)[0]
    inner = inner.strip()
    if not inner:
        return None
    return extract_answer("\\boxed{" + inner + "}").answer or inner


def same_answer(a: str | None, b: str | None, problem: Problem) -> bool:
    """Whether two of the model's answers agree (the probes compare against a*).

    Exact match after normalization first (cheap), then the problem's own verifier with
    `a` as the reference, so `0.5` and `\\frac{1}{2}` agree on math problems.
    """
    if a is None or b is None:
        return False
    if normalize_answer(a) == normalize_answer(b):
        return True
    return verify(problem.model_copy(update={"answer": a}), b).correct


def trim_readout(ids: list[int], backend: Backend) -> tuple[list[int], str]:
    """Cut generated ids after the token that closes the box (or at EOS)."""
    eos = _eos_ids(backend)
    for n in range(1, len(ids) + 1):
        if ids[n - 1] in eos:
            return ids[: n - 1], backend.decode(ids[: n - 1])
        text = backend.decode(ids[:n])
        if box_close(text) is not None:
            return ids[:n], text
    return ids, backend.decode(ids)


def _eos_ids(backend: Backend) -> set[int]:
    renderer = getattr(backend, "_renderer", None)
    return renderer.eos_ids() if renderer is not None else set()


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
