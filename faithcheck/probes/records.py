"""Probe records (lines of probes.jsonl) and the probe settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from faithcheck.errors import UsageError
from faithcheck.probes.cuts import DEFAULT_FRACTIONS
from faithcheck.records import PANEL_PROBES, Record, option

ProbeName = Literal["truncation", "mistakes", "necessity", "controls"]
ALL_PROBES: tuple[ProbeName, ...] = ("truncation", "mistakes", "necessity", "controls")
Readout = Literal["generate", "score", "both", "auto"]

PRIMARY_READOUT: Readout = "generate"
"""The read-out `--readout auto` picks on every backend, and the one the verdict, `compare`,
the HTML and the summary read when a run has both: the one that separates post-hoc from
faithful chains. Measured with benchmarks/controls.py (Qwen2.5-0.5B, 8 math problems x 4
samples): the generated read-out gives AOC 0.767 normal vs 0.668 post-hoc and reads a* at
k = 0 in 3% vs 34% of chains, while the score read-out (a* exactly the greedy
continuation) stays near 1 for both prompts. Speed comes second: on transformers the score
read-out is the faster one (2-core CPU, SmolLM2-135M, 8 chains x 5 cuts: 5.6 s vs 9.2 s;
on vLLM generate is, 3.2 s vs 9.4 s)."""


def _probe_names(text: str) -> list[str]:
    """`--probes` (comma-separated, or `none`) as probe names."""
    names = [] if text.strip() in {"", "none"} else [p.strip() for p in text.split(",")]
    unknown = [n for n in names if n not in ALL_PROBES]
    if unknown:
        raise UsageError(f"unknown probe {unknown[0]!r}; choose from {', '.join(ALL_PROBES)}")
    return names


def _one_of(message: str, *choices: str) -> Callable[[str], str]:
    """A parser that takes one of `choices` and refuses anything else with `message`."""

    def parse(value: str) -> str:
        if value not in choices:
            raise UsageError(message)
        return value

    return parse


def _positive(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise UsageError("--probe-samples must be at least 1")
    return value


class ProbeConfig(Record):
    """What to probe and how (the options first, in the order `--help` lists them)."""

    probes: list[ProbeName] = option(
        lambda: list(ALL_PROBES),
        cli_type=str,
        cli_default=",".join(ALL_PROBES),
        parse=_probe_names,
        help="Comma-separated probes: truncation,mistakes,necessity,controls (or 'none').",
        panel=PANEL_PROBES,
    )
    """Probes to run."""
    probe_samples: int | None = option(
        None,
        parse=_positive,
        help="Probe at most N samples per problem (default: all).",
        panel=PANEL_PROBES,
    )
    """Probe at most this many samples per problem (None: all)."""
    impl: Literal["fast", "naive"] = option(
        "fast",
        param="probe_impl",
        cli_type=str,
        parse=_one_of("--probe-impl must be fast or naive", "fast", "naive"),
        help="fast (cached prefixes) or naive (full re-prefill per cut; baseline).",
        panel=PANEL_PROBES,
    )
    """fast: the backend's cached path; naive: full re-prefill per cut (baseline)."""
    readout: Readout = option(
        "auto",
        "--readout",
        cli_type=str,
        parse=_one_of(
            "--readout must be generate, score, both or auto", "generate", "score", "both", "auto"
        ),
        help="How truncation reads the answer: generate, score (teacher-forced "
        "log P(a*)), both, or auto (the cheaper for the backend: generate on vLLM, score on hf).",
        panel=PANEL_PROBES,
    )
    """generate: greedy answer after the cue; score: teacher-forced log P(a*); both; auto:
    the one that separates post-hoc from faithful chains (`PRIMARY_READOUT`), resolved
    before the run starts."""
    mistakes: Literal["rule", "llm"] = option(
        "rule",
        "--mistakes",
        cli_type=str,
        parse=_one_of("--mistakes must be rule or llm", "rule", "llm"),
        help="Who writes the inserted mistake: rule (one number or operator changed) or llm "
        "(the judge model rewrites the step with one error).",
        panel=PANEL_PROBES,
    )
    """Who writes the mistake: rule (one number or operator changed, deterministic) or
    llm (the judge model rewrites the step with one error; `--mistakes llm`)."""
    fractions: list[float] = Field(default_factory=lambda: list(DEFAULT_FRACTIONS))
    """Truncation grid: fractions of the steps kept."""
    readout_tokens: int = Field(16, ge=1)
    """Maximum tokens of a generated read-out."""
    mistakes_per_chain: int = Field(2, ge=1)
    """Steps corrupted per chain (deterministically chosen)."""
    necessity_per_chain: int = Field(3, ge=1)
    """Steps left out per chain (M)."""
    mistake_temperature: float = Field(0.0, ge=0.0)
    """Sampling temperature of the continuation after a mistake (greedy by default)."""

    @model_serializer(mode="wrap")
    def _written_order(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # run.json (options and config) keeps the key order it had before the options
        # came first; keys added later follow.
        data: dict[str, Any] = handler(self)
        return {k: data[k] for k in _WRITTEN_ORDER if k in data} | data


_WRITTEN_ORDER = (
    "probes",
    "fractions",
    "readout",
    "impl",
    "readout_tokens",
    "mistakes_per_chain",
    "necessity_per_chain",
    "mistakes",
    "mistake_temperature",
    "probe_samples",
)


class TruncationPoint(Record):
    """The read-out after keeping the first k of n steps."""

    k: int
    """Steps kept."""
    x: float
    """k / n."""
    answer: str | None = None
    """Generated read-out answer (generate read-out)."""
    same: bool | None = None
    """Generated answer equals a* (generate read-out)."""
    logprob: float | None = None
    """log P(a* | first k steps + cue) (score read-out)."""
    greedy: bool | None = None
    """a* is the greedy continuation (score read-out's `same`)."""


class TruncationRecord(Record):
    """Early-answering curve of one chain."""

    probe: Literal["truncation"] = "truncation"
    problem_id: str
    """Problem."""
    sample_index: int
    """Sample within the problem."""
    n_steps: int
    """Steps in the chain."""
    a_star: str
    """The model's own full-chain answer."""
    points: list[TruncationPoint]
    """One point per cut, k ascending (empty when the chain has no reasoning step before
    its answer statement: nothing to cut)."""
    aoc_generate: float | None = None
    """Area over the generated-read-out curve (`faithcheck.probes.cuts.aoc`)."""
    aoc_score: float | None = None
    """Area over the greedy-flag curve of the score read-out."""
    reasoning_steps: int | None = None
    """Steps before the one holding the answer statement: the grid cuts over these, so a
    chain's score does not depend on whether it states its answer in a step of its own.
    None on records written before cuts left the answer statement out (their grid ran
    over every step, x = k / n_steps, and their AOC is the trapezoid area)."""
    no_chain_correct: bool | None = None
    """The generated read-out at k = 0 (no chain at all) is correct against gold: the
    model answers this problem without its chain, so early answers and a low AOC say
    nothing about this chain. None when not read (score read-out only)."""
    full_chain_correct: bool | None = None
    """The generated read-out after every reasoning step is correct against gold (the
    same read-out with the chain; their difference is the chain's gain)."""

    @property
    def cut_steps(self) -> int:
        """The steps the grid cut over: the reasoning steps, or every step on records that
        predate cutting over the reasoning steps only."""
        return self.n_steps if self.reasoning_steps is None else self.reasoning_steps


class MistakeRecord(Record):
    """One corrupted step and what the model concluded after it."""

    probe: Literal["mistakes"] = "mistakes"
    problem_id: str
    """Problem."""
    sample_index: int
    """Sample within the problem."""
    step_index: int
    """0-based index of the corrupted step."""
    position: float
    """step_index / n_steps: where in the chain the mistake sits."""
    kind: Literal["number", "operator", "llm"]
    """What was changed (llm: the judge model rewrote the whole step)."""
    original: str
    """Text replaced."""
    replacement: str
    """Text put in its place."""
    offset: int
    """Character offset of the change in the completion."""
    continuation: str
    """What the model wrote after the corrupted step."""
    answer: str | None
    """Final answer of the corrupted chain, read only from an answer statement the
    continuation writes (`\\boxed{}` or "the answer is"): a continuation without one has
    no answer. The last-number fallback is not used here, since after a corrupted step
    the last number is often the corrupted number itself."""
    flipped: bool
    """The answer differs from a* (False when there is no answer)."""
    baseline_run: bool = False
    """The baseline continuation was generated (False on records written before it)."""
    baseline_answer: str | None = None
    """Final answer of the *uncorrupted* prefix up to the same step, continued the same
    way (same seed and temperature), read the same way: what the model concludes from
    there without any mistake. None on records written before the baseline existed."""
    baseline_changed: bool | None = None
    """The baseline answer differs from a*: the continuation changes the answer on its
    own (None when the baseline was not run or states no answer)."""


class NecessityRecord(Record):
    """Leave-one-out over the steps before the answer step of one chain."""

    probe: Literal["necessity"] = "necessity"
    problem_id: str
    """Problem."""
    sample_index: int
    """Sample within the problem."""
    baseline_answer: str | None
    """Read-out with every step before the answer step kept."""
    baseline_matches: bool
    """The baseline read-out equals a* (only then can a removal change the answer)."""
    dropped: list[int]
    """Indices of the steps left out, one at a time."""
    answers: list[str | None]
    """Read-out answer after each removal."""
    changed: list[bool]
    """Whether each removal changed the answer away from a*."""


class ControlRecord(Record):
    """No-chain and filler-chain answers for one sample, scored against the gold answer."""

    probe: Literal["controls"] = "controls"
    problem_id: str
    """Problem."""
    sample_index: int
    """Sample within the problem."""
    full_correct: bool
    """The sampled response (full chain) was correct."""
    full_readout_answer: str | None = None
    """Greedy read-out after the whole chain and the answer cue: the same read-out as the
    no-chain and filler answers (absent from records written before it existed)."""
    full_readout_correct: bool | None = None
    """That answer is correct (None on older records: the summary then falls back to
    `full_correct`, the sampled response, and says so)."""
    no_cot_answer: str | None
    """Read-out with no chain at all (k = 0)."""
    no_cot_correct: bool
    """That answer is correct."""
    filler_answer: str | None
    """Read-out after the chain is replaced by as many filler tokens."""
    filler_correct: bool
    """That answer is correct."""


ProbeRecord = TruncationRecord | MistakeRecord | NecessityRecord | ControlRecord
