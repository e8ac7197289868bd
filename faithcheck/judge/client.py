"""Who answers the judge's questions: one small contract over local engines and chat APIs.

    JudgeAsk  --JudgeClient.ask-->  JudgeReply        one question, one reply
    LabelAsk  --read_labels------>  JudgeReply        one question, label log-probs

A `LabelAsk` is the probability read-out (`faithcheck.judge.probs`): only judges that
expose log-probabilities answer it (`BackendJudge`: local engines and completion
servers); chat APIs keep the text read-out.

A local judge (vLLM, transformers, a `vllm serve` fed token ids) is a `Backend` seen
through `BackendJudge`; a hosted or served chat model is `faithcheck.judge.chat.ChatJudge`.
Every question a run puts to a judge goes through one `JudgeSession`, which adds what
no client should repeat:

- the response cache (`faithcheck.judge.cache`): a question asked before, of the same
  judge with the same settings, is answered from disk and never paid for twice;
- the call ledger (`judge_calls.jsonl` in the run directory): one line per reply, paid
  or cached, appended the moment it arrives, so usage and cost survive a kill;
- the token-budget guard: a chat judge whose replies mostly stop at the token budget
  (a reasoning model spending it on hidden reasoning) ends the run with a message that
  names `--judge-max-tokens`, instead of a column of judge errors;
- the spending cap (`faithcheck.judge.budget`, `--judge-max-cost`): a call whose worst
  case could take the run past it is not sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from faithcheck.backends.base import Backend, ChatPrompt, GenerationRequest, Prompt
from faithcheck.errors import BackendError
from faithcheck.judge.probs import LabelAsk, read_labels
from faithcheck.records import Record
from faithcheck.store.rundir import JUDGE_CALLS_FILE

LEDGER_FILE = JUDGE_CALLS_FILE
"""The run's ledger of judge calls (see `JudgeCall`; a file of the judge stage)."""


class SpendGuard(Protocol):
    """What a session needs of a spending cap (`faithcheck.judge.budget.Budget`)."""

    def charge(
        self,
        prompt: int,
        completion: int,
        cached: bool = False,
        ask: JudgeAsk | None = None,
        batch: bool = False,
    ) -> None: ...
    def check(self, asks: Sequence[JudgeAsk]) -> None: ...
    def preflight(self, asks: Sequence[JudgeAsk], what: str) -> None: ...


class JudgeAsk(Record):
    """One question to the judge, with every setting that can change the reply."""

    prompt: Prompt
    """System + user messages (chat judges), or a plain text (base judges)."""
    seed: int
    """Request seed (ignored by providers without seeded sampling)."""
    temperature: float = Field(ge=0.0)
    """Sampling temperature; 0 is greedy."""
    top_p: float = Field(gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    max_tokens: int = Field(ge=1)
    """Reply budget in tokens (hidden reasoning included, for reasoning models)."""
    stop: list[str] = Field(default_factory=list)
    """Stop strings."""


class JudgeReply(Record):
    """The judge's reply to one `JudgeAsk`, with what it cost and who wrote it."""

    text: str
    """The reply's content (the only text parsed for a verdict)."""
    finish_reason: str
    """`stop`, `length` (the budget ran out), `content_filter`, ... as the server said."""
    reasoning: str | None = None
    """Reasoning text a server returned apart from the content (kept, never parsed)."""
    prompt_tokens: int = 0
    """Prompt tokens the server counted (local judges: the rendered prompt's length)."""
    completion_tokens: int = 0
    """Completion tokens, hidden reasoning included."""
    reasoning_tokens: int = 0
    """Of those, reasoning tokens, where the server reports them."""
    model: str | None = None
    """The model id the server says it ran (a dated snapshot for hosted APIs)."""
    system_fingerprint: str | None = None
    """The server's `system_fingerprint` (its configuration), where given."""
    cached: bool = False
    """Served from the response cache (nothing was paid for it in this run)."""
    batch: bool = False
    """Answered through the provider's batch API (billed at the batch price)."""
    label_logprobs: list[float] | None = None
    """Probability read-outs (`LabelAsk`): the log-probability of each asked label at the
    verdict position, in order (of its first token, or of the whole label where first
    tokens collide); `text` is then the rationale. None for text replies."""

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_new_defaults(handler(self))


class JudgeCall(Record):
    """A line of judge_calls.jsonl: one reply a run received from its judge."""

    purpose: str
    """rubric, calibration, strategy or mistakes."""
    item_id: str
    """The item asked about (rubric: `problem#sample`)."""
    attempt: int
    """0 for the first question about the item, then 1, 2, ... for retries."""
    cached: bool
    """Answered from the response cache (not paid for)."""
    finish_reason: str
    """As the server said (`length`: the token budget ran out)."""
    prompt_tokens: int = 0
    """Prompt tokens of the call."""
    completion_tokens: int = 0
    """Completion tokens (reasoning included)."""
    reasoning_tokens: int = 0
    """Reasoning tokens, where reported."""
    model: str | None = None
    """The served model id."""
    system_fingerprint: str | None = None
    """The server's configuration fingerprint."""
    batch: bool = False
    """Sent through the provider's batch API (billed at the batch price)."""
    judge: str | None = None
    """The judge of a jury that answered (its name); None with one judge."""

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_new_defaults(handler(self))


def _without_new_defaults(data: dict[str, Any]) -> dict[str, Any]:
    # Live calls of a one-judge run are written (ledger, response cache) as before batches
    # and juries existed: no `batch: false`, no `judge: null`.
    if data.get("batch") is False:
        del data["batch"]
    if "judge" in data and data["judge"] is None:
        del data["judge"]
    return data


OnReply = Callable[[int, JudgeReply], None]
Ask = JudgeAsk | LabelAsk


@runtime_checkable
class JudgeClient(Protocol):
    """Anything that can answer judge questions."""

    identity: str | None
    """What makes replies comparable (endpoint + model, or checkpoint + engine + dtype);
    None: replies are never cached."""
    guards_budget: bool
    """Whether a run should stop when most replies hit the token budget."""

    def ask(self, asks: Sequence[JudgeAsk], on_reply: OnReply | None = None) -> list[JudgeReply]:
        """One reply per question, in order; `on_reply(i, reply)` as each arrives."""
        ...

    def close(self) -> None:
        """Release the connection or engine."""
        ...


@runtime_checkable
class LabelReader(Protocol):
    """A judge client that also answers probability read-outs."""

    def read_labels(
        self, asks: Sequence[LabelAsk], on_reply: OnReply | None = None
    ) -> list[JudgeReply]:
        """One reply (with `label_logprobs`) per read-out, in order."""
        ...


class BackendJudge:
    """A local inference backend as a judge: render, generate, count tokens."""

    guards_budget = False

    def __init__(self, backend: Backend, identity: str | None = None) -> None:
        self.backend = backend
        self.identity = identity

    def ask(self, asks: Sequence[JudgeAsk], on_reply: OnReply | None = None) -> list[JudgeReply]:
        """See `JudgeClient.ask`: one batched `generate` call."""
        requests = [
            GenerationRequest(
                prompt_ids=self.backend.render(a.prompt),
                n=1,
                seed=a.seed,
                temperature=a.temperature,
                top_p=a.top_p,
                max_tokens=a.max_tokens,
                stop=a.stop,
            )
            for a in asks
        ]
        replies = []
        for i, (req, out) in enumerate(zip(requests, self.backend.generate(requests), strict=True)):
            c = out[0]
            reply = JudgeReply(
                text=c.text,
                finish_reason=c.finish_reason,
                prompt_tokens=len(req.prompt_ids),
                completion_tokens=len(c.token_ids),
            )
            if on_reply is not None:
                on_reply(i, reply)
            replies.append(reply)
        return replies

    def read_labels(
        self, asks: Sequence[LabelAsk], on_reply: OnReply | None = None
    ) -> list[JudgeReply]:
        """See `LabelReader`: `faithcheck.judge.probs.read_labels` on the backend."""
        replies = []
        for i, read in enumerate(read_labels(self.backend, asks)):
            reply = JudgeReply(
                text=read.rationale,
                finish_reason="stop",
                prompt_tokens=read.prompt_tokens,
                completion_tokens=read.completion_tokens,
                label_logprobs=read.logprobs,
            )
            if on_reply is not None:
                on_reply(i, reply)
            replies.append(reply)
        return replies

    def close(self) -> None:
        """Close the backend."""
        self.backend.close()


def as_client(judge: Any, identity: str | None = None) -> JudgeClient:
    """`judge` itself when it is a `JudgeClient`, else the `Backend` wrapped."""
    if isinstance(judge, JudgeClient):
        return judge
    return BackendJudge(judge, identity)


BUDGET_MIN_REPLIES = 8
"""Replies seen before the budget guard may stop a run."""


class JudgeSession:
    """A judge client with the response cache, the run's ledger and the budget guard."""

    def __init__(
        self,
        client: JudgeClient,
        *,
        cache: Any = None,
        ledger: Callable[[list[JudgeCall]], None] | None = None,
        max_tokens_flag: str = "--judge-max-tokens",
        budget: SpendGuard | None = None,
        name: str | None = None,
    ) -> None:
        """Args:
        client: who answers.
        cache: a `ResponseCache`, or None (also when the client has no identity).
        ledger: appends call records (the run directory's judge_calls.jsonl), or None.
        max_tokens_flag: the option named when most replies hit the budget.
        budget: the spending cap (checked before each call, charged as replies arrive).
        name: the judge of a jury this is (its ledger lines say so); None with one judge.
        """
        self.client = client
        self.name = name
        self.budget = budget
        self.cache = cache if client.identity is not None else None
        self._ledger = ledger
        self._flag = max_tokens_flag
        self._lock = threading.Lock()
        self.replies = 0
        """Replies received so far (cached ones included)."""
        self.cut = 0
        """Of those, replies that stopped at the token budget."""

    def ask(
        self,
        asks: Sequence[JudgeAsk],
        purpose: str = "rubric",
        item_ids: Sequence[str] | None = None,
        attempt: int = 0,
    ) -> list[JudgeReply]:
        """Replies to `asks`, in order: cached ones from disk, the rest from the client.

        Raises:
            BudgetReached: the uncached questions could take the cost past the cap (none
                is sent).
            BackendError: the client failed, or (a budget-guarded client) most replies
                so far stopped at the token budget.
        """
        done = self._serve(asks, self.client.ask, purpose, item_ids, attempt, priced=True)
        self._guard(done, max((a.max_tokens for a in asks), default=0))
        return done

    def read_labels(
        self,
        asks: Sequence[LabelAsk],
        purpose: str = "rubric",
        item_ids: Sequence[str] | None = None,
    ) -> list[JudgeReply]:
        """Probability read-outs, cached and logged like `ask`.

        Raises:
            BackendError: the client reads no log-probabilities (a chat API), or failed.
        """
        if not isinstance(self.client, LabelReader):
            raise BackendError(
                "this judge returns no label log-probabilities (a chat API): use the text "
                "read-out (--judge-readout text)"
            )
        return self._serve(asks, self.client.read_labels, purpose, item_ids, 0)

    def _serve(
        self,
        asks: Sequence[Any],
        fetch: Callable[[list[Any], OnReply], list[JudgeReply]],
        purpose: str,
        item_ids: Sequence[str] | None,
        attempt: int,
        priced: bool = False,
    ) -> list[JudgeReply]:
        ids = list(item_ids) if item_ids is not None else [str(i) for i in range(len(asks))]
        replies: list[JudgeReply | None] = [None] * len(asks)
        keys: list[str | None] = [None] * len(asks)
        if self.cache is not None:
            for i, a in enumerate(asks):
                keys[i] = self.cache.key(self.client.identity, a)
                hit = self.cache.get(keys[i])
                if hit is not None:
                    replies[i] = hit.model_copy(update={"cached": True})
            cached = [(i, r) for i, r in enumerate(replies) if r is not None]
            self._log([self._call(purpose, ids[i], attempt, r) for i, r in cached])
        todo = [i for i, r in enumerate(replies) if r is None]

        def arrived(j: int, reply: JudgeReply) -> None:
            i = todo[j]
            key = keys[i]
            if self.cache is not None and key is not None:
                self.cache.put(key, reply)
            if self.budget is not None:
                with self._lock:
                    self.budget.charge(
                        reply.prompt_tokens, reply.completion_tokens, ask=asks[i], batch=reply.batch
                    )
            self._log([self._call(purpose, ids[i], attempt, reply)])

        if todo and priced and self.budget is not None:
            self.budget.check([asks[i] for i in todo])
        if todo:
            fresh = fetch([asks[i] for i in todo], arrived)
            for i, reply in zip(todo, fresh, strict=True):
                replies[i] = reply
        return [r for r in replies if r is not None]

    def preflight(self, asks: Sequence[JudgeAsk], what: str) -> None:
        """Refuse, before anything is paid, known questions whose worst case (less what
        the response cache answers) exceeds the spending cap; nothing without a cap.

        Raises:
            UsageError: they can cost more than --judge-max-cost.
        """
        if self.budget is None:
            return
        if self.cache is not None:
            asks = [
                a for a in asks if self.cache.get(self.cache.key(self.client.identity, a)) is None
            ]
        self.budget.preflight(asks, what)

    def _call(self, purpose: str, item_id: str, attempt: int, r: JudgeReply) -> JudgeCall:
        return JudgeCall(
            purpose=purpose,
            item_id=item_id,
            attempt=attempt,
            cached=r.cached,
            finish_reason=r.finish_reason,
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            reasoning_tokens=r.reasoning_tokens,
            model=r.model,
            system_fingerprint=r.system_fingerprint,
            batch=r.batch and not r.cached,
            judge=self.name,
        )

    def _log(self, calls: list[JudgeCall]) -> None:
        if self._ledger is not None and calls:
            with self._lock:
                self._ledger(calls)

    def _guard(self, replies: Sequence[JudgeReply], budget: int) -> None:
        self.replies += len(replies)
        self.cut += sum(r.finish_reason == "length" for r in replies)
        if (
            self.client.guards_budget
            and self.replies >= BUDGET_MIN_REPLIES
            and self.cut * 2 > self.replies
        ):
            raise BackendError(
                f"judge: {self.cut} of {self.replies} replies stopped at the token budget "
                f"({budget} tokens) before a verdict line; raise {self._flag} (reasoning "
                "models spend it on hidden reasoning). Replies so far are kept in the cache"
            )

    def close(self) -> None:
        """Close the client."""
        self.client.close()


JudgeLike = Backend | JudgeClient | JudgeSession
"""Whatever the judge functions accept: a backend, a client, or a session."""


def as_session(judge: Any) -> JudgeSession:
    """`judge` when it is a session already, else a session without cache or ledger."""
    if isinstance(judge, JudgeSession):
        return judge
    return JudgeSession(as_client(judge))


def chat_only(prompt: Prompt) -> ChatPrompt:
    """The prompt as chat messages (chat APIs take nothing else).

    Raises:
        BackendError: a plain-text prompt (a base-format judge prompt).
    """
    if not isinstance(prompt, ChatPrompt):
        raise BackendError("a chat judge takes chat prompts only (judge prompt format 'chat')")
    return prompt
