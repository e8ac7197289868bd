"""The probability read-out: a judge's label read off its next-token distribution.

One read, G-Eval style (the verdict prefix is written *for* the judge)::

    render(rubric prompt)                         the judge's turn begins
    + up to N greedy rationale tokens             optional (--judge-rationale-tokens N)
    + "VERDICT <nonce>:"                          the fixed verdict prefix
    -> P(" aligned"), P(" partial"), P(" misaligned")   next-token log-probs

Every item gets a label (the most probable one) and a continuous score, and nothing is
parsed, so there are no parse errors. The rationale, when asked for, stops before the
judge writes a verdict of its own (`RATIONALE_STOP`).

Label tokens. Each label is tokenized as the continuation of the verdict prefix
(`label_continuations`), so the tokenizer's own merges decide. When the labels' first
tokens are distinct (SmolLM2 and Qwen2.5: ` aligned`, ` partial`, ` mis`), one
next-token read gives them all (`NextTokenReader`: hf, vllm, openai), and a label's
probability is its first token's. Otherwise, or on a backend without that verb, each
whole label is teacher-forced (`Backend.score`, one request per label).

Probabilities are renormalized over the labels; `label_mass` (their sum before
renormalizing) says how much of the next-token mass the judge put on a label at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from pydantic import Field

from faithcheck.backends.base import (
    Backend,
    GenerationRequest,
    NextTokenReader,
    NextTokenRequest,
    Prompt,
    ScoreRequest,
)
from faithcheck.records import Record

RATIONALE_STOP = "VERDICT"
"""The rationale ends where the judge starts its own verdict line: ours follows."""


class LabelAsk(Record):
    """One probability read-out: an optional short rationale, then the judge's turn is
    forced to `verdict_prefix` and the next-token log-probs of `labels` are read."""

    prompt: Prompt
    """System + user messages (chat judges), or a plain text (base judges)."""
    seed: int
    """Request seed of the rationale (greedy, so it only matters to sampled engines)."""
    rationale_tokens: int = Field(0, ge=0)
    """Rationale budget in tokens, written greedily before the verdict prefix; 0: none."""
    verdict_prefix: str
    """What the judge's turn says right before the label, e.g. `VERDICT 3f9a1c0b:`."""
    labels: list[str] = Field(min_length=2)
    """The label words whose probabilities are read, in order."""
    stop: list[str] = Field(default_factory=list)
    """Stop strings of the rationale."""


class LabelRead(NamedTuple):
    """What one read-out found, with what it cost."""

    rationale: str
    """The rationale text ('' without one)."""
    logprobs: list[float]
    """Log-probability of each asked label, in order."""
    prompt_tokens: int
    """Prompt tokens the engine was given (the rationale's prompt and the read's)."""
    completion_tokens: int
    """Rationale tokens generated."""


def verdict_prefix(nonce: str) -> str:
    """The fixed text the judge's turn ends with before the label: `VERDICT <nonce>:`."""
    return f"VERDICT {nonce}:"


def judge_turn(rationale: str, prefix: str) -> str:
    """The judge's turn up to the label: the rationale (if any), then the prefix."""
    rationale = rationale.strip()
    return f"{rationale}\n{prefix}" if rationale else prefix


def label_continuations(
    encode: Callable[[str], list[int]], prefix: str, labels: Sequence[str]
) -> list[list[int]]:
    """Token ids of each label as it continues `prefix` (after one space).

    The ids are those of `prefix + " " + label` past the ids of `prefix`, so merges
    across the space (SentencePiece's `▁`) come out as the judge would write them; a
    tokenizer that re-tokenizes the prefix itself falls back to `" " + label` alone.
    """
    base = encode(prefix)
    out = []
    for label in labels:
        full = encode(f"{prefix} {label}")
        if full[: len(base)] == base and len(full) > len(base):
            out.append(full[len(base) :])
        else:
            out.append(encode(f" {label}"))
    return out


def first_tokens_distinct(continuations: Sequence[Sequence[int]]) -> bool:
    """Whether one next-token read tells the labels apart (distinct first tokens)."""
    firsts = [c[0] for c in continuations if c]
    return len(firsts) == len(continuations) and len(set(firsts)) == len(firsts)


def normalize(logprobs: Sequence[float]) -> tuple[list[float], float]:
    """The labels' probabilities renormalized to sum to 1, and their mass before.

    Uniform when every label has probability 0 (all log-probs -inf): the judge then
    said nothing about the labels, and the mass (0) says so.
    """
    top = max(logprobs)
    if top == -math.inf:
        return [1.0 / len(logprobs)] * len(logprobs), 0.0
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights], math.exp(top) * total


def read_labels(backend: Backend, asks: Sequence[LabelAsk]) -> list[LabelRead]:
    """Answer probability read-outs on a local engine or a completions server.

    Args:
        backend: the judge model; a `NextTokenReader` reads each item in one pass.
        asks: the read-outs.

    Returns:
        One read per ask: the labels' log-probs in the order of `ask.labels`, tokens
        counted as the engine ran them.

    Raises:
        BackendError: the engine failed (propagated as is).
    """
    prompts = [backend.render(a.prompt) for a in asks]
    rationales = _rationales(backend, asks, prompts)
    prefixes, conts = [], []
    for a, prompt, (text, _) in zip(asks, prompts, rationales, strict=True):
        prefixes.append(prompt + backend.encode(judge_turn(text, a.verdict_prefix)))
        conts.append(label_continuations(backend.encode, a.verdict_prefix, a.labels))
    fast = isinstance(backend, NextTokenReader)
    one_pass = [i for i, c in enumerate(conts) if fast and first_tokens_distinct(c)]
    logprobs: dict[int, list[float]] = {}
    if one_pass:
        reads = backend.next_token_logprobs(  # type: ignore[attr-defined]
            [
                NextTokenRequest(prompt_ids=prefixes[i], token_ids=[c[0] for c in conts[i]])
                for i in one_pass
            ]
        )
        logprobs.update(zip(one_pass, reads, strict=True))
    teacher = [i for i in range(len(asks)) if i not in logprobs]
    if teacher:
        requests = [
            ScoreRequest(prefix_ids=prefixes[i], continuation_ids=c)
            for i in teacher
            for c in conts[i]
        ]
        scores = iter(backend.score(requests))
        for i in teacher:
            logprobs[i] = [next(scores).logprob_sum for _ in conts[i]]
    replies = []
    for i, (prompt, (text, ids)) in enumerate(zip(prompts, rationales, strict=True)):
        read_tokens = (
            len(prefixes[i])
            if i not in teacher
            else sum(len(prefixes[i]) + len(c) for c in conts[i])
        )
        rationale_prompt = len(prompt) if asks[i].rationale_tokens else 0
        replies.append(LabelRead(text, logprobs[i], read_tokens + rationale_prompt, len(ids)))
    return replies


def _rationales(
    backend: Backend, asks: Sequence[LabelAsk], prompts: Sequence[list[int]]
) -> list[tuple[str, list[int]]]:
    """Each ask's greedy rationale (text, ids); ('', []) where none is asked for."""
    want = [i for i, a in enumerate(asks) if a.rationale_tokens > 0]
    out: list[tuple[str, list[int]]] = [("", [])] * len(asks)
    if not want:
        return out
    requests = [
        GenerationRequest(
            prompt_ids=prompts[i],
            n=1,
            seed=asks[i].seed,
            temperature=0.0,
            top_p=1.0,
            max_tokens=asks[i].rationale_tokens,
            stop=[*asks[i].stop, RATIONALE_STOP],
        )
        for i in want
    ]
    for i, completions in zip(want, backend.generate(requests), strict=True):
        c = completions[0]
        out[i] = (c.text, list(c.token_ids))
    return out
