"""What the stages of one run share (`RunContext`): the run directory, the problems and
their judge, the engines, and the results one stage passes to the next.

A stage's runner (`faithcheck.pipeline.runners`) reads its own options and this context,
nothing else; a rebuild's context has no engines (`RunContext.scoring` is None) and runs
only the stages that need none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faithcheck.backends.base import Backend
from faithcheck.judge.plan import JudgePlan
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.records import Problem
from faithcheck.report import Timings
from faithcheck.sampling import SamplingConfig
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.rundir import SAMPLES_FILE, RunDir


@dataclass
class Engines:
    """The engines loaded during a run: the scored model and the judge in use (the same
    object when the judge reuses the model's engine)."""

    model: Backend
    owned: bool
    """Whether the run loaded the model (a borrowed one is never closed here)."""
    load: Callable[[JudgePlan], Any]
    """Loads a judge on its own engine (never with the scored model's --engine-arg)."""
    judge: Any = None
    closed: bool = False
    """`close` ran: every engine of the run is closed."""

    def close_model(self) -> None:
        """Close the scored model, unless it is borrowed."""
        if self.owned:
            self.model.close()

    def close_judge(self) -> None:
        """Close the judge in use, unless it is the scored model's engine."""
        if self.judge is not None and self.judge is not self.model:
            self.judge.close()

    def close(self) -> None:
        """Close every engine of the run, once: when the last stage that needs one is
        done, or when a stage fails."""
        if self.closed:
            return
        self.closed = True
        self.close_model()
        self.close_judge()


@dataclass
class Scoring:
    """What the stages that run the scored model share (`score`; absent in a rebuild)."""

    problems: list[Problem]
    """The run's problems (this shard's)."""
    sampling: SamplingConfig
    """How responses are sampled (the prompt format and template resolved)."""
    engines: Engines
    backend_name: str
    """The scored model's engine: the stages' default chunk sizes depend on it."""
    chunk_size: int | None
    """--chunk-size (the run's own option): problems per engine call; None: by engine."""
    rollouts: dict[str, list[str]] | None = None
    """The responses to re-score (`--from-samples`), dropped once sampled to disk."""

    def chunk(self, defaults: Mapping[str, int]) -> int:
        """Problems per engine call for a stage: --chunk-size, else the stage's default for
        this engine (`defaults`, by engine name), else 1."""
        return self.chunk_size or defaults.get(self.backend_name, 1)


class Phases:
    """Wall-clock phase durations, each measured from the previous mark."""

    def __init__(self, t_start: float) -> None:
        self.t_start = t_start
        self.last = t_start
        self.seconds: dict[str, float] = {}

    def mark(self, name: str) -> None:
        """End phase `name` now (a `Timings` field)."""
        now = time.perf_counter()
        self.seconds[name] = now - self.last
        self.last = now

    def timings(self) -> Timings:
        """The phases so far, and the total since the start."""
        return Timings(**self.seconds, total_s=time.perf_counter() - self.t_start)


def _ignore(_: str) -> None:
    pass


@dataclass
class RunContext:
    """What the stages of one run share; each stage's runner reads it with its own
    options, and leaves here what a later stage or the report needs."""

    run: RunDir
    """The run directory, locked by the caller."""
    seed: int
    """The run seed (--seed)."""
    keep: set[str] | None
    """The problems to report on (None: all on disk)."""
    questions: Callable[[], Mapping[str, str]]
    """Problem id -> question text, called only when a check is computed."""
    judge: JudgePlan | None = None
    """The run's judge (the first of a jury); None without one."""
    jury: list[JudgePlan] = field(default_factory=list)
    """The jury's other judges; empty with one judge."""
    scoring: Scoring | None = None
    """The engines' part; None in a rebuild."""
    progress: Any = None
    say: Callable[[str], None] = _ignore
    phases: Phases | None = None
    """Marked after each stage that has a phase of its own (None: not timed)."""
    tokens: int = 0
    """Completion tokens sampled (left by the samples stage)."""
    reliabilities: list[JudgeReliability | None] = field(default_factory=list)
    """The judges' reliabilities, the judge's first (left by the judge stage; empty when
    no judge ran)."""
    _samples: tuple[ProblemIndex, list[str]] | None = field(default=None, init=False, repr=False)

    def scored(self) -> Scoring:
        """The engines' part of the run.

        Raises:
            RuntimeError: a stage that needs the engines runs without them (a rebuild).
        """
        if self.scoring is None:
            raise RuntimeError("this stage runs the scored model: not in a rebuild")
        return self.scoring

    def sampled(self) -> tuple[ProblemIndex, list[str]]:
        """samples.jsonl indexed, and the problems to report on in its order: scanned
        once, by the first stage after the samples are all on disk that asks."""
        if self._samples is None:
            index = self.run.index(SAMPLES_FILE)
            self._samples = index, [p for p in index if self.keep is None or p in self.keep]
        return self._samples
