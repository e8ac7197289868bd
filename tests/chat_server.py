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
        return Reply(404, {"error": {"message": "Not Found"}})

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
                body = json.loads(self.rfile.read(size)) if size else None
                with fake._lock:
                    fake.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                reply = fake.answer(self.path, body)
                if reply.status == 0:  # drop the connection without a word
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = json.dumps(reply.body).encode()
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


def wait_a_little() -> None:
    """Let in-flight handler threads record their requests."""
    time.sleep(0.05)
