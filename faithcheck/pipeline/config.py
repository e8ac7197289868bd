"""The settings of a run that change its results (run.json `config`), from its options and
what was resolved before anything loaded: the config hash and the stage hashes are taken
over exactly these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faithcheck.judge.mistakes import MISTAKE_PROMPT_HASH
from faithcheck.judge.options import JudgeOptions
from faithcheck.judge.plan import JudgePlan
from faithcheck.judge.stage import judge_config_dict, readout_config
from faithcheck.models import ModelIdentity
from faithcheck.pipeline.options import ScoreOptions
from faithcheck.probes.records import ProbeConfig
from faithcheck.sampling import SamplingConfig
from faithcheck.store.runmeta import file_hash


def result_config(
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
        "probes": probes_part(opts.probes),
        "judge": (
            judge_part(opts.judge, judge)
            | ({"jury": [judge_part(p.opts, p) for p in jury]} if jury else {})
            if judge
            else None
        ),
        "diversity": opts.diversity.config_part(),
    } | engine_config(opts)


def probes_part(probes: ProbeConfig) -> dict[str, Any]:
    """The probe settings that change probe records: with `--mistakes llm`, also the hash of
    the prompt the judge writes the wrong steps with (absent otherwise, so rule-mistake runs
    keep their hash)."""
    part = probes.model_dump(mode="json")
    if probes.mistakes == "llm" and "mistakes" in probes.probes:
        part["mistake_prompt_hash"] = MISTAKE_PROMPT_HASH
    return part


def judge_part(j: JudgeOptions, plan: JudgePlan) -> dict[str, Any]:
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
