"""Shared helpers of the reliability suite: CLI runners, the error-line contract, record
checks, and a scripted OpenAI-compatible server on a chosen port.

Most cases run `faithcheck` as a real subprocess, so that what is asserted is what a user
or a CI job sees: the exit code, stderr, and the run directory left on disk. A *prelude*
(Python run in the subprocess before `faithcheck.cli.commands`) patches only what cannot be
arranged from outside: a full disk, a GGUF with another hash, retries without backoff,
spies on model loaders.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.backends.test_openai import FakeServer, Reply
from tests.vllm_server import free_port

REPO = Path(__file__).resolve().parents[2]
MATH = REPO / "data" / "samples" / "math.jsonl"

_DROP = (
    "FAITHCHECK_MODEL",
    "FAITHCHECK_DATASET",
    "FAITHCHECK_DEBUG",
    "FAITHCHECK_PROGRESS",
    "HF_HUB_OFFLINE",
)

_MAIN = "\nimport sys\nfrom faithcheck.cli import main\nsys.exit(main(sys.argv[1:]))\n"

NO_BACKOFF = (
    "import faithcheck.backends.http as _http\n"
    "_http.JSONClient._delay = lambda self, attempt, retry_after: 0.0"
)
"""Prelude: retries happen at once (the policy itself is tested in test_openai_backend)."""

QUIET = ["--probes", "none", "--no-judge", "--no-diversity"]
"""Options that keep a run to sampling (or replay), parsing and verification."""

# Lines a run may print to stderr next to its one error line once it is under way.
# Status lines a run may print before failing: notices, progress lines (what a stderr that
# is not a terminal gets, e.g. `[sampling] start: 3 problems`) and progress bars (with
# FAITHCHECK_PROGRESS=bars; an empty bar at 0/N has no bar characters in a non-terminal).
_STATUS = re.compile(
    r"^(resuming run in |backend: |precision: |probes: |warning: |\[\w+\] |.*━"
    r"|\w[\w ]*\s+\d+/\d+\s+\d+:\d\d:\d\d$)"
)

CANNED = (
    "We add the two amounts first: 2 + 3 = 5.\n\n"
    "Then we double the total: 5 × 2 = 10.\n\n"
    "The answer is \\boxed{10}."
)
"""What the scripted server answers to sampling requests unless told otherwise."""


def cli_env(**extra: str) -> dict[str, str]:
    """This environment without faithcheck's own variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env["COLUMNS"] = "250"  # keep rich output unwrapped
    env.update(extra)
    return env


def cli_argv(args: list[str], prelude: str | None = None) -> list[str]:
    """The command line of `faithcheck ARGS`, optionally after a patching prelude."""
    if prelude is None:
        return [sys.executable, "-m", "faithcheck", *args]
    return [sys.executable, "-c", prelude + _MAIN, *args]


def run_cli(
    args: list[str],
    cwd: Path,
    *,
    prelude: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion and capture its output."""
    return subprocess.run(
        cli_argv(args, prelude),
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(
    args: list[str], cwd: Path, *, prelude: str | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start the CLI in its own session (so a signal can go to its whole group, as Ctrl-C
    does in a terminal)."""
    return subprocess.Popen(
        cli_argv(args, prelude),
        cwd=cwd,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def assert_one_error(
    result: subprocess.CompletedProcess[str],
    code: int,
    needle: str | None = None,
    *,
    under_way: bool = False,
) -> str:
    """The error contract: exit `code`, no traceback, nothing on stdout, one `faithcheck:`
    line on stderr.

    Args:
        result: the finished process.
        code: the documented exit code.
        needle: text the error line must contain.
        under_way: the run got past its checks, so status lines (a progress bar,
            "resuming run in ...") may precede the error line; it must still be the only
            `faithcheck:` line and the last line.

    Returns:
        The error line.
    """
    assert "Traceback" not in result.stderr, result.stderr
    assert not result.stdout, result.stdout
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("faithcheck:")]
    assert len(errors) == 1, result.stderr
    if under_way:
        assert lines[-1] == errors[0], result.stderr
        assert all(_STATUS.match(line) for line in lines[:-1]), result.stderr
    else:
        assert lines == errors, result.stderr
    if needle is not None:
        assert needle in errors[0], errors[0]
    return errors[0]


def read_records(run_dir: Path, *, allow_torn: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Every JSONL record of a run directory, checking that nothing is corrupt.

    Each file must end in a newline (unless `allow_torn`: a killed writer may leave a
    torn final line, which faithcheck repairs on resume) and every complete line must
    parse; every JSON file must parse; no temporary file of an atomic write is left.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(run_dir.glob("*.jsonl")):
        data = path.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends in a newline
        assert allow_torn or tail == b"", f"{path.name}: torn last line {tail[:80]!r}"
        out[path.name] = [orjson.loads(line) for line in lines if line.strip()]
    for path in run_dir.glob("*.json"):
        assert isinstance(orjson.loads(path.read_bytes()), dict), path.name
    assert not [p.name for p in run_dir.glob(".*.tmp")], "an atomic write left its temp file"
    return out


def sample_keys(records: dict[str, list[dict[str, Any]]]) -> list[tuple[str, int]]:
    """(problem_id, sample_index) of every line of samples.jsonl, asserting no duplicates."""
    keys = [(r["problem_id"], r["sample_index"]) for r in records.get("samples.jsonl", [])]
    assert len(keys) == len(set(keys)), f"duplicate sample records: {keys}"
    return keys


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSON lines and return the path."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def problems(n: int, domain: str = "arithmetic") -> list[dict[str, Any]]:
    """`n` small arithmetic problems. Outside the math domains answers are checked by
    exact match, so a run needs no math-verify worker (one process less to start)."""
    return [
        {"id": f"p{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i), "domain": domain}
        for i in range(n)
    ]


_VERDICT_CUE = re.compile(r"VERDICT ([0-9a-f]{8}):")


class ScriptedServer(FakeServer):
    """`FakeServer` from tests/backends/test_openai.py, on a chosen port, answering like a
    model.

    - The i-th sampling request gets `replies[i % len(replies)]` (text and finish reason;
      default `CANNED`).
    - Judge prompts, recognized by their `VERDICT <nonce>:` cue (readable through the
      fake's character tokenizer), get a valid aligned verdict, unless `answer_judges`
      is False.
    - With `hold_after=N`, completion requests after the N-th wait until `release` is set
      (a model still thinking when the test interrupts it); with `fail_from=N` they get
      `failure` instead; with `max_context`, longer requests get vLLM's HTTP 400.
    - Scripted replies (`script[path]`) come first, as in `FakeServer`.
    """

    def __init__(
        self, port: int = 0, replies: Sequence[tuple[str, str]] = ((CANNED, "stop"),)
    ) -> None:
        # FakeServer.__init__ always binds port 0; the rest mirrors it.
        self.script: dict[str, list[Reply]] = {}
        self.seen: list[Any] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.completion_delay: Callable[[dict[str, Any]], float] = lambda body: 0.0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.clients = []
        self.replies = list(replies)
        self.max_context: int | None = None
        self.fail_from: int | None = None
        self.answer_judges = True
        self.failure = Reply(500, {"error": {"message": "engine crashed"}})
        self.hold_after: int | None = None
        self.release = threading.Event()
        self.completions = 0
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def answer(self, path: str, body: Any) -> Reply:
        if path != "/v1/completions" or self.script.get(path):
            return super().answer(path, body)
        asked = len(body["prompt"]) + int(body.get("max_tokens") or 0)
        if self.max_context is not None and asked > self.max_context:
            message = (
                f"This model's maximum context length is {self.max_context} tokens. However, "
                f"you requested {asked} tokens. Please reduce the length of the messages."
            )
            return Reply(400, {"object": "error", "message": message, "code": 400})
        with self._lock:
            index = self.completions
            self.completions += 1
        if self.hold_after is not None and index >= self.hold_after:
            self.release.wait(timeout=120)
        if self.fail_from is not None and index >= self.fail_from:
            return self.failure
        prompt = "".join(chr(t) for t in body["prompt"] if 0 <= t < 0x110000)
        cue = _VERDICT_CUE.findall(prompt) if self.answer_judges else []
        if cue:
            text, finish = f"The steps lead to the answer.\nVERDICT {cue[-1]}: aligned", "stop"
        else:
            text, finish = self.replies[index % len(self.replies)]
        choices = [
            {"index": k, "text": text, "finish_reason": finish} for k in range(body.get("n", 1))
        ]
        return Reply(body={"object": "text_completion", "choices": choices})

    def close(self) -> None:
        self.release.set()
        super().close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A scripted OpenAI-compatible server on a free port."""
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture
def closed_url() -> str:
    """A /v1 URL on a local port nothing listens on (connections are refused)."""
    return f"http://127.0.0.1:{free_port()}/v1"


SERVED = "served-model"
"""A model known only by its name on the server, which then tokenizes too: such a run
imports no transformers, so it is the cheapest way to get a run under way."""


def openai_args(url: str, model: str = SERVED) -> list[str]:
    """`score` options that sample through the scripted server: with `model`'s own
    tokenizer when it is a checkpoint folder, else with the server's."""
    return ["score", "--backend", "openai", "--base-url", url, "--model", model]
