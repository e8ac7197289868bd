"""Which judge a `score` run uses, and the judge phase of the run.

The plan is resolved before any model loads (a bad judge spec fails in a second); the
judge phase then labels the responses, clusters them by strategy and calibrates the
judge (see `faithcheck.judge_stage` for the stages themselves).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from faithcheck.backends import make_backend
from faithcheck.backends.base import Backend, DType
from faithcheck.backends.http import redact_url
from faithcheck.backends.precision import resolve
from faithcheck.errors import UsageError
from faithcheck.jsonio import atomic_write_bytes, dumps, read_jsonl
from faithcheck.judge import JUDGE_PROMPT_HASH, JudgeConfig, JudgeResult
from faithcheck.judge.calibration import CalibrationItem
from faithcheck.judge.mistakes import write_mistakes
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge_stage import (
    SMALL_JUDGE_WARNING,
    JudgeOptions,
    calibrate_into,
    calibration_items,
    judge_config,
    judge_into,
    strategy_into,
)
from faithcheck.models import DEFAULT_MODEL, ModelIdentity, cache_root, resolve_model
from faithcheck.probes.run import MistakeWriter
from faithcheck.records import Problem
from faithcheck.rundir import CALIBRATION_FILE, SAMPLES_FILE, RunDir
from faithcheck.sampling import SampleRecord


class JudgePlan:
    """Which judge a run uses, resolved before anything loads."""

    def __init__(
        self,
        opts: JudgeOptions,
        backend_name: str,
        path: str | None,
        identity: str,
        reuse: bool,
        cfg: JudgeConfig,
        dtype: str | None = None,
    ) -> None:
        self.opts = opts
        self.dtype = dtype
        """The resolved dtype a local judge loads in (None behind a server)."""
        self.backend_name = backend_name
        self.path = path
        self.identity = identity
        self.reuse = reuse
        self.cfg = cfg

    def load(self, score_opts: Any, loader: Callable[[str, str], Backend]) -> Backend:
        """Load the judge: `loader(backend, path)` for local models, else the server."""
        if self.backend_name == "openai":
            return make_openai_backend(self.opts, score_opts)
        assert self.path is not None
        return loader(self.backend_name, self.path)


def make_openai_backend(opts: JudgeOptions, score_opts: Any) -> Backend:
    """The judge over an OpenAI-compatible server (its own URL and key variable)."""
    assert opts.base_url is not None
    return make_backend(
        "openai",
        opts.model,
        dtype=score_opts.dtype,
        seed=score_opts.seed,
        max_model_len=score_opts.max_model_len,
        base_url=opts.base_url,
        api_key_env=opts.api_key_env,
        max_concurrency=score_opts.max_concurrency,
    )


def plan_judge(
    j: JudgeOptions,
    seed: int,
    policy: ModelIdentity,
    policy_backend: str,
    say: Callable[[str], None],
    dtype: DType = "auto",
) -> JudgePlan | None:
    """Resolve the judge (model identity, backend, prompt format) before anything loads;
    None with --no-judge."""
    if not j.enabled:
        return None
    if j.backend == "openai":
        if not j.base_url:
            raise UsageError("--judge-backend openai needs --judge-base-url")
        cfg = judge_config(j, seed, "chat")
        return JudgePlan(j, "openai", None, f"{redact_url(j.base_url)}#{j.model}", False, cfg)
    if j.base_url:
        raise UsageError("--judge-base-url is for --judge-backend openai")
    identity = resolve_model(j.model)
    name = policy_backend if j.backend == "auto" else j.backend
    fmt: Literal["chat", "base"] = "chat" if identity.has_chat_template else "base"
    cfg = judge_config(j, seed, fmt)
    reuse = identity.sha256 == policy.sha256 and name == policy_backend
    if j.model == DEFAULT_MODEL:
        say("warning: " + SMALL_JUDGE_WARNING)
    return JudgePlan(j, name, identity.path, identity.sha256, reuse, cfg, resolve(dtype))


def judge_all(
    run: RunDir,
    backend: Backend,
    plan: JudgePlan,
    problems: list[Problem],
    progress: Any,
) -> JudgeReliability | None:
    """Judge the responses, cluster them by strategy, and calibrate the judge; returns
    the judge's reliability (None with --no-calibrate).

    The run's samples are read from samples.jsonl one problem at a time: the first
    `--judge-samples` of each problem (by sample index), problems in id order.
    """
    by_id = {p.id: p for p in problems}
    index = run.index(SAMPLES_FILE)
    keys = sorted(pid for pid in index if pid in by_id)
    per_problem = plan.opts.samples

    def judged() -> Iterator[SampleRecord]:
        for group in run.sample_groups(keys, index):
            yield from group[:per_problem] if per_problem is not None else group

    total = sum(
        min(index.count(pid), per_problem) if per_problem is not None else index.count(pid)
        for pid in keys
    )
    judge_into(run, backend, by_id, judged(), plan.cfg, _task(progress, "judge", total))
    if plan.opts.strategy:
        strategy_into(run, backend, by_id, judged(), plan.cfg)
    if not plan.opts.calibrate:
        return None
    items = calibration_items(plan.opts.calibration_per_domain, plan.cfg.seed)
    cache = calibration_cache_path(plan, items)
    seed_calibration(run, cache)
    reliability = calibrate_into(
        run, backend, items, plan.cfg, _task(progress, "calibration", len(items))
    )
    save_calibration(run, cache)
    return reliability


def calibration_cache_path(plan: JudgePlan, items: Sequence[CalibrationItem]) -> Path:
    """Where this judge's calibration results are cached, keyed by everything that could
    change a label: the judge's identity, prompt, settings and the items themselves."""
    key = {
        "judge": plan.identity,
        "backend": plan.backend_name,
        # bf16 and fp32 judges may label an item differently.
        "dtype": plan.dtype,
        "prompt": JUDGE_PROMPT_HASH,
        "cfg": plan.cfg.model_dump(mode="json"),
        "items": [i.model_dump(mode="json") for i in items],
    }
    digest = hashlib.sha256(dumps(key)).hexdigest()[:24]
    return cache_root() / "calibration" / f"{digest}.jsonl"


def seed_calibration(run: RunDir, cache: Path) -> None:
    """Start a run's calibration from the cache: the same judge with the same settings
    labels the same items the same way, so every checkpoint judged by it (e.g. with
    `--model A --model B`) pays for calibration once."""
    if run.load(CALIBRATION_FILE, JudgeResult) or not cache.is_file():
        return
    try:
        cached = [JudgeResult.model_validate(row) for row in read_jsonl(cache)]
    except ValueError:  # a damaged cache is ignored, never trusted
        return
    run.append(CALIBRATION_FILE, cached)


def save_calibration(run: RunDir, cache: Path) -> None:
    """Keep this run's calibration results for the next run with the same judge."""
    results = run.load(CALIBRATION_FILE, JudgeResult)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache, b"".join(dumps(r) + b"\n" for r in results))
    except OSError:
        pass  # a cache that cannot be written only costs time


def _task(progress: Any, name: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    task = progress.add_task(name, total=total)
    return lambda n: progress.advance(task, n)


def mistake_writer(backend: Backend, plan: JudgePlan) -> MistakeWriter:
    """`--mistakes llm`: the judge rewrites each chosen step with one error."""
    return lambda items: write_mistakes(backend, items, plan.cfg)
