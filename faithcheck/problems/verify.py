"""Decide whether a predicted answer matches a problem's gold answer.

Math answers go through math-verify, which can hang on pathological input (e.g.
`10000000!`), and its own signal-based timeouts only work in the main thread. So
math-verify runs in a persistent worker subprocess: each call is a JSON line over a pipe
(about a millisecond of overhead), the parent waits at most `timeout_s` for the reply, and a
worker that overruns is killed and respawned. Any thread may call `verify`.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import select
import subprocess
import sys
import threading
import time
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

from faithcheck.problems.parsing import normalize_answer
from faithcheck.records import Problem, Record

VerifyMethod = Literal["math_verify", "exact", "reasoning_gym", "none"]

MATH_DOMAINS = frozenset({"math", "science"})
"""Domains verified with math-verify; all others use normalized exact match."""

RG_SCORE_THRESHOLD = 1.0 - 1e-9
"""reasoning-gym scores are in [0, 1] with partial credit (e.g. 0.01 for a well-formed but
wrong answer, len(gold)/len(pred) when the gold is a substring); only a full score counts.
The epsilon absorbs float sums like letter_jumble's ten 0.1s, which total 0.999...9."""

MAX_MATH_CHARS = 20_000
"""Longer gold + pred skip math-verify (far too slow and never a real final answer)."""

_STARTUP_TIMEOUT_S = 60.0
_WORKER_ARGV = (
    sys.executable,
    "-c",
    "from faithcheck.problems.verify import _worker_main; _worker_main()",
)


class Verification(Record):
    """The outcome of checking one predicted answer."""

    correct: bool
    """Whether the prediction matches the gold answer (always False when `error` is set)."""
    method: VerifyMethod
    """The method that decided; `exact` also when math-verify found nothing to compare."""
    error: str | None = None
    """Why verification could not finish: "timeout" or an exception type name."""


class VerifyTimeout(Exception):
    """The math-verify worker did not answer in time and was killed."""


class WorkerError(Exception):
    """The math-verify worker could not be started or died mid-call."""


def verify(problem: Problem, pred: str | None, *, timeout_s: float = 5.0) -> Verification:
    """Check a predicted answer against a problem's gold answer.

    Args:
        problem: The problem; `source` and `domain` select the verifier.
        pred: The extracted answer, or None if none was found.
        timeout_s: Upper bound on the math-verify comparison, in seconds. Calls are
            serialized on one worker, so a caller may also wait for another thread's call.

    Returns:
        The verdict and the method used. Never raises for bad answers or scorer errors;
        those come back with `correct=False` and `error` set.
    """
    if pred is None:
        return Verification(correct=False, method="none")
    if problem.source == "rg":
        return _verify_rg(problem, pred)
    if problem.domain in MATH_DOMAINS:
        return _verify_math(problem.answer, pred, timeout_s)
    return Verification(correct=exact_match(problem.answer, pred), method="exact")


def exact_match(gold: str, pred: str) -> bool:
    """Compare two answers after `normalize_answer`, numerically when both are numbers.

    Args:
        gold: The gold answer.
        pred: The predicted answer.

    Returns:
        True if equal, so "12" matches "12.0" and "1,200" matches "1200".
    """
    g, p = normalize_answer(gold), normalize_answer(pred)
    g_num, p_num = _as_number(g), _as_number(p)
    if g_num is not None and p_num is not None:
        return g_num == p_num
    return g == p


def warm_up() -> None:
    """Start the math-verify worker now, so the first `verify` call is not slowed by it.

    Raises:
        WorkerError: If the worker cannot be started.
    """
    _WORKER.start()


def _as_number(text: str) -> Fraction | None:
    """Parse an integer, decimal or a/b fraction exactly; None if it is not one."""
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _verify_rg(problem: Problem, pred: str) -> Verification:
    try:
        score_fn = _rg_score_fn(problem.metadata["rg_dataset"])
        score = score_fn(pred.strip(), problem.metadata["rg_entry"])
    except Exception as exc:  # third-party scorers can raise anything
        return Verification(correct=False, method="reasoning_gym", error=type(exc).__name__)
    return Verification(correct=float(score) >= RG_SCORE_THRESHOLD, method="reasoning_gym")


@cache
def _rg_score_fn(name: str) -> Any:
    """Cache the scorer: reasoning-gym builds a whole default dataset to hand it out."""
    import reasoning_gym  # deferred: importing it costs most of a second

    return reasoning_gym.get_score_answer_fn(name)


def _verify_math(gold: str, pred: str, timeout_s: float) -> Verification:
    if len(gold) + len(pred) > MAX_MATH_CHARS:
        return Verification(correct=exact_match(gold, pred), method="exact")
    try:
        outcome = _WORKER.compare(gold, pred, timeout_s)
    except VerifyTimeout:
        return Verification(correct=False, method="math_verify", error="timeout")
    except Exception as exc:  # a broken worker must not break the caller
        return Verification(correct=False, method="math_verify", error=type(exc).__name__)
    if outcome.error is not None:
        return Verification(correct=False, method="math_verify", error=outcome.error)
    if outcome.timed_out and not outcome.result:
        return Verification(correct=False, method="math_verify", error="timeout")
    if outcome.result is None:
        return Verification(correct=exact_match(gold, pred), method="exact")
    return Verification(correct=outcome.result, method="math_verify")


class _Outcome(NamedTuple):
    result: bool | None
    """math-verify's verdict, or None when it parsed nothing on one side."""
    timed_out: bool
    """Whether one of math-verify's own per-step alarms fired."""
    error: str | None
    """Type name of an exception raised inside the worker."""


class _MathWorker:
    """A persistent math-verify subprocess with a hard per-call deadline."""

    def __init__(self, argv: tuple[str, ...] = _WORKER_ARGV) -> None:
        self._argv = argv
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._owner_pid = os.getpid()

    def compare(self, gold: str, pred: str, timeout_s: float) -> _Outcome:
        """Run one comparison within `timeout_s` (not counting a worker start).

        Raises:
            VerifyTimeout: The worker overran and was replaced.
            WorkerError: The worker could not start or died.
        """
        request = {"gold": gold, "pred": pred, "inner_timeout": _inner_timeout(timeout_s)}
        with self._lock:
            proc = self._ensure_ready()
            try:
                reply = self._roundtrip(proc, request, timeout_s)
            except BaseException:
                # An unread reply (e.g. after Ctrl-C) would be taken as the next call's answer.
                self._respawn()
                raise
        return _Outcome(reply.get("result"), bool(reply.get("timed_out")), reply.get("error"))

    def start(self) -> None:
        """Start the worker and wait until it is ready to serve."""
        with self._lock:
            self._ensure_ready()

    def close(self) -> None:
        """Kill the worker, if any; the next call starts a fresh one."""
        if self._proc is not None and self._owner_pid == os.getpid():
            self._proc.kill()
            self._proc.wait()
        self._proc, self._ready = None, False

    def _roundtrip(
        self, proc: subprocess.Popen[bytes], request: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
        except OSError as exc:
            raise WorkerError("worker pipe closed") from exc
        line = _readline(proc.stdout, time.monotonic() + max(timeout_s, 0.0))
        if line is None:
            raise VerifyTimeout
        if not line:
            raise WorkerError("worker died")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _ensure_ready(self) -> subprocess.Popen[bytes]:
        if self._owner_pid != os.getpid():
            # A forked child must not share the parent's pipes.
            self._proc, self._ready, self._owner_pid = None, False, os.getpid()
        if self._proc is None or self._proc.poll() is not None:
            self._spawn()
        assert self._proc is not None and self._proc.stdout is not None
        if not self._ready:
            line = _readline(self._proc.stdout, time.monotonic() + _STARTUP_TIMEOUT_S)
            if line != b"ready\n":
                self.close()
                raise WorkerError("worker failed to start")
            self._ready = True
        return self._proc

    def _spawn(self) -> None:
        env = dict(os.environ)
        # The worker imports faithcheck by name, so it must see this checkout.
        root = str(Path(__file__).resolve().parents[2])  # above faithcheck/problems/
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._ready = False

    def _respawn(self) -> None:
        # Start the replacement now so its imports overlap with the caller's other work.
        self.close()
        self._spawn()


def _inner_timeout(timeout_s: float) -> int:
    """math-verify's own per-step alarm (whole seconds; 0 disables it).

    At half the hard deadline it cuts Python-level hangs inside the worker, which then
    survives; the hard deadline still covers hangs in C code and the sum over steps.
    """
    return math.floor(timeout_s / 2) if timeout_s >= 2 else 0


def _readline(stream: IO[bytes], deadline: float) -> bytes | None:
    """Read one line before `deadline`; None on timeout, b"" if the writer exited.

    Replies are single short lines written in one go, so once the pipe is readable the
    whole line is there and `readline` will not block.
    """
    remaining = deadline - time.monotonic()
    while remaining > 0:
        readable, _, _ = select.select([stream], [], [], remaining)
        if readable:
            return stream.readline()
        remaining = deadline - time.monotonic()
    return None


_WORKER = _MathWorker()
atexit.register(_WORKER.close)


def _as_latex(answer: str) -> str:
    """Wrap a bare answer in `$...$`: math-verify then parses `\\frac34`, `1,200`, sets."""
    text = answer.strip()
    if any(mark in text for mark in ("$", "\\(", "\\[", "\\boxed")):
        return text
    return f"${text}$"


class _TimeoutFlag(logging.Handler):
    """Notices math-verify's "Timeout during ..." warnings, which it logs instead of raising."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.fired = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Timeout during"):
            self.fired = True


def _compare_in_worker(
    gold: str, pred: str, inner_timeout: int, flag: _TimeoutFlag
) -> dict[str, Any]:
    from math_verify import parse
    from math_verify import verify as mv_verify

    flag.fired = False
    gold_parsed = parse(_as_latex(gold), parsing_timeout=inner_timeout)
    pred_parsed = parse(_as_latex(pred), parsing_timeout=inner_timeout)
    if not gold_parsed or not pred_parsed:
        return {"result": None, "timed_out": flag.fired}
    result = mv_verify(gold_parsed, pred_parsed, timeout_seconds=inner_timeout)
    return {"result": bool(result), "timed_out": flag.fired}


def _worker_main() -> None:
    """Entry point of the worker subprocess: one JSON request per stdin line."""
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the protocol
    flag = _TimeoutFlag()
    mv_logger = logging.getLogger("math_verify")
    mv_logger.addHandler(flag)
    mv_logger.setLevel(logging.WARNING)
    mv_logger.propagate = False
    # Warm up imports and sympy's parser before "ready" so real calls do not pay for them.
    _compare_in_worker("1/2", "0.5", 0, flag)
    channel.write(b"ready\n")
    for line in sys.stdin.buffer:
        try:
            req = json.loads(line)
            reply = _compare_in_worker(req["gold"], req["pred"], req["inner_timeout"], flag)
        except Exception as exc:  # report it, and keep serving
            reply = {"error": type(exc).__name__}
        channel.write(json.dumps(reply).encode() + b"\n")
