"""Which judge a `score` run uses, and the judge phase of the run.

The plan is resolved before any model loads (a bad judge spec fails in a second); the
judge phase then labels the responses, clusters them by strategy and calibrates the
judge (see `faithcheck.judge.stage` for the stages themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from faithcheck.backends import choose_backend, make_backend
from faithcheck.backends.base import Backend, DType
from faithcheck.backends.http import redact_url
from faithcheck.backends.options import EngineOptions
from faithcheck.backends.precision import precision_for
from faithcheck.errors import UsageError
from faithcheck.judge import JudgeConfig, JudgeResult
from faithcheck.judge.batch import BATCHES_FILE, BatchJudge, BatchRecord, check_batch_provider
from faithcheck.judge.budget import Budget, BudgetReached, check_prices, preflight_jury
from faithcheck.judge.cache import default_cache
from faithcheck.judge.chat import (
    CHAT_MAX_TOKENS,
    REASONING_MAX_TOKENS,
    ChatJudge,
    is_reasoning_model,
)
from faithcheck.judge.client import LEDGER_FILE, JudgeAsk, JudgeCall, JudgeSession, as_client
from faithcheck.judge.mistakes import write_mistakes
from faithcheck.judge.options import LOCAL_JUDGE_MAX_TOKENS, JudgeOptions
from faithcheck.judge.providers import provider_of, resolve_target
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge.run import rubric_asks, sample_item_id
from faithcheck.judge.stage import (
    SMALL_JUDGE_WARNING,
    calibrate_into,
    calibration_items,
    calibration_reliability,
    calibration_results,
    judge_config,
    judge_into,
    judged_count,
    strategy_into,
)
from faithcheck.judge.usage import Prices
from faithcheck.models import DEFAULT_MODEL, EMBEDDED, ModelIdentity, resolve_model
from faithcheck.probes.run import MistakeWriter
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord
from faithcheck.store.rundir import JUDGE_FILE, SAMPLES_FILE, RunDir


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
        client: ChatJudge | None = None,
        name: str | None = None,
    ) -> None:
        self.opts = opts
        self.name = name
        """Its name in a jury (tagging its records); None when it is the run's one judge."""
        self.client = client
        """The chat judge, connected and checked at planning (backend `chat`)."""
        self.dtype = dtype
        """The resolved dtype a local judge loads in (None behind a server)."""
        self.backend_name = backend_name
        self.path = path
        self.identity = identity
        self.reuse = reuse
        self.cfg = cfg
        self.jury: list[JudgePlan] = []
        """Every judge of its jury, itself included (set by `plan_jury`); empty with one
        judge."""

    def load(self, loader: Callable[[str, str], Backend], engine: EngineOptions) -> Any:
        """Load the judge: `loader(backend, path)` for local models, else the server
        (the chat client made at planning; an OpenAI-compatible server with the
        `engine`'s context length and requests in flight)."""
        if self.client is not None:
            return self.client
        if self.backend_name == "openai":
            return make_openai_backend(self.opts, self.cfg.seed, engine)
        assert self.path is not None
        return loader(self.backend_name, self.path)

    @property
    def cache_identity(self) -> str:
        """What the response cache keys this judge's replies by."""
        if self.client is not None:
            return self.client.identity
        return f"{self.backend_name}:{self.identity}:{self.dtype}"

    def session(
        self,
        judge: Any,
        run: RunDir | None,
        ledger: Callable[[list[JudgeCall]], None] | None = None,
    ) -> JudgeSession:
        """The judge with the response cache (unless --no-judge-cache) and a ledger: the
        run's judge_calls.jsonl, else `ledger`."""
        client = as_client(judge, self.cache_identity)
        cache = default_cache() if self.opts.cache else None
        if self.opts.batch and isinstance(client, ChatJudge):
            client = batch_client(client, run)
        if run is not None:
            ledger = lambda calls: run.append(LEDGER_FILE, calls)  # noqa: E731
        return JudgeSession(
            client, cache=cache, ledger=ledger, budget=self.budget(run), name=self.name
        )

    def budget(self, run: RunDir | None) -> Budget | None:
        """Its side of --judge-max-cost (None without a cap): its prices, and what the
        run has paid so far, every judge of the jury included."""
        o = self.opts
        if o.max_cost is None or o.price_in is None or o.price_out is None:
            return None
        paid = run.load(LEDGER_FILE, JudgeCall) if run is not None else []
        return Budget.from_ledger(
            o.max_cost, o.price_in, o.price_out, paid, batch=o.batch, jury=self.jury_prices
        )

    def uncached(self, asks: list[JudgeAsk]) -> list[JudgeAsk]:
        """The asks its response cache cannot answer (all of them with --no-judge-cache)."""
        cache = default_cache() if self.opts.cache else None
        if cache is None:
            return asks
        return [a for a in asks if cache.get(cache.key(self.cache_identity, a)) is None]

    @property
    def prices(self) -> Prices | None:
        """Its list prices (None without both)."""
        o = self.opts
        return (
            None if o.price_in is None or o.price_out is None else Prices(o.price_in, o.price_out)
        )

    @property
    def jury_prices(self) -> dict[str, Prices | None] | None:
        """Every judge of its jury by name, with its prices (None with one judge)."""
        if not self.jury:
            return None
        return {p.name: p.prices for p in self.jury if p.name is not None}


def batch_client(chat: ChatJudge, run: RunDir | None) -> BatchJudge:
    """The chat judge through the batch API, its batches recorded in the run directory
    (in memory without one)."""
    if run is None:
        kept: list[BatchRecord] = []
        return BatchJudge(chat, recorded=lambda: list(kept), record=kept.append)
    return BatchJudge(
        chat,
        recorded=lambda: run.load(BATCHES_FILE, BatchRecord),
        record=lambda rec: run.append(BATCHES_FILE, [rec]),
    )


def make_openai_backend(opts: JudgeOptions, seed: int, engine: EngineOptions) -> Backend:
    """The judge over an OpenAI-compatible server (its own URL and key variable; the
    server chooses the precision)."""
    assert opts.base_url is not None
    return make_backend(
        "openai",
        opts.model,
        dtype="auto",
        seed=seed,
        max_model_len=engine.max_model_len,
        base_url=opts.base_url,
        api_key_env=opts.api_key_env,
        max_concurrency=engine.max_concurrency,
    )


def plan_judge(
    j: JudgeOptions,
    seed: int,
    policy: ModelIdentity,
    policy_backend: str,
    say: Callable[[str], None],
    dtype: DType = "auto",
) -> JudgePlan | None:
    """Resolve the judge of a `score` run (model identity, backend, prompt format,
    precision) before anything loads; None with --no-judge. A local judge with
    --judge-backend auto runs on the scored model's backend, and reuses its engine when
    it is the same model."""
    if not j.enabled:
        return None
    return resolve_judge(j, seed, dtype, say, policy=(policy, policy_backend))


def resolve_judge(
    j: JudgeOptions,
    seed: int,
    dtype: DType,
    say: Callable[[str], None],
    *,
    policy: tuple[ModelIdentity, str] | None = None,
) -> JudgePlan:
    """Which judge this is, decided here only (`score`'s `plan_judge`, `calibrate`'s
    `load_judge`; `faithcheck.pipeline.rebuild` reads back what this decided): its kind,
    backend, prompt format, read-out, `dtype` resolved for its engine, and its identity,
    the name its replies are cached and its labels hashed under, which never holds a
    credential (a served judge's URL is redacted). `policy`: the scored model and its
    backend, in a `score` run.

    Raises:
        UsageError: a judge that cannot be reached as asked (a chat judge's model or key
            refused, a missing --judge-base-url, prices or a batch it cannot have).
    """
    check_prices(j.max_cost, j.price_in, j.price_out)
    kind = judge_kind(j)
    if j.batch and kind != "chat":
        raise UsageError(
            "--judge-batch is for a hosted judge (--judge-model openai/<model>); a local or "
            "served judge has no batch API"
        )
    if kind == "chat":
        if j.batch:
            check_batch_provider(
                resolve_target(j.model, j.base_url, j.api_key_env).provider, j.model
            )
        client = open_chat_judge(j)
        cfg = judge_config(j, seed, "chat", served=True)
        if policy is not None:
            say(f"judge: {client.model} at {client.describe()['base_url']} (chat)")
        return JudgePlan(j, "chat", None, client.identity, False, cfg, client=client)
    if kind == "openai":
        if not j.base_url:
            raise UsageError("--judge-backend openai needs --judge-base-url")
        cfg = judge_config(j, seed, "chat", endpoint=True)
        return JudgePlan(j, "openai", None, f"{redact_url(j.base_url)}#{j.model}", False, cfg)
    identity = resolve_model(j.model)
    if policy is not None:
        name = policy[1] if j.backend == "auto" else j.backend
    else:
        name = choose_backend(j.backend, say)  # type: ignore[arg-type]  # not chat here
    fmt: Literal["chat", "base"] = "chat" if identity.has_chat_template else "base"
    cfg = judge_config(j, seed, fmt)
    precision = precision_for(dtype, name)
    if policy is None:
        say(f"precision: {precision.dtype} ({precision.reason})")
    elif j.model == DEFAULT_MODEL:
        say("warning: " + SMALL_JUDGE_WARNING)
    reuse = policy is not None and identity.sha256 == policy[0].sha256 and name == policy[1]
    return JudgePlan(j, name, identity.path, identity.sha256, reuse, cfg, precision.dtype)


def judge_all(
    run: RunDir,
    backend: Any,
    plan: JudgePlan,
    problems: list[Problem],
    progress: Any,
    say: Callable[[str], None] | None = None,
) -> JudgeReliability | None:
    """Judge the responses, cluster them by strategy, and calibrate the judge; returns
    the judge's reliability (None with --no-calibrate).

    With --judge-max-cost the phase is refused up front when its known questions can
    cost more (`faithcheck.judge.budget`), and stops cleanly when the next call could:
    `say` tells why, and the report counts what was left unjudged.

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

    every = sum(
        min(index.count(pid), per_problem) if per_problem is not None else index.count(pid)
        for pid in keys
    )
    session = plan.session(backend, run)
    total = _room(run, plan, keys, every)
    items = calibration_items(plan.opts.calibration_per_domain, plan.cfg.seed)
    if plan.jury:
        # The cap is the run's: the first judge checks what every judge already knows.
        if plan is plan.jury[0] and session.budget is not None:
            parts = []
            for p in plan.jury:
                budget = p.budget(run)
                if budget is None or p.cfg.readout != "text" or not any(budget.prices):
                    continue  # free (a judge run in process) or read from probabilities
                asks, what = _known(run, p, by_id, judged(), items, _room(run, p, keys, every))
                parts.append((p.name or p.opts.model, budget, p.uncached(asks), what))
            preflight_jury(parts)
    elif session.budget is not None and plan.cfg.readout == "text":
        session.preflight(*_known(run, plan, by_id, judged(), items, total))
    try:
        task = _task(progress, f"judge {plan.name}" if plan.name else "judge", total)
        judge_into(run, session, by_id, judged(), plan.cfg, task, plan.opts.max_items, plan.name)
        if plan.opts.strategy:
            strategy_into(run, session, by_id, judged(), plan.cfg)
        if not plan.opts.calibrate:
            return None
        # The same judge with the same settings labels the same items the same way: a second
        # checkpoint judged by it (e.g. --model A --model B) is calibrated from the response
        # cache without a single paid call.
        name = f"calibration {plan.name}" if plan.name else "calibration"
        task = _task(progress, name, len(items))
        return calibrate_into(run, session, items, plan.cfg, task, name=plan.name)
    except BudgetReached as stop:
        # A clean stop: what was judged is on disk, the rest is reported as unjudged, and
        # an unfinished calibration counts its missing items as judge errors.
        (say or _stderr)(f"warning: {stop}")
        if not plan.opts.calibrate:
            return None
        have = {r.item_id: r for r in calibration_results(run, plan.name)}
        return calibration_reliability(items, have, plan.cfg.seed)


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


def _room(run: RunDir, plan: JudgePlan, keys: list[str], total: int) -> int:
    """Of `total` responses, how many the judge may still judge under --judge-max-items."""
    cap = plan.opts.max_items
    if cap is None:
        return total
    on_disk = run.index(JUDGE_FILE)
    return min(total, max(0, cap - sum(judged_count(on_disk, p, plan.name) for p in keys)))


def _known(
    run: RunDir,
    plan: JudgePlan,
    problems: dict[str, Problem],
    samples: Iterator[SampleRecord],
    items: list[Any],
    limit: int,
) -> tuple[list[JudgeAsk], str]:
    """The questions the judge phase already knows it will ask, and what they are in
    words: the rubric's first attempts on the responses the judge has not judged yet (up
    to `limit`) and its calibration items not on disk (none with --no-calibrate)."""
    on_disk = run.index(JUDGE_FILE)
    pending: list[tuple[str, str, str]] = []
    done: dict[str, set[object]] = {}
    for s in samples:
        if len(pending) >= limit:
            break
        if s.problem_id not in done:
            rows = on_disk.rows(s.problem_id)
            done[s.problem_id] = {
                r.get("sample_index") for _, r in rows if r.get("judge") == plan.name
            }
        if s.sample_index not in done[s.problem_id]:
            item_id = sample_item_id(s.problem_id, s.sample_index)
            pending.append((item_id, problems[s.problem_id].question, s.completion))
    todo = []
    if plan.opts.calibrate:
        calibrated = {r.item_id for r in calibration_results(run, plan.name)}
        todo = [(i.item_id, i.question, i.response) for i in items if i.item_id not in calibrated]
    what = f"{len(pending)} responses + {len(todo)} calibration items"
    return rubric_asks([*pending, *todo], plan.cfg), what


def _task(progress: Any, name: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    task = progress.add_task(name, total=total)
    return lambda n: progress.advance(task, n)


def mistake_writer(backend: Any, plan: JudgePlan, run: RunDir | None = None) -> MistakeWriter:
    """`--mistakes llm`: the judge rewrites each chosen step with one error."""
    session = plan.session(backend, run)
    return lambda items: write_mistakes(session, items, plan.cfg)


def judge_kind(j: JudgeOptions) -> Literal["chat", "openai", "local"]:
    """How the judge is reached: a chat endpoint, vLLM completions with token ids, or a
    model loaded here. `auto` means chat for a provider-prefixed name that is neither an
    embedded alias nor a local folder, and for any name given with --judge-base-url."""
    if j.backend in ("chat", "openai"):
        return j.backend
    if j.backend != "auto":
        if j.base_url:
            raise UsageError(
                f"--judge-base-url is for a served judge, not --judge-backend {j.backend}"
            )
        return "local"
    if j.base_url:
        return "chat"
    if provider_of(j.model) is not None and j.model not in EMBEDDED and not Path(j.model).exists():
        return "chat"
    return "local"


def open_chat_judge(j: JudgeOptions) -> ChatJudge:
    """Resolve, connect and check the chat judge (its model listed, its key accepted),
    before any model is loaded or any sample drawn."""
    target = resolve_target(j.model, j.base_url, j.api_key_env)
    client = ChatJudge(
        target,
        reasoning_effort=j.reasoning_effort,
        concurrency=j.concurrency,
        max_retries=j.http_retries,
    )
    try:
        client.check_model()
    except BaseException:
        client.close()
        raise
    return client


def default_max_tokens(j: JudgeOptions) -> int:
    """The judge's reply budget when --judge-max-tokens is not given: room for hidden
    reasoning on reasoning models, a rationale on chat models, less on local ones."""
    if judge_kind(j) == "chat":
        model = j.model.rsplit("/", 1)[-1]
        if j.reasoning_effort or is_reasoning_model(model):
            return REASONING_MAX_TOKENS
        return CHAT_MAX_TOKENS
    return LOCAL_JUDGE_MAX_TOKENS


def load_judge(
    opts: JudgeOptions, dtype: DType, seed: int, max_model_len: int, say: Callable[[str], None]
) -> tuple[JudgePlan, Any]:
    """The judge's plan (`resolve_judge`) and the judge itself (a chat client, a server,
    or a local model), for judging on its own (`calibrate`): no scored model to share an
    engine with. A served judge gets --judge-concurrency requests in flight."""
    plan = resolve_judge(opts, seed, dtype, say)
    engine = EngineOptions(
        dtype=dtype, max_model_len=max_model_len, max_concurrency=opts.concurrency
    )

    def loader(name: str, path: str) -> Backend:
        return make_backend(
            name,  # type: ignore[arg-type]
            path,
            dtype=plan.dtype or dtype,  # type: ignore[arg-type]
            seed=seed,
            max_model_len=max_model_len,
        )

    return plan, plan.load(loader, engine)


def calibrate_judge(
    opts: JudgeOptions,
    items: list[Any],
    dtype: DType,
    seed: int,
    max_model_len: int,
    say: Callable[[str], None],
    advance: Callable[[int], None] | None = None,
    name: str | None = None,
) -> tuple[JudgePlan, JudgeReliability, list[JudgeResult], list[JudgeCall]]:
    """Load one judge on its own, judge the calibration `items` and close it (`calibrate`):
    its plan, reliability, results (tagged with `name`, a judge of a jury) and calls."""
    calls: list[JudgeCall] = []
    results: list[JudgeResult] = []
    plan, judge = load_judge(opts, dtype, seed, max_model_len, say)
    plan.name = name
    try:
        session = plan.session(judge, None, ledger=calls.extend)
        calibrate_into(None, session, items, plan.cfg, advance, collect=results, name=name)
    finally:
        judge.close()
    rel = calibration_reliability(items, {r.item_id: r for r in results}, seed)
    return plan, rel, results, calls
