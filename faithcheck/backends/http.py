"""A small JSON-over-HTTP client with retries and bounded parallelism.

Kept apart from the OpenAI backend so that the failure policy is in one place:

- retried, with exponential backoff and full jitter (a `Retry-After` header wins):
  HTTP 429, any 5xx, timeouts, refused or reset connections;
- not retried: every other 4xx, raised at once as a one-line `BackendError` carrying
  the server's own message;
- after the last attempt: `BackendError("openai backend: <url>: <reason> after N attempts")`.

Secrets never leave this module: the caller passes headers once, they live in the
`httpx.Client` only (whose repr masks `Authorization`), and no message quotes them — not
even a server's own error text, which some servers write the rejected key into.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from faithcheck.errors import BackendError

T = TypeVar("T")
R = TypeVar("R")

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
"""Statuses worth retrying besides every other 5xx: overload and gateway trouble."""
MAX_DELAY_S = 30.0
"""Cap on one backoff delay (and on a server's Retry-After)."""
SECRET_HEADERS = ("authorization", "proxy-authorization", "api-key", "x-api-key")
"""Headers whose values are masked in every message built from a server's answer."""


def redact_url(url: str) -> str:
    """The URL without any `user:password@` part, for messages and run metadata."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def one_line(text: str, limit: int = 300) -> str:
    """`text` with its whitespace (newlines included) collapsed, at most `limit` chars."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def server_message(response: httpx.Response, redact: Callable[[str], str] = str) -> str:
    """The error message an OpenAI-style server put in its body, on one line.

    `redact` is applied before the text is shortened, so a secret is never cut in two.
    """
    try:
        body: Any = response.json()
    except ValueError:
        return one_line(redact(response.text)) or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if isinstance(err, list) and err and isinstance(err[0], dict):  # FastAPI 422
            err = err[0].get("msg", err[0])
        if err is not None:
            return one_line(redact(str(err)))
    return one_line(redact(response.text)) or response.reason_phrase


class HTTPStatusError(BackendError):
    """A non-retryable HTTP error answer (a 4xx other than 429)."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status code."""
        self.detail = detail
        """The server's own message, one line."""


class JSONClient:
    """POST/GET JSON with retries; `map` runs calls in parallel, results in order."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        max_concurrency: int = 8,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        label: str = "openai backend",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max(0, max_retries)
        self.max_concurrency = max(1, max_concurrency)
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._label = label
        self._client = httpx.Client(
            headers=headers or {},
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=self.max_concurrency,
                max_keepalive_connections=self.max_concurrency,
            ),
            follow_redirects=True,
        )

    def __repr__(self) -> str:
        return f"JSONClient({redact_url(self.base_url)!r})"

    def get(self, path: str) -> Any:
        """GET `path` (relative to the base URL) and return the decoded JSON."""
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST `body` as JSON to `path` and return the decoded JSON answer."""
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One call with the retry policy of this module."""
        url = f"{self.base_url}{path}"
        shown = redact_url(url)
        attempts = self.max_retries + 1
        reason = ""
        retry_after: float | None = None
        for attempt in range(attempts):
            if attempt:
                self._sleep(self._delay(attempt, retry_after))
            retry_after = None
            try:
                response = self._client.request(method, url, json=body)
            except httpx.TimeoutException:
                reason = "timed out"
                continue
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                reason = _network_reason(exc)
                continue
            if response.status_code < 400:
                try:
                    return response.json()
                except ValueError:
                    text = one_line(self._redact(response.text))
                    message = f"{self._label}: {shown}: answer is not JSON: {text}"
                    raise BackendError(message) from None
            detail = server_message(response, self._redact)
            reason = f"HTTP {response.status_code}: {detail}"
            if response.status_code in RETRY_STATUS or response.status_code >= 500:
                retry_after = _retry_after(response)
                continue
            raise HTTPStatusError(f"{self._label}: {shown}: {reason}", response.status_code, detail)
        raise BackendError(f"{self._label}: {shown}: {reason} after {attempts} attempts")

    def _redact(self, text: str) -> str:
        """`text` with every secret header value (and its bearer token) masked."""
        secrets: set[str] = set()
        for name in SECRET_HEADERS:
            value = self._client.headers.get(name, "").strip()
            token = value.split(None, 1)[-1] if value else ""
            secrets |= {s for s in (value, token) if len(s) >= 4}
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_DELAY_S)
        # Full jitter: replicas that failed together do not retry together.
        ceiling = min(MAX_DELAY_S, self._backoff_s * 2 ** (attempt - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`[fn(x) for x in items]`, up to `max_concurrency` at once, in input order.

        The first failure is raised once the calls already in flight finish; calls
        not yet started are cancelled.
        """
        if len(items) <= 1 or self.max_concurrency == 1:
            return [fn(x) for x in items]
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items)))
        try:
            futures: list[Future[R]] = [pool.submit(fn, x) for x in items]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception()), None)
            if failed is not None:
                failed.result()  # raises the failure
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _network_reason(exc: Exception) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({one_line(str(exc)) or 'connection refused'})"
    return f"connection lost ({one_line(str(exc)) or type(exc).__name__})"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # absent, or an HTTP date: fall back to our own backoff
