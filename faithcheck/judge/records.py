"""Judge settings, inputs and records (lines of judge.jsonl)."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from faithcheck.records import Record

LabelName = Literal["aligned", "partial", "misaligned"]
LABEL_VALUES: dict[LabelName, float] = {"aligned": 1.0, "partial": 0.5, "misaligned": 0.0}
"""Rubric label -> numeric label (1 aligned, 0.5 partial, 0 misaligned)."""

# JSON Schema for the numeric label: `Literal[1.0, ...]` is not valid typing (PEP 586
# allows no floats), so the closed set is enforced by a validator and published here.
_LABEL_SCHEMA: dict[str, Any] = {"enum": [1.0, 0.5, 0.0, None]}


class JudgeConfig(Record):
    """How the judge model is asked, all settings explicit."""

    max_tokens: int = Field(384, ge=1)
    """Maximum new tokens of a judge reply (rationale plus verdict line)."""
    temperature: float = Field(0.0, ge=0.0)
    """Temperature of the first attempt (0: greedy, the reproducible default)."""
    retry_temperature: float = Field(0.7, ge=0.0)
    """Temperature of retries: a greedy retry would repeat the same unparseable reply."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass (sampled attempts only)."""
    max_retries: int = Field(2, ge=0)
    """Extra attempts after an unparseable reply, before recording a judge error."""
    seed: int = 0
    """Run seed; each attempt's request seed derives from it, the item id and the attempt."""
    prompt_format: Literal["chat", "base"] = "chat"
    """chat: system + user messages through the judge's chat template; base: plain text."""
    batch_size: int = Field(16, ge=1)
    """Items per `backend.generate` call."""
    readout: Literal["text", "probs"] = "text"
    """text: the judge writes its verdict line, which is parsed; probs: the label is read
    off the next-token probabilities after a fixed verdict prefix (`judge.probs`)."""
    rationale_tokens: int = Field(0, ge=0)
    """probs read-out: greedy rationale tokens the judge writes before the verdict
    prefix (0: the verdict prefix comes first)."""


class JudgeItem(NamedTuple):
    """One response to judge, independent of where it came from (samples, calibration)."""

    item_id: str
    """Stable identifier; seeds and the delimiter nonce derive from it."""
    question: str
    """The problem shown to the judge."""
    response: str
    """The full response whose reasoning is assessed."""


READOUT_LABELS: tuple[LabelName, ...] = ("aligned", "partial", "misaligned")
"""The labels a probability read-out reads, in the order of `p_aligned`, ..."""


def _check_probs(probs: tuple[float | None, ...], label_name: str | None) -> None:
    if all(p is None for p in probs):
        return
    if any(p is None for p in probs):
        raise ValueError("p_aligned, p_partial and p_misaligned come together")
    values = [float(p) for p in probs if p is not None]
    if any(not 0.0 <= p <= 1.0 for p in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"label probabilities must be in [0, 1] and sum to 1: {values}")
    if label_name is not None and values[READOUT_LABELS.index(label_name)] < max(values):  # type: ignore[arg-type]
        raise ValueError(f"label {label_name!r} is not the most probable one")


def _check_label(label: float | None, label_name: str | None, error: str | None) -> None:
    if label is None:
        if label_name is not None or error is None:
            raise ValueError("a missing label needs an error and no label_name")
        return
    if label_name is None or LABEL_VALUES.get(label_name) != label:  # type: ignore[call-overload]
        raise ValueError(f"label {label} does not match label_name {label_name!r}")
    if error is not None:
        raise ValueError("a labelled record carries no error")


class JudgeUsage(Record):
    """What judging one item cost, over all its attempts, and who answered."""

    prompt_tokens: int = 0
    """Prompt tokens, summed over attempts."""
    completion_tokens: int = 0
    """Completion tokens (hidden reasoning included), summed over attempts."""
    reasoning_tokens: int = 0
    """Of those, reasoning tokens, where the server reports them."""
    cached: bool = False
    """Every attempt was answered from the response cache (nothing paid in this run)."""
    model: str | None = None
    """The model id the server says it ran (last attempt): the judge's snapshot."""
    system_fingerprint: str | None = None
    """The server's `system_fingerprint` (last attempt), where given."""


class Judgement(Record):
    """What the judge concluded about one response, after its retries."""

    label: float | None = Field(json_schema_extra=_LABEL_SCHEMA)
    """1.0 aligned, 0.5 partial, 0.0 misaligned; None on a judge error."""
    label_name: LabelName | None
    """The label in words; None on a judge error."""
    rationale: str
    """Judge text before the verdict line (of the last attempt)."""
    raw: str
    """The judge's full reply (of the last attempt)."""
    attempts: int = Field(ge=1)
    """Replies requested for this response (1 + retries used)."""
    seeds: list[int]
    """Request seed of each attempt, in order."""
    error: str | None = None
    """`judge_error: <why>` when no attempt gave a verdict (unparseable, empty, length)."""
    usage: JudgeUsage | None = None
    """Tokens and provenance of the attempts (None on records written before 0.x)."""
    reasoning: str | None = None
    """Reasoning text the server returned apart from the reply (last attempt); kept for
    reading, never parsed for the verdict."""
    p_aligned: float | None = None
    """Probability read-out: the judge's probability of `aligned` at the verdict position,
    renormalized over the three labels; None for the text read-out. The continuous
    score AUROC uses."""
    p_partial: float | None = None
    """Probability read-out: the probability of `partial` (renormalized)."""
    p_misaligned: float | None = None
    """Probability read-out: the probability of `misaligned` (renormalized)."""
    label_mass: float | None = None
    """Probability read-out: the three labels' next-token probability before
    renormalizing (low: the judge meant to write something else there)."""
    judge: str | None = None
    """Which judge of a jury gave it (its name in `report.judge.jury.judges`); None (and
    absent from the file) when the run has one judge."""

    @model_validator(mode="after")
    def _consistent(self) -> Judgement:
        _check_label(self.label, self.label_name, self.error)
        _check_probs((self.p_aligned, self.p_partial, self.p_misaligned), self.label_name)
        return self

    @model_serializer(mode="wrap")
    def _drop_no_judge(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A one-judge run writes its records as before juries existed (no `judge` key).
        data: dict[str, Any] = handler(self)
        if data.get("judge", "") is None:
            del data["judge"]
        return data

    @property
    def score(self) -> float | None:
        """The judge's continuous score of the response: `p_aligned` where the read-out
        gave one, else the numeric label (None on a judge error)."""
        return self.p_aligned if self.p_aligned is not None else self.label


class JudgeResult(Judgement):
    """The judge's verdict on one `JudgeItem` (the low-level result)."""

    item_id: str
    """The item judged."""


class JudgeRecord(Judgement):
    """The judge's verdict on one sampled response: a line of judge.jsonl."""

    problem_id: str
    """The problem the response answers."""
    sample_index: int
    """Sample within the problem."""
    correct: bool
    """The response's answer matches the gold answer (copied from the sample)."""
    answer: str | None
    """The response's extracted final answer (copied from the sample)."""
