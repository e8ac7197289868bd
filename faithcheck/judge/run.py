"""Asking the judge: batched requests, retries with fresh seeds, judge errors recorded.

`ask_with_retries` is the one loop every judge question goes through (the rubric here,
the strategy comparison in `faithcheck.judge.strategy`); `judge_texts` is the rubric on
arbitrary items, and `judge_samples` the rubric on a run's sampled responses. With
`JudgeConfig.readout` `probs` a closed verdict is read off the label probabilities instead
(`ask_labels`, one read per question, no retries: nothing is parsed): the rubric's in
`judge_by_probs`, the strategy comparison's in `faithcheck.judge.strategy`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from faithcheck.backends.base import Backend, Prompt
from faithcheck.errors import DataError
from faithcheck.judge.client import (
    JudgeAsk,
    JudgeClient,
    JudgeReply,
    JudgeSession,
    as_session,
)
from faithcheck.judge.parse import ParsedReply, parse_label
from faithcheck.judge.probs import LabelAsk, judge_turn, normalize, verdict_prefix
from faithcheck.judge.prompt import item_nonce, judge_prompt
from faithcheck.judge.records import (
    LABEL_VALUES,
    READOUT_LABELS,
    JudgeConfig,
    JudgeItem,
    JudgeRecord,
    JudgeResult,
    JudgeUsage,
    LabelName,
)
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord

T = TypeVar("T")

BASE_STOP = ["\n<<<"]
"""Base judges run on into a new quoted block after their verdict; stop there."""


def attempt_seed(run_seed: int, item_id: str, attempt: int) -> int:
    """Request seed of one attempt, stable across runs, shards and batch layouts."""
    digest = hashlib.sha256(f"{run_seed}:judge:{item_id}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Question:
    """One prompt to put to the judge, with what its reply must be tagged with."""

    item_id: str
    """Seeds derive from it."""
    prompt: Prompt
    """The prompt, rendered through the judge backend when asked."""
    nonce: str
    """The nonce the verdict line must carry."""


@dataclass(frozen=True)
class Answer(Generic[T]):
    """What came of one `Question` after every attempt."""

    value: T | None
    """The parsed verdict; None when every attempt failed."""
    rationale: str
    """Text before the verdict line of the last attempt ('' on failure)."""
    raw: str
    """The last attempt's full reply."""
    seeds: list[int]
    """Request seed of each attempt."""
    error: str | None
    """`judge_error: <why>` when every attempt failed."""
    usage: JudgeUsage | None = None
    """Tokens over every attempt, and who answered."""
    reasoning: str | None = None
    """Reasoning text of the last attempt, returned apart from the reply (never parsed)."""


def _failure(reply: JudgeReply) -> str:
    """Why a reply without a verdict failed (stated for the last attempt)."""
    if reply.finish_reason == "content_filter":
        return "judge_error: the provider's content filter withheld the reply"
    if not reply.text.strip():
        if reply.finish_reason == "length":
            return "judge_error: reply hit max_tokens before any content (hidden reasoning?)"
        return "judge_error: empty reply"
    if reply.finish_reason == "length":
        return "judge_error: reply hit max_tokens before a verdict line"
    return "judge_error: unparseable reply (no tagged verdict on the last line)"


def _read(
    reply: JudgeReply, nonce: str, parse: Callable[[str, str], ParsedReply[T] | None]
) -> ParsedReply[T] | None:
    # A reply cut at max_tokens may end mid-label ("0.5" cut to "0", "misaligned" to
    # "mis..."): its last line is not trusted even when it parses. Only the content is
    # read; reasoning a server returns apart from it never is.
    if reply.finish_reason != "stop":
        return None
    return parse(reply.text, nonce)


HOPELESS_BATCH = 16
"""Questions in one call from which an all-unparseable first round skips the retries."""


def ask_with_retries(
    judge: Backend | JudgeClient | JudgeSession,
    questions: Sequence[Question],
    cfg: JudgeConfig,
    parse: Callable[[str, str], ParsedReply[T] | None],
    purpose: str = "rubric",
) -> list[Answer[T]]:
    """Put each question to the judge until its reply parses or the retries run out.

    Attempt 0 uses `cfg.temperature`; each retry samples at `cfg.retry_temperature`
    with a new seed (`attempt_seed`). Each round sends every pending question in
    batches of `cfg.batch_size`. When a call puts at least `HOPELESS_BATCH` questions
    and not one first reply parses, the judge does not follow the format at all (a
    model too small for the rubric): the retries are skipped and every question is
    recorded as a judge error at once.

    Args:
        judge: the judge (a backend or client is wrapped in a session without cache).
        questions: prompts and their nonces.
        cfg: judge settings.
        parse: reads a reply given the nonce; None when it has no valid verdict.
        purpose: what the questions are for, in the session's ledger.

    Returns:
        One answer per question, in order.

    Raises:
        BackendError: the judge failed (propagated as is).
    """
    session = as_session(judge)
    seeds: list[list[int]] = [[] for _ in questions]
    replies: list[list[JudgeReply]] = [[] for _ in questions]
    verdicts: list[ParsedReply[T] | None] = [None] * len(questions)
    pending = list(range(len(questions)))
    for attempt in range(cfg.max_retries + 1):
        if not pending:
            break
        temperature = cfg.temperature if attempt == 0 else cfg.retry_temperature
        for start in range(0, len(pending), cfg.batch_size):
            chunk = pending[start : start + cfg.batch_size]
            asks = []
            for i in chunk:
                asks.append(_ask(questions[i], cfg, attempt, temperature))
                seeds[i].append(asks[-1].seed)
            ids = [questions[i].item_id for i in chunk]
            got = session.ask(asks, purpose, ids, attempt)
            for i, reply in zip(chunk, got, strict=True):
                replies[i].append(reply)
                verdicts[i] = _read(reply, questions[i].nonce, parse)
        pending = [i for i in pending if verdicts[i] is None]
        if attempt == 0 and len(questions) >= HOPELESS_BATCH and len(pending) == len(questions):
            # Not one of many first replies followed the format: this judge cannot write
            # the verdict line, and retries would only double the cost of finding out.
            break
    return [_answer(v, r, s) for v, r, s in zip(verdicts, replies, seeds, strict=True)]


def _ask(question: Question, cfg: JudgeConfig, attempt: int, temperature: float) -> JudgeAsk:
    return JudgeAsk(
        prompt=question.prompt,
        seed=attempt_seed(cfg.seed, question.item_id, attempt),
        temperature=temperature,
        top_p=cfg.top_p,
        max_tokens=cfg.max_tokens,
        stop=BASE_STOP if cfg.prompt_format == "base" else [],
    )


def _answer(
    verdict: ParsedReply[T] | None, replies: list[JudgeReply], seeds: list[int]
) -> Answer[T]:
    last = replies[-1] if replies else None
    raw = last.text if last is not None else ""
    usage = usage_of(replies)
    reasoning = last.reasoning if last is not None else None
    if verdict is not None:
        return Answer(verdict.value, verdict.rationale, raw, seeds, None, usage, reasoning)
    error = _failure(last) if last is not None else "judge_error: no reply"
    return Answer(None, "", raw, seeds, error, usage, reasoning)


def usage_of(replies: Sequence[JudgeReply]) -> JudgeUsage | None:
    """Tokens, served model and fingerprint over one item's attempts (None: no reply)."""
    if not replies:
        return None
    last = replies[-1]
    return JudgeUsage(
        prompt_tokens=sum(r.prompt_tokens for r in replies),
        completion_tokens=sum(r.completion_tokens for r in replies),
        reasoning_tokens=sum(r.reasoning_tokens for r in replies),
        cached=all(r.cached for r in replies),
        model=last.model,
        system_fingerprint=last.system_fingerprint,
    )


def judge_texts(
    backend: Backend | JudgeClient | JudgeSession,
    items: Sequence[JudgeItem | tuple[str, str, str]],
    cfg: JudgeConfig,
    purpose: str = "rubric",
) -> list[JudgeResult]:
    """Judge arbitrary responses by the rubric (the entry point every judging uses).

    Args:
        backend: the judge model (a backend, a chat client, or a session).
        items: (item_id, question, response) triples; plain tuples work too.
        cfg: judge settings.
        purpose: what the judging is for, in the session's ledger.

    Returns:
        One result per item, in order; label None with `error` set on a judge error.

    Raises:
        BackendError: the backend failed (propagated as is).
    """
    judged = [JudgeItem(*item) for item in items]
    if cfg.readout == "probs":
        return judge_by_probs(backend, judged, cfg, purpose)
    questions = [_rubric_question(item, cfg) for item in judged]
    answers = ask_with_retries(backend, questions, cfg, parse_label, purpose)
    return [
        JudgeResult(
            item_id=item.item_id,
            label=None if a.value is None else LABEL_VALUES[a.value],
            label_name=a.value,
            rationale=a.rationale,
            raw=a.raw,
            attempts=len(a.seeds),
            seeds=a.seeds,
            error=a.error,
            usage=a.usage,
            reasoning=a.reasoning,
        )
        for item, a in zip(judged, answers, strict=True)
    ]


def _rubric_question(item: JudgeItem, cfg: JudgeConfig) -> Question:
    nonce = item_nonce(cfg.seed, item.item_id, (item.question, item.response))
    prompt = judge_prompt(item.question, item.response, nonce, cfg.prompt_format)
    return Question(item.item_id, prompt, nonce)


def rubric_asks(
    items: Iterable[JudgeItem | tuple[str, str, str]], cfg: JudgeConfig
) -> list[JudgeAsk]:
    """The first question `judge_texts` puts to the judge about each item (what a run is
    known to ask before any reply: retries and other purposes come on top)."""
    return [_ask(_rubric_question(JudgeItem(*i), cfg), cfg, 0, cfg.temperature) for i in items]


def judge_by_probs(
    backend: Backend | JudgeClient | JudgeSession,
    items: Sequence[JudgeItem],
    cfg: JudgeConfig,
    purpose: str = "rubric",
) -> list[JudgeResult]:
    """The rubric by the probability read-out: every item labelled, none an error.

    Each item is one read (`ask_labels`); the label is the most probable of aligned /
    partial / misaligned, and the renormalized probabilities are kept (`p_aligned`, ...).

    Raises:
        BackendError: the judge reads no log-probabilities (a chat API), or failed.
    """
    questions = [_rubric_question(item, cfg) for item in items]
    return [
        JudgeResult(
            item_id=item.item_id,
            label=LABEL_VALUES[cast(LabelName, a.label)],
            label_name=cast(LabelName, a.label),
            rationale=a.rationale,
            raw=a.raw,
            attempts=1,
            seeds=[a.seed],
            usage=a.usage,
            p_aligned=a.probs[0],
            p_partial=a.probs[1],
            p_misaligned=a.probs[2],
            label_mass=a.mass,
        )
        for item, a in zip(
            items, ask_labels(backend, questions, READOUT_LABELS, cfg, purpose), strict=True
        )
    ]


@dataclass(frozen=True)
class LabelAnswer:
    """What one probability read-out of a `Question` found."""

    label: str
    """The most probable label (the first of those tied)."""
    probs: list[float]
    """Each label's probability at the verdict position, renormalized, in label order."""
    mass: float
    """The labels' next-token probability before renormalizing."""
    rationale: str
    """The rationale written before the verdict prefix ('' without one)."""
    raw: str
    """The judge's turn as read: rationale, verdict prefix, label."""
    seed: int
    """Request seed of the rationale (that of attempt 0)."""
    usage: JudgeUsage | None
    """Tokens and provenance of the read."""


def ask_labels(
    judge: Backend | JudgeClient | JudgeSession,
    questions: Sequence[Question],
    labels: Sequence[str],
    cfg: JudgeConfig,
    purpose: str = "rubric",
) -> list[LabelAnswer]:
    """Read each question's label off the judge's next-token probabilities.

    The probability counterpart of `ask_with_retries`, for any closed verdict: each
    question is one `LabelAsk` (its prompt, `cfg.rationale_tokens` of rationale seeded
    as attempt 0 would be, then `VERDICT <nonce>:`), in batches of `cfg.batch_size`,
    through the session's cache and ledger. Nothing is parsed, so every question gets a
    label and nothing is retried.

    Args:
        judge: the judge (a backend or client is wrapped in a session without cache).
        questions: prompts and their nonces.
        labels: the label words, as the prompt asks the judge to write them.
        cfg: judge settings.
        purpose: what the questions are for, in the session's ledger.

    Returns:
        One answer per question, in order.

    Raises:
        BackendError: the judge reads no log-probabilities (a chat API), or failed.
    """
    session = as_session(judge)
    answers: list[LabelAnswer] = []
    for start in range(0, len(questions), cfg.batch_size):
        chunk = questions[start : start + cfg.batch_size]
        asks = [
            LabelAsk(
                prompt=q.prompt,
                seed=attempt_seed(cfg.seed, q.item_id, 0),
                rationale_tokens=cfg.rationale_tokens,
                verdict_prefix=verdict_prefix(q.nonce),
                labels=list(labels),
                stop=BASE_STOP if cfg.prompt_format == "base" else [],
            )
            for q in chunk
        ]
        replies = session.read_labels(asks, purpose, [q.item_id for q in chunk])
        answers.extend(_label_answer(a, r) for a, r in zip(asks, replies, strict=True))
    return answers


def _label_answer(ask: LabelAsk, reply: JudgeReply) -> LabelAnswer:
    assert reply.label_logprobs is not None
    probs, mass = normalize(reply.label_logprobs)
    label = ask.labels[max(range(len(probs)), key=probs.__getitem__)]
    return LabelAnswer(
        label=label,
        probs=probs,
        mass=mass,
        rationale=reply.text.strip(),
        raw=f"{judge_turn(reply.text, ask.verdict_prefix)} {label}",
        seed=ask.seed,
        usage=usage_of([reply]),
    )


def sample_item_id(problem_id: str, sample_index: int) -> str:
    """Item id of a sampled response (seeds and nonce derive from it)."""
    return f"{problem_id}#{sample_index}"


def judge_samples(
    backend: Backend | JudgeClient | JudgeSession,
    problems: Mapping[str, Problem],
    samples: Iterable[SampleRecord],
    cfg: JudgeConfig,
) -> Iterator[JudgeRecord]:
    """Judge sampled responses, yielding records in input order, batch by batch.

    Args:
        backend: the judge model.
        problems: problems by id (the judge sees the question).
        samples: the responses to judge.
        cfg: judge settings.

    Raises:
        DataError: a sample's problem is missing from `problems`.
        BackendError: the backend failed (propagated as is).
    """
    batch: list[SampleRecord] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == cfg.batch_size:
            yield from _judge_batch(backend, problems, batch, cfg)
            batch = []
    if batch:
        yield from _judge_batch(backend, problems, batch, cfg)


def _judge_batch(
    backend: Backend | JudgeClient | JudgeSession,
    problems: Mapping[str, Problem],
    batch: Sequence[SampleRecord],
    cfg: JudgeConfig,
) -> list[JudgeRecord]:
    items = []
    for s in batch:
        problem = problems.get(s.problem_id)
        if problem is None:
            raise DataError(f"sample of unknown problem {s.problem_id!r}: cannot judge it")
        items.append(
            JudgeItem(sample_item_id(s.problem_id, s.sample_index), problem.question, s.completion)
        )
    results = judge_texts(backend, items, cfg)
    return [
        JudgeRecord(
            problem_id=s.problem_id,
            sample_index=s.sample_index,
            **r.model_dump(exclude={"item_id"}),
            correct=s.correct,
            answer=s.answer,
        )
        for s, r in zip(batch, results, strict=True)
    ]
