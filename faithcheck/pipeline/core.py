"""`faithcheck score`: the pipeline from dataset to report for one checkpoint.

- the options: `ScoreOptions` (`faithcheck.pipeline.options`), each stage reading its own
  package's part (`opts.engine`, `opts.sampling`, `opts.probes`, `opts.judge`, ...);
- the run (`run_score`): the input read and checked, the model and the judges resolved,
  the run directory prepared for this config, the model loaded, then a loop over the
  stages (`faithcheck.pipeline.runners.RUNNERS`: sampling, probes, the judges with their
  strategy clusters and calibration, the checks, diversity), each resumable from the
  records on disk; a rebuild runs the same runners of the stages that need no model
  (`derived_stages`);
- the report (`build_report`): a fold of those records, problem by problem, with the
  verdict decided on it; `faithcheck.pipeline.rebuild` folds the same records again
  without a model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from faithcheck.backends import choose_backend, make_backend
from faithcheck.backends.base import Backend, DType, cpu_thread_count
from faithcheck.backends.precision import (
    CONCRETE_DTYPES,
    Precision,
    precision_for,
    precision_warning,
    probe_device,
)
from faithcheck.checks.derivation import DerivationFinding, DerivationTally
from faithcheck.checks.support import SupportFinding, SupportTally
from faithcheck.diversity.core import DiversityTally, ProblemDiversity
from faithcheck.diversity.embed import embedder_name
from faithcheck.errors import DataError, FaithcheckError, UsageError
from faithcheck.judge.jury_stage import jury_judge_report, plan_jury
from faithcheck.judge.mistakes import MISTAKE_PROMPT_HASH
from faithcheck.judge.options import JudgeOptions
from faithcheck.judge.plan import JudgePlan, plan_judge
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge.stage import judge_config_dict, judge_report, readout_config
from faithcheck.models import (
    ModelIdentity,
    is_local_spec,
    resolve_model,
    served_identity,
)
from faithcheck.pipeline.context import Engines, Phases, RunContext, Scoring
from faithcheck.pipeline.options import ScoreOptions
from faithcheck.pipeline.runners import LAYOUT, run_stages, stage_runners
from faithcheck.probes.records import PRIMARY_READOUT, ProbeConfig
from faithcheck.probes.summary import summarize_probe_groups
from faithcheck.problems.load import FieldMap, dataset_hash
from faithcheck.problems.options import in_shard
from faithcheck.problems.prompts import (
    load_template,
    resolve_format,
    uses,
    wrong_hint,
)
from faithcheck.records import Problem
from faithcheck.report import Report, SampleTally, Throughput
from faithcheck.sampling import SamplingConfig
from faithcheck.store.confighash import config_hash, stage_hashes
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.rundir import (
    DERIVATION_FILE,
    DIVERSITY_FILE,
    PROBES_FILE,
    SAMPLES_FILE,
    SUPPORT_FILE,
    RunDir,
    default_run_name,
    validate_probe,
)
from faithcheck.store.runmeta import file_hash, run_info
from faithcheck.verdict.core import GateSpec, decide

T = TypeVar("T")


@dataclass(frozen=True)
class Preloaded:
    """A model the caller already holds, scored in place of loading `opts.model`."""

    backend: Backend
    """The engine around it (`HFBackend.from_objects`, or any `Backend`); never closed
    by the run (its owner decides)."""
    identity: ModelIdentity
    """What it is (`models.in_memory_identity`)."""
    precision: Precision
    """The dtype it runs in, as it came."""


def run_score(
    opts: ScoreOptions,
    *,
    say: Callable[[str], None],
    progress: Any = None,
    gate: GateSpec | None = None,
    preloaded: Preloaded | None = None,
) -> Report:
    """Run the pipeline and return the report (also written to the run directory).

    Cheap checks (options, dataset, template, run directory) come before anything
    that loads a model, so bad input fails in well under a second. With `preloaded`,
    its backend is scored instead of loading `opts.model`, and left open.

    The steps: the input (`_input`), the model to score and its precision (`_model`), the
    judges and the run directory prepared for this config (`_prepare`), the model loaded
    (`_start`), every stage in turn (`faithcheck.pipeline.runners.RUNNERS`, each resumable
    from the records on disk), then the report and its verdict (`_finish`).
    """
    opts.check()
    t_start = time.perf_counter()
    given = _input(opts)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run = RunDir(Path(opts.out) if opts.out else Path("runs") / default_run_name(opts.model, stamp))
    run.open()
    try:
        opts, model = _model(opts, say, preloaded)
        cfg = opts.sampling.config(model.fmt, given.template)
        judge, jury, digest = _prepare(run, opts, model, cfg, given, say)
        phases = Phases(t_start)
        problems = given.problems
        ctx = RunContext(
            run,
            opts.sampling.seed,
            keep={p.id for p in problems},
            questions=lambda: {p.id: p.question for p in problems},
            judge=judge,
            jury=jury,
            scoring=_start(opts, model, given, cfg, phases, say),
            progress=progress,
            say=say,
            phases=phases,
        )
        run_stages(ctx, stage_runners(opts))
        return _finish(ctx, opts, model, given.data_hash, digest, gate)
    finally:
        run.release()


def _start(
    opts: ScoreOptions,
    model: _Model,
    given: _Input,
    cfg: SamplingConfig,
    phases: Phases,
    say: Callable[[str], None],
) -> Scoring:
    """Load the scored model (ending the `model_load_s` phase): the engines' part of the
    run's context."""
    engines = _engines(opts, model)
    for line in model.precision_lines:  # once the engine has loaded in it
        say(line)
    phases.mark("model_load_s")
    rollouts, given.rollouts = given.rollouts, None  # the samples stage drops them
    return Scoring(given.problems, cfg, engines, model.backend_name, opts.chunk_size, rollouts)


def _finish(
    ctx: RunContext,
    opts: ScoreOptions,
    model: _Model,
    data_hash: str,
    digest: str,
    gate: GateSpec | None,
) -> Report:
    """The report of the run's records, with its verdict and precision, written."""
    assert ctx.phases is not None
    reliabilities = ctx.reliabilities
    report = build_report(
        ctx.run,
        opts,
        model.identity,
        model.backend_name,
        data_hash,
        digest,
        ctx.keep,
        ctx.tokens,
        ctx.judge,
        reliabilities[0] if reliabilities else None,
        ctx.phases,
        jury=list(zip(ctx.jury, reliabilities[1:], strict=True)),
    )
    verdict = decide(report, gate)
    report = report.model_copy(update={"verdict": verdict, "precision": model.precision})
    ctx.run.write_report(report)
    return report


@dataclass(frozen=True)
class _Model:
    """The model a run scores, resolved before anything loads (`_model`)."""

    identity: ModelIdentity
    backend_name: str
    fmt: Literal["chat", "base"]
    precision: Precision
    precision_lines: list[str]
    """What to say about the precision once the engine has loaded in it."""
    preloaded: Preloaded | None

    @property
    def dtype(self) -> str:
        """The dtype the model loads in: resolved here once (`_precision`), or, behind a
        server, as requested."""
        return self.precision.dtype or self.precision.requested


def _model(
    opts: ScoreOptions, say: Callable[[str], None], preloaded: Preloaded | None
) -> tuple[ScoreOptions, _Model]:
    """The model to score (its identity, backend, prompt format and precision, resolved
    once here: the config hash takes the resolved dtype, so a run resumed on a machine
    that resolves `auto` otherwise is refused, never silently mixed) and the options with
    the probes' `auto` read-out resolved."""
    if preloaded is not None:
        identity, backend_name = preloaded.identity, preloaded.backend.name
    else:
        identity = _identity(opts)
        backend_name = choose_backend(opts.engine.backend, say)
    fmt = resolve_format(opts.sampling.prompt_format, identity.has_chat_template)
    if opts.probes.readout == "auto" and opts.probes.probes:
        say(
            f"probes: the {PRIMARY_READOUT} read-out (auto: the one that separates "
            "post-hoc from faithful chains)"
        )
    if opts.probes.readout == "auto":
        opts = opts.model_copy(
            update={"probes": opts.probes.model_copy(update={"readout": PRIMARY_READOUT})}
        )
    if preloaded is not None:
        precision = preloaded.precision
        precision_lines = [f"precision: {precision.dtype} ({precision.reason})"]
    else:
        precision, precision_lines = _precision(opts.engine.dtype, backend_name)
    model = _Model(identity, backend_name, fmt, precision, precision_lines, preloaded)
    return opts, model


def _prepare(
    run: RunDir,
    opts: ScoreOptions,
    model: _Model,
    cfg: SamplingConfig,
    given: _Input,
    say: Callable[[str], None],
) -> tuple[JudgePlan | None, list[JudgePlan], str]:
    """The judge and the jury's other judges, planned (nothing loads), and the run
    directory prepared for this config: resumed, kept in part, or started with its
    run.json. Returns the judge, the jury and the config hash."""
    identity, backend_name = model.identity, model.backend_name
    seed, dtype = opts.sampling.seed, opts.engine.dtype
    judge = plan_judge(opts.judge, seed, identity, backend_name, say, dtype=dtype)
    jury = plan_jury(judge, opts.jury, seed, identity, backend_name, say, dtype=dtype)
    config = _result_config(
        opts, backend_name, identity, cfg, given.data_hash, judge, jury, dtype=model.dtype
    )
    digest, stages = config_hash(config), stage_hashes(config, LAYOUT)
    if not opts.force:
        _refuse_other_precision(run, model.precision, digest)
    if run.prepare(digest, LAYOUT, force=opts.force, stages=stages):
        say(f"resuming run in {run.path}")
    else:
        if run.kept:
            say(f"keeping the {run.kept_records()} of the run in {run.path}")
        # run.json's options record the dtype the model loaded in.
        ran = opts.model_copy(
            update={"engine": opts.engine.model_copy(update={"dtype": model.dtype})}
        )
        info = run_info(
            ran,
            opts.problems,
            config,
            digest,
            identity,
            given.problems,
            given.data_hash,
            given.fields,
            stages,
        )
        run.write_run_info(info.model_copy(update={"precision": model.precision}))
    return judge, list(jury), digest


def _engines(opts: ScoreOptions, model: _Model) -> Engines:
    """The run's engines: the scored model loaded (or the caller's, never closed here),
    and how a judge loads (its own engine arguments, not the model's --engine-arg)."""

    def loader(name: str, path: str) -> Backend:
        return _load(name, path, opts, model.dtype, engine_args=False)

    pre = model.preloaded
    backend = (
        pre.backend if pre else _load(model.backend_name, model.identity.path, opts, model.dtype)
    )
    return Engines(backend, owned=pre is None, load=lambda plan: plan.load(loader, opts.engine))


@dataclass
class _Input:
    """What a run reads before any model loads (`_input`)."""

    problems: list[Problem]
    rollouts: dict[str, list[str]] | None
    """The responses to re-score (`--from-samples`), dropped once sampled to disk."""
    data_hash: str
    fields: FieldMap
    template: str | None


def _input(opts: ScoreOptions) -> _Input:
    """The problems of this run (limited, then this shard's), the rollouts to re-score
    (`--from-samples`), the dataset hash, the field map and the prompt template: read and
    checked before any model loads, so that bad input fails in well under a second.

    Raises:
        UsageError: the shard holds no problems.
        DataError: the template asks for a `{hint}` that some problem's answer has none of.
    """
    fields = opts.problems.field_map()
    problems, rollouts = opts.problems.read()
    if opts.problems.limit is not None:
        problems = problems[: opts.problems.limit]
    # The hash covers the whole (limited) dataset: every shard records the same one, so a
    # merged run has the config hash of one unsharded run.
    data_hash = dataset_hash(problems)
    if opts.problems.shard is not None:
        problems = [p for p in problems if in_shard(p.id, *opts.problems.shard)]
        if not problems:
            raise UsageError(
                f"shard {opts.problems.shard[0]}/{opts.problems.shard[1]} holds no problems"
            )
    template = (
        load_template(Path(opts.sampling.prompt_template))
        if opts.sampling.prompt_template
        else None
    )
    if uses(template, "hint"):  # before any model loads: every problem needs a wrong hint
        bad = next((p for p in problems if wrong_hint(p.answer) is None), None)
        if bad is not None:
            raise DataError(
                f"problem {bad.id!r}: no wrong hint for the answer {bad.answer!r} ({{hint}} "
                "needs a number, an option letter A-E, yes/no or true/false)"
            )
    return _Input(problems, rollouts, data_hash, fields, template)


def _identity(opts: ScoreOptions) -> ModelIdentity:
    if opts.engine.backend == "openai":
        if not opts.engine.base_url:
            raise UsageError("--backend openai needs --base-url")
        if not is_local_spec(opts.model):
            return served_identity(opts.model, opts.engine.base_url)
    elif opts.engine.base_url:
        raise UsageError("--base-url is for --backend openai")
    return resolve_model(opts.model, opts.engine.revision)


def _precision(requested: DType, backend_name: str) -> tuple[Precision, list[str]]:
    """Resolve --dtype for this device; the lines that say what was chosen and why (and
    warn when it is slow), to print once the run is under way."""
    precision = precision_for(requested, backend_name)
    dtype = precision.dtype
    if dtype is None:
        return precision, []
    caps = probe_device()
    threads = cpu_thread_count() if caps.device == "cpu" else None
    precision = precision.model_copy(update={"threads": threads})
    on = f", {threads} CPU threads" if threads else ""
    lines = [f"precision: {dtype} ({precision.reason}{on})"]
    warning = precision_warning(dtype, caps)
    return precision, lines + (["warning: " + warning] if warning else [])


def _refuse_other_precision(run: RunDir, precision: Precision, digest: str) -> None:
    """A run made in another dtype (`auto` resolved on another machine) is refused with
    the way to continue it; any other difference is left to `RunDir.prepare`."""
    try:
        previous = run.read_run_info()
    except FaithcheckError:
        return  # prepare reports the damage
    if not previous or previous.get("config_hash") == digest or precision.dtype is None:
        return
    before = (previous.get("config") or {}).get("dtype")
    if before in CONCRETE_DTYPES and before != precision.dtype:
        raise UsageError(
            f"--out {run.path} holds a run made in {before}; here --dtype "
            f"{precision.requested} means {precision.dtype} ({precision.reason}): pass "
            f"--dtype {before} to continue it, or --force to redo it in {precision.dtype}"
        )


def _load(
    name: str, path: str, opts: ScoreOptions, dtype: str, *, engine_args: bool = True
) -> Backend:
    """Load a model of the run on engine `name` in `dtype` (the run's, resolved once);
    `engine_args`: with the scored model's --engine-arg (never the judge's)."""
    e = opts.engine
    return make_backend(
        name,  # type: ignore[arg-type]
        path,
        base_url=e.base_url,
        api_key_env=e.api_key_env,
        max_concurrency=e.max_concurrency,
        dtype=dtype,  # type: ignore[arg-type]
        seed=opts.sampling.seed,
        max_model_len=e.max_model_len,
        tensor_parallel_size=e.tensor_parallel_size,
        gpu_memory_utilization=e.gpu_memory_utilization,
        trust_remote_code=e.trust_remote_code,
        engine_args=(e.engine_args or None) if engine_args else None,
    )


def run_problems(opts: ScoreOptions) -> dict[str, Problem]:
    """The run's problems by id, from its dataset or rollouts file; empty when it can no
    longer be read."""
    try:
        problems, _ = opts.problems.read()
    except DataError:
        return {}
    return {p.id: p for p in problems}


def run_questions(opts: ScoreOptions) -> dict[str, str]:
    """Problem id -> question text (`run_problems`); the support check then grounds
    numbers in nothing but its constants when the dataset is gone, and says so by more
    untraced operands."""
    return {pid: p.question for pid, p in run_problems(opts).items()}


def derived_stages(
    run: RunDir,
    opts: ScoreOptions,
    keep: set[str] | None,
    judge: JudgePlan | None,
    questions: Mapping[str, str] | None = None,
) -> None:
    """The stages that run on the samples (and the judge's records) with no model of the
    run loaded: the judge-free checks (derivation.jsonl, support.jsonl) and, when diversity
    is on, diversity.jsonl (removed when it is off). Each keeps a file that is already
    complete, so a resumed run, and `rebuild` of a run scored before these were stages,
    computes only what is missing.

    Args:
        run: The run directory, locked by the caller.
        opts: The run's options.
        keep: The problems to report on (None: all on disk), as for `build_report`.
        judge: The run's judge, None when it did not run.
        questions: Problem id -> text, grounds the support check's numbers; None: read
            from the run's dataset (`run_questions`) if a judge-free check runs.
    """
    ask = (lambda: questions) if questions is not None else (lambda: run_questions(opts))
    ctx = RunContext(run, opts.sampling.seed, keep, ask, judge=judge)
    run_stages(ctx, stage_runners(opts, engines=False))


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


def _result_config(
    opts: ScoreOptions,
    backend: str,
    identity: ModelIdentity,
    cfg: SamplingConfig,
    data_hash: str,
    judge: JudgePlan | None,
    jury: Sequence[JudgePlan] = (),
    *,
    dtype: str | None = None,
) -> dict[str, Any]:
    """Settings that change results; the config hash is taken over exactly these (a
    jury's other judges inside `judge`, so the judge stage's hash covers them; absent
    with one judge, so its runs keep their hash). `dtype`: the one the model loads in
    (None: as requested)."""
    return {
        "model_sha256": identity.sha256,
        "backend": backend,
        "dtype": dtype or opts.engine.dtype,
        "max_model_len": opts.engine.max_model_len,
        "dataset_sha256": data_hash,
        "from_samples": file_hash(opts.problems.from_samples)
        if opts.problems.from_samples
        else None,
        "limit": opts.problems.limit,
        "shard": list(opts.problems.shard) if opts.problems.shard else None,
        "sampling": cfg.model_dump(mode="json"),
        "probes": _probes_part(opts.probes),
        "judge": (
            _judge_part(opts.judge, judge)
            | ({"jury": [_judge_part(p.opts, p) for p in jury]} if jury else {})
            if judge
            else None
        ),
        "diversity": opts.diversity.config_part(),
    } | engine_config(opts)


def _probes_part(probes: ProbeConfig) -> dict[str, Any]:
    """The probe settings that change probe records: with `--mistakes llm`, also the hash of
    the prompt the judge writes the wrong steps with (absent otherwise, so rule-mistake runs
    keep their hash)."""
    part = probes.model_dump(mode="json")
    if probes.mistakes == "llm" and "mistakes" in probes.probes:
        part["mistake_prompt_hash"] = MISTAKE_PROMPT_HASH
    return part


def _judge_part(j: JudgeOptions, plan: JudgePlan) -> dict[str, Any]:
    """One judge's settings that change its labels."""
    return (
        judge_config_dict(j)
        | {"identity": plan.identity, "dtype": plan.dtype}
        | readout_config(plan.cfg)
    )


def engine_config(opts: ScoreOptions) -> dict[str, Any]:
    """The engine arguments' part of the hashed config: absent unless given (added after
    runs existed, so those keep their config hash)."""
    return {"engine_args": opts.engine.engine_args} if opts.engine.engine_args else {}
