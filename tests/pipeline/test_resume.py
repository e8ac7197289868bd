"""Resume: a `score` run interrupted (Ctrl-C, SIGKILL while sampling, SIGKILL right after
a probe chunk landed) and run again with the same command ends with the same report as
an uninterrupted run, and with no duplicate records.

One slow test on the real default model (transformers, greedy fp32), through the CLI in
subprocesses: the interruptions are real signals, not simulated exceptions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from faithcheck.cli import commands as cli
from tests.conftest import assert_valid_report

PROBLEMS = 6
ARGS = (
    "score", "--backend", "hf", "--limit", str(PROBLEMS), "--samples", "2",
    "--max-tokens", "24", "--temperature", "0", "--dtype", "float32",
    "--no-judge", "--no-diversity", "--probes", "truncation", "--probe-samples", "1",
)  # fmt: skip
VOLATILE = ("timings", "throughput", "run_id", "run_dir")
RECORD_FILES = ("samples.jsonl", "probes.jsonl")

# `score`, killed by SIGKILL from inside right after its first probe records are on disk:
# a deterministic kill between two probe chunks.
DIE_AFTER_FIRST_PROBES = """
import os, signal, sys
from faithcheck.store import rundir
append = rundir.RunDir.append_probes
def append_then_die(self, records):
    append(self, records)
    os.kill(os.getpid(), signal.SIGKILL)
rundir.RunDir.append_probes = append_then_die
from faithcheck.cli.commands import entry
sys.argv = ["faithcheck", *sys.argv[1:]]
entry()
"""


def _cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "faithcheck", *ARGS, "--out", str(out)]


def _start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    # Background jobs may inherit SIGINT ignored; Python then ignores Ctrl-C too.
    return subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env=os.environ | {"TOKENIZERS_PARALLELISM": "false"},
    )


def _run(cmd: list[str], log: Path) -> int:
    proc = _start(cmd, log)
    return proc.wait(timeout=600)


def _sampled(out: Path) -> set[str]:
    """Problems with a complete line in samples.jsonl (a torn tail does not count)."""
    path = out / "samples.jsonl"
    if not path.exists():
        return set()
    lines = path.read_bytes().splitlines(keepends=True)
    return {json.loads(line)["problem_id"] for line in lines if line.endswith(b"\n")}


def _interrupt(out: Path, log: Path, sig: signal.Signals, at_least: int) -> int:
    """Start the run, send `sig` once `at_least` (but not all) problems are sampled."""
    proc = _start(_cmd(out), log)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run ended before the interruption: {log.read_text()[-2000:]}")
        if at_least <= len(_sampled(out)) < PROBLEMS:
            proc.send_signal(sig)
            return proc.wait(timeout=120)
        time.sleep(0.1)
    proc.kill()
    pytest.fail("no sample reached disk in time")


def _records(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, which must all be complete JSON records."""
    if not path.exists():
        return []
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path.name} ends in a torn line"
    return [json.loads(line) for line in data.splitlines()]


def _report(out: Path) -> dict[str, Any]:
    doc = json.loads((out / "report.json").read_text())
    assert_valid_report(doc)
    return {k: v for k, v in doc.items() if k not in VOLATILE}


def _keys(out: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "samples": [(r["problem_id"], r["sample_index"]) for r in _records(out / "samples.jsonl")],
        "probes": [
            (r["probe"], r["problem_id"], r["sample_index"]) for r in _records(out / "probes.jsonl")
        ],
    }


@pytest.mark.slow
def test_interrupted_runs_resume_to_the_uninterrupted_report(tmp_path: Path) -> None:
    base, out = tmp_path / "base", tmp_path / "run"
    assert _run(_cmd(base), tmp_path / "base.log") in (0, 1, 4)

    # Ctrl-C while sampling: exit 130, no traceback, every record file valid JSONL.
    code = _interrupt(out, tmp_path / "int.log", signal.SIGINT, at_least=1)
    err = (tmp_path / "int.log").read_text()
    assert code == 130, err[-2000:]
    assert "Traceback" not in err
    for name in RECORD_FILES:
        _records(out / name)
    after_int = _sampled(out)
    assert not (out / "report.json").exists()

    # SIGKILL later in sampling: the same command resumes, then dies without a word.
    code = _interrupt(out, tmp_path / "kill.log", signal.SIGKILL, at_least=len(after_int) + 1)
    assert code == -signal.SIGKILL
    assert "resuming" in (tmp_path / "kill.log").read_text()
    assert after_int < _sampled(out)
    assert not (out / "report.json").exists()

    # Finishes sampling, then is killed right after the first probe chunk is on disk.
    hooked = [sys.executable, "-c", DIE_AFTER_FIRST_PROBES, *ARGS, "--out", str(out)]
    assert _run(hooked, tmp_path / "probe.log") == -signal.SIGKILL
    assert _sampled(out) == _sampled(base)
    probed = {r["problem_id"] for r in _records(out / "probes.jsonl")}
    assert probed < {r["problem_id"] for r in _records(base / "probes.jsonl")}
    assert not (out / "report.json").exists()

    code = _run(_cmd(out), tmp_path / "last.log")
    assert code in (0, 1, 4), (tmp_path / "last.log").read_text()[-2000:]
    assert "resuming" in (tmp_path / "last.log").read_text()

    assert _report(out) == _report(base)
    got, want = _keys(out), _keys(base)
    for name in ("samples", "probes"):
        dupes = [k for k, n in Counter(got[name]).items() if n > 1]
        assert not dupes, f"duplicate {name} records: {dupes}"
        assert sorted(got[name]) == sorted(want[name]), name


def test_ctrl_c_is_one_line_and_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    before = list(cli.app.registered_commands)
    cli.app.command(name="interrupted-for-test")(interrupted)
    try:
        code = cli.main(["interrupted-for-test"])
    finally:
        cli.app.registered_commands[:] = before
    assert code == 130
    assert capsys.readouterr().err == "faithcheck: interrupted; records written so far are kept\n"
