"""The judge stages of `faithcheck score`: rubric labels, calibration, strategy clusters.

Each stage appends its records to the run directory as they are produced and skips
what is already there, so a killed run resumes without re-judging anything:

    judge.jsonl        one JudgeRecord per judged response
    calibration.jsonl  one JudgeResult per calibration item (the judge's own test)
    strategy.jsonl     one StrategyRecord per problem (pairwise same-strategy clusters)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, get_args

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from faithcheck.backends import BackendName
from faithcheck.backends.http import redact_url
from faithcheck.errors import UsageError
from faithcheck.judge import (
    JUDGE_PROMPT_HASH,
    JUDGE_PROMPT_VERSION,
    JudgeConfig,
    JudgeRecord,
    JudgeResult,
    judge_samples,
    judge_texts,
    strategy_verdicts,
)
from faithcheck.judge.batch import BATCH_MAX_REQUESTS
from faithcheck.judge.calibration import CalibrationItem, build_items, load_calibration
from faithcheck.judge.client import LEDGER_FILE, JudgeCall, JudgeLike
from faithcheck.judge.reliability import JudgeReliability, reliability
from faithcheck.judge.report import JudgeReport
from faithcheck.judge.summary import summarize_judge_groups
from faithcheck.judge.usage import JudgeUsageReport, Prices, summarize_usage
from faithcheck.models import DEFAULT_MODEL
from faithcheck.records import Problem, Record
from faithcheck.sampling import SampleRecord
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.rundir import (
    CALIBRATION_FILE,
    JUDGE_FILE,
    SAMPLES_FILE,
    STRATEGY_FILE,
    RunDir,
)

JudgeBackendName = Literal[BackendName, "chat"]
"""What `--judge-backend` takes: a model backend, or chat (a hosted chat API)."""
JUDGE_BACKENDS: tuple[str, ...] = get_args(JudgeBackendName)

SMALL_JUDGE_WARNING = (
    "the judge is the small embedded default model, whose labels are weak (see "
    "judge.reliability); for decisions, pass --judge-model with a strong instruct model, "
    "a hosted chat model (e.g. --judge-model openai/o3) or one served by `vllm serve` "
    "(--judge-base-url URL)"
)

LOCAL_JUDGE_MAX_TOKENS = 256
"""Default reply budget of a local judge (a short rationale + the verdict line)."""

ReadoutName = Literal["auto", "text", "probs"]
"""What `--judge-readout` takes."""
READOUTS: tuple[str, ...] = get_args(ReadoutName)

RATIONALE_TOKENS = 0
"""Default `--judge-rationale-tokens` of the probability read-out: the verdict prefix
comes first. Measured on the default calibration slice with SmolLM2-135M
(`benchmarks/judge_readout.py`): a 32-token rationale gave AUROC 0.41 against 0.48
without, for twice the prompt tokens."""

OPERATIONAL_JUDGE_OPTIONS = frozenset(
    {"api_key_env", "concurrency", "http_retries", "cache", "max_items", "price_in", "price_out"}
    | {"max_cost", "batch"}
)
"""Judge options that change how judging runs or is billed, never a label: left out of
the config hash, so a run resumes with other values."""


class JudgeOptions(Record):
    """How `score` runs the judge."""

    enabled: bool = True
    """Run the judge (--no-judge skips it, and the judge-based checks with it)."""
    model: str = DEFAULT_MODEL
    """--judge-model: alias, checkpoint folder, a provider-prefixed chat model
    (openai/o3), or the model name served at --judge-base-url."""
    backend: JudgeBackendName = "auto"
    """--judge-backend: auto (chat for provider-prefixed names or with --judge-base-url,
    else the scoring backend), vllm, hf, openai (completions with token ids), chat."""
    base_url: str | None = None
    """--judge-base-url: the chat (or, with --judge-backend openai, completions) endpoint."""
    api_key_env: str | None = None
    """Environment variable holding the judge server's API key (its name only)."""
    samples: int | None = Field(None, ge=1)
    """Responses judged per problem (the first ones); None: as many as the probes use
    (--probe-samples), all when that is unset."""
    max_tokens: int = Field(LOCAL_JUDGE_MAX_TOKENS, ge=16)
    """Judge reply budget (a short rationale + the verdict line; for reasoning models,
    hidden reasoning too)."""
    reasoning_effort: str | None = None
    """--judge-reasoning-effort for reasoning chat judges (minimal, low, medium, high)."""
    concurrency: int = Field(8, ge=1)
    """--judge-concurrency: chat requests in flight at once."""
    http_retries: int = Field(6, ge=0)
    """--judge-http-retries: SDK retries of 429, 5xx and dropped connections."""
    cache: bool = True
    """Answer repeated judge questions from the response cache (--no-judge-cache)."""
    max_items: int | None = Field(None, ge=1)
    """--judge-max-items: judge at most this many responses in the run, then stop."""
    max_cost: float | None = Field(None, ge=0)
    """--judge-max-cost: USD the judge may spend in the run (needs both prices)."""
    batch: bool = False
    """--judge-batch: send the requests through OpenAI's Batch API (openai/ judges)."""
    price_in: float | None = Field(None, ge=0)
    """--judge-price-in: USD per million prompt tokens, to print the cost."""
    price_out: float | None = Field(None, ge=0)
    """--judge-price-out: USD per million completion tokens."""
    max_retries: int = Field(1, ge=0)
    """Retries (with a new seed) after an unparseable or cut-off reply."""
    calibrate: bool = True
    """Measure the judge on the bundled calibration pairs (--no-calibrate skips it)."""
    calibration_per_domain: int = Field(4, ge=1)
    """Calibration problems per domain (math, science, graph); 6 items each. 4 (12
    problems, 72 items): a simulated judge right on 9 items in 10 then passes the CI-gated
    floors in 15 of 20 trials, against 10 of 20 at 2 per domain and 19 of 20 at 20
    problems; one right on 8 in 10 passes in 14 of 20 on the whole set
    (`benchmarks/calibration_size.py`). 1 (3 problems) is below the reliability minimum
    (`MIN_CALIBRATION_PROBLEMS`, 4): never reliable. 20 takes the whole set (40
    problems)."""
    strategy: bool = True
    """Cluster the judged responses by strategy for the strategy-diversity contrast."""
    readout: ReadoutName = "auto"
    """--judge-readout: probs (the label read off the next-token probabilities after the
    verdict prefix; every item labelled, with p_aligned, p_partial, p_misaligned), text
    (the judge writes its verdict line, which is parsed) or auto (probs where the judge
    exposes log-probabilities: local engines and --judge-backend openai; text for chat
    APIs)."""
    rationale_tokens: int = Field(RATIONALE_TOKENS, ge=0)
    """--judge-rationale-tokens: with the probs read-out, greedy rationale tokens the
    judge writes before the verdict prefix (0: none)."""


class StrategyPair(Record):
    """One comparison the strategy judge made by the probability read-out."""

    a: int
    """Sample index of the cluster's representative."""
    b: int
    """Sample index of the response compared with it."""
    p_same: float = Field(ge=0.0, le=1.0)
    """P(SAME), renormalized over SAME and DIFFERENT; the pair was judged the same
    strategy when it is above 0.5."""
    label_mass: float = Field(ge=0.0)
    """The two labels' next-token probability before renormalizing."""


class StrategyRecord(Record):
    """A line of strategy.jsonl: one problem's responses clustered by strategy."""

    problem_id: str
    """The problem."""
    sample_indices: list[int]
    """The clustered responses, in clustering order."""
    clusters: list[int]
    """Cluster index per response (0, 1, ... in order of first appearance)."""
    undecided: int = 0
    """Pairs the judge gave no valid verdict for (counted as different strategies)."""
    pairs: list[StrategyPair] | None = None
    """Probability read-out: every comparison made, in the order made; None (and absent
    from the file) for the text read-out."""

    @model_serializer(mode="wrap")
    def _drop_no_pairs(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A text read-out record has no `pairs` key: its line is the same as one written by a
        # version without the probability read-out.
        data: dict[str, Any] = handler(self)
        if data.get("pairs", "") is None:
            del data["pairs"]
        return data


def resolve_readout(readout: str, chat: bool, endpoint: bool = False) -> Literal["text", "probs"]:
    """The read-out a judge uses. `auto` is probs only on an engine faithcheck runs itself
    (transformers, vLLM in process), which always exposes the labels' log-probabilities;
    a served judge (`--judge-backend openai`, `endpoint`) gets probs only when asked
    (`--judge-readout probs`: vLLM's `logprob_token_ids`, which other OpenAI-compatible
    servers lack), and a chat API (`chat`) has text only.

    Raises:
        UsageError: probs asked of a chat API.
    """
    if readout == "probs" and chat:
        raise UsageError(
            "--judge-readout probs needs a judge that exposes log-probabilities (a local "
            "model, or --judge-backend openai for a vLLM server); a chat API has text only"
        )
    if readout == "auto":
        return "text" if chat or endpoint else "probs"
    return "text" if chat or readout == "text" else "probs"


def judge_config(
    opts: JudgeOptions,
    seed: int,
    fmt: Literal["chat", "base"],
    *,
    served: bool = False,
    endpoint: bool = False,
) -> JudgeConfig:
    """The judge settings a run uses (`served`: a chat endpoint answers; `endpoint`: an
    OpenAI-compatible completions server, `--judge-backend openai`).

    Raises:
        UsageError: the probs read-out asked of a chat endpoint.
    """
    # Local engines: 32 replies per engine call, decoded together (the judge's prompts are
    # long, so bigger batches mostly add prefill memory, not speed, on CPU). A chat
    # endpoint: one wave of --judge-concurrency requests per batch, so judge.jsonl is
    # appended after every wave (each reply reaches the response cache as it arrives).
    # Through the batch API (--judge-batch): as many questions per batch as it takes.
    return JudgeConfig(
        max_tokens=opts.max_tokens,
        max_retries=opts.max_retries,
        seed=seed,
        prompt_format=fmt,
        batch_size=(BATCH_MAX_REQUESTS if opts.batch else opts.concurrency) if served else 32,
        readout=resolve_readout(opts.readout, served, endpoint),
        rationale_tokens=opts.rationale_tokens,
    )


def judge_into(
    run: RunDir,
    backend: JudgeLike,
    problems: Mapping[str, Problem],
    samples: Iterable[SampleRecord],
    cfg: JudgeConfig,
    advance: Callable[[int], None] | None = None,
    max_items: int | None = None,
    name: str | None = None,
) -> None:
    """Judge the samples not yet in judge.jsonl, appending records batch by batch.

    `samples` is consumed lazily (one problem's records at a time from the run's file);
    what is already judged is looked up problem by problem, not loaded whole. With
    `max_items`, judging stops once judge.jsonl holds that many records. `name`: the
    judge of a jury whose records these are (each record says so); None with one judge.
    """
    on_disk = run.index(JUDGE_FILE)
    room = (
        None
        if max_items is None
        else max(0, max_items - sum(judged_count(on_disk, pid, name) for pid in on_disk))
    )

    def todo() -> Iterator[SampleRecord]:
        current: str | None = None
        done: set[object] = set()
        for s in samples:
            if s.problem_id != current:
                current = s.problem_id
                done = {
                    row.get("sample_index")
                    for _, row in on_disk.rows(current)
                    if row.get("judge") == name
                }
            if s.sample_index not in done:
                yield s

    def capped() -> Iterator[SampleRecord]:
        for n, s in enumerate(todo()):
            if room is not None and n >= room:
                return
            yield s

    batch: list[JudgeRecord] = []
    for record in judge_samples(backend, problems, capped(), cfg):
        batch.append(record if name is None else record.model_copy(update={"judge": name}))
        if len(batch) == cfg.batch_size:
            run.append(JUDGE_FILE, batch)
            if advance:
                advance(len(batch))
            batch = []
    if batch:
        run.append(JUDGE_FILE, batch)
        if advance:
            advance(len(batch))


def judged_count(index: ProblemIndex, pid: str, name: str | None) -> int:
    """Records of problem `pid` in judge.jsonl from judge `name` (None: the one judge of
    a one-judge run)."""
    if name is None:
        return index.count(pid)
    return sum(row.get("judge") == name for _, row in index.rows(pid))


def calibration_items(per_domain: int, seed: int) -> list[CalibrationItem]:
    """The calibration slice: `per_domain` problems of each domain, six items each."""
    return build_items(load_calibration(limit=per_domain), seed=seed)


def calibrate_into(
    run: RunDir | None,
    backend: JudgeLike,
    items: Sequence[CalibrationItem],
    cfg: JudgeConfig,
    advance: Callable[[int], None] | None = None,
    collect: list[JudgeResult] | None = None,
    name: str | None = None,
) -> JudgeReliability:
    """Judge the calibration items (those not on disk yet) and score the judge.

    With `run` None nothing is written (the `calibrate` command keeps its own file);
    `collect` receives the new results as they come. `name`: the judge of a jury (its
    results in calibration.jsonl say so; the others' are not its own).
    """
    have = {r.item_id: r for r in calibration_results(run, name)} if run else {}
    todo = [i for i in items if i.item_id not in have]
    for start in range(0, len(todo), cfg.batch_size):
        chunk = todo[start : start + cfg.batch_size]
        results = judge_texts(
            backend, [(i.item_id, i.question, i.response) for i in chunk], cfg, "calibration"
        )
        if name is not None:
            results = [r.model_copy(update={"judge": name}) for r in results]
        if run is not None:
            run.append(CALIBRATION_FILE, results)
        if collect is not None:
            collect.extend(results)
        have.update({r.item_id: r for r in results})
        if advance:
            advance(len(chunk))
    return calibration_reliability(items, have, cfg.seed)


def calibration_results(run: RunDir, name: str | None) -> list[JudgeResult]:
    """One judge's results in calibration.jsonl (`name` None: the one judge)."""
    return [r for r in run.load(CALIBRATION_FILE, JudgeResult) if r.judge == name]


def calibration_reliability(
    items: Sequence[CalibrationItem], results: Mapping[str, JudgeResult], seed: int
) -> JudgeReliability:
    """The judge's reliability from its calibration results by item id (a missing item
    counts as a judge error); AUROC ranks by the continuous score where there is one."""
    labels = {i.item_id: r.label for i in items if (r := results.get(i.item_id))}
    scores = {
        i.item_id: r.p_aligned
        for i in items
        if (r := results.get(i.item_id)) is not None and r.p_aligned is not None
    }
    return reliability(items, labels, seed=seed, scores=scores)


STRATEGY_CHUNK = 64
"""Problems clustered together: their comparisons of a round share one batched call."""


def strategy_into(
    run: RunDir,
    backend: JudgeLike,
    problems: Mapping[str, Problem],
    samples: Iterable[SampleRecord],
    cfg: JudgeConfig,
    chunk: int = STRATEGY_CHUNK,
) -> None:
    """Cluster each problem's judged responses by strategy (problems not on disk yet).

    Greedy clustering is sequential within a problem, so the problems of a chunk advance
    together: round r compares every problem's response r with that problem's
    representatives, all in one batched judge call. `samples` (grouped by problem) is
    read one chunk of problems at a time, and each chunk's clusters are appended as soon
    as they exist.
    """
    done = set(run.index(STRATEGY_FILE))
    groups: dict[str, list[SampleRecord]] = {}
    for s in samples:
        if s.problem_id in done:
            continue
        if s.problem_id not in groups and len(groups) == chunk:
            _cluster_chunk(run, backend, problems, groups, cfg)
            groups = {}
        groups.setdefault(s.problem_id, []).append(s)
    _cluster_chunk(run, backend, problems, groups, cfg)


def _cluster_chunk(
    run: RunDir,
    backend: JudgeLike,
    problems: Mapping[str, Problem],
    groups: dict[str, list[SampleRecord]],
    cfg: JudgeConfig,
) -> None:
    groups = {pid: g for pid, g in groups.items() if len(g) >= 2}
    reps: dict[str, list[int]] = {pid: [] for pid in groups}
    labels: dict[str, list[int]] = {pid: [] for pid in groups}
    undecided = dict.fromkeys(groups, 0)
    pairs: dict[str, list[StrategyPair]] = {pid: [] for pid in groups}
    for r in range(max((len(g) for g in groups.values()), default=0)):
        asks = [(pid, rep) for pid, group in groups.items() if r < len(group) for rep in reps[pid]]
        verdicts = strategy_verdicts(
            backend,
            [
                (problems[pid].question, groups[pid][rep].completion, groups[pid][r].completion)
                for pid, rep in asks
            ],
            cfg,
        )
        answers: dict[str, list[bool | None]] = {}
        for (pid, rep), verdict in zip(asks, verdicts, strict=True):
            answers.setdefault(pid, []).append(verdict.same)
            if verdict.p_same is not None and verdict.label_mass is not None:
                group = groups[pid]
                pairs[pid].append(
                    StrategyPair(
                        a=group[rep].sample_index,
                        b=group[r].sample_index,
                        p_same=verdict.p_same,
                        label_mass=verdict.label_mass,
                    )
                )
        for pid, group in groups.items():
            if r >= len(group):
                continue
            said = answers.get(pid, [])
            undecided[pid] += sum(v is None for v in said)
            cluster = next((c for c, v in enumerate(said) if v is True), None)
            if cluster is None:
                cluster = len(reps[pid])
                reps[pid].append(r)
            labels[pid].append(cluster)
    run.append(
        STRATEGY_FILE,
        [
            StrategyRecord(
                problem_id=pid,
                sample_indices=[s.sample_index for s in group],
                clusters=labels[pid],
                undecided=undecided[pid],
                pairs=pairs[pid] if cfg.readout == "probs" else None,
            )
            for pid, group in groups.items()
        ],
    )


def strategy_clusters(run: RunDir) -> dict[str, dict[int, int]]:
    """Strategy cluster per sample index, per problem, from strategy.jsonl (see
    `strategy_lookup`; this one holds the whole file)."""
    lookup = strategy_lookup(run)
    return {pid: clusters for pid in run.index(STRATEGY_FILE) if (clusters := lookup(pid))}


def strategy_lookup(run: RunDir) -> Callable[[str], dict[int, int] | None]:
    """Strategy cluster per sample index of one problem, read from strategy.jsonl on demand.

    None for a problem without clusters, and for one where the judge left any pair
    undecided: clustering counts an undecided pair as different, so a judge that cannot
    answer would otherwise report maximal strategy diversity.
    """
    index = run.index(STRATEGY_FILE)

    def lookup(pid: str) -> dict[int, int] | None:
        records = next(run.groups(STRATEGY_FILE, StrategyRecord.model_validate, [pid], index), [])
        if not records or records[-1].undecided != 0:
            return None
        last = records[-1]
        return dict(zip(last.sample_indices, last.clusters, strict=True))

    return lookup


def aligned_lookup(run: RunDir, index: ProblemIndex) -> Callable[[str], dict[int, bool]]:
    """Judge-aligned (label 1) per sample index of one problem, from judge.jsonl on demand.

    With a jury, the first judge's labels (it judges every problem before the others, so
    a problem's first record is its own), as for strategy clusters."""

    def lookup(pid: str) -> dict[int, bool]:
        records = next(run.groups(JUDGE_FILE, JudgeRecord.model_validate, [pid], index), [])
        first = records[0].judge if records else None
        return {r.sample_index: r.label == 1.0 for r in records if r.judge == first}

    return lookup


def judge_report(
    run: RunDir,
    opts: JudgeOptions,
    backend_name: str,
    keep: set[str] | None,
    calibration: JudgeReliability | None,
    seed: int,
    readout: Literal["text", "probs"] = "text",
) -> JudgeReport:
    """The report's `judge` section from judge.jsonl, read one problem at a time
    (restricted to the problems in `keep`; None: all)."""
    groups = (
        g
        for g in run.groups(JUDGE_FILE, JudgeRecord.model_validate)
        if keep is None or (g and g[0].problem_id in keep)
    )
    warnings = judge_warnings(opts, calibration)
    summary = summarize_judge_groups(
        groups, seed=seed, prompt_version=JUDGE_PROMPT_VERSION, judge_model=opts.model
    )
    usage = judge_usage(run, opts, keep)
    warnings += unjudged_warnings(usage)
    return JudgeReport(
        model=opts.model,
        backend=backend_name,
        readout=readout,
        prompt_version=JUDGE_PROMPT_VERSION,
        prompt_hash=JUDGE_PROMPT_HASH,
        summary=summary,
        reliability=calibration,
        warnings=warnings,
        usage=usage,
    )


def judge_warnings(opts: JudgeOptions, calibration: JudgeReliability | None) -> list[str]:
    """Caveats about one judge: the small default model, no or a failed calibration."""
    warnings = []
    if opts.model == DEFAULT_MODEL and opts.backend not in ("openai", "chat"):
        warnings.append(SMALL_JUDGE_WARNING)
    if calibration is None:
        warnings.append("the judge was not calibrated (--no-calibrate): its reliability is unknown")
    elif not calibration.reliable:
        warnings.append(
            "the judge is unreliable on the calibration pairs: " + "; ".join(calibration.reasons)
        )
    return warnings


def unjudged_warnings(usage: JudgeUsageReport) -> list[str]:
    """The caveat of a judge that left responses unjudged."""
    if not usage.unjudged:
        return []
    return [
        f"{usage.unjudged} responses were left unjudged (a --judge-max-items or "
        "--judge-max-cost cap): the judge's numbers rest on the responses judged, with "
        "CIs over fewer problems; rerun with a higher cap to judge the rest"
    ]


def judge_usage(
    run: RunDir,
    opts: JudgeOptions,
    keep: set[str] | None,
    *,
    judge: str | None = None,
    jury: Mapping[str, Prices | None] | None = None,
) -> JudgeUsageReport:
    """The `judge.usage` section from the run's ledger (and, with --judge-max-items or
    --judge-max-cost, the responses left unjudged).

    With a jury: `judge` names one judge (its own calls at its prices, the responses it
    left unjudged), or `jury` holds every judge's prices by name (all calls, each at its
    judge's prices; unjudged counts each judge's missing labels)."""
    names: list[str | None] = [judge] if judge is not None else list(jury or [None])
    unjudged = 0
    if opts.max_items is not None or opts.max_cost is not None:
        samples, judged = run.index(SAMPLES_FILE), run.index(JUDGE_FILE)
        for pid in samples:
            if keep is not None and pid not in keep:
                continue
            n = samples.count(pid)
            want = min(n, opts.samples) if opts.samples is not None else n
            unjudged += sum(max(0, want - judged_count(judged, pid, name)) for name in names)
    calls = run.load(LEDGER_FILE, JudgeCall)
    return summarize_usage(
        [c for c in calls if c.judge == judge] if judge is not None else calls,
        price_in=opts.price_in,
        price_out=opts.price_out,
        max_items=opts.max_items,
        unjudged=unjudged,
        max_cost=opts.max_cost,
        prices=jury,
    )


def readout_config(cfg: JudgeConfig) -> dict[str, Any]:
    """The resolved read-out's part of the hashed config: absent for the text read-out
    (added after runs existed, so those keep their config hash)."""
    if cfg.readout == "text":
        return {}
    return {"readout": cfg.readout, "rationale_tokens": cfg.rationale_tokens}


def judge_config_dict(opts: JudgeOptions) -> dict[str, Any]:
    """The judge settings that change results (for the run's config hash; the read-out
    enters resolved, through `readout_config`)."""
    if not opts.enabled:
        return {"enabled": False}
    exclude = set(OPERATIONAL_JUDGE_OPTIONS) | {"readout", "rationale_tokens"}
    values = opts.model_dump(mode="json", exclude=exclude)
    if values.get("reasoning_effort") is None:
        # Added after runs existed: absent unless set, so their config hashes still match.
        values.pop("reasoning_effort", None)
    if values["base_url"]:  # credentials in a URL never reach run.json
        values["base_url"] = redact_url(values["base_url"])
    return values | {"prompt_version": JUDGE_PROMPT_VERSION, "prompt_hash": JUDGE_PROMPT_HASH}
