"""`faithcheck score`: the pipeline from dataset to report for one checkpoint.

- the options: `ScoreOptions`, built and validated by `score_options` (shared by the CLI
  and the API), with each stage's own part (`probe_config`, `judge_options`, `jury_options`);
- the run (`run_score`): load the model, then, each resumable from the records on disk,
  sampling (parse + verify), probes, the judges (and their calibration), and the derived
  stages (derivation, support, diversity: `derived_stages`);
- the report (`build_report`): a fold of those records, problem by problem, with the
  verdict decided on it; `faithcheck.pipeline.rebuild` folds the same records again
  without a model.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError

from faithcheck.backends import BackendName, choose_backend, make_backend, parse_engine_args
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
from faithcheck.judge.jury_stage import judge_jurors, juror_prices, jury_judge_report, plan_jury
from faithcheck.judge.plan import JudgePlan, judge_all, mistake_writer, plan_judge
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge.stage import (
    RATIONALE_TOKENS,
    JudgeOptions,
    judge_config_dict,
    judge_report,
    readout_config,
)
from faithcheck.models import (
    DEFAULT_MODEL,
    ModelIdentity,
    is_local_spec,
    resolve_model,
    served_identity,
)
from faithcheck.pipeline.stages import (
    DiversityStage,
    check_into,
    diversity_into,
    probe_into,
    sample_into,
)
from faithcheck.probes import ALL_PROBES, ProbeConfig
from faithcheck.probes.records import PRIMARY_READOUT
from faithcheck.probes.summary import summarize_probe_groups
from faithcheck.problems.load import FieldMap, dataset_hash, load_problems, load_rollouts
from faithcheck.problems.prompts import (
    BASE_STOP,
    PromptFormat,
    load_template,
    resolve_format,
    uses,
    wrong_hint,
)
from faithcheck.records import Problem, Record
from faithcheck.report import Report, SampleTally, Throughput, Timings
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


class ScoreOptions(Record):
    """Everything `faithcheck score` was asked to do."""

    model: str
    """--model: alias, checkpoint folder, or hub id."""
    dataset: str
    """--dataset spec."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Source field names for id / question / answer / domain."""
    domain: str = "math"
    """Domain for rows without one."""
    backend: BackendName = "auto"
    """Requested backend."""
    dtype: DType = "auto"
    """Model dtype; `auto` is resolved from the device (`backends.precision`)."""
    max_model_len: int = 2048
    """Context length for vLLM."""
    tensor_parallel_size: int = 1
    """vLLM tensor parallelism (GPU)."""
    gpu_memory_utilization: float = 0.9
    """vLLM GPU memory share."""
    samples: int = 16
    """Samples per problem."""
    limit: int | None = None
    """Use only the first N problems."""
    shard: tuple[int, int] | None = None
    """(i, N): keep only the problems of shard i of N (`--shard i/N`; see `in_shard`)."""
    """Use only the first N problems."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus mass."""
    max_tokens: int = 512
    """Max new tokens."""
    seed: int = 0
    """Run seed."""
    prompt_format: PromptFormat = "auto"
    """auto, chat or base."""
    prompt_template: str | None = None
    """Path of a custom template."""
    out: str | None = None
    """Run directory."""
    force: bool = False
    """Discard an existing run with another config."""
    trust_remote_code: bool = False
    """Allow checkpoint code to run."""
    from_samples: str | None = None
    """Re-score saved rollouts from this JSONL file instead of sampling."""
    from_format: str = "auto"
    """--from-format: the rollouts' format (`faithcheck.problems.rollouts`; auto detects it)."""
    probes: ProbeConfig = Field(default_factory=ProbeConfig)
    """Which faithfulness probes to run, and how."""
    base_url: str | None = None
    """--base-url of an OpenAI-compatible server (--backend openai)."""
    api_key_env: str | None = None
    """Name of the environment variable with the server's API key (never the key)."""
    max_concurrency: int = Field(8, ge=1)
    """Requests in flight at once against a server."""
    judge: JudgeOptions = Field(default_factory=JudgeOptions)
    """Whether and how to run the judge (the first judge of a jury)."""
    jury: list[JudgeOptions] = Field(default_factory=list)
    """The other judges of a jury (--judge-model given more than once), each with its
    own settings; empty: one judge."""
    diversity: bool = True
    """Compute the diversity contrast (--no-diversity skips it)."""
    diversity_embed: bool = True
    """Include the embedding metrics (loads the offline MiniLM embedder)."""
    engine_args: dict[str, Any] = Field(default_factory=dict)
    """--engine-arg key=value: passed to vLLM's `LLM` or transformers' `from_pretrained`."""
    revision: str | None = None
    """--revision of a hub model (branch, tag or commit)."""
    chunk_size: int | None = None
    """Problems per engine call; None: 16 on vLLM (bigger batches, more throughput), 1 on hf
    (it samples one request at a time anyway, so this only makes progress finer)."""


def probe_config(
    probes: str, probe_samples: int | None, impl: str, readout: str, mistakes: str = "rule"
) -> ProbeConfig:
    """Probe settings from CLI strings, with one-line errors for bad values."""
    names = [] if probes.strip() in {"", "none"} else [p.strip() for p in probes.split(",")]
    unknown = [n for n in names if n not in ALL_PROBES]
    if unknown:
        raise UsageError(f"unknown probe {unknown[0]!r}; choose from {', '.join(ALL_PROBES)}")
    if impl not in {"fast", "naive"}:
        raise UsageError("--probe-impl must be fast or naive")
    if readout not in {"generate", "score", "both", "auto"}:
        raise UsageError("--readout must be generate, score, both or auto")
    if probe_samples is not None and probe_samples < 1:
        raise UsageError("--probe-samples must be at least 1")
    if mistakes not in {"rule", "llm"}:
        raise UsageError("--mistakes must be rule or llm")
    return ProbeConfig.model_validate(
        {
            "probes": names,
            "probe_samples": probe_samples,
            "impl": impl,
            "readout": readout,
            "mistakes": mistakes,
        }
    )


def score_options(
    model: str | None = None,
    dataset: str = "math",
    backend: str = "auto",
    dtype: str = "auto",
    max_model_len: int = 2048,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    trust_remote_code: bool = False,
    base_url: str | None = None,
    api_key_env: str | None = None,
    max_concurrency: int = 8,
    id_field: str = "id",
    question_field: str = "question",
    answer_field: str = "answer",
    domain_field: str = "domain",
    domain: str = "math",
    limit: int | None = None,
    shard: str | None = None,
    samples: int = 16,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_tokens: int = 512,
    seed: int = 0,
    prompt_format: str = "auto",
    prompt_template: str | None = None,
    out: str | None = None,
    force: bool = False,
    from_samples: str | None = None,
    from_format: str = "auto",
    probes: str = "truncation,mistakes,necessity,controls",
    probe_samples: int | None = None,
    probe_impl: str = "fast",
    readout: str = "auto",
    mistakes: str = "rule",
    judge: bool = True,
    judge_model: str | Sequence[str] | None = None,
    judge_backend: str = "auto",
    judge_base_url: str | None = None,
    judge_api_key_env: str | None = None,
    judge_samples: int | None = None,
    judge_max_tokens: int | None = None,
    judge_reasoning_effort: str | None = None,
    judge_concurrency: int = 8,
    judge_http_retries: int = 6,
    judge_cache: bool = True,
    judge_max_items: int | None = None,
    judge_max_cost: float | None = None,
    judge_batch: bool = False,
    judge_price_in: float | None = None,
    judge_price_out: float | None = None,
    judge_readout: str = "auto",
    judge_rationale_tokens: int = RATIONALE_TOKENS,
    calibrate: bool = True,
    calibration_size: int = 4,
    strategy: bool = True,
    diversity: bool = True,
    embed: bool = True,
    engine_arg: list[str] | None = None,
    revision: str | None = None,
) -> ScoreOptions:
    """`ScoreOptions` from the `faithcheck score` options, named and defaulted as on the
    command line (`--max-tokens` is `max_tokens`), with every check the CLI makes: the one
    place both the CLI and the Python API build a run's options.

    Raises:
        UsageError: a bad value, with the same one-line message the CLI prints.
    """
    import os

    chosen = model or os.environ.get("FAITHCHECK_MODEL") or DEFAULT_MODEL
    try:
        return ScoreOptions(
            model=chosen,
            dataset=dataset,
            fields={
                "id": id_field,
                "question": question_field,
                "answer": answer_field,
                "domain": domain_field,
            },
            domain=domain,
            backend=backend,  # type: ignore[arg-type]
            dtype=dtype,  # type: ignore[arg-type]
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            base_url=base_url,
            api_key_env=api_key_env,
            max_concurrency=max_concurrency,
            samples=samples,
            limit=limit,
            shard=parse_shard(shard),
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            seed=seed,
            prompt_format=prompt_format,  # type: ignore[arg-type]
            prompt_template=str(prompt_template) if prompt_template else None,
            out=str(out) if out else None,
            force=force,
            trust_remote_code=trust_remote_code,
            from_samples=str(from_samples) if from_samples else None,
            from_format=from_format,
            probes=probe_config(probes, probe_samples, probe_impl, readout, mistakes),
            **jury_options(
                judge_model,
                enabled=judge,
                backend=judge_backend,
                base_url=judge_base_url,
                api_key_env=judge_api_key_env,
                samples=judge_samples if judge_samples is not None else probe_samples,
                max_tokens=judge_max_tokens,
                reasoning_effort=judge_reasoning_effort,
                concurrency=judge_concurrency,
                http_retries=judge_http_retries,
                cache=judge_cache,
                max_items=judge_max_items,
                max_cost=judge_max_cost,
                batch=judge_batch,
                price_in=judge_price_in,
                price_out=judge_price_out,
                readout=judge_readout,
                rationale_tokens=judge_rationale_tokens,
                calibrate=calibrate,
                calibration_per_domain=calibration_size,
                strategy=strategy,
            ),
            diversity=diversity,
            diversity_embed=embed,
            engine_args=parse_engine_args(engine_arg),
            revision=revision,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--" + "-".join(str(x) for x in first["loc"]).replace("_", "-")
        raise UsageError(f"{where}: {first['msg']}") from None


def in_shard(problem_id: str, index: int, count: int) -> bool:
    """Whether a problem belongs to shard `index` of `count` (0-based).

    By a hash of the problem id, not its position: the split does not depend on file
    order or `--limit`, every problem lands in exactly one shard, and the same id always
    lands in the same shard.
    """
    digest = hashlib.sha256(problem_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count == index


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`i/N` -> (i, N), 0 <= i < N; None for None."""
    if text is None:
        return None
    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--shard must look like i/N (e.g. 0/4), got {text!r}")
    index, count = int(parts[0]), int(parts[1])
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text}: need 0 <= i < N")
    return index, count


def jury_options(specs: str | Sequence[str] | None, **shared: Any) -> dict[str, Any]:
    """`judge` and `jury` of `ScoreOptions` from the --judge-model values (each
    `MODEL[,key=value...]`, `faithcheck.judge.jury.split_judge_spec`; None: the default
    model) and the other --judge-* options, which every judge shares unless its spec sets
    the key (a judge run in process is free: `faithcheck.judge.jury_stage.juror_prices`).
    Only the first judge clusters strategies."""
    from faithcheck.judge.jury import split_judge_spec

    specs = [specs] if isinstance(specs, str) else list(specs or ()) or [DEFAULT_MODEL]
    judges = []
    for n, spec in enumerate(specs):
        if "," in spec and not Path(spec).exists():
            model, own = split_judge_spec(spec)
        else:
            model, own = spec, {}
        first = {} if n == 0 else {"strategy": False}
        opts = judge_options(**(shared | {"model": model} | own | first))
        judges.append(opts if len(specs) == 1 else juror_prices(opts, own))
    return {"judge": judges[0], "jury": judges[1:] if shared.get("enabled", True) else []}


def judge_options(**values: Any) -> JudgeOptions:
    """Judge settings from CLI values, with one-line errors for bad values."""
    return check_judge_options(values)


def check_judge_options(values: dict[str, Any]) -> JudgeOptions:
    """`JudgeOptions` from CLI values (None: the default), with one-line errors; an unset
    --judge-max-tokens resolves by judge kind (`default_max_tokens`)."""
    from faithcheck.judge.plan import default_max_tokens
    from faithcheck.judge.stage import JUDGE_BACKENDS, READOUTS

    values = {k: v for k, v in values.items() if v is not None or k in _NULLABLE}
    if values.get("backend", "auto") not in JUDGE_BACKENDS:
        raise UsageError("--judge-backend must be " + ", ".join(JUDGE_BACKENDS))
    if values.get("readout", "auto") not in READOUTS:
        raise UsageError("--judge-readout must be " + ", ".join(READOUTS))
    floors = {
        "samples": ("--judge-samples", 1),
        "max_tokens": ("--judge-max-tokens", 16),
        "calibration_per_domain": ("--calibration-size", 1),
        "concurrency": ("--judge-concurrency", 1),
        "http_retries": ("--judge-http-retries", 0),
        "max_items": ("--judge-max-items", 1),
        "max_cost": ("--judge-max-cost", 0),
        "price_in": ("--judge-price-in", 0),
        "price_out": ("--judge-price-out", 0),
        "rationale_tokens": ("--judge-rationale-tokens", 0),
    }
    for key, (flag, floor) in floors.items():
        if values.get(key) is not None and values[key] < floor:
            raise UsageError(f"{flag} must be at least {floor}")
    effort = values.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise UsageError("--judge-reasoning-effort must be " + ", ".join(REASONING_EFFORTS))
    if values.get("max_tokens") is None:
        values.pop("max_tokens", None)
        values["max_tokens"] = default_max_tokens(JudgeOptions.model_validate(values))
    return JudgeOptions.model_validate(values)


REASONING_EFFORTS = ("minimal", "low", "medium", "high")
_NULLABLE = frozenset(
    {"base_url", "api_key_env", "samples", "reasoning_effort", "max_items", "price_in", "price_out"}
    | {"max_cost"}
)


def _validate(opts: ScoreOptions) -> None:
    if opts.samples < 1:
        raise UsageError("--samples must be at least 1")
    if opts.limit is not None and opts.limit < 1:
        raise UsageError("--limit must be at least 1")
    if opts.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1")
    if opts.temperature < 0:
        raise UsageError("--temperature must be >= 0")
    if not 0 < opts.top_p <= 1:
        raise UsageError("--top-p must be in (0, 1]")
    if opts.probes.mistakes == "llm" and not opts.judge.enabled:
        raise UsageError("--mistakes llm needs the judge model (drop --no-judge)")


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
    judges and the run directory prepared for this config (`_prepare`), the engines'
    stages (`_run_engines`), then the model-free stages and the report (`_report`).
    """
    _validate(opts)
    t_start = time.perf_counter()
    given = _input(opts)
    problems, data_hash = given.problems, given.data_hash
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run = RunDir(Path(opts.out) if opts.out else Path("runs") / default_run_name(opts.model, stamp))
    run.open()
    try:
        opts, model = _model(opts, say, preloaded)
        cfg = _sampling_config(opts, model.fmt, given.template)
        judge, jury, digest = _prepare(run, opts, model, cfg, given, say)
        phases = Phases(t_start)
        tokens, reliabilities = _run_engines(
            run, opts, model, given, cfg, judge, jury, progress, say, phases
        )
        keep = {p.id for p in problems}
        derived_stages(run, opts, keep, judge, {p.id: p.question for p in problems})
        report = build_report(
            run,
            opts,
            model.identity,
            model.backend_name,
            data_hash,
            digest,
            keep,
            tokens,
            judge,
            reliabilities[0] if reliabilities else None,
            phases,
            jury=list(zip(jury, reliabilities[1:], strict=True)),
        )
        verdict = decide(report, gate)
        report = report.model_copy(update={"verdict": verdict, "precision": model.precision})
        run.write_report(report)
        return report
    finally:
        run.release()


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


def _model(
    opts: ScoreOptions, say: Callable[[str], None], preloaded: Preloaded | None
) -> tuple[ScoreOptions, _Model]:
    """The model to score (its identity, backend, prompt format and precision) and the
    options with `auto` resolved: the probes' read-out, and the dtype (the config hash
    takes the resolved dtype: a run resumed on a machine that resolves `auto` otherwise
    is refused, never silently mixed)."""
    if preloaded is not None:
        identity, backend_name = preloaded.identity, preloaded.backend.name
    else:
        identity = _identity(opts)
        backend_name = choose_backend(opts.backend, say)
    fmt = resolve_format(opts.prompt_format, identity.has_chat_template)
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
        precision, precision_lines = _precision(opts.dtype, backend_name)
    if precision.dtype is not None:
        opts = opts.model_copy(update={"dtype": precision.dtype})
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
    judge = plan_judge(opts.judge, opts.seed, identity, backend_name, say, dtype=opts.dtype)
    jury = plan_jury(judge, opts.jury, opts.seed, identity, backend_name, say, dtype=opts.dtype)
    config = _result_config(opts, backend_name, identity, cfg, given.data_hash, judge, jury)
    digest, stages = config_hash(config), stage_hashes(config)
    if not opts.force:
        _refuse_other_precision(run, model.precision, digest)
    if run.prepare(digest, force=opts.force, stages=stages):
        say(f"resuming run in {run.path}")
    else:
        if run.kept:
            say(f"keeping the {run.kept_records()} of the run in {run.path}")
        info = run_info(
            opts, config, digest, identity, given.problems, given.data_hash, given.fields, stages
        )
        run.write_run_info(info.model_copy(update={"precision": model.precision}))
    return judge, list(jury), digest


@dataclass
class _Engines:
    """The engines loaded during a run: the scored model and the judge in use (the same
    object when the judge reuses the model's engine)."""

    model: Backend
    owned: bool
    """Whether the run loaded the model (a borrowed one is never closed here)."""
    judge: Any = None

    def close_model(self) -> None:
        if self.owned:
            self.model.close()

    def close_judge(self) -> None:
        if self.judge is not None and self.judge is not self.model:
            self.judge.close()


def _run_engines(
    run: RunDir,
    opts: ScoreOptions,
    model: _Model,
    given: _Input,
    cfg: SamplingConfig,
    judge: JudgePlan | None,
    jury: Sequence[JudgePlan],
    progress: Any,
    say: Callable[[str], None],
    phases: Phases,
) -> tuple[int, list[JudgeReliability | None]]:
    """The stages that need an engine, in order: load the model, sample, probe, judge
    (and the jury's other judges, one engine loaded at a time); every engine loaded here
    is closed before returning. Returns the completion tokens sampled and the judges'
    reliabilities (the judge's first; empty when no judge ran)."""

    def loader(name: str, path: str) -> Backend:  # the judge: no engine args of the model
        return _load(name, path, opts.model_copy(update={"engine_args": {}}))

    pre = model.preloaded
    engines = _Engines(
        pre.backend if pre else _load(model.backend_name, model.identity.path, opts),
        owned=pre is None,
    )
    for line in model.precision_lines:  # once the engine has loaded in it
        say(line)
    phases.mark("model_load_s")
    problems = given.problems
    try:
        chunk = opts.chunk_size or (16 if model.backend_name == "vllm" else 1)
        tokens = sample_into(run, engines.model, problems, cfg, chunk, progress, given.rollouts)
        given.rollouts = None  # on disk now; later stages read samples.jsonl
        phases.mark("sampling_s")
        _probes(run, opts, model, engines, problems, cfg, judge, loader, chunk, progress)
        phases.mark("probes_s")
        reliabilities = _judges(run, opts, engines, problems, judge, jury, loader, progress, say)
        phases.mark("judge_s")
    finally:
        engines.close_model()
        engines.close_judge()
    return tokens, reliabilities


def _probes(
    run: RunDir,
    opts: ScoreOptions,
    model: _Model,
    engines: _Engines,
    problems: list[Problem],
    cfg: SamplingConfig,
    judge: JudgePlan | None,
    loader: Callable[[str, str], Backend],
    chunk: int,
    progress: Any,
) -> None:
    """The probes on the scored model; with `--mistakes llm` the judge writes the
    mistakes, so it is loaded here, next to the scored model."""
    if judge is not None and opts.probes.mistakes == "llm" and "mistakes" in opts.probes.probes:
        engines.judge = engines.model if judge.reuse else judge.load(opts, loader)
    if not opts.probes.probes:
        return
    # hf packs the chains of a chunk into one sequence: 4 problems per call.
    probe_chunk = opts.chunk_size or (4 if model.backend_name == "hf" else chunk)
    writer = None
    if judge is not None and engines.judge is not None:
        writer = mistake_writer(engines.judge, judge, run)
    probe_into(run, engines.model, problems, cfg, opts.probes, progress, probe_chunk, writer)


def _judges(
    run: RunDir,
    opts: ScoreOptions,
    engines: _Engines,
    problems: list[Problem],
    judge: JudgePlan | None,
    jury: Sequence[JudgePlan],
    loader: Callable[[str, str], Backend],
    progress: Any,
    say: Callable[[str], None],
) -> list[JudgeReliability | None]:
    """The judge (on the scored model's engine when it reuses it, else loaded once the
    scored model is closed), then the jury's other judges one at a time. Returns the
    reliabilities, the judge's first; empty when no judge runs."""
    if judge is None:
        return []
    if engines.judge is None:
        if judge.reuse:
            engines.judge = engines.model
        else:
            engines.close_model()  # a borrowed model stays where it is
            engines.judge = judge.load(opts, loader)
    reliability = judge_all(run, engines.judge, judge, problems, progress, say=say)
    if not jury:
        return [reliability]
    # One judge loaded at a time: the scored model and the first go first.
    engines.close_model()
    engines.close_judge()
    engines.judge = None
    jurors = judge_jurors(run, jury, lambda plan: plan.load(opts, loader), problems, progress, say)
    return [reliability, *jurors]


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
    fields = FieldMap(**opts.fields)
    rollouts: dict[str, list[str]] | None = None
    if opts.from_samples:
        problems, rollouts = load_rollouts(
            opts.from_samples, fields=fields, default_domain=opts.domain, fmt=opts.from_format
        )
    else:
        problems = load_problems(opts.dataset, fields=fields, default_domain=opts.domain)
    if opts.limit is not None:
        problems = problems[: opts.limit]
    # The hash covers the whole (limited) dataset: every shard records the same one, so a
    # merged run has the config hash of one unsharded run.
    data_hash = dataset_hash(problems)
    if opts.shard is not None:
        problems = [p for p in problems if in_shard(p.id, *opts.shard)]
        if not problems:
            raise UsageError(f"shard {opts.shard[0]}/{opts.shard[1]} holds no problems")
    template = load_template(Path(opts.prompt_template)) if opts.prompt_template else None
    if uses(template, "hint"):  # before any model loads: every problem needs a wrong hint
        bad = next((p for p in problems if wrong_hint(p.answer) is None), None)
        if bad is not None:
            raise DataError(
                f"problem {bad.id!r}: no wrong hint for the answer {bad.answer!r} ({{hint}} "
                "needs a number, an option letter A-E, yes/no or true/false)"
            )
    return _Input(problems, rollouts, data_hash, fields, template)


def _identity(opts: ScoreOptions) -> ModelIdentity:
    if opts.backend == "openai":
        if not opts.base_url:
            raise UsageError("--backend openai needs --base-url")
        if not is_local_spec(opts.model):
            return served_identity(opts.model, opts.base_url)
    elif opts.base_url:
        raise UsageError("--base-url is for --backend openai")
    return resolve_model(opts.model, opts.revision)


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


class Phases:
    """Wall-clock phase durations, each measured from the previous mark."""

    def __init__(self, t_start: float) -> None:
        self.t_start = t_start
        self.last = t_start
        self.seconds: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self.last
        self.last = now

    def timings(self) -> Timings:
        return Timings(**self.seconds, total_s=time.perf_counter() - self.t_start)


def _load(name: str, path: str, opts: ScoreOptions) -> Backend:
    return make_backend(
        name,  # type: ignore[arg-type]
        path,
        base_url=opts.base_url,
        api_key_env=opts.api_key_env,
        max_concurrency=opts.max_concurrency,
        dtype=opts.dtype,
        seed=opts.seed,
        max_model_len=opts.max_model_len,
        tensor_parallel_size=opts.tensor_parallel_size,
        gpu_memory_utilization=opts.gpu_memory_utilization,
        trust_remote_code=opts.trust_remote_code,
        engine_args=opts.engine_args or None,
    )


def run_problems(opts: ScoreOptions) -> dict[str, Problem]:
    """The run's problems by id, from its dataset or rollouts file; empty when it can no
    longer be read."""
    fields = FieldMap(**opts.fields)
    try:
        if opts.from_samples:
            problems, _ = load_rollouts(
                opts.from_samples, fields=fields, default_domain=opts.domain, fmt=opts.from_format
            )
        else:
            problems = load_problems(opts.dataset, fields=fields, default_domain=opts.domain)
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
    samples = run.index(SAMPLES_FILE)
    keys = [pid for pid in samples if keep is None or pid in keep]
    check_into(
        run, keys, lambda: questions if questions is not None else run_questions(opts), samples
    )
    diversity = None
    if opts.diversity:
        diversity = DiversityStage(
            embed=opts.diversity_embed,
            strategy=judge is not None and judge.opts.strategy,
            judged=judge is not None,
            seed=opts.seed,
        )
    diversity_into(run, keys, diversity, samples)


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
    diversity_tally = DiversityTally() if opts.diversity else None
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
            opts.seed,
        )
    elif judge is not None:
        judge_section = judge_report(
            run,
            judge.opts,
            judge.backend_name,
            reported,
            reliability,
            opts.seed,
            readout=judge.cfg.readout,
        )
    diversity = None
    if diversity_tally is not None:
        use_strategy = judge is not None and judge.opts.strategy
        diversity = diversity_tally.summary(
            seed=opts.seed,
            embedder=_embedder_of(embedders) if opts.diversity_embed else None,
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
        dataset=opts.from_samples or opts.dataset,
        dataset_sha256=data_hash,
        config_hash=config_hash,
        sampling=sampling.summary(seed=opts.seed),
        probes=probes,
        derivation=derivation.summary(seed=opts.seed),
        support=support.summary(seed=opts.seed),
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


def _sampling_config(
    opts: ScoreOptions, fmt: Literal["chat", "base"], template: str | None
) -> SamplingConfig:
    return SamplingConfig(
        samples=opts.samples,
        temperature=opts.temperature,
        top_p=opts.top_p,
        max_tokens=opts.max_tokens,
        seed=opts.seed,
        prompt_format=fmt,
        template=template,
        stop=BASE_STOP if fmt == "base" else [],
    )


def _result_config(
    opts: ScoreOptions,
    backend: str,
    identity: ModelIdentity,
    cfg: SamplingConfig,
    data_hash: str,
    judge: JudgePlan | None,
    jury: Sequence[JudgePlan] = (),
) -> dict[str, Any]:
    """Settings that change results; the config hash is taken over exactly these (a
    jury's other judges inside `judge`, so the judge stage's hash covers them; absent
    with one judge, so its runs keep their hash)."""
    return {
        "model_sha256": identity.sha256,
        "backend": backend,
        "dtype": opts.dtype,
        "max_model_len": opts.max_model_len,
        "dataset_sha256": data_hash,
        "from_samples": file_hash(opts.from_samples) if opts.from_samples else None,
        "limit": opts.limit,
        "shard": list(opts.shard) if opts.shard else None,
        "sampling": cfg.model_dump(mode="json"),
        "probes": opts.probes.model_dump(mode="json"),
        "judge": (
            _judge_part(opts.judge, judge)
            | ({"jury": [_judge_part(p.opts, p) for p in jury]} if jury else {})
            if judge
            else None
        ),
        "diversity": [opts.diversity, opts.diversity_embed],
    } | engine_config(opts)


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
    return {"engine_args": opts.engine_args} if opts.engine_args else {}
