"""Rebuild report.json of a run directory from the records on disk and its run.json.

No model is loaded: the report is a fold of records (samples, probes, judge labels,
calibration labels, strategy clusters, and the derived stages' derivation, support and
diversity files), and `faithcheck.pipeline.aggregate.build_report` computes it the way `score`
does, in the order the samples sit in samples.jsonl (bootstrap CIs depend on the order of
the problems). A derived file that is missing (a run scored before those were stages, or a
merged run) is computed first by the same runners `score` runs, those that need no model
(`faithcheck.pipeline.core.derived_stages`); only diversity.jsonl, when the run asked for
it, loads the small offline sentence embedder. `faithcheck merge` uses this to write the
report of the merged run; it also recomputes a report after the report code changed (a
derived file that is complete is kept: delete it to have its stage computed again; a
diversity.jsonl keeps the name of the embedder that computed it, so a run rebuilt on a
machine whose embedder runs in another dtype keeps its values and their name).

The config hash is taken over run.json's `config` minus `UNHASHED_KEYS`, which is exactly
what `score` hashes (it adds `options` after hashing; `merge` adds `merged_from`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from faithcheck.errors import RunDirError
from faithcheck.judge.jury import juror_names
from faithcheck.judge.plan import JudgePlan
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge.stage import (
    JudgeOptions,
    calibration_items,
    calibration_reliability,
    calibration_results,
    judge_config,
)
from faithcheck.models import ModelIdentity
from faithcheck.pipeline.aggregate import build_report
from faithcheck.pipeline.context import Phases
from faithcheck.pipeline.core import derived_stages
from faithcheck.pipeline.options import ScoreOptions
from faithcheck.report import Report, Throughput, Timings
from faithcheck.store.confighash import config_hash
from faithcheck.store.rundir import (
    REPORT_FILE,
    RUN_FILE,
    SAMPLES_FILE,
    RunDir,
    RunInfo,
)
from faithcheck.verdict.core import GateSpec, decide


def read_run(path: Path) -> RunInfo:
    """run.json of a run directory, validated, with its config hash checked.

    Raises:
        RunDirError: no run directory, no or corrupt run.json, or a config hash that does
            not match the config (edited by hand, or written by an incompatible version).
    """
    if not (path / RUN_FILE).is_file():
        raise RunDirError(f"{path} is not a faithcheck run directory (no {RUN_FILE})")
    data = RunDir(path).read_run_info()
    try:
        info = RunInfo.model_validate(data)
        ScoreOptions.model_validate(info.config["options"])
    except (ValueError, KeyError):
        raise RunDirError(f"{path / RUN_FILE} is not a valid run.json") from None
    if config_hash(info.config) != info.config_hash:
        raise RunDirError(
            f"{path / RUN_FILE}: config_hash does not match its config "
            "(edited, or written by an incompatible faithcheck version)"
        )
    return info


def rebuild_report(
    path: Path,
    *,
    gate: GateSpec | None = None,
    timings: Timings | None = None,
    throughput: Throughput | None = None,
) -> Report:
    """Recompute and atomically rewrite report.json of a run (computing first any of
    derivation.jsonl, support.jsonl and diversity.jsonl it lacks).

    Takes the run directory's lock, so it cannot race a `score` writing the same run.
    See `rebuild` for the arguments.
    """
    read_run(path)  # before open(): open() would create a missing directory
    run = RunDir(path)
    run.open()
    try:
        return rebuild(run, gate=gate, timings=timings, throughput=throughput)
    finally:
        run.release()


def rebuild(
    run: RunDir,
    *,
    gate: GateSpec | None = None,
    timings: Timings | None = None,
    throughput: Throughput | None = None,
) -> Report:
    """Recompute report.json of a run directory whose lock the caller holds.

    Args:
        run: The run directory, opened (locked) by the caller.
        gate: Verdict checks; the defaults when None (`score --gate/--require` are not
            recorded in run.json, so pass them again).
        timings: Timings to report; default: those of the existing report.json, else the
            rebuild's own (model and sampling phases 0).
        throughput: Throughput to report; default: that of the existing report.json,
            else 0 tokens.

    Raises:
        RunDirError: run.json is missing or invalid, or the run is unfinished (fewer
            problems sampled than run.json says, calibration labels missing).
    """
    info = read_run(run.path)
    config = info.config
    opts = ScoreOptions.model_validate(config["options"])
    want = info.dataset.get("problems")
    have = len(run.index(SAMPLES_FILE))
    if isinstance(want, int) and have != want:
        raise RunDirError(
            f"{run.path}: {have} of {want} problems have samples; finish the run with "
            "`faithcheck score` (same options, same --out) first"
        )
    judge = _judge_plan(opts, config)
    jury = _jury_plans(opts, config, judge)  # names the first judge too
    calibration = _calibration(run, judge) if judge is not None and opts.judge.calibrate else None
    reliabilities = [_calibration(run, p) if opts.judge.calibrate else None for p in jury]
    phases = Phases(time.perf_counter())
    for name in ("model_load_s", "sampling_s", "probes_s", "judge_s"):
        phases.mark(name)
    # A derived file that is missing or outdated (as in runs scored by versions without
    # the derived stages) is computed here; a complete one is kept.
    derived_stages(run, opts, None, judge)
    report = build_report(
        run,
        opts,
        ModelIdentity.model_validate(info.model),
        config["backend"],
        config["dataset_sha256"],
        info.config_hash,
        None,
        0,
        judge,
        calibration,
        phases,
        jury=list(zip(jury, reliabilities, strict=True)),
    )
    previous = _previous(run.path)
    if timings is None and previous is not None:
        timings = Timings.model_validate(previous["timings"])
    if throughput is None:
        throughput = (
            Throughput.model_validate(previous["throughput"])
            if previous is not None
            else Throughput(completion_tokens=0, tokens_per_s=None)
        )
    report = report.model_copy(
        update={
            "timings": timings or report.timings,
            "throughput": throughput,
            "precision": info.precision,
        }
    )
    report = report.model_copy(update={"verdict": decide(report, gate)})
    run.write_report(report)
    return report


def _judge_plan(opts: ScoreOptions, config: Mapping[str, Any]) -> JudgePlan | None:
    """The run's judge as `plan_judge` resolved it, rebuilt from run.json (nothing loads).

    The report needs the judge's options and backend name; the rubric settings only
    for the seed of the calibration CIs.
    """
    judged = config.get("judge")
    if not judged:
        return None
    return _plan_of(opts.judge, judged, config["backend"], opts.sampling.seed)


def _jury_plans(
    opts: ScoreOptions, config: Mapping[str, Any], lead: JudgePlan | None
) -> list[JudgePlan]:
    """The other judges of a jury, as `plan_jury` resolved them; names every judge."""
    settings = (config.get("judge") or {}).get("jury") or []
    if lead is None or not opts.jury:
        return []
    plans = [
        _plan_of(j, c, config["backend"], opts.sampling.seed)
        for j, c in zip(opts.jury, settings, strict=True)
    ]
    names = juror_names([lead.opts.model, *(p.opts.model for p in plans)])
    for plan, name in zip([lead, *plans], names, strict=True):
        plan.name = name
    return plans


def _plan_of(j: JudgeOptions, judged: Mapping[str, Any], backend: str, seed: int) -> JudgePlan:
    """One judge's plan from its options and its part of the hashed config."""
    name = backend if j.backend == "auto" else j.backend
    # The read-out as the run resolved it (absent: text, the only one before probs).
    cfg = judge_config(j.model_copy(update={"readout": "text"}), seed, "chat")
    if judged.get("readout") == "probs":
        cfg = cfg.model_copy(
            update={"readout": "probs", "rationale_tokens": judged.get("rationale_tokens", 0)}
        )
    return JudgePlan(j, name, None, str(judged.get("identity", "")), False, cfg)


def _calibration(run: RunDir, judge: JudgePlan) -> JudgeReliability:
    """The judge's reliability from calibration.jsonl, as `calibrate_into` computes it."""
    items = calibration_items(judge.opts.calibration_per_domain, judge.cfg.seed)
    # The last label of an item wins, as in `calibrate_into`.
    have = {r.item_id: r for r in calibration_results(run, judge.name)}
    missing = [i.item_id for i in items if i.item_id not in have]
    if missing:
        raise RunDirError(
            f"{run.path}: {len(missing)} calibration items have no label (e.g. {missing[0]}); "
            "finish the run with `faithcheck score` first"
        )
    return calibration_reliability(items, have, judge.cfg.seed)


def _previous(path: Path) -> dict[str, Any] | None:
    """The existing report.json, when it is readable."""
    try:
        data = orjson.loads((path / REPORT_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and "timings" in data else None
