"""The judge's spending cap (`--judge-max-cost USD`).

A call's worst case is its prompt (estimated: hosted tokenizers are not available
offline) plus its whole completion budget (`max_tokens`, hidden reasoning included),
at `--judge-price-in` / `--judge-price-out`. Two rules keep a run under the cap:

- before the judge phase pays for anything, the worst case of the questions it already
  knows (the rubric's first attempts and the calibration items, less what the response
  cache answers) must fit, or the run is refused with the numbers;
- before each call (a wave of live requests, or a whole batch), the cost so far (the
  run's ledger, every invocation of a resumed run included) plus that call's worst
  case must fit, its prompts scaled by the most the server's counts have exceeded the
  estimate so far; otherwise the call is not sent and `BudgetReached` stops the judge
  phase cleanly: everything judged so far is on disk, and a rerun with a higher cap
  resumes from there.

Retries and strategy clustering are not known in advance; the second rule covers them.
The cap holds up to the estimate's error on the first call (a wave of
`--judge-concurrency` requests, or the first batch) of an invocation.

Prices are list prices; with `--judge-batch` a call costs `BATCH_PRICE_FACTOR` of them
(`faithcheck.judge.usage`, the one place calls are priced), in both rules.

The cap is the run's, not one judge's. With a jury, the first judge's phase checks the
first rule for every judge at once (the sum of their worst cases), before any of them
pays; the cost so far of the second rule is the whole ledger, each judge's calls at its
own prices, so a judge that runs later sees what the earlier ones spent (each says in
the report how many responses it left unjudged). Each judge learns its own estimate
error, so with a jury the cap holds up to that error on each judge's first call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from faithcheck.backends.base import ChatPrompt
from faithcheck.errors import BackendError, UsageError
from faithcheck.judge.client import JudgeAsk, JudgeCall
from faithcheck.judge.usage import Prices, calls_cost

CHARS_PER_TOKEN = 3.0
"""Prompt characters per token assumed by the estimate: fewer than the ~4 of English
prose under OpenAI's tokenizers, so that math, code and other scripts are not
underestimated."""
MESSAGE_OVERHEAD_TOKENS = 8
"""Tokens a chat API adds per message (role and separators), rounded up."""


class BudgetReached(BackendError):
    """The next judge call could take the run's cost past --judge-max-cost."""


def prompt_tokens(ask: JudgeAsk) -> int:
    """An upper estimate of an ask's prompt tokens."""
    if isinstance(ask.prompt, ChatPrompt):
        texts = [m.get("content") or "" for m in ask.prompt.messages]
    else:
        texts = [ask.prompt.text]
    chars = sum(len(t) for t in texts)
    return math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * len(texts)


class Budget:
    """The cap, one judge's prices and what the run has spent."""

    def __init__(
        self,
        max_cost: float,
        price_in: float,
        price_out: float,
        spent: float = 0.0,
        batch: bool = False,
    ) -> None:
        self.max_cost = max_cost
        """USD the run may spend on its judges."""
        self.prices = Prices(price_in, price_out)
        """The judge's list prices, USD per million prompt / completion tokens."""
        self.batch = batch
        """Its questions go through the batch API: worst cases at the batch price."""
        self.spent = spent
        """USD the run has spent so far (paid calls only, every judge's)."""
        self.scale = 1.0
        """How far the server's prompt counts have run above the estimate (at least 1):
        later estimates are scaled by it, so an estimate proved low is corrected after
        the first replies."""

    @classmethod
    def from_ledger(
        cls,
        max_cost: float,
        price_in: float,
        price_out: float,
        calls: Iterable[JudgeCall],
        batch: bool = False,
        jury: Mapping[str, Prices | None] | None = None,
    ) -> Budget:
        """A budget that starts from what the run's ledger says was paid: `jury` holds
        the prices of a jury's judges by name (each judge's calls at its own)."""
        return cls(
            max_cost,
            price_in,
            price_out,
            calls_cost(calls, Prices(price_in, price_out), jury),
            batch=batch,
        )

    def cost(self, prompt: int, completion: int, batch: bool | None = None) -> float:
        """USD of so many tokens (`batch` None: as this judge's questions are sent)."""
        return self.prices.cost(prompt, completion, self.batch if batch is None else batch)

    def worst(self, asks: Sequence[JudgeAsk]) -> float:
        """The most these asks can cost: estimated prompts plus whole completion budgets."""
        return sum(self.cost(math.ceil(prompt_tokens(a) * self.scale), a.max_tokens) for a in asks)

    def charge(
        self,
        prompt: int,
        completion: int,
        cached: bool = False,
        ask: JudgeAsk | None = None,
        batch: bool = False,
    ) -> None:
        """Count one reply (cached replies cost nothing; `batch`: it came through the
        batch API); with its `ask`, learn how far the server's prompt count exceeds the
        estimate."""
        if cached:
            return
        self.spent += self.cost(prompt, completion, batch)
        if ask is not None and prompt > 0:
            self.scale = max(self.scale, prompt / prompt_tokens(ask))

    def check(self, asks: Sequence[JudgeAsk]) -> None:
        """Let a call through only if its worst case still fits.

        Raises:
            BudgetReached: it may not fit.
        """
        worst = self.worst(asks)
        if self.spent + worst > self.max_cost:
            raise BudgetReached(
                f"judge: --judge-max-cost ${self.max_cost:g} reached: ${self.spent:.4f} spent, "
                f"and the next {len(asks)} requests could cost up to ${worst:.4f}; judging "
                "stopped with everything so far kept (rerun with a higher cap to resume)"
            )

    def preflight(self, asks: Sequence[JudgeAsk], what: str) -> None:
        """Refuse a run whose known questions can already cost more than the cap.

        Raises:
            UsageError: they can.
        """
        worst = self.worst(asks)
        if self.spent + worst > self.max_cost:
            budget = max((a.max_tokens for a in asks), default=0)
            raise UsageError(
                f"--judge-max-cost ${self.max_cost:g}: the judge's {len(asks)} known requests "
                f"({what}) can cost up to ${worst:.2f} (estimated prompts + {budget} completion "
                f"tokens each){f', on top of ${self.spent:.2f} spent' if self.spent else ''}; "
                "raise the cap, or lower --judge-max-tokens, --judge-max-items or "
                "--calibration-size"
            )


def preflight_jury(parts: Sequence[tuple[str, Budget, Sequence[JudgeAsk], str]]) -> None:
    """Refuse a jury whose judges' known questions can together cost more than the run's
    cap, each judge's at its own prices (the first rule, for every judge at once).

    Args:
        parts: for each priced judge, its name, its budget (the run's cap and spend, its
            prices), its known questions and what they are, in words.

    Raises:
        UsageError: they can.
    """
    if not parts:
        return
    cap, spent = parts[0][1].max_cost, parts[0][1].spent
    worst = [(name, budget.worst(asks), len(asks), what) for name, budget, asks, what in parts]
    total = sum(w for _, w, _, _ in worst)
    if spent + total > cap:
        each = "; ".join(f"{name}: {n} requests ({what}), ${w:.2f}" for name, w, n, what in worst)
        raise UsageError(
            f"--judge-max-cost ${cap:g} caps the whole jury: its judges' known requests can "
            f"cost up to ${total:.2f} together ({each}; estimated prompts + whole completion "
            f"budgets){f', on top of ${spent:.2f} spent' if spent else ''}; raise the cap, "
            "or lower --judge-max-tokens, --judge-max-items or --calibration-size"
        )


def check_prices(max_cost: float | None, price_in: float | None, price_out: float | None) -> None:
    """--judge-max-cost needs both prices.

    Raises:
        UsageError: a price is missing.
    """
    if max_cost is not None and (price_in is None or price_out is None):
        raise UsageError(
            "--judge-max-cost needs the judge's prices: give --judge-price-in and "
            "--judge-price-out (USD per million prompt / completion tokens, list prices; "
            "--judge-batch halves them)"
        )
