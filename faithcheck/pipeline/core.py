"""`faithcheck score`: the pipeline from dataset to report for one checkpoint.

- the options: `ScoreOptions` (`faithcheck.pipeline.options`), each stage reading its own
  package's part (`opts.engine`, `opts.sampling`, `opts.probes`, `opts.judge`, ...);
- the run (`run_score`): the input read and checked, the model and the judges resolved,
  the run directory prepared for this config, the model loaded, then a loop over the
  stages (`faithcheck.pipeline.runners.RUNNERS`: sampling, probes, the judges with their
  strategy clusters and calibration, the checks, diversity), each resumable from the
  records on disk; a rebuild runs the same runners of the stages that need no model
  (`derived_stages`);
- the report (`faithcheck.pipeline.aggregate.build_report`): a fold of those records,
  problem by problem, with the verdict decided on it; `faithcheck.pipeline.rebuild` folds
  the same records again without a model. The config the run is hashed over is
  `faithcheck.pipeline.config.result_config`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from faithcheck.backends import choose_backend, make_backend
from faithcheck.backends.base import Backend, DType, cpu_thread_count
from faithcheck.backends.precision import (
    CONCRETE_DTYPES,
    Precision,
    precision_for,
    precision_warning,
    probe_device,
)
from faithcheck.errors import DataError, FaithcheckError, UsageError
from faithcheck.judge.jury_stage import plan_jury
from faithcheck.judge.plan import JudgePlan, plan_judge
from faithcheck.models import (
    ModelIdentity,
    is_local_spec,
    resolve_model,
    served_identity,
)
from faithcheck.pipeline.aggregate import build_report
from faithcheck.pipeline.config import result_config
from faithcheck.pipeline.context import Engines, Phases, RunContext, Scoring
from faithcheck.pipeline.options import ScoreOptions
from faithcheck.pipeline.runners import LAYOUT, run_stages, stage_runners
from faithcheck.probes.records import PRIMARY_READOUT
from faithcheck.problems.load import FieldMap, dataset_hash
from faithcheck.problems.options import in_shard
from faithcheck.problems.prompts import (
    load_template,
    resolve_format,
    uses,
    wrong_hint,
)
from faithcheck.records import Problem
from faithcheck.report import Report
from faithcheck.sampling import SamplingConfig
from faithcheck.store.confighash import config_hash, stage_hashes
from faithcheck.store.rundir import (
    RunDir,
    default_run_name,
)
from faithcheck.store.runmeta import run_info
from faithcheck.verdict.core import GateSpec, decide


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
    config = result_config(
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
