"""What the judge cost a run: tokens, calls, cache hits, cost, and who answered.

Totals come from the run's ledger (judge_calls.jsonl, one line per reply, paid or
cached, appended as replies arrive), so they cover every purpose the judge served —
the rubric, calibration, strategy clustering, mistake writing — and every invocation
of a resumed run, and they survive a kill.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from pydantic import Field

from faithcheck.judge.client import JudgeCall
from faithcheck.records import Record

BATCH_PRICE_FACTOR = 0.5
"""What a request sent through the provider's batch API costs, as a share of the list
price: OpenAI bills its Batch API (/v1/batches) at half the list price of both prompt
and completion tokens. `--judge-price-in/--judge-price-out` take the list prices; every
cost faithcheck computes (`judge.usage`, the `--judge-max-cost` cap up front and while
running) charges a batched call this share of them."""


class Prices(NamedTuple):
    """A judge's list prices, USD per million tokens."""

    price_in: float
    """Per million prompt tokens."""
    price_out: float
    """Per million completion tokens (reasoning included)."""

    def cost(self, prompt: int, completion: int, batch: bool = False) -> float:
        """USD of so many tokens, at the batch price when `batch`."""
        usd = (prompt * self.price_in + completion * self.price_out) / 1e6
        return usd * BATCH_PRICE_FACTOR if batch else usd


def calls_cost(
    calls: Iterable[JudgeCall], prices: Prices, jury: Mapping[str, Prices | None] | None = None
) -> float:
    """USD of the paid calls (cached ones cost nothing), each at its judge's prices:
    `jury` by name for the judges of a jury, `prices` for the rest."""
    total = 0.0
    for call in calls:
        if not call.cached:
            own = (jury or {}).get(call.judge or "") or prices
            total += own.cost(call.prompt_tokens, call.completion_tokens, call.batch)
    return total


class TokenCount(Record):
    """Calls and tokens of one slice of the ledger (paid calls only count tokens)."""

    calls: int = 0
    """Replies paid for (not from the cache)."""
    cached_calls: int = 0
    """Replies answered from the response cache."""
    prompt_tokens: int = 0
    """Prompt tokens of the paid calls."""
    completion_tokens: int = 0
    """Completion tokens of the paid calls (reasoning included)."""
    reasoning_tokens: int = 0
    """Of those, reasoning tokens, where the server reports them."""
    cut_at_budget: int = 0
    """Replies (paid or cached) that stopped at the token budget."""

    def add(self, call: JudgeCall) -> TokenCount:
        """This count plus one call."""
        if call.cached:
            return self.model_copy(
                update={
                    "cached_calls": self.cached_calls + 1,
                    "cut_at_budget": self.cut_at_budget + (call.finish_reason == "length"),
                }
            )
        return self.model_copy(
            update={
                "calls": self.calls + 1,
                "prompt_tokens": self.prompt_tokens + call.prompt_tokens,
                "completion_tokens": self.completion_tokens + call.completion_tokens,
                "reasoning_tokens": self.reasoning_tokens + call.reasoning_tokens,
                "cut_at_budget": self.cut_at_budget + (call.finish_reason == "length"),
            }
        )


class JudgeUsageReport(Record):
    """The report's `judge.usage`: what judging cost and which model did it."""

    total: TokenCount
    """Every call of the run."""
    by_purpose: dict[str, TokenCount]
    """rubric, calibration, strategy, mistakes."""
    tokens_per_item: dict[str, float] | None = None
    """Mean prompt and completion tokens per rubric call (paid or cached), to price
    another run; None without rubric calls."""
    served_models: list[str] = Field(default_factory=list)
    """Model ids the server said it ran (e.g. a dated snapshot of o3)."""
    system_fingerprints: list[str] = Field(default_factory=list)
    """The servers' configuration fingerprints seen."""
    price_in: float | None = None
    """USD per million prompt tokens (--judge-price-in; the list price; with a jury, the
    first judge's, each judge's own in `jury.judges[].usage`)."""
    price_out: float | None = None
    """USD per million completion tokens (--judge-price-out; the list price)."""
    cost_usd: float | None = None
    """Cost of the paid calls at those prices (batched calls at `BATCH_PRICE_FACTOR` of
    them; with a jury, each judge's calls at its own); None without both prices."""
    max_items: int | None = None
    """--judge-max-items, when set."""
    max_cost: float | None = None
    """--judge-max-cost (USD), when set."""
    unjudged: int = 0
    """Responses left unjudged because --judge-max-items or --judge-max-cost was reached."""


def summarize_usage(
    calls: Iterable[JudgeCall],
    *,
    price_in: float | None = None,
    price_out: float | None = None,
    max_items: int | None = None,
    unjudged: int = 0,
    max_cost: float | None = None,
    prices: Mapping[str, Prices | None] | None = None,
) -> JudgeUsageReport:
    """Aggregate a run's ledger (batched calls at the batch price; with a jury, `prices`
    holds each judge's own by name)."""
    calls = list(calls)
    total = TokenCount()
    by: dict[str, TokenCount] = {}
    models: dict[str, None] = {}
    fingerprints: dict[str, None] = {}
    rubric_prompt = rubric_completion = rubric_calls = 0
    for call in calls:
        total = total.add(call)
        by[call.purpose] = by.get(call.purpose, TokenCount()).add(call)
        if call.model:
            models[call.model] = None
        if call.system_fingerprint:
            fingerprints[call.system_fingerprint] = None
        if call.purpose == "rubric":
            rubric_calls += 1
            rubric_prompt += call.prompt_tokens
            rubric_completion += call.completion_tokens
    per_item = (
        {
            "prompt_tokens": round(rubric_prompt / rubric_calls, 1),
            "completion_tokens": round(rubric_completion / rubric_calls, 1),
        }
        if rubric_calls
        else None
    )
    cost = None
    if price_in is not None and price_out is not None:
        cost = round(calls_cost(calls, Prices(price_in, price_out), prices), 6)
    return JudgeUsageReport(
        total=total,
        by_purpose=dict(sorted(by.items())),
        tokens_per_item=per_item,
        served_models=list(models),
        system_fingerprints=list(fingerprints),
        price_in=price_in,
        price_out=price_out,
        cost_usd=cost,
        max_items=max_items,
        max_cost=max_cost,
        unjudged=unjudged,
    )


def usage_line(usage: JudgeUsageReport) -> str:
    """One line for the console summary."""
    t = usage.total
    text = (
        f"judge usage: {t.calls} calls paid, {t.cached_calls} from the cache; "
        f"{t.prompt_tokens:,} prompt + {t.completion_tokens:,} completion tokens"
    )
    if t.reasoning_tokens:
        text += f" ({t.reasoning_tokens:,} reasoning)"
    if usage.cost_usd is not None:
        text += f"; ${usage.cost_usd:,.2f}"
    if usage.served_models:
        text += f"; served by {', '.join(usage.served_models)}"
    if usage.unjudged:
        caps = [f"--judge-max-items {usage.max_items}"] if usage.max_items is not None else []
        caps += [f"--judge-max-cost {usage.max_cost:g}"] if usage.max_cost is not None else []
        text += f"; {usage.unjudged} responses unjudged ({', '.join(caps)})"
    return text
