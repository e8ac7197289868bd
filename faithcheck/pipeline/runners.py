"""The stages of `faithcheck score` as runners: each the running side of a stage that
`faithcheck.store.stages` declares (its files, hashes and merge keys), given its own
options and the run's `RunContext`.

`RUNNERS` lists them in the order a run takes them; `run_stages` runs them: the stages
that need an engine first (the scored model loaded once, the judge next to it or after
it), then, every engine closed, those that compute their files from the records
(`faithcheck.pipeline.rebuild` runs only these, with no engine at all).

Adding a stage is its `Stage` in `faithcheck.store.stages.STAGES`, a `Runner` here that
names it (with `of`, which picks its options out of `ScoreOptions`), and its place in
`RUNNERS` (the order of `STAGES`, which `tests/pipeline/test_runners.py` checks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from faithcheck.diversity.options import DiversityOptions
from faithcheck.judge.jury_stage import judge_jurors
from faithcheck.judge.plan import judge_all, mistake_writer
from faithcheck.pipeline.context import RunContext
from faithcheck.pipeline.options import ScoreOptions
from faithcheck.pipeline.stages import (
    DiversityStage,
    check_into,
    diversity_into,
    probe_into,
    sample_into,
)
from faithcheck.probes.records import ProbeConfig
from faithcheck.store.stages import BY_NAME, Stage


class Runner(ABC):
    """The running side of one declared stage (`faithcheck.store.stages.Stage`)."""

    name: ClassVar[str]
    """Its stage's name in `faithcheck.store.stages.STAGES` (checked when the class is
    made)."""
    also: ClassVar[tuple[str, ...]] = ()
    """Declared stages whose files it writes besides its own (in their declared order)."""
    engines: ClassVar[bool] = False
    """Whether it runs on the run's engines (else on the records alone, in a rebuild too)."""
    phase: ClassVar[str | None] = None
    """The `Timings` field it ends (None: its time counts in the report's)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        unknown = [n for n in (cls.name, *cls.also) if n not in BY_NAME]
        if unknown:
            raise TypeError(f"{cls.__name__} runs {unknown[0]!r}, a stage STAGES lacks")

    @classmethod
    def stages(cls) -> tuple[Stage, ...]:
        """The declared stages it runs: its own, then `also`."""
        return tuple(BY_NAME[n] for n in (cls.name, *cls.also))

    @classmethod
    @abstractmethod
    def of(cls, opts: ScoreOptions) -> Runner:
        """The runner with its own part of the run's options."""

    @abstractmethod
    def run(self, ctx: RunContext) -> None:
        """Write its records into `ctx.run` (keeping those already complete)."""


@dataclass(frozen=True)
class SamplesRunner(Runner):
    """Sampling (parse + verify), or replaying `--from-samples` rollouts: samples.jsonl.
    The settings are the run's `SamplingConfig` (`ctx.scored().sampling`), which the
    probes read too."""

    name: ClassVar[str] = "samples"
    engines: ClassVar[bool] = True
    phase: ClassVar[str | None] = "sampling_s"

    @classmethod
    def of(cls, opts: ScoreOptions) -> SamplesRunner:
        return cls()

    def run(self, ctx: RunContext) -> None:
        s = ctx.scored()
        chunk = s.chunk_size or (16 if s.backend_name == "vllm" else 1)
        ctx.tokens = sample_into(
            ctx.run, s.engines.model, s.problems, s.sampling, chunk, ctx.progress, s.rollouts
        )
        s.rollouts = None  # on disk now; later stages read samples.jsonl


@dataclass(frozen=True)
class ProbesRunner(Runner):
    """The probes on the scored model: probes.jsonl. With `--mistakes llm` the judge
    writes the mistakes, so it is loaded here, next to the scored model."""

    cfg: ProbeConfig
    name: ClassVar[str] = "probes"
    engines: ClassVar[bool] = True
    phase: ClassVar[str | None] = "probes_s"

    @classmethod
    def of(cls, opts: ScoreOptions) -> ProbesRunner:
        return cls(opts.probes)

    def run(self, ctx: RunContext) -> None:
        s, judge, cfg = ctx.scored(), ctx.judge, self.cfg
        engines = s.engines
        if judge is not None and cfg.mistakes == "llm" and "mistakes" in cfg.probes:
            engines.judge = engines.model if judge.reuse else engines.load(judge)
        if not cfg.probes:
            return
        # hf packs the chains of a chunk into one sequence: 4 problems per call.
        default = {"hf": 4, "vllm": 16}.get(s.backend_name, 1)
        writer = None
        if judge is not None and engines.judge is not None:
            writer = mistake_writer(engines.judge, judge, ctx.run)
        probe_into(
            ctx.run,
            engines.model,
            s.problems,
            s.sampling,
            cfg,
            ctx.progress,
            s.chunk_size or default,
            writer,
        )


@dataclass(frozen=True)
class JudgeRunner(Runner):
    """The judge's labels, its strategy clusters and its calibration (one phase,
    `judge_all`: one session, one spending cap), then the jury's other judges one at a
    time. Its settings are the judges' plans (`ctx.judge`, `ctx.jury`), resolved before
    anything loaded."""

    name: ClassVar[str] = "judge"
    also: ClassVar[tuple[str, ...]] = ("calibration", "strategy")
    engines: ClassVar[bool] = True
    phase: ClassVar[str | None] = "judge_s"

    @classmethod
    def of(cls, opts: ScoreOptions) -> JudgeRunner:
        return cls()

    def run(self, ctx: RunContext) -> None:
        """The judge on the scored model's engine when it reuses it, else loaded once the
        scored model is closed; the reliabilities into `ctx.reliabilities`."""
        judge, engines = ctx.judge, ctx.scored().engines
        if judge is None:
            return
        if engines.judge is None:
            if judge.reuse:
                engines.judge = engines.model
            else:
                engines.close_model()  # a borrowed model stays where it is
                engines.judge = engines.load(judge)
        problems, progress = ctx.scored().problems, ctx.progress
        reliability = judge_all(ctx.run, engines.judge, judge, problems, progress, say=ctx.say)
        ctx.reliabilities = [reliability]
        if not ctx.jury:
            return
        # One judge loaded at a time: the scored model and the first go first.
        engines.close_model()
        engines.close_judge()
        engines.judge = None
        ctx.reliabilities += judge_jurors(
            ctx.run, ctx.jury, engines.load, problems, progress, ctx.say
        )


@dataclass(frozen=True)
class ChecksRunner(Runner):
    """The judge-free checks: derivation.jsonl and support.jsonl (no options)."""

    name: ClassVar[str] = "checks"

    @classmethod
    def of(cls, opts: ScoreOptions) -> ChecksRunner:
        return cls()

    def run(self, ctx: RunContext) -> None:
        samples, keys = ctx.sampled()
        check_into(ctx.run, keys, ctx.questions, samples)


@dataclass(frozen=True)
class DiversityRunner(Runner):
    """diversity.jsonl when diversity is on (removed when it is off), with the judge's
    strategy clusters and labels when it ran."""

    opts: DiversityOptions
    name: ClassVar[str] = "diversity"

    @classmethod
    def of(cls, opts: ScoreOptions) -> DiversityRunner:
        return cls(opts.diversity)

    def run(self, ctx: RunContext) -> None:
        samples, keys = ctx.sampled()
        judge, cfg = ctx.judge, None
        if self.opts.enabled:
            cfg = DiversityStage(
                embed=self.opts.embed,
                strategy=judge is not None and judge.opts.strategy,
                judged=judge is not None,
                seed=ctx.seed,
            )
        diversity_into(ctx.run, keys, cfg, samples)


RUNNERS: tuple[type[Runner], ...] = (
    SamplesRunner,
    ProbesRunner,
    JudgeRunner,
    ChecksRunner,
    DiversityRunner,
)
"""Every stage's runner, in the order of `faithcheck.store.stages.STAGES`: those on the
engines, then those on the records."""


def stage_runners(opts: ScoreOptions, *, engines: bool = True) -> list[Runner]:
    """The runners of a run, each with its own options (`engines=False`: only those that
    need no engine, as a rebuild runs)."""
    return [kind.of(opts) for kind in RUNNERS if engines or not kind.engines]


def run_stages(ctx: RunContext, runners: Iterable[Runner]) -> None:
    """Run the stages in order, marking each one's phase; every engine of the run is
    closed before the first stage that needs none, and when a stage fails."""
    engines = ctx.scoring.engines if ctx.scoring is not None else None
    try:
        for runner in runners:
            if engines is not None and not runner.engines:
                engines.close()
            runner.run(ctx)
            if runner.phase is not None and ctx.phases is not None:
                ctx.phases.mark(runner.phase)
    finally:
        if engines is not None:
            engines.close()
