"""A scripted loopback server that answers like the hosted OpenAI chat API.

Shapes follow the API reference: `GET /v1/models` lists `{"object": "list", "data":
[{"id": ...}]}`; `POST /v1/chat/completions` answers a `chat.completion` with `model`
(a dated snapshot), `system_fingerprint`, `choices[0].message.content`,
`finish_reason` and `usage` (with `completion_tokens_details.reasoning_tokens`);
errors are `{"error": {"message", "type", "param", "code"}}` with the real statuses.

By default a chat request gets a well-formed rubric reply: the item nonce is read from
the user message and the verdict is `self.label`. `script` queues replies per path.

`POST /v1/completions` answers like vLLM's completions endpoint (a `text_completion`):
with `logprob_token_ids`, `choices[0].logprobs.top_logprobs[0]` maps each asked id
(`token_id:<id>` under `return_tokens_as_token_ids`) to `self.token_logprobs[id]`
(default: -0.2 for the first id asked, -2.5 for the others); without, the text is
`self.completion_text`.

The Batch API: `POST /v1/files` (multipart, `purpose=batch`) stores a JSONL file and
`GET /v1/files/{id}/content` returns it; `POST /v1/batches` makes a `batch` object that
walks through the statuses of its `BatchPlan` (one step per retrieve; `hold_batches`
keeps every batch `in_progress`), and at its last status writes the output file (one
line per request answered as `/v1/chat/completions` would be: `{"custom_id",
"response": {"status_code", "body"}}`) and the error file (per-request failures, or
`{"error": {"code": "batch_expired"}}` for requests an expired batch never ran).
`batch_script` queues a plan per batch created (default: validating, in_progress,
completed, every request answered).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NONCE = re.compile(r"Item nonce: ([0-9a-f]+)")
SNAPSHOT = "o3-2025-04-16"


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    """HTTP status; 0 drops the connection without answering."""
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BatchPlan:
    """How one batch goes: the statuses its retrieves walk through, and its outcome."""

    states: list[str] = field(
        default_factory=lambda: ["validating", "in_progress", "finalizing", "completed"]
    )
    """Statuses in order; the last (completed, failed, expired, cancelled) is final."""
    failed_lines: dict[int, Reply] = field(default_factory=dict)
    """Request line -> the error it ends in (a partially failed batch)."""
    ran: int | None = None
    """Expired or cancelled: requests run before the end (the first `ran` lines)."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Failed: the batch's `errors.data` (validation errors)."""


@dataclass
class Seen:
    """One request received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def error(status: int, message: str, param: str | None = None, code: str | None = None) -> Reply:
    """An OpenAI-shaped error answer."""
    kind = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}
    return Reply(
        status,
        {
            "error": {
                "message": message,
                "type": kind.get(status, "server_error"),
                "param": param,
                "code": code,
            }
        },
    )


def chat_reply(
    content: str | None,
    *,
    finish_reason: str = "stop",
    model: str = SNAPSHOT,
    reasoning_content: str | None = None,
    prompt_tokens: int = 100,
    completion_tokens: int = 40,
    reasoning_tokens: int = 0,
) -> dict[str, Any]:
    """A `chat.completion` body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "system_fingerprint": "fp_test123",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        },
    }


def completion_reply(
    text: str,
    top: dict[str, float] | None = None,
    *,
    finish_reason: str = "stop",
    prompt_tokens: int = 100,
    completion_tokens: int = 1,
) -> dict[str, Any]:
    """A vLLM-style `text_completion` body, with one step of `top_logprobs` if given."""
    choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": finish_reason}
    if top is not None:
        first = next(iter(top), "")
        choice["logprobs"] = {
            "text_offset": [0],
            "token_logprobs": [top.get(first)],
            "tokens": [first],
            "top_logprobs": [top],
        }
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "served",
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def nonce_of(body: dict[str, Any]) -> str:
    """The item nonce a judge request carries."""
    for m in body["messages"]:
        found = NONCE.search(m["content"])
        if found:
            return found.group(1)
    raise AssertionError("no nonce in the request")


class FakeChat:
    """The scripted server; `url` ends in /v1 like the real API's base URL."""

    def __init__(self, models: tuple[str, ...] = ("o3", "gpt-4.1")) -> None:
        self.models = list(models)
        self.label = "aligned"
        self.script: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self.reject: dict[str, Reply] = {}
        """Parameter name -> the error returned whenever a request carries it."""
        self.token_logprobs: dict[int, float] = {}
        """Completions: the log-prob returned for each id in `logprob_token_ids`."""
        self.completion_text = "The steps add up."
        """Completions without `logprob_token_ids`: the generated text."""
        self.files: dict[str, bytes] = {}
        """Uploaded and generated files by id."""
        self.batches: dict[str, dict[str, Any]] = {}
        """Batch objects by id (with their plan under `_plan`)."""
        self.batch_script: list[BatchPlan] = []
        """Plans for the next batches created, in order (then the default plan)."""
        self.hold_batches = False
        """Keep every batch in_progress on retrieve (a run waiting on it)."""
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def chats(self) -> list[dict[str, Any]]:
        """Bodies of the chat requests received, in order."""
        return [s.body for s in self.seen if s.path.endswith("/chat/completions")]

    def completions(self) -> list[dict[str, Any]]:
        """Bodies of the completion requests received, in order."""
        return [s.body for s in self.seen if s.path.endswith("/v1/completions")]

    def batch_submissions(self) -> list[dict[str, Any]]:
        """Bodies of the batch creations received, in order."""
        return [s.body for s in self.seen if s.method == "POST" and s.path == "/v1/batches"]

    def batch_requests(self, batch_id: str) -> list[dict[str, Any]]:
        """The request lines of one batch's input file."""
        text = self.files[self.batches[batch_id]["input_file_id"]].decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, path: str, body: Any) -> Reply:
        with self._lock:
            queue = self.script.get(path)
            if queue:
                return queue.pop(0)
        if path == "/v1/models":
            return Reply(body={"object": "list", "data": [{"id": m} for m in self.models]})
        if path == "/v1/chat/completions":
            if body.get("model") not in self.models:
                return error(404, f"The model `{body.get('model')}` does not exist", None)
            for param, reply in self.reject.items():
                if param in body:
                    return reply
            text = f"The steps lead to the answer.\nVERDICT {nonce_of(body)}: {self.label}"
            return Reply(body=chat_reply(text))
        if path == "/v1/completions":
            return self._completion(body)
        if path.startswith(("/v1/files", "/v1/batches")):
            return self._batch_api(path, body)
        return Reply(404, {"error": {"message": "Not Found"}})

    # -- the Batch API ----------------------------------------------------------------------

    def _batch_api(self, path: str, body: Any) -> Reply:
        parts = path.strip("/").split("/")  # v1, files|batches, [id], [content|cancel]
        with self._lock:
            if parts == ["v1", "files"]:
                assert isinstance(body, dict) and body.get("purpose") == "batch", body
                fid = f"file-{len(self.files) + 1}"
                self.files[fid] = body["file"]
                return Reply(body=_file_object(fid, len(body["file"])))
            if len(parts) == 4 and parts[1] == "files" and parts[3] == "content":
                data = self.files.get(parts[2])
                if data is None:
                    return error(404, f"No such File object: {parts[2]}")
                return Reply(body=data, headers={"content-type": "application/octet-stream"})
            if parts == ["v1", "batches"]:
                return self._create_batch(body)
            batch = self.batches.get(parts[2]) if len(parts) >= 3 else None
            if batch is None:
                return error(404, f"No batch found with id '{parts[-1]}'.")
            if len(parts) == 4 and parts[3] == "cancel":
                batch["_plan"].states[:] = ["cancelling", "cancelled"]
            self._advance(batch)
            return Reply(body={k: v for k, v in batch.items() if not k.startswith("_")})

    def _create_batch(self, body: dict[str, Any]) -> Reply:
        fid = body.get("input_file_id")
        if fid not in self.files:
            return error(400, f"Invalid 'input_file_id': '{fid}'.", "input_file_id")
        assert body.get("endpoint") == "/v1/chat/completions", body
        assert body.get("completion_window") == "24h", body
        bid = f"batch_{len(self.batches) + 1}"
        plan = self.batch_script.pop(0) if self.batch_script else BatchPlan()
        total = len([x for x in self.files[fid].splitlines() if x.strip()])
        self.batches[bid] = {
            "id": bid,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": fid,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": 1,
            "request_counts": {"total": total, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
            "_plan": BatchPlan(list(plan.states), plan.failed_lines, plan.ran, plan.errors),
        }
        return Reply(body={k: v for k, v in self.batches[bid].items() if k != "_plan"})

    def _advance(self, batch: dict[str, Any]) -> None:
        """One retrieve: the next status of the plan (the final one writes the files)."""
        plan: BatchPlan = batch["_plan"]
        if self.hold_batches:
            batch["status"] = "in_progress"
            return
        if plan.states:
            batch["status"] = plan.states.pop(0)
        if plan.states or batch.get("_done"):
            return
        batch["_done"] = True
        status = batch["status"]
        if status == "failed":
            batch["errors"] = {"object": "list", "data": plan.errors}
            return
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]].splitlines() if x]
        ran = len(lines) if status == "completed" else (plan.ran or 0)
        out, err = [], []
        for i, line in enumerate(lines):
            cid = line["custom_id"]
            if i >= ran:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                msg = "This request could not be executed before the completion window expired."
                err.append({"id": f"req_{i}", "custom_id": cid, "response": None,
                            "error": {"code": code, "message": msg}})  # fmt: skip
                continue
            reply = plan.failed_lines.get(i)
            if reply is None:
                self._lock.release()  # the chat answer takes the lock itself
                try:
                    reply = self.answer(line["url"], line["body"])
                finally:
                    self._lock.acquire()
            row = {"id": f"req_{i}", "custom_id": cid, "error": None,
                   "response": {"status_code": reply.status, "request_id": f"r{i}",
                                "body": reply.body}}  # fmt: skip
            (out if reply.status == 200 else err).append(row)
        counts = batch["request_counts"]
        counts["completed"], counts["failed"] = len(out), len(err)
        for key, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                fid = f"file-{len(self.files) + 1}"
                self.files[fid] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[key] = fid

    def _completion(self, body: dict[str, Any]) -> Reply:
        if body.get("model") not in self.models:
            return error(404, f"The model `{body.get('model')}` does not exist", None)
        prompt = body.get("prompt")
        used = len(prompt) if isinstance(prompt, list) else 1
        ids = body.get("logprob_token_ids")
        if not ids:
            return Reply(body=completion_reply(self.completion_text, prompt_tokens=used))
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        top = {
            (f"token_id:{t}" if as_ids else str(t)): self.token_logprobs.get(
                t, -0.2 if k == 0 else -2.5
            )
            for k, t in enumerate(ids)
        }
        return Reply(body=completion_reply("x", top, finish_reason="length", prompt_tokens=used))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(size) if size else b""
                kind = self.headers.get("content-type") or ""
                if kind.startswith("multipart/form-data"):
                    body: Any = _form(raw, kind)
                else:
                    body = json.loads(raw) if raw else None
                with fake._lock:
                    fake.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                reply = fake.answer(self.path, body)
                if reply.status == 0:  # drop the connection without a word
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    for k, v in ({"content-type": "application/json"} | reply.headers).items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _serve

        return Handler


def _form(raw: bytes, content_type: str) -> dict[str, Any]:
    """A multipart/form-data body as {field: text, or bytes for a file}."""
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    fields: dict[str, Any] = {}
    for part in raw.split(b"--" + boundary):
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        name = re.search(rb'name="([^"]+)"', head)
        if name is None:
            continue
        value = data.removesuffix(b"\r\n")
        is_file = b"filename=" in head
        fields[name.group(1).decode()] = value if is_file else value.decode()
    return fields


def _file_object(fid: str, size: int) -> dict[str, Any]:
    return {"id": fid, "object": "file", "bytes": size, "created_at": 1,
            "filename": "batch.jsonl", "purpose": "batch", "status": "processed"}  # fmt: skip


def wait_a_little() -> None:
    """Let in-flight handler threads record their requests."""
    time.sleep(0.05)
