"""Interrupted and killed runs, and two runs racing for one directory.

The run samples through a scripted server that holds its answer to the second problem,
so a signal always arrives mid-run, after the first problem's records are on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from faithcheck.probes import ProbeConfig
from faithcheck.sampling import SamplingConfig
from faithcheck.store.rundir import RunDir
from tests.reliability.conftest import (
    QUIET,
    ScriptedServer,
    assert_one_error,
    openai_args,
    problems,
    read_records,
    run_cli,
    sample_keys,
    start_cli,
    write_jsonl,
)

ALL = sorted((f"p{i}", k) for i in range(3) for k in range(2))


def _args(tmp_path: Path, server: ScriptedServer) -> list[str]:
    write_jsonl(tmp_path / "p.jsonl", problems(3))
    args = [*openai_args(server.url), "--dataset", "p.jsonl", "--samples", "2"]
    return [*args, *QUIET, "--out", "run"]


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 90
    while not condition():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the run ended (rc {proc.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.05)


def _mid_run(
    tmp_path: Path, server: ScriptedServer, prelude: str | None = None
) -> subprocess.Popen[str]:
    """Start a run and return once it waits on the server for the second problem."""
    server.hold_after = 1
    proc = start_cli(_args(tmp_path, server), tmp_path, prelude=prelude)
    _wait_for(lambda: server.completions >= 2, proc, "the second problem was requested")
    return proc


def _finish(tmp_path: Path, server: ScriptedServer) -> subprocess.CompletedProcess[str]:
    server.hold_after = None
    server.release.set()
    result = run_cli(_args(tmp_path, server), tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 4, result.stderr  # INCONCLUSIVE: a verdict, not an error
    assert "resuming run in" in result.stderr
    return result


def test_ctrl_c_exits_130_and_the_run_resumes(tmp_path: Path, server: ScriptedServer) -> None:
    proc = _mid_run(tmp_path, server)
    os.killpg(proc.pid, signal.SIGINT)  # the whole group, as Ctrl-C in a terminal
    out, err = proc.communicate(timeout=60)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_one_error(result, 130, "interrupted; records written so far are kept", under_way=True)
    assert sample_keys(read_records(tmp_path / "run")) == [("p0", 0), ("p0", 1)]
    assert not (tmp_path / "run" / "report.json").exists()

    _finish(tmp_path, server)
    assert sorted(sample_keys(read_records(tmp_path / "run"))) == ALL


# Closing the backend blocks for good (a connection stuck on a server that never answers),
# and the grace period after Ctrl-C is one second.
_STUCK_CLOSE = """
import time, faithcheck.cli.commands as _cli, faithcheck.backends.openai as _o
_cli.INTERRUPT_GRACE_S = 1.0
_o.OpenAIBackend.close = lambda self: time.sleep(3600)
"""


def test_ctrl_c_ends_the_run_even_when_cleanup_blocks(
    tmp_path: Path, server: ScriptedServer
) -> None:
    """Unwinding after Ctrl-C gets a grace period, then the process leaves anyway: exit
    130, the one line, and the records already written intact."""
    proc = _mid_run(tmp_path, server, prelude=_STUCK_CLOSE)
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 30
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_one_error(result, 130, "interrupted; records written so far are kept", under_way=True)
    assert sample_keys(read_records(tmp_path / "run")) == [("p0", 0), ("p0", 1)]

    _finish(tmp_path, server)
    assert sorted(sample_keys(read_records(tmp_path / "run"))) == ALL


def test_a_second_ctrl_c_leaves_at_once(tmp_path: Path, server: ScriptedServer) -> None:
    prelude = _STUCK_CLOSE.replace("INTERRUPT_GRACE_S = 1.0", "INTERRUPT_GRACE_S = 3600.0")
    proc = _mid_run(tmp_path, server, prelude=prelude)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(1.0)  # the first one is unwinding into the blocked close
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert_one_error(result, 130, "interrupted; records written so far are kept", under_way=True)


def test_sigkill_leaves_a_resumable_run(tmp_path: Path, server: ScriptedServer) -> None:
    """SIGKILL gives no chance to clean up: the lock dies with the process and the
    records on disk parse. On top, the file is given what a kill in the middle of an
    append leaves (the next problem's first record whole, its second cut off): resuming
    cuts the torn tail, samples that problem again, and writes no record twice."""
    proc = _mid_run(tmp_path, server)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert sample_keys(read_records(tmp_path / "run")) == [("p0", 0), ("p0", 1)]

    samples = tmp_path / "run" / "samples.jsonl"
    p0 = samples.read_bytes().splitlines(keepends=True)
    p1 = [line.replace(b'"p0"', b'"p1"') for line in p0]  # same shape, next problem
    samples.write_bytes(b"".join(p0) + p1[0] + p1[1][: len(p1[1]) // 2])
    torn = read_records(tmp_path / "run", allow_torn=True)
    assert sample_keys(torn) == [("p0", 0), ("p0", 1), ("p1", 0)]

    _finish(tmp_path, server)
    assert sorted(sample_keys(read_records(tmp_path / "run"))) == ALL


def test_second_run_on_the_same_out_is_locked_out(tmp_path: Path, server: ScriptedServer) -> None:
    first = _mid_run(tmp_path, server)
    try:
        result = run_cli(_args(tmp_path, server), tmp_path)
        assert_one_error(result, 2, "another faithcheck run is using run")
        assert sample_keys(read_records(tmp_path / "run")) == [("p0", 0), ("p0", 1)]
    finally:
        server.release.set()
    _, err = first.communicate(timeout=60)
    assert first.returncode == 4, err  # the first run was not disturbed
    assert sorted(sample_keys(read_records(tmp_path / "run"))) == ALL


def test_problem_with_partly_written_probe_records_is_probed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill (or a full disk) that cut a problem's probe records short must not leave
    that problem counted as probed: it is probed again on resume."""
    from faithcheck.pipeline import stages
    from faithcheck.probes.records import ControlRecord
    from faithcheck.records import Problem

    run = RunDir(tmp_path)
    problem = Problem(id="p0", question="1 + 1?", answer="2")
    # One of the problem's several probe records reached the disk before the kill.
    partial = ControlRecord(
        problem_id="p0",
        sample_index=0,
        full_correct=True,
        no_cot_answer="2",
        no_cot_correct=True,
        filler_answer=None,
        filler_correct=False,
    )
    run.append_probes([partial])
    seen: list[list[str]] = []
    monkeypatch.setattr(
        stages, "run_probes", lambda b, todo, *a, **k: seen.append([p.id for p in todo])
    )
    cfg = ProbeConfig.model_validate({"probes": ["controls", "truncation"]})
    stages.probe_into(run, None, [problem], SamplingConfig(), cfg, None, 1)  # type: ignore[arg-type]
    assert seen == [["p0"]]
