"""The backend contract: three verbs every inference engine provides.

    render(prompt)      -> token ids        chat template, or raw text for base models
    generate(requests)  -> completions      n samples per request, explicit settings
    score(requests)     -> log-probs        teacher forcing of a continuation

and one optional verb (`NextTokenReader`), for reading a label off the next-token
distribution in one forward pass:

    next_token_logprobs(requests) -> log-probs of chosen tokens at the prompt's end

Token layout for `score` (one request)::

    prefix_ids:        [p0 p1 p2 ... pm]
    continuation_ids:                    [c0 c1 ... ck]
    returned:                            [lp(c0|p..)  lp(c1|p..,c0) ...]

`logprob_sum` is the sum of those log-probabilities and `greedy` is true when every
continuation token is the model's arg-max at its position (so greedy decoding from
the prefix would reproduce the continuation, ties aside).

Backends must be deterministic for a fixed request seed: results may not depend on
which other requests share the batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import Field

from faithcheck.errors import ModelLoadError
from faithcheck.records import Record

DType = Literal["auto", "bfloat16", "float16", "float32"]


class ChatPrompt(Record):
    """A prompt rendered with the tokenizer's chat template."""

    kind: Literal["chat"] = "chat"
    messages: list[dict[str, str]]
    """OpenAI-style messages: [{"role": "user", "content": "..."}]."""


class TextPrompt(Record):
    """A raw text prompt, for base checkpoints without a chat template."""

    kind: Literal["text"] = "text"
    text: str
    """The prompt text, tokenized as is (with the tokenizer's BOS if it adds one)."""


Prompt = ChatPrompt | TextPrompt


class GenerationRequest(Record):
    """One prompt to sample `n` completions for, with every sampling setting explicit."""

    prompt_ids: list[int]
    """Token ids from `render`."""
    n: int = Field(ge=1)
    """Number of completions."""
    seed: int
    """Per-request seed; the same seed gives the same completions."""
    temperature: float = Field(ge=0.0)
    """Sampling temperature; 0 means greedy."""
    top_p: float = Field(gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    max_tokens: int = Field(ge=1)
    """Maximum new tokens per completion."""
    stop: list[str] = Field(default_factory=list)
    """Extra stop strings (the model's end-of-sequence token always stops)."""
    logprobs: bool = False
    """Return the log-probability of each sampled token."""
    cache_salt: str | None = None
    """vLLM: isolate this request from the prefix cache (naive probe baseline); else ignored."""


FinishReason = Literal["stop", "length"]


class Completion(Record):
    """One sampled completion."""

    text: str
    """Decoded text, special tokens removed."""
    token_ids: list[int]
    """Generated token ids (without padding; includes the stopping EOS if any)."""
    finish_reason: FinishReason
    """`stop`: EOS or a stop string; `length`: max_tokens reached."""
    logprobs: list[float] | None = None
    """Per-token log-probabilities under the model (unscaled by temperature), if asked."""


class ScoreRequest(Record):
    """Teacher-forced scoring of `continuation_ids` after `prefix_ids`."""

    prefix_ids: list[int]
    """Context tokens (must be non-empty)."""
    continuation_ids: list[int]
    """Tokens whose log-probabilities are returned."""


class NextTokenRequest(Record):
    """Log-probabilities of a few chosen tokens as the next token after a prompt.

    Token layout::

        prompt_ids: [p0 p1 ... pm]
        returned:                  [lp(t0|p..)  lp(t1|p..)  ...]   for t in token_ids

    Each value is the full-vocabulary log-probability (not renormalized over `token_ids`).
    """

    prompt_ids: list[int] = Field(min_length=1)
    """The context (e.g. a judge prompt ending in its verdict prefix)."""
    token_ids: list[int] = Field(min_length=1)
    """The candidate next tokens, distinct."""


class ScoreResult(Record):
    """Log-probabilities of a continuation under teacher forcing."""

    token_logprobs: list[float]
    """One log-probability per continuation token."""
    logprob_sum: float
    """Sum of `token_logprobs`."""
    greedy: bool
    """Every continuation token is the arg-max at its position."""


class CutReadRequest(Record):
    """Read the model's answer after several cuts of one chain (the probes' hot path).

    Token layout for one cut `c`::

        chain_ids[:c] + cue_ids + target_ids     (teacher-forced: log P(target | ...))
        chain_ids[:c] + cue_ids -> greedy tokens (generated read-out)

    Every cut shares the prefix `chain_ids[:c]` with the longer cuts, which is what
    the fast paths exploit (one encoding of the chain, cropped per cut).
    """

    chain_ids: list[int]
    """Prompt plus chain-of-thought tokens."""
    cuts: list[int]
    """Prefix lengths into `chain_ids` (each >= 1) to read the answer after."""
    cue_ids: list[int]
    """Answer cue appended after each cut (e.g. 'the final answer is \\boxed{')."""
    target_ids: list[int] = Field(default_factory=list)
    """Tokens to teacher-force after the cue (the model's own answer); empty: no scoring."""
    max_new_tokens: int = 0
    """Greedy read-out length; 0: no generation. Stops early once the box closes."""
    draft_ids: list[int] = Field(default_factory=list)
    """A guess of the greedy read-out (e.g. a*); backends may use it to skip decode
    steps (speculatively), never to change the result. `target_ids` serves if set."""


class CutReadout(Record):
    """What the model says (or how likely it finds the target) after one cut."""

    generated_ids: list[int] = Field(default_factory=list)
    """Greedy read-out tokens (up to the closing brace of the box, or EOS)."""
    text: str = ""
    """Decoded read-out."""
    logprob_sum: float | None = None
    """log P(target | cut + cue), when a target was given."""
    greedy: bool | None = None
    """Whether the target is the greedy continuation, when a target was given."""


@runtime_checkable
class Backend(Protocol):
    """What every inference engine offers faithcheck."""

    name: str

    def render(self, prompt: Prompt) -> list[int]:
        """Turn a prompt into the token ids the model will see."""
        ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """Sample completions; one list of `n` completions per request, in order."""
        ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Teacher-forced log-probabilities; one result per request, in order."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of a continuation text (no special tokens added)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids, special tokens removed."""
        ...

    def eos_ids(self) -> set[int]:
        """Token ids that end a sequence."""
        ...

    def read_cuts(self, requests: Sequence[CutReadRequest]) -> list[list[CutReadout]]:
        """The backend's fastest exact way to read answers after chain cuts."""
        ...

    def close(self) -> None:
        """Release the engine (memory, worker processes)."""
        ...


@runtime_checkable
class NextTokenReader(Protocol):
    """A backend that reads next-token log-probabilities in one forward pass (hf, vllm,
    openai). Optional: a backend without it is read through `score` instead."""

    def next_token_logprobs(self, requests: Sequence[NextTokenRequest]) -> list[list[float]]:
        """One list per request: the log-probability of each of its `token_ids`, in order."""
        ...


class TokenizerRenderer:
    """`render` shared by in-process backends: the checkpoint's own HF tokenizer.

    Both in-process backends render through the same tokenizer so that a prompt maps
    to identical token ids whichever engine runs it.
    """

    def __init__(self, model_path: str, *, trust_remote_code: bool = False) -> None:
        from transformers import AutoTokenizer

        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(
                model_path, trust_remote_code=trust_remote_code
            )
        except Exception as exc:  # corrupt or missing tokenizer files
            raise ModelLoadError(f"cannot load tokenizer from {model_path}: {exc}") from None
        self._config_eos = self._read_config_eos(model_path)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, model_path: str | None = None) -> TokenizerRenderer:
        """A renderer around a tokenizer object the caller already holds (EOS ids from
        `model_path`'s generation_config.json when given)."""
        self = cls.__new__(cls)
        self.tokenizer = tokenizer
        self._config_eos = self._read_config_eos(model_path) if model_path else set()
        return self

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer defines a chat template."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render(self, prompt: Prompt) -> list[int]:
        """Token ids for a chat prompt (with generation prompt) or raw text."""
        if isinstance(prompt, ChatPrompt):
            if not self.has_chat_template:
                raise ModelLoadError(
                    "this tokenizer has no chat template; use --prompt-format base"
                )
            ids = self.tokenizer.apply_chat_template(
                prompt.messages, add_generation_prompt=True, tokenize=True, return_dict=False
            )
            return list(ids)
        return list(self.tokenizer(prompt.text).input_ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Decode generated ids, dropping special tokens."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def encode(self, text: str) -> list[int]:
        """Token ids for continuation text, without BOS or other special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def eos_ids(self) -> set[int]:
        """End-of-sequence ids: the tokenizer's, plus any the checkpoint's
        generation_config.json adds (chat models often end turns with a second one)."""
        eos = self.tokenizer.eos_token_id
        ids = {int(eos)} if eos is not None else set()
        return ids | self._config_eos

    def _read_config_eos(self, model_path: str) -> set[int]:
        path = os.path.join(model_path, "generation_config.json")
        try:
            with open(path, "rb") as fh:
                value = json.load(fh).get("eos_token_id")
        except (OSError, ValueError, AttributeError):
            return set()
        values = value if isinstance(value, list) else [value]
        return {int(v) for v in values if isinstance(v, int)}


@dataclass
class PrefillCount:
    """Prompt tokens served vs prompt tokens actually run through the model."""

    prompt_tokens: int = 0
    """Tokens of every prompt row served (n copies of a prompt count n times)."""
    computed_tokens: int = 0
    """Tokens that went through a forward pass to build those prompts' caches."""

    def add(self, served: int, computed: int) -> None:
        """Count one request."""
        self.prompt_tokens += served
        self.computed_tokens += computed


def top_is(entries: Mapping[Any, Any], token: Any) -> bool:
    """Whether `token` is the arg-max at a position whose prompt log-probs were asked with
    `prompt_logprobs=1`: vLLM returns the top-1 entry plus the actual token, so the entries
    hold the token alone exactly when it is the arg-max. vLLM's `rank` is not used: it
    counts the vocabulary entries at least as likely as the token's separately gathered
    log-prob, and where the two roundings differ (torch's AVX2 kernels on a CPU, measured)
    the arg-max gets rank 0 and the runner-up rank 1."""
    return len(entries) == 1 and token in entries


def cpu_thread_count() -> int:
    """Threads for CPU inference: OMP_NUM_THREADS if set, else the usable cores."""
    env = os.environ.get("OMP_NUM_THREADS")
    if env and env.isdigit():
        return max(1, int(env))
    return max(1, len(os.sched_getaffinity(0)))
