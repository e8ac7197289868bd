"""Judge questions through OpenAI's Batch API (`--judge-batch`): half the price, its own
rate limits, replies within the 24-hour completion window.

    asks --> one JSONL file (POST /v1/files, purpose batch) --> POST /v1/batches
         --> GET /v1/batches/{id} until a final status --> output and error files --> replies

Each request's `custom_id` is a hash of its body, and every batch is recorded in the run
directory (`judge_batches.jsonl`: batch id and custom ids) the moment it exists, before
any waiting. A run killed while it waits finds its questions in a recorded batch on the
next `score` and waits for that batch again instead of paying for a second one; replies
then go through the session like live ones (the response cache, the call ledger, usage).

Outcomes. `completed`: every reply in the output file is used; requests in the error
file that failed for a passing reason (429, 5xx) are sent again in a new batch, up to
`rounds` batches per call, and a 400 that names a parameter the model refuses is learned
as live calls learn it (`ChatJudge.learn`); any other request error stops the run with
the server's message. `expired` and `cancelled`: the replies that came back are used and
the rest go into a new batch. `failed` (the input was refused): one line with the
server's errors; a later run does not wait on a failed batch again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from faithcheck.backends.http import one_line
from faithcheck.errors import BackendError, UsageError
from faithcheck.judge.chat import ChatJudge
from faithcheck.judge.client import JudgeAsk, JudgeReply, OnReply
from faithcheck.records import Record
from faithcheck.store.rundir import JUDGE_BATCHES_FILE

BATCHES_FILE = JUDGE_BATCHES_FILE
"""The run's record of submitted batches (see `BatchRecord`; a file of the judge stage)."""
ENDPOINT = "/v1/chat/completions"
BATCH_MAX_REQUESTS = 50_000
"""Requests per batch file (OpenAI's limit); also the judge's batch size in batch mode."""
POLL_S = 60.0
"""Longest wait between two status checks ($FAITHCHECK_JUDGE_BATCH_POLL overrides it):
batches take minutes to hours, and tighter polling only spends rate limit."""
FIRST_POLL_S = 2.0
"""The first wait; each next one doubles, up to the longest."""
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
"""Per-request statuses worth sending again (as the SDK retries them live)."""
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
BATCH_PROVIDERS = frozenset({"openai"})
"""Providers whose batch API this client speaks (Anthropic's Message Batches and
Gemini's batch mode have other shapes)."""


class BatchRecord(Record):
    """A line of judge_batches.jsonl: one batch submitted by the run."""

    batch_id: str
    """The provider's batch id."""
    input_file_id: str
    """The uploaded request file."""
    custom_ids: list[str]
    """The requests' ids (hashes of their bodies), in file order."""
    submitted_at: float
    """Unix time of the submission."""


def check_batch_provider(provider: str | None, model: str) -> None:
    """Refuse `--judge-batch` where the provider's batch API is not this one.

    Raises:
        UsageError: not an `openai/` judge.
    """
    if provider not in BATCH_PROVIDERS:
        raise UsageError(
            f"--judge-batch speaks OpenAI's batch API (/v1/files + /v1/batches) only; the "
            f"judge {model} is not an openai/ model, whose batch API differs or is missing: "
            "drop --judge-batch"
        )


def custom_id(body: dict[str, Any]) -> str:
    """A request's id in the batch: a hash of its body (same question, same id)."""
    return "fc-" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


class BatchJudge:
    """A chat judge whose questions go through the provider's batch API."""

    name = "chat-batch"

    def __init__(
        self,
        chat: ChatJudge,
        *,
        recorded: Callable[[], list[BatchRecord]],
        record: Callable[[BatchRecord], None],
        poll_s: float | None = None,
        rounds: int = 3,
        say: Callable[[str], None] | None = None,
    ) -> None:
        """Args:
        chat: the connected chat judge (its client, model and learned parameters).
        recorded: the batches the run submitted so far.
        record: keeps one more (appended to the run directory before any wait).
        poll_s: the longest wait between status checks (default `POLL_S`).
        rounds: batches per call, resubmissions of passing failures included.
        say: where progress lines go (default stderr).
        """
        self.chat = chat
        self.identity = chat.identity  # the same reply as a live call: the same cache key
        self.guards_budget = chat.guards_budget
        self._recorded = recorded
        self._record = record
        env = os.environ.get("FAITHCHECK_JUDGE_BATCH_POLL", "").strip()
        self.poll_s = poll_s if poll_s is not None else float(env) if env else POLL_S
        self.rounds = max(1, rounds)
        self._say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.submitted = 0
        """Batches this client created (resumed ones not counted)."""

    def describe(self) -> dict[str, Any]:
        """Run metadata: the chat judge's, marked as batched."""
        return self.chat.describe() | {"backend": self.name}

    def ask(self, asks: Sequence[JudgeAsk], on_reply: OnReply | None = None) -> list[JudgeReply]:
        """See `JudgeClient.ask`: one batch for the questions (after waiting on any
        recorded batch that holds some of them); `on_reply` as the results come in.

        Raises:
            BackendError: a batch failed, a request failed for good, or the passing
                failures outlasted `rounds` batches.
        """
        positions: dict[str, list[int]] = {}
        replies: list[JudgeReply | None] = [None] * len(asks)

        def deliver(cid: str, reply: JudgeReply) -> None:
            for i in positions.pop(cid, []):
                replies[i] = reply
                if on_reply is not None:
                    on_reply(i, reply)

        def bodies() -> dict[str, dict[str, Any]]:
            # Built afresh each round: a parameter learned from an error changes them.
            out: dict[str, dict[str, Any]] = {}
            positions.clear()
            for i, a in enumerate(asks):
                if replies[i] is None:
                    body = self.chat.request_body(a)
                    cid = custom_id(body)
                    out[cid] = body
                    positions.setdefault(cid, []).append(i)
            return out

        pending = bodies()
        for rec in self._recorded():
            if pending.keys() & set(rec.custom_ids):
                self._say(f"judge batch {rec.batch_id}: resuming the batch a run submitted")
                self._collect(self._wait(rec.batch_id), pending, deliver, resumed=True)
                pending = bodies()
        for _ in range(self.rounds):
            if not pending:
                break
            rec = self._submit(pending)
            self._collect(self._wait(rec.batch_id), pending, deliver, resumed=False)
            pending = bodies()
        if pending:
            raise BackendError(
                f"judge batches: {len(pending)} requests still unanswered after "
                f"{self.rounds} batches (rate limits or server errors); rerun to send them again"
            )
        return [r for r in replies if r is not None]

    # -- one batch ------------------------------------------------------------------------

    def _submit(self, bodies: dict[str, dict[str, Any]]) -> BatchRecord:
        import openai

        lines = b"".join(
            orjson.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body})
            + b"\n"
            for cid, body in bodies.items()
        )
        client = self.chat.client
        try:
            upload = client.files.create(file=("faithcheck-judge.jsonl", lines), purpose="batch")
            batch = client.batches.create(
                input_file_id=upload.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"tool": "faithcheck"},
            )
        except openai.APIError as exc:
            raise self.chat.error(exc) from None
        rec = BatchRecord(
            batch_id=batch.id,
            input_file_id=upload.id,
            custom_ids=list(bodies),
            submitted_at=time.time(),
        )
        self._record(rec)
        self.submitted += 1
        self._say(
            f"judge batch {batch.id}: {len(bodies)} requests submitted (completion window 24h; "
            "a run stopped while it waits resumes this batch)"
        )
        return rec

    def _wait(self, batch_id: str) -> Any:
        """Poll until the batch reaches a final status; the batch object."""
        import openai

        wait, last = FIRST_POLL_S, ""
        while True:
            try:
                batch = self.chat.client.batches.retrieve(batch_id)
            except openai.APIError as exc:
                raise self.chat.error(exc) from None
            counts = batch.request_counts
            shown = f"{batch.status}"
            if counts is not None:
                shown += f", {counts.completed + counts.failed}/{counts.total} done"
            if shown != last:
                self._say(f"judge batch {batch_id}: {shown}")
                last = shown
            if batch.status in FINAL:
                return batch
            time.sleep(min(wait, self.poll_s))
            wait *= 2

    def _collect(
        self,
        batch: Any,
        sent: dict[str, dict[str, Any]],
        deliver: Callable[[str, JudgeReply], None],
        *,
        resumed: bool,
    ) -> None:
        """Hand over a final batch's replies; learn from or raise its request errors."""
        if batch.status == "failed":
            if resumed:
                return  # history: its requests are sent again
            errors = getattr(batch.errors, "data", None) or []
            said = "; ".join(
                f"line {e.line}: {e.message}" if e.line is not None else str(e.message)
                for e in errors[:3]
            )
            raise BackendError(
                one_line(f"judge batch {batch.id} failed: {said or 'no reason given'}", 400)
            )
        fatal: list[str] = []
        for row in self._rows(batch.output_file_id) + self._rows(batch.error_file_id):
            cid = str(row.get("custom_id"))
            response = row.get("response") or {}
            status = response.get("status_code")
            if status == 200:
                deliver(cid, self._reply(response.get("body")))
                continue
            if status in RETRY_STATUS or status is None:
                continue  # expired, cancelled, rate-limited: the next batch sends it again
            err = (response.get("body") or {}).get("error") or {}
            message = str(err.get("message") or status)
            param = err.get("param")
            named = [param] if isinstance(param, str) else []
            if status == 400 and self.chat.learn(named, message, sent.get(cid, {})):
                continue
            fatal.append(f"HTTP {status}: {message}")
        if fatal:
            raise BackendError(
                one_line(
                    f"judge batch {batch.id}: {len(fatal)} requests refused ({fatal[0]}); the "
                    "replies that came back are kept",
                    400,
                )
            )

    def _rows(self, file_id: str | None) -> list[dict[str, Any]]:
        import openai

        if not file_id:
            return []
        try:
            data = self.chat.client.files.content(file_id).content
        except openai.APIError as exc:
            raise self.chat.error(exc) from None
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]

    def _reply(self, body: Any) -> JudgeReply:
        from openai.types.chat import ChatCompletion

        reply = self.chat.reply_of(ChatCompletion.model_validate(body))
        return reply.model_copy(update={"batch": True})

    def close(self) -> None:
        """Close the chat judge's connection."""
        self.chat.close()
