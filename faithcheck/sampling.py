"""Sampling stage: prompts → backend → parsed, verified `SampleRecord`s.

Requests go to the backend in chunks of problems so that records reach disk (and the
progress bar moves) while the run goes on; each chunk's records are handed to
`on_records` as soon as they exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field

from faithcheck.backends.base import Backend, Completion, FinishReason, GenerationRequest
from faithcheck.checks.derivation import needs_arithmetic
from faithcheck.errors import UsageError
from faithcheck.problems.parsing import AnswerRule, Step, extract_answer, split_steps
from faithcheck.problems.prompts import BASE_STOP, PromptFormat, build_prompt
from faithcheck.problems.verify import VerifyMethod, verify
from faithcheck.records import PANEL_SAMPLING, Problem, Record, option, path_text


class SamplingOptions(Record):
    """How `faithcheck score` samples (its "Sampling" panel); `config` resolves them into
    the `SamplingConfig` a run samples with."""

    samples: int = option(
        16, "--samples", "-k", help="Responses per problem.", panel=PANEL_SAMPLING
    )
    """Samples per problem."""
    temperature: float = option(1.0, help="Sampling temperature.", panel=PANEL_SAMPLING)
    """Sampling temperature."""
    top_p: float = option(1.0, help="Nucleus sampling mass.", panel=PANEL_SAMPLING)
    """Nucleus mass."""
    max_tokens: int = option(512, help="Maximum new tokens per response.", panel=PANEL_SAMPLING)
    """Max new tokens."""
    seed: int = option(0, help="Run seed; per-request seeds derive from it.", panel=PANEL_SAMPLING)
    """Run seed (the probes, the judge and the bootstrap CIs derive theirs from it too)."""
    prompt_format: PromptFormat = option(
        "auto",
        "--prompt-format",
        help="chat = tokenizer chat template; base = plain text; auto picks.",
        panel=PANEL_SAMPLING,
    )
    """auto, chat or base."""
    prompt_template: str | None = option(
        None,
        cli_type=Path | None,
        parse=path_text,
        help="Text file with a {question} placeholder replacing the built-in prompt ({answer}: "
        "the gold answer, {hint}: a wrong suggested one), or a built-in name: post-hoc, "
        "wrong-hint, answer-first (prompted organisms of unfaithfulness).",
        panel=PANEL_SAMPLING,
    )
    """Path of a custom template (or a built-in template's name)."""

    def check(self) -> None:
        """Reject values sampling cannot use, with the command line's message."""
        if self.samples < 1:
            raise UsageError("--samples must be at least 1")
        if self.max_tokens < 1:
            raise UsageError("--max-tokens must be at least 1")
        if self.temperature < 0:
            raise UsageError("--temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise UsageError("--top-p must be in (0, 1]")

    def config(self, fmt: Literal["chat", "base"], template: str | None) -> SamplingConfig:
        """The sampling settings of a run whose prompt format resolved to `fmt`, with the
        template's text."""
        return SamplingConfig(
            samples=self.samples,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            prompt_format=fmt,
            template=template,
            stop=BASE_STOP if fmt == "base" else [],
        )


class SamplingConfig(Record):
    """Sampling settings, all explicit (never the checkpoint's generation defaults)."""

    samples: int = Field(16, ge=1)
    """Completions per problem (k)."""
    temperature: float = Field(1.0, ge=0.0)
    """Sampling temperature (the study samples at 1.0)."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    max_tokens: int = Field(512, ge=1)
    """Maximum new tokens per completion."""
    seed: int = 0
    """Run seed; each problem's request seed derives from it and the problem id."""
    prompt_format: Literal["chat", "base"] = "chat"
    """Resolved prompt format."""
    template: str | None = None
    """Custom prompt template text (`--prompt-template`), or None for the built-in one."""
    stop: list[str] = Field(default_factory=list)
    """Extra stop strings."""


class SampleRecord(Record):
    """One sampled response, parsed and verified: a line of samples.jsonl."""

    problem_id: str
    """The problem this responds to."""
    sample_index: int
    """0..k-1 within the problem."""
    seed: int
    """The request seed the sample was drawn with."""
    prompt_tokens: int
    """Length of the rendered prompt."""
    completion: str
    """The response text."""
    completion_token_ids: list[int]
    """The response tokens (probes cut and teacher-force on these)."""
    finish_reason: FinishReason
    """`stop` or `length` (max tokens reached)."""
    steps: list[Step]
    """Reasoning steps with character offsets into `completion`."""
    answer: str | None
    """The extracted final answer, or None when none was found."""
    answer_rule: AnswerRule
    """Which extraction rule fired."""
    correct: bool
    """Whether the answer matches the gold answer."""
    verify_method: VerifyMethod
    """How correctness was decided."""
    verify_error: str | None = None
    """Why verification could not decide (timeout, parse failure), if it could not."""
    needs_arithmetic: bool | None = None
    """The gold answer is a number the question does not write, so reaching it takes
    computing (`faithcheck.checks.derivation.needs_arithmetic`); None when the gold answer is not
    one number, or for records written before this field existed."""


def request_seed(run_seed: int, problem_id: str) -> int:
    """Per-request seed from the run seed and problem id, stable across runs and shards."""
    digest = hashlib.sha256(f"{run_seed}:{problem_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def build_request(backend: Backend, problem: Problem, cfg: SamplingConfig) -> GenerationRequest:
    """Render the problem's prompt and wrap it with the run's sampling settings."""
    prompt = build_prompt(problem.question, cfg.prompt_format, cfg.template, problem.answer)
    return GenerationRequest(
        prompt_ids=backend.render(prompt),
        n=cfg.samples,
        seed=request_seed(cfg.seed, problem.id),
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_tokens=cfg.max_tokens,
        stop=cfg.stop,
    )


def to_record(
    problem: Problem, index: int, req: GenerationRequest, completion: Completion
) -> SampleRecord:
    """Parse and verify one completion."""
    extraction = extract_answer(completion.text)
    check = verify(problem, extraction.answer)
    return SampleRecord(
        problem_id=problem.id,
        sample_index=index,
        seed=req.seed,
        prompt_tokens=len(req.prompt_ids),
        completion=completion.text,
        completion_token_ids=completion.token_ids,
        finish_reason=completion.finish_reason,
        steps=split_steps(completion.text),
        answer=extraction.answer,
        answer_rule=extraction.rule,
        correct=check.correct,
        verify_method=check.method,
        verify_error=check.error,
        needs_arithmetic=needs_arithmetic(problem.question, problem.answer),
    )


def sample(
    backend: Backend,
    problems: Sequence[Problem],
    cfg: SamplingConfig,
    on_records: Callable[[list[SampleRecord]], None],
    *,
    chunk_size: int = 8,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Sample `cfg.samples` responses per problem and hand records over chunk by chunk.

    Args:
        backend: the engine to sample from.
        problems: problems to sample (in order).
        cfg: sampling settings.
        on_records: receives each chunk's records (e.g. appends them to samples.jsonl).
        chunk_size: problems per engine call; larger batches are faster on vLLM.
        on_progress: receives the number of problems finished in each chunk.
    """
    for start in range(0, len(problems), chunk_size):
        chunk = problems[start : start + chunk_size]
        requests = [build_request(backend, p, cfg) for p in chunk]
        outputs = backend.generate(requests)
        records = [
            to_record(problem, i, req, completion)
            for problem, req, completions in zip(chunk, requests, outputs, strict=True)
            for i, completion in enumerate(completions)
        ]
        on_records(records)
        if on_progress is not None:
            on_progress(len(chunk))


def replay(
    backend: Backend,
    problems: Sequence[Problem],
    responses: dict[str, list[str]],
    cfg: SamplingConfig,
    on_records: Callable[[list[SampleRecord]], None],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Turn rollouts produced elsewhere into sample records (no generation).

    Each response is tokenized with the scoring model's tokenizer, then parsed and
    verified exactly like a sampled one, so that probes can run on it.
    """
    for problem in problems:
        req = build_request(backend, problem, cfg)
        records = []
        for i, text in enumerate(responses.get(problem.id, [])):
            completion = Completion(text=text, token_ids=backend.encode(text), finish_reason="stop")
            records.append(to_record(problem, i, req, completion))
        on_records(records)
        if on_progress is not None:
            on_progress(1)
