"""The report of a run, folded from what is on disk: samples, probes, the judge's labels
and the derived stages' files, one problem at a time (`build_report`; `score` and
`rebuild` both end here)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from faithcheck.checks.derivation import DerivationFinding, DerivationTally
from faithcheck.checks.support import SupportFinding, SupportTally
from faithcheck.diversity.core import DiversityTally, ProblemDiversity
from faithcheck.diversity.embed import embedder_name
from faithcheck.judge.jury_stage import jury_judge_report
from faithcheck.judge.plan import JudgePlan
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge.stage import judge_report
from faithcheck.models import ModelIdentity
from faithcheck.pipeline.context import Phases
from faithcheck.pipeline.options import ScoreOptions
from faithcheck.probes.summary import summarize_probe_groups
from faithcheck.report import Report, SampleTally, Throughput
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.rundir import (
    DERIVATION_FILE,
    DIVERSITY_FILE,
    PROBES_FILE,
    SAMPLES_FILE,
    SUPPORT_FILE,
    RunDir,
    validate_probe,
)

T = TypeVar("T")


def build_report(
    run: RunDir,
    opts: ScoreOptions,
    identity: ModelIdentity,
    backend_name: str,
    data_hash: str,
    config_hash: str,
    keep: set[str] | None,
    tokens: int,
    judge: JudgePlan | None,
    reliability: JudgeReliability | None,
    phases: Phases,
    jury: Sequence[tuple[JudgePlan, JudgeReliability | None]] = (),
) -> Report:
    """Fold what is on disk into the report: samples, probes, judge, and the files of the
    derived stages (derivation, support, diversity), which `derived_stages` writes first.
    Nothing is written here.

    Every file is read one problem at a time and folded into per-problem numbers, so
    memory stays flat however many problems the run has. Problems come in the order they
    first appear in samples.jsonl (bootstrap CIs depend on it). `keep`: the problems to
    report on (None: all on disk). `jury`: the other judges of a jury with their
    reliabilities (the `judge` section is then the jury's).
    """
    samples = run.index(SAMPLES_FILE)
    keys = [pid for pid in samples if keep is None or pid in keep]
    reported = set(keys)
    sampling = SampleTally()
    derivation = DerivationTally()
    support = SupportTally()
    diversity_tally = DiversityTally() if opts.diversity.enabled else None
    embedders: set[str] = set()  # the diversity stage writes the rows with one of them
    derived = _DerivedRows(run)
    for group in run.sample_groups(keys, samples):
        sampling.add(group)
        if not group:
            continue
        pid = group[0].problem_id
        correct = {r.sample_index: r.correct for r in group}
        support.add(derived.rows(SUPPORT_FILE, pid, SupportFinding.model_validate), correct)
        derivation.add(
            derived.rows(DERIVATION_FILE, pid, DerivationFinding.model_validate), correct
        )
        if diversity_tally is not None:
            rows = derived.rows(DIVERSITY_FILE, pid, ProblemDiversity.model_validate)
            diversity_tally.add(rows[0].model_dump() if rows else {}, len(group))
            embedders.update(row.embedder for row in rows if row.embedder is not None)
    probes = None
    if opts.probes.probes:
        probes = summarize_probe_groups(
            _kept(run.groups(PROBES_FILE, validate_probe), reported),
            readout=opts.probes.readout,
            ran=opts.probes.probes,
        )
    judge_section = None
    if judge is not None and jury:
        judge_section = jury_judge_report(
            run,
            [judge, *(plan for plan, _ in jury)],
            [reliability, *(rel for _, rel in jury)],
            reported,
            opts.sampling.seed,
        )
    elif judge is not None:
        judge_section = judge_report(
            run,
            judge.opts,
            judge.backend_name,
            reported,
            reliability,
            opts.sampling.seed,
            readout=judge.cfg.readout,
        )
    diversity = None
    if diversity_tally is not None:
        use_strategy = judge is not None and judge.opts.strategy
        diversity = diversity_tally.summary(
            seed=opts.sampling.seed,
            embedder=_embedder_of(embedders) if opts.diversity.embed else None,
            strategy=use_strategy,
            faithful=use_strategy,
        )
    phases.mark("report_s")
    timings = phases.timings()
    return Report(
        run_id=run.path.name,
        run_dir=str(run.path),
        model=opts.model,
        model_sha256=identity.sha256,
        backend=backend_name,
        dataset=opts.problems.from_samples or opts.problems.dataset,
        dataset_sha256=data_hash,
        config_hash=config_hash,
        sampling=sampling.summary(seed=opts.sampling.seed),
        probes=probes,
        derivation=derivation.summary(seed=opts.sampling.seed),
        support=support.summary(seed=opts.sampling.seed),
        judge=judge_section,
        diversity=diversity,
        timings=timings,
        throughput=Throughput(
            completion_tokens=tokens,
            tokens_per_s=tokens / timings.sampling_s if tokens and timings.sampling_s > 0 else None,
        ),
    )


def _embedder_of(names: set[str]) -> str:
    """The report's name for the embedder behind diversity.jsonl: the one its rows name
    (the stage writes every row with one), else, with no rows, the one this machine runs."""
    return " + ".join(sorted(names)) if names else embedder_name()


class _DerivedRows:
    """The records of one problem in the derived files, read on demand (each file indexed
    once)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.indexes: dict[str, ProblemIndex] = {}

    def rows(self, name: str, pid: str, validate: Callable[[dict[str, Any]], T]) -> list[T]:
        """The records of problem `pid` in file `name` (none when it has no line there)."""
        if name not in self.indexes:
            self.indexes[name] = self.run.index(name)
        return next(self.run.groups(name, validate, [pid], self.indexes[name]), [])


def _kept(groups: Iterable[list[T]], keep: set[str]) -> Iterator[list[T]]:
    """The groups of the problems in `keep`."""
    for group in groups:
        if group and getattr(group[0], "problem_id", None) in keep:
            yield group
