"""The jury's part of a `score` run: plan the other judges, judge and calibrate with
each in turn, and fold judge.jsonl into the report's `judge` section.

The first judge is planned and run as a one-judge run's judge is (it alone clusters
strategies and writes `--mistakes llm`); the others follow it, one loaded at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from faithcheck.backends.base import DType
from faithcheck.judge import JUDGE_PROMPT_HASH, JUDGE_PROMPT_VERSION, JudgeRecord
from faithcheck.judge.jury import Juror, fold_jury, juror_names
from faithcheck.judge.plan import JudgePlan, judge_all, judge_kind, plan_judge
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge.report import JudgeReport
from faithcheck.judge.stage import JudgeOptions, judge_usage, judge_warnings, unjudged_warnings
from faithcheck.models import ModelIdentity
from faithcheck.records import Problem
from faithcheck.store.rundir import JUDGE_FILE, RunDir


def plan_jury(
    lead: JudgePlan | None,
    others: Sequence[JudgeOptions],
    seed: int,
    policy: ModelIdentity,
    policy_backend: str,
    say: Callable[[str], None],
    dtype: DType = "auto",
) -> list[JudgePlan]:
    """The other judges of a jury, each planned as the first is (a bad spec fails before
    anything loads); names every judge, the first included. Empty with one judge."""
    if lead is None or not others:
        return []
    names = juror_names([lead.opts.model, *(o.model for o in others)])
    lead.name = names[0]
    plans = []
    for opts, name in zip(others, names[1:], strict=True):
        plan = plan_judge(opts, seed, policy, policy_backend, say, dtype=dtype)
        assert plan is not None  # a juror is enabled
        plan.name = name
        plans.append(plan)
    for plan in (lead, *plans):  # one cap for the whole jury (`faithcheck.judge.budget`)
        plan.jury = [lead, *plans]
    return plans


def juror_prices(opts: JudgeOptions, own: Mapping[str, Any]) -> JudgeOptions:
    """A judge of a jury at its prices: its own (`price_in=`, `price_out=` in its spec),
    else --judge-price-in/out when it is reached over HTTP (a hosted chat model, a
    served one); a judge run in process costs nothing, so it is priced at 0 and never
    counts against --judge-max-cost."""
    if "price_in" in own or "price_out" in own or judge_kind(opts) != "local":
        return opts
    if opts.price_in is None and opts.price_out is None:
        return opts
    return opts.model_copy(update={"price_in": 0.0, "price_out": 0.0})


def judge_jurors(
    run: RunDir,
    plans: Sequence[JudgePlan],
    load: Callable[[JudgePlan], Any],
    problems: list[Problem],
    progress: Any,
    say: Callable[[str], None] | None = None,
) -> list[JudgeReliability | None]:
    """Judge and calibrate with each other judge of the jury in turn (loaded by `load`,
    closed before the next); their reliabilities in order. `say` tells why a spending cap
    stopped one."""
    out = []
    for plan in plans:
        backend = load(plan)
        try:
            out.append(judge_all(run, backend, plan, problems, progress, say=say))
        finally:
            backend.close()
    return out


def jury_judge_report(
    run: RunDir,
    plans: Sequence[JudgePlan],
    reliabilities: Sequence[JudgeReliability | None],
    keep: set[str] | None,
    seed: int,
) -> JudgeReport:
    """The report's `judge` section of a jury: `summary` of the jury's labels, `jury`
    with each judge's own summary and reliability and their agreement; `reliability` is
    null (each judge has its own)."""
    jurors = [
        Juror(
            name=plan.name or plan.opts.model,
            model=plan.opts.model,
            backend=plan.backend_name,
            readout=plan.cfg.readout,
            reliability=rel,
            warnings=judge_warnings(plan.opts, rel) + unjudged_warnings(usage),
            usage=usage,
        )
        for plan, rel in zip(plans, reliabilities, strict=True)
        for usage in [judge_usage(run, plan.opts, keep, judge=plan.name or plan.opts.model)]
    ]
    groups = (
        g
        for g in run.groups(JUDGE_FILE, JudgeRecord.model_validate)
        if keep is None or (g and g[0].problem_id in keep)
    )
    summary, jury = fold_jury(groups, jurors, seed=seed, prompt_version=JUDGE_PROMPT_VERSION)
    warnings = [f"{j.name}: {w}" for j in jurors for w in j.warnings]
    if jury.reason is not None:
        warnings.insert(0, jury.reason)
    prices = {j.name: p.prices for j, p in zip(jurors, plans, strict=True)}
    return JudgeReport(
        model=" + ".join(j.name for j in jurors),
        backend=" + ".join(j.backend for j in jurors),
        readout="probs" if all(j.readout == "probs" for j in jurors) else "text",
        prompt_version=JUDGE_PROMPT_VERSION,
        prompt_hash=JUDGE_PROMPT_HASH,
        summary=summary,
        reliability=None,
        warnings=warnings,
        usage=judge_usage(run, plans[0].opts, keep, jury=prices),
        jury=jury,
    )
