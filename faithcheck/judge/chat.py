"""A chat model behind an API as the judge: OpenAI, Anthropic, Gemini, OpenRouter, ...

Built on the official `openai` SDK and `POST <base>/chat/completions` with standard
fields only (`model`, `messages`, `max_tokens` or `max_completion_tokens`,
`temperature`, `top_p`, `seed`, `stop`, `reasoning_effort`), so it works against every
OpenAI-compatible chat endpoint: hosted APIs and local `vllm serve`, SGLang, Ollama and
llama.cpp servers alike. No token ids cross the wire.

Faults. The SDK retries 408, 409, 429 and 5xx answers and dropped connections with
exponential backoff, honouring `Retry-After` up to a minute (`--judge-http-retries`
times). 401, 403 and 404 fail at once with the server's message, the key masked.

Parameters a model refuses. Reasoning models (the o-series, gpt-5) take
`max_completion_tokens` and reject `temperature` / `top_p`; they are known by name
(`REASONING_MODEL`), which spares a failing call per run. Any other refusal is learned:
a 400 that names a parameter (`param`, or the parameter quoted in the message) drops
it, or swaps `max_tokens` for `max_completion_tokens`, and the request is retried; the
adjustment holds for the rest of the run and is reported by `describe`. Both, because a
table alone goes stale and learning alone pays one failed call per run on every model
everyone knows.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from faithcheck.backends.http import one_line, redact_url
from faithcheck.errors import BackendError, UsageError
from faithcheck.judge.client import JudgeAsk, JudgeReply, OnReply, chat_only
from faithcheck.judge.providers import ChatTarget

REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
"""Model names (after the last `/`) of reasoning models: max_completion_tokens, no
temperature or top_p."""
REASONING_MAX_TOKENS = 16384
"""Default reply budget of a reasoning judge (its hidden reasoning counts against it)."""
CHAT_MAX_TOKENS = 1024
"""Default reply budget of a non-reasoning chat judge."""
_QUOTED_PARAM = re.compile(r"['\"`](\w+)['\"`]")
_ADAPTABLE = (
    "temperature",
    "top_p",
    "seed",
    "stop",
    "reasoning_effort",
    "max_tokens",
    "max_completion_tokens",
)
_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


def is_reasoning_model(model: str) -> bool:
    """Whether `model` is a known reasoning model (by its name after the last `/`)."""
    return bool(REASONING_MODEL.match(model.rsplit("/", 1)[-1]))


class ChatJudge:
    """The judge behind an OpenAI-compatible chat endpoint."""

    name = "chat"
    guards_budget = True

    def __init__(
        self,
        target: ChatTarget,
        *,
        reasoning_effort: str | None = None,
        concurrency: int = 8,
        max_retries: int = 6,
        timeout_s: float = 600.0,
        guard_budget: bool = True,
    ) -> None:
        """Set up the client (no request yet; `check_model` makes the first).

        Args:
            target: endpoint, model names and key variable (`resolve_target`).
            reasoning_effort: sent as `reasoning_effort` (reasoning models).
            concurrency: requests in flight at once.
            max_retries: SDK retries of 408/409/429/5xx and dropped connections.
            timeout_s: per-request timeout (reasoning replies can take minutes).
            guard_budget: stop the run when most replies hit the token budget.

        Raises:
            UsageError: the key variable is unset.
        """
        import openai

        key = os.environ.get(target.key_env, "").strip() if target.key_env else "EMPTY"
        if not key:
            raise UsageError(f"environment variable {target.key_env} is unset or empty")
        self.target = target
        self.guards_budget = guard_budget
        self.model = target.model
        self.reasoning_effort = reasoning_effort
        self.concurrency = max(1, concurrency)
        self._secret = key if target.key_env else None
        self._shown_url = redact_url(target.base_url)
        self._client = openai.OpenAI(
            base_url=target.base_url, api_key=key, max_retries=max_retries, timeout=timeout_s
        )
        reasoning = is_reasoning_model(self.model)
        self._dropped: set[str] = {"temperature", "top_p"} if reasoning else set()
        official = target.provider in ("openai", "azure")
        self._token_field = "max_completion_tokens" if reasoning or official else "max_tokens"
        self._swapped = False
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The SDK client (the batch API goes through it too)."""
        return self._client

    @property
    def identity(self) -> str:
        """Endpoint, model and reasoning effort: what makes two replies comparable."""
        return f"chat:{self._shown_url}#{self.model}#effort={self.reasoning_effort}"

    def describe(self) -> dict[str, Any]:
        """Run metadata (never the key)."""
        return {
            "backend": self.name,
            "base_url": self._shown_url,
            "model": self.model,
            "api_key_env": self.target.key_env,
            "reasoning_effort": self.reasoning_effort,
            "token_field": self._token_field,
            "dropped_params": sorted(self._dropped),
        }

    # -- setup --------------------------------------------------------------------------

    def check_model(self) -> None:
        """Ask the endpoint which models it serves and pick ours, before anything loads.

        An endpoint without a model list (404/405) is trusted with the name as given.

        Raises:
            BackendError: the endpoint cannot be reached or refuses the key.
            UsageError: the endpoint lists models and ours is not among them.
        """
        import openai

        try:
            page = self._client.with_options(max_retries=1, timeout=30.0).models.list()
            listed = [m.id for m in page.data]
        except openai.NotFoundError:
            return
        except openai.APIStatusError as exc:
            if exc.status_code == 405:
                return
            raise self.error(exc) from None
        except openai.APIError as exc:
            raise self.error(exc) from None
        names = set(listed) | {m.removeprefix("models/") for m in listed}
        chosen = next((m for m in self.target.models if m in names), None)
        if chosen is None:
            shown = ", ".join(listed[:8]) + (" …" if len(listed) > 8 else "")
            raise UsageError(
                f"the judge endpoint {self._shown_url} does not list model "
                f"{self.target.model!r} (it lists: {shown or 'nothing'})"
            )
        self.model = chosen

    # -- asking -------------------------------------------------------------------------

    def ask(self, asks: Sequence[JudgeAsk], on_reply: OnReply | None = None) -> list[JudgeReply]:
        """See `JudgeClient.ask`: up to `concurrency` requests at once, in input order.

        `on_reply` runs as each reply arrives (on a worker thread). The first failure
        is raised once the requests in flight finish; requests not started are dropped.
        """

        def one(i: int) -> JudgeReply:
            reply = self._ask_one(asks[i])
            if on_reply is not None:
                on_reply(i, reply)
            return reply

        if len(asks) <= 1 or self.concurrency == 1:
            return [one(i) for i in range(len(asks))]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(asks)))
        try:
            futures = [pool.submit(one, i) for i in range(len(asks))]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception()), None)
            if failed is not None:
                failed.result()
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def request_body(self, ask: JudgeAsk) -> dict[str, Any]:
        """The `/chat/completions` request body of one question (as sent now: with the
        parameters learned so far dropped or swapped)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat_only(ask.prompt).messages,
            self._token_field: ask.max_tokens,
            "temperature": ask.temperature,
            "seed": ask.seed,
        }
        if ask.top_p != 1.0 and ask.temperature > 0:
            body["top_p"] = ask.top_p
        if ask.stop:
            body["stop"] = ask.stop
        if self.reasoning_effort:
            body["reasoning_effort"] = self.reasoning_effort
        with self._lock:
            return {k: v for k, v in body.items() if k not in self._dropped}

    def _ask_one(self, ask: JudgeAsk) -> JudgeReply:
        import openai

        for _ in range(len(_ADAPTABLE) + 1):
            body = self.request_body(ask)
            try:
                response = self._client.chat.completions.create(**body)
            except openai.BadRequestError as exc:
                named = [exc.param] if isinstance(exc.param, str) else []
                if self.learn(named, _message(exc), body):
                    continue
                raise self.error(exc) from None
            except openai.APIError as exc:
                raise self.error(exc) from None
            return self.reply_of(response)
        raise BackendError(f"judge {self._shown_url}: the endpoint refuses every request")

    def learn(self, named: list[str], message: str, body: dict[str, Any]) -> bool:
        """Learn from a 400 naming a parameter (`named`: its `param` field, if any, then
        any parameter quoted in `message`); True when the request should be retried."""
        for param in [*named, *_QUOTED_PARAM.findall(message)]:
            if param not in body or param not in _ADAPTABLE:
                continue
            with self._lock:
                if param in _TOKEN_FIELDS:
                    if param != self._token_field:
                        return True  # another request switched already
                    if self._swapped:
                        return False  # refused both ways: not ours to fix
                    self._swapped = True
                    self._token_field = _TOKEN_FIELDS[1 - _TOKEN_FIELDS.index(param)]
                else:
                    self._dropped.add(param)
            return True
        return False

    def reply_of(self, response: Any) -> JudgeReply:
        """A `chat.completion` (the SDK's object) as a `JudgeReply`.

        Raises:
            BackendError: the completion has no choices.
        """
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise BackendError(f"judge {self._shown_url}: the reply has no choices")
        choice = choices[0]
        message = choice.message
        extra = getattr(message, "model_extra", None) or {}
        reasoning = extra.get("reasoning_content") or extra.get("reasoning")
        usage = getattr(response, "usage", None)
        details = getattr(usage, "completion_tokens_details", None)
        return JudgeReply(
            text=message.content or "",
            finish_reason=str(choice.finish_reason or "stop"),
            reasoning=reasoning if isinstance(reasoning, str) else None,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            reasoning_tokens=int(getattr(details, "reasoning_tokens", 0) or 0),
            model=getattr(response, "model", None),
            system_fingerprint=getattr(response, "system_fingerprint", None),
        )

    def error(self, exc: Any) -> BackendError:
        """One line naming the endpoint and the server's own message, key masked."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            why = "timed out (after the SDK's retries)"
        elif isinstance(exc, openai.APIConnectionError):
            why = f"cannot connect ({_message(exc) or 'connection refused'})"
        elif isinstance(exc, openai.APIStatusError):
            why = f"HTTP {exc.status_code}: {_message(exc)}"
            if exc.status_code == 429 or exc.status_code >= 500:
                why += " (after the SDK's retries; see --judge-http-retries, --judge-concurrency)"
        else:
            why = _message(exc)
        text = f"judge {self._shown_url} ({self.model}): {why}"
        if self._secret and len(self._secret) >= 4:
            text = text.replace(self._secret, "***")
        return BackendError(one_line(text, 400))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        msg = body.get("message") or body.get("detail") or body.get("error")
        if isinstance(msg, dict):
            msg = msg.get("message")
        if msg:
            return one_line(str(msg))
    return one_line(str(getattr(exc, "message", "") or exc))
