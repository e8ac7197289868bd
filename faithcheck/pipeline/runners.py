"""The stages of `faithcheck score`: each declared (its files, what its hash covers, how
merge keys its records: a `faithcheck.store.layout.Stage`) on the `Runner` that runs it,
given its own options and the run's `RunContext`.

`RUNNERS` lists them in the order a run takes them, and `LAYOUT` is their declarations
in that order, which resume and `--force` (`RunDir.prepare`), the config hash
(`stage_hashes`), `merge` and `rebuild` read. `run_stages` runs them: the stages that need
an engine first (the scored model loaded once, the judge next to it or after it), then,
every engine closed, those that compute their files from the records
(`faithcheck.pipeline.rebuild` runs only these, with no engine at all).

Adding a stage is a `Runner` here that declares it (`stages`), picks its options out of
`ScoreOptions` (`of`) and writes its files, and its place in `RUNNERS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

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
from faithcheck.store.layout import Layout, Stage, StageFile
from faithcheck.store.rundir import (
    CALIBRATION_FILE,
    DERIVATION_FILE,
    DIVERSITY_FILE,
    JUDGE_BATCHES_FILE,
    JUDGE_CALLS_FILE,
    JUDGE_FILE,
    PROBES_FILE,
    SAMPLES_FILE,
    STRATEGY_FILE,
    SUPPORT_FILE,
)


def _llm_mistakes(config: Mapping[str, Any]) -> bool:
    """The judge writes the mistakes probe's wrong steps: the probe records depend on it."""
    probes = config.get("probes") or {}
    return probes.get("mistakes") == "llm" and "mistakes" in probes.get("probes", [])


class Runner(ABC):
    """A stage of `faithcheck score`: its declaration and the code that runs it."""

    stages: ClassVar[tuple[Stage, ...]]
    """The stages it runs, declared here: its own first, then any whose files it writes
    in the same pass (the judge's calibration and strategy)."""
    engines: ClassVar[bool] = False
    """Whether it runs on the run's engines (else on the records alone, in a rebuild too)."""
    phase: ClassVar[str | None] = None
    """The `Timings` field it ends (None: its time counts in the report's)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "stages", ()):
            raise TypeError(f"{cls.__name__} declares no stage")
        # A rebuild runs only the runners that need no engine: their files must be the
        # derived ones, and a runner on the engines must write records.
        derived = {not f.appended for stage in cls.stages for f in stage.files}
        if derived != {not cls.engines}:
            kind = "derived files only" if not cls.engines else "no derived file"
            raise TypeError(f"{cls.__name__} must write {kind}")

    @classmethod
    def name(cls) -> str:
        """Its own stage's name."""
        return cls.stages[0].name

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

    stages: ClassVar[tuple[Stage, ...]] = (
        Stage(
            name="samples",
            files=(
                StageFile(SAMPLES_FILE, "problem", ("problem_id", "sample_index"), order="dataset"),
            ),
            after=None,
            covers=(
                "model_sha256",
                "backend",
                "dtype",
                "max_model_len",
                "dataset_sha256",
                "from_samples",
                "limit",
                "shard",
                "sampling",
                "merged_shards",  # a merge of only some shards
            ),
            hashed=True,
            records="samples",
        ),
    )
    engines: ClassVar[bool] = True
    phase: ClassVar[str | None] = "sampling_s"
    CHUNKS: ClassVar[dict[str, int]] = {"vllm": 16}
    """Problems per engine call by engine, unless --chunk-size (vLLM batches a call)."""

    @classmethod
    def of(cls, opts: ScoreOptions) -> SamplesRunner:
        return cls()

    def run(self, ctx: RunContext) -> None:
        s = ctx.scored()
        chunk = s.chunk(self.CHUNKS)
        ctx.tokens = sample_into(
            ctx.run, s.engines.model, s.problems, s.sampling, chunk, ctx.progress, s.rollouts
        )
        s.rollouts = None  # on disk now; later stages read samples.jsonl


@dataclass(frozen=True)
class ProbesRunner(Runner):
    """The probes on the scored model: probes.jsonl. With `--mistakes llm` the judge
    writes the mistakes, so it is loaded here, next to the scored model."""

    cfg: ProbeConfig
    stages: ClassVar[tuple[Stage, ...]] = (
        Stage(
            name="probes",
            files=(
                StageFile(
                    PROBES_FILE,
                    "problem",
                    ("probe", "problem_id", "sample_index", "step_index"),
                    optional=("step_index",),
                    order="dataset",
                ),
            ),
            after="samples",
            covers=("probes", "judge"),
            covers_when={"judge": _llm_mistakes},
            hashed=True,
            settings="probe",
            records="probe records",
        ),
    )
    engines: ClassVar[bool] = True
    phase: ClassVar[str | None] = "probes_s"
    CHUNKS: ClassVar[dict[str, int]] = {"hf": 4, "vllm": 16}
    """Problems per engine call by engine, unless --chunk-size (hf packs a call's chains
    into one sequence)."""

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
            s.chunk(self.CHUNKS),
            writer,
        )


@dataclass(frozen=True)
class JudgeRunner(Runner):
    """The judge's labels, its strategy clusters and its calibration (one phase,
    `judge_all`: one session, one spending cap), then the jury's other judges one at a
    time. Its settings are the judges' plans (`ctx.judge`, `ctx.jury`), resolved before
    anything loaded."""

    stages: ClassVar[tuple[Stage, ...]] = (
        Stage(
            name="judge",
            files=(
                StageFile(
                    JUDGE_FILE,
                    "problem",
                    ("problem_id", "sample_index", "judge"),
                    optional=("judge",),
                    order="key",
                ),
                # The ledger is every call each shard paid for (or took from the cache).
                StageFile(JUDGE_CALLS_FILE, "ledger"),
                # Batch ids of the provider that ran a shard's judge: nothing to resume once
                # the shard finished.
                StageFile(JUDGE_BATCHES_FILE, "none"),
            ),
            after="samples",
            covers=("judge",),
            hashed=True,
            settings="judge",
            records="judge labels",
        ),
        Stage(
            name="calibration",
            files=(StageFile(CALIBRATION_FILE, "item", ("item_id", "judge"), optional=("judge",)),),
            after="judge",
        ),
        Stage(
            name="strategy",
            files=(StageFile(STRATEGY_FILE, "problem", ("problem_id",), order="key"),),
            after="judge",
        ),
    )
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

    stages: ClassVar[tuple[Stage, ...]] = (
        Stage(
            name="checks",
            files=(StageFile(DERIVATION_FILE, "derived"), StageFile(SUPPORT_FILE, "derived")),
            after="samples",
        ),
    )

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
    stages: ClassVar[tuple[Stage, ...]] = (
        Stage(
            name="diversity",
            files=(StageFile(DIVERSITY_FILE, "derived"),),
            after="judge",
            covers=("diversity",),
        ),
    )

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
"""Every stage's runner, in the order a run takes them: those on the engines, then those
on the records."""

LAYOUT = Layout(tuple(stage for kind in RUNNERS for stage in kind.stages))
"""The stages of a run, as their runners declare them, in run order."""


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
