"""The judge's options (`faithcheck score`'s "Judge" panel, and `faithcheck calibrate`'s):
`JudgeOptions`, one per judge (`faithcheck.judge.choose` builds them from the keywords,
with the command line's checks)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from faithcheck.backends import BackendName
from faithcheck.models import DEFAULT_MODEL
from faithcheck.records import PANEL_JUDGE, Record, option

JudgeBackendName = Literal[BackendName, "chat"]
"""What `--judge-backend` takes: a model backend, or chat (a hosted chat API)."""
JUDGE_BACKENDS: tuple[str, ...] = get_args(JudgeBackendName)

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
    """How `score` runs the judge (the options in the order `--help` lists them)."""

    enabled: bool = option(
        True,
        "--judge/--no-judge",
        param="judge",
        help="Label every judged response aligned / partial / misaligned with a judge model.",
        panel=PANEL_JUDGE,
    )
    """Run the judge (--no-judge skips it, and the judge-based checks with it)."""
    model: str = option(
        DEFAULT_MODEL,
        "--judge-model",
        envvar="FAITHCHECK_JUDGE_MODEL",
        cli_type=list[str] | None,
        cli_default=None,
        help="Judge: embedded alias, checkpoint folder, a hosted chat model with its provider "
        "(openai/o3, anthropic/<model>, google/<model>, openrouter/<org>/<model>, "
        "together/..., fireworks/...), or the model served at --judge-base-url. The small "
        "default is weak: use a strong model for decisions. Repeat for a jury, each judge "
        "as MODEL[,key=value...] with its own backend, base_url, api_key_env, max_tokens, "
        "reasoning_effort, concurrency, http_retries, readout or rationale_tokens; the "
        "other --judge-* options apply to every judge (docs/judges.md#juries). "
        "Env: FAITHCHECK_JUDGE_MODEL.",
        panel=PANEL_JUDGE,
    )
    """--judge-model: alias, checkpoint folder, a provider-prefixed chat model
    (openai/o3), or the model name served at --judge-base-url (`jury_options` splits a
    repeated --judge-model into the judges of a jury)."""
    backend: JudgeBackendName = option(
        "auto",
        cli_type=str,
        help="auto (chat for provider/model names and with --judge-base-url, else the "
        "scoring backend), vllm, hf, chat (any OpenAI-compatible /chat/completions), or "
        "openai (vLLM /completions with token ids).",
        panel=PANEL_JUDGE,
    )
    """--judge-backend: auto (chat for provider-prefixed names or with --judge-base-url,
    else the scoring backend), vllm, hf, openai (completions with token ids), chat."""
    base_url: str | None = option(
        None,
        envvar="FAITHCHECK_JUDGE_BASE_URL",
        help="The judge's endpoint, e.g. http://127.0.0.1:8000/v1 (`vllm serve`); overrides "
        "a provider's default URL. Env: FAITHCHECK_JUDGE_BASE_URL.",
        panel=PANEL_JUDGE,
    )
    """--judge-base-url: the chat (or, with --judge-backend openai, completions) endpoint."""
    api_key_env: str | None = option(
        None,
        help="Name of the environment variable holding the judge's API key (default: the "
        "provider's, e.g. OPENAI_API_KEY); the key itself is never written anywhere.",
        panel=PANEL_JUDGE,
    )
    """Environment variable holding the judge server's API key (its name only)."""
    samples: int | None = option(
        None,
        help="Judge at most N responses per problem (default: as many as --probe-samples).",
        panel=PANEL_JUDGE,
        ge=1,
    )
    """Responses judged per problem (the first ones); None: as many as the probes use
    (--probe-samples), all when that is unset."""
    max_tokens: int = option(
        LOCAL_JUDGE_MAX_TOKENS,
        cli_type=int | None,
        cli_default=None,
        show_default=False,
        help="Judge reply budget in tokens: a short rationale, then the verdict line, plus "
        "hidden reasoning for reasoning models [default: 256 local, 1024 chat, 16384 "
        "reasoning models].",
        panel=PANEL_JUDGE,
        ge=16,
    )
    """Judge reply budget (a short rationale + the verdict line; for reasoning models,
    hidden reasoning too); unset, it depends on the judge (`default_max_tokens`)."""
    reasoning_effort: str | None = option(
        None,
        help="reasoning_effort for a reasoning judge (minimal, low, medium, high).",
        panel=PANEL_JUDGE,
    )
    """--judge-reasoning-effort for reasoning chat judges (minimal, low, medium, high)."""
    concurrency: int = option(
        8, help="Chat judge requests in flight at once.", panel=PANEL_JUDGE, ge=1
    )
    """--judge-concurrency: chat requests in flight at once."""
    http_retries: int = option(
        6,
        help="Retries of a chat judge request after 429, 5xx or a dropped connection "
        "(Retry-After honoured).",
        panel=PANEL_JUDGE,
        ge=0,
    )
    """--judge-http-retries: SDK retries of 429, 5xx and dropped connections."""
    cache: bool = option(
        True,
        "--judge-cache/--no-judge-cache",
        help="Answer a judge question asked before (same judge, same settings) from the "
        "response cache instead of paying for it again.",
        panel=PANEL_JUDGE,
    )
    """Answer repeated judge questions from the response cache (--no-judge-cache)."""
    max_items: int | None = option(
        None,
        help="Judge at most N responses in this run, then stop cleanly (the report says "
        "how many were left unjudged).",
        panel=PANEL_JUDGE,
        ge=1,
    )
    """--judge-max-items: judge at most this many responses in the run, then stop."""
    max_cost: float | None = option(
        None,
        help="USD the judge (with several --judge-model, the whole jury) may spend in this run "
        "(needs --judge-price-in/--judge-price-out): refused up front when the known prompts "
        "plus the completion budget can exceed it; judging stops cleanly, resumable, before "
        "a call that could cross it (the report says how many responses were left unjudged).",
        panel=PANEL_JUDGE,
        ge=0,
    )
    """--judge-max-cost: USD the judge may spend in the run (needs both prices)."""
    batch: bool = option(
        False,
        "--judge-batch",
        help="Send the judge's requests through OpenAI's Batch API (/v1/files + /v1/batches; "
        "openai/ judges only): half the price, replies within 24 h. The batch id is kept in "
        "the run directory: a run stopped while it waits resumes the same batch.",
        panel=PANEL_JUDGE,
    )
    """--judge-batch: send the requests through OpenAI's Batch API (openai/ judges)."""
    price_in: float | None = option(
        None,
        help="USD per million judge prompt tokens (the list price; --judge-batch calls are "
        "charged half), to report the judge's cost.",
        panel=PANEL_JUDGE,
        ge=0,
    )
    """--judge-price-in: USD per million prompt tokens, to print the cost."""
    price_out: float | None = option(
        None,
        help="USD per million judge completion tokens (reasoning included; the list price).",
        panel=PANEL_JUDGE,
        ge=0,
    )
    """--judge-price-out: USD per million completion tokens."""
    readout: ReadoutName = option(
        "auto",
        cli_type=str,
        help="How the judge's label is read: probs (the most probable label after a fixed "
        "verdict prefix, from the next-token probabilities: every item labelled, with "
        "p_aligned / p_partial / p_misaligned), text (the judge writes a verdict line, "
        "which is parsed), or auto (probs for local judges; text for a served or chat "
        "judge: ask a vLLM server for probs, other servers and chat APIs return no label "
        "probabilities).",
        panel=PANEL_JUDGE,
    )
    """--judge-readout: probs (the label read off the next-token probabilities after the
    verdict prefix; every item labelled, with p_aligned, p_partial, p_misaligned), text
    (the judge writes its verdict line, which is parsed) or auto (probs on the engines
    faithcheck runs itself; text for a served judge, `--judge-backend openai`, whose server
    may lack vLLM's `logprob_token_ids`, and for chat APIs; `judge.stage.resolve_readout`)."""
    rationale_tokens: int = option(
        RATIONALE_TOKENS,
        help="With the probs read-out: greedy rationale tokens the judge writes before the "
        "verdict prefix (0: the verdict comes first).",
        panel=PANEL_JUDGE,
        ge=0,
    )
    """--judge-rationale-tokens: with the probs read-out, greedy rationale tokens the
    judge writes before the verdict prefix (0: none)."""
    calibrate: bool = option(
        True,
        "--calibrate/--no-calibrate",
        param="calibrate",
        help="Measure the judge on bundled faithful / unfaithful pairs and report its "
        "reliability (an unreliable judge makes judge checks inconclusive).",
        panel=PANEL_JUDGE,
    )
    """Measure the judge on the bundled calibration pairs (--no-calibrate skips it)."""
    calibration_per_domain: int = option(
        4,
        param="calibration_size",
        help="Calibration problems per domain (math, science, graph); 6 judged items each. "
        "1 (3 problems) is too few: the judge is then never called reliable. "
        "20 takes the whole set (40 problems): affordable with a served or hosted judge, and "
        "what an 8-in-10 judge needs to pass the CI-gated reliability floors.",
        panel=PANEL_JUDGE,
        ge=1,
    )
    """Calibration problems per domain (math, science, graph); 6 items each. 4 (12
    problems, 72 items): a simulated judge right on 9 items in 10 then passes the CI-gated
    floors in 15 of 20 trials, against 10 of 20 at 2 per domain and 19 of 20 at 20
    problems; one right on 8 in 10 passes in 14 of 20 on the whole set
    (`benchmarks/calibration_size.py`). 1 (3 problems) is below the reliability minimum
    (`MIN_CALIBRATION_PROBLEMS`, 4): never reliable. 20 takes the whole set (40
    problems)."""
    strategy: bool = option(
        True,
        "--strategy/--no-strategy",
        param="strategy",
        help="Cluster judged responses by strategy with the pairwise judge (strategy and "
        "faithful diversity).",
        panel=PANEL_JUDGE,
    )
    """Cluster the judged responses by strategy for the strategy-diversity contrast."""
    max_retries: int = Field(1, ge=0)
    """Retries (with a new seed) after an unparseable or cut-off reply."""

    @model_serializer(mode="wrap")
    def _written_order(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # run.json keeps the key order it had before the options were listed first.
        data: dict[str, Any] = handler(self)
        for key in _WRITTEN_LAST:
            if key in data:
                data[key] = data.pop(key)
        return data


_WRITTEN_LAST = (
    "max_retries",
    "calibrate",
    "calibration_per_domain",
    "strategy",
    "readout",
    "rationale_tokens",
)
