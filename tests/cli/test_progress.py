"""Progress in a log: plain lines instead of rich's bars when stderr is not a terminal."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from faithcheck.cli import progress as progress_module
from faithcheck.cli.progress import (
    LineProgress,
    format_elapsed,
    format_rate,
    make_progress,
    progress_mode,
)
from faithcheck.errors import UsageError


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(interval: float = 30.0) -> tuple[LineProgress, io.StringIO, Clock]:
    stream, clock = io.StringIO(), Clock()
    return LineProgress(stream, clock=clock, interval=interval), stream, clock


def _run_phase(p: LineProgress, clock: Clock, name: str, total: int, step_s: float) -> None:
    """What the stages do: add the task, set what is on disk, advance one at a time."""
    task = p.add_task(name, total=total)
    p.update(task, completed=0)
    for _ in range(total):
        clock.now += step_s
        p.advance(task, 1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.9, "0s"), (45, "45s"), (60, "1m00s"), (65.4, "1m05s"), (7387, "2h03m07s")],
)
def test_elapsed_formats(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (12 / 65, "0.18/s"),
        (3.5, "3.50/s"),
        (12.54, "12.5/s"),
        (240.2, "240/s"),
        (0.0, "0.00/s"),
        (2 / 37, "0.054/s"),
        (1 / 300, "0.0033/s"),
        (1e-9, "0.000000/s"),
    ],
)
def test_rate_formats(rate: float, text: str) -> None:
    assert format_rate(rate) == text


def test_a_line_when_each_phase_starts_and_ends() -> None:
    p, stream, clock = _lines()
    p.start()
    _run_phase(p, clock, "sampling", 4, step_s=5)
    _run_phase(p, clock, "probes", 2, step_s=10)
    p.stop()
    assert stream.getvalue().splitlines() == [
        "[sampling] start: 4 problems",
        "[sampling] done: 4/4 problems, 20s, 0.20/s",
        "[probes] start: 2 problems",
        "[probes] done: 2/2 problems, 20s, 0.10/s",
    ]


def test_a_progress_line_gives_done_total_elapsed_and_rate() -> None:
    p, stream, clock = _lines()
    task = p.add_task("probes", total=32)
    clock.now += 20
    p.advance(task, 5)  # 20 s in: no line yet
    clock.now += 45
    p.advance(task, 7)
    clock.now += 29
    p.advance(task, 1)  # 29 s after the last line: none
    clock.now += 1
    p.advance(task, 1)
    assert stream.getvalue().splitlines()[1:] == [
        "[probes] 12/32 problems, 1m05s, 0.18/s",
        "[probes] 14/32 problems, 1m35s, 0.15/s",
    ]


def test_at_most_one_line_per_interval_however_many_advances() -> None:
    p, stream, clock = _lines(interval=30)
    task = p.add_task("judge", total=100_000)
    for _ in range(10_000):  # 100 s in steps of 0.01 s
        clock.now += 0.01
        p.advance(task, 1)
    progress_lines = stream.getvalue().splitlines()[1:]
    assert len(progress_lines) == 3  # at 30, 60 and 90 s
    assert all(line.startswith("[judge] ") and "responses" in line for line in progress_lines)


def test_no_line_within_the_interval() -> None:
    p, stream, clock = _lines(interval=30)
    task = p.add_task("calibration", total=10)
    for _ in range(9):
        clock.now += 3
        p.advance(task, 1)
    assert stream.getvalue().splitlines() == ["[calibration] start: 10 items"]


def test_a_resumed_phase_says_what_was_on_disk_and_rates_only_the_new_work() -> None:
    p, stream, clock = _lines()
    task = p.add_task("sampling", total=30)
    p.update(task, completed=20)
    clock.now += 50
    p.advance(task, 10)
    assert stream.getvalue().splitlines() == [
        "[sampling] start: 30 problems",
        "[sampling] 20/30 problems already done",
        "[sampling] done: 30/30 problems, 50s, 0.20/s",
    ]


def test_a_phase_all_on_disk_ends_at_once() -> None:
    p, stream, _ = _lines()
    task = p.add_task("probes", total=8)
    p.update(task, completed=8)
    empty = p.add_task("judge", total=0)
    p.advance(empty, 0)
    assert stream.getvalue().splitlines() == [
        "[probes] start: 8 problems",
        "[probes] done: 8/8 problems, already done",
        "[judge] start: 0 responses",
        "[judge] done: 0/0 responses, already done",
    ]


def test_stop_ends_an_unfinished_phase() -> None:
    p, stream, clock = _lines()
    task = p.add_task("judge", total=40)
    clock.now += 10
    p.advance(task, 12)
    clock.now += 5
    p.stop()
    p.stop()  # ended once
    (line,) = stream.getvalue().splitlines()[1:]
    assert line == "[judge] stopped at: 12/40 responses, 15s, 0.80/s"


def test_lines_carry_no_escape_codes() -> None:
    p, stream, clock = _lines(interval=1)
    for name in ("sampling", "probes", "judge", "calibration"):
        _run_phase(p, clock, name, 5, step_s=2)
    p.stop()
    text = stream.getvalue()
    assert text and "\x1b" not in text and "\r" not in text


def test_auto_is_lines_off_a_terminal_and_bars_on_one() -> None:
    log = Console(file=io.StringIO(), force_terminal=False)
    tty = Console(file=io.StringIO(), force_terminal=True)
    assert progress_mode(log, env={}) == "lines"
    assert progress_mode(tty, env={}) == "bars"
    assert progress_mode(tty, env={"FAITHCHECK_PROGRESS": "auto"}) == "bars"


@pytest.mark.parametrize("value", ["bars", "lines", "off", " Lines "])
def test_the_environment_overrides_the_choice(value: str) -> None:
    for console in (Console(file=io.StringIO()), Console(file=io.StringIO(), force_terminal=True)):
        assert progress_mode(console, env={"FAITHCHECK_PROGRESS": value}) == value.strip().lower()


def test_a_bad_environment_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="FAITHCHECK_PROGRESS='dots'"):
        progress_mode(Console(file=io.StringIO()), env={"FAITHCHECK_PROGRESS": "dots"})


def test_make_progress_gives_each_mode_its_object() -> None:
    from rich.progress import Progress

    assert make_progress("off", json_out=False) is None
    assert isinstance(make_progress("lines", json_out=True), LineProgress)
    assert isinstance(make_progress("bars", json_out=False), Progress)


def test_score_writes_lines_to_a_stderr_that_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The wiring without a model: `faithcheck.score` replaced by the stages' calls."""

    def fake_score(progress: Any) -> Any:
        progress_module.say("precision: float32")
        progress.start()
        task = progress.add_task("sampling", total=2)
        progress.update(task, completed=0)
        progress.advance(task, 2)
        return "report"

    monkeypatch.delenv("FAITHCHECK_PROGRESS", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    assert progress_module.with_progress(fake_score, json_out=True) == "report"
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[:2] == ["precision: float32", "[sampling] start: 2 problems"]
    assert lines[2].startswith("[sampling] done: 2/2 problems, ")
    assert "\x1b" not in err


def test_score_in_a_log_prints_phase_lines_and_json_only_on_stdout(tmp_path: Path) -> None:
    """`faithcheck score --json` with stderr a pipe, sampling through a scripted
    OpenAI-compatible server (no model is loaded): phase lines on stderr, the report alone
    on stdout; FAITHCHECK_PROGRESS=off prints none."""
    from tests.reliability.conftest import (
        QUIET,
        ScriptedServer,
        cli_env,
        openai_args,
        problems,
        run_cli,
        write_jsonl,
    )

    write_jsonl(tmp_path / "p.jsonl", problems(2))
    env = {k: v for k, v in cli_env().items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    server = ScriptedServer()
    try:
        args = [*openai_args(server.url), "--dataset", "p.jsonl", "--samples", "2", *QUIET]
        logged = run_cli([*args, "--out", "a", "--json"], tmp_path, env=env)
        off = run_cli([*args, "--out", "b"], tmp_path, env={**env, "FAITHCHECK_PROGRESS": "off"})
    finally:
        server.close()
    assert logged.returncode == 4, logged.stderr  # two problems: inconclusive
    assert json.loads(logged.stdout)["sampling"]["samples"] == 4
    lines = logged.stderr.splitlines()
    assert "[sampling] start: 2 problems" in lines, logged.stderr
    assert any(line.startswith("[sampling] done: 2/2 problems, ") for line in lines)
    assert "\x1b" not in logged.stderr
    assert off.returncode == 4, off.stderr
    assert "[sampling]" not in off.stderr


def test_a_phase_that_does_not_advance_still_gets_a_line_per_interval() -> None:
    # One engine call can hold a whole phase (16 problems per vLLM chunk): the heartbeat's
    # tick writes the line a bar's ticking clock would show.
    p, stream, clock = _lines(interval=30)
    p.add_task("probes", total=16)
    clock.now += 29
    p.tick()
    assert stream.getvalue().splitlines() == ["[probes] start: 16 problems"]
    clock.now += 1
    p.tick()
    clock.now += 10
    p.tick()  # not due again until 60 s
    clock.now += 20
    p.tick()
    p.stop()
    clock.now += 60
    p.tick()  # ended: nothing more
    assert stream.getvalue().splitlines() == [
        "[probes] start: 16 problems",
        "[probes] 0/16 problems, 30s",
        "[probes] 0/16 problems, 1m00s",
        "[probes] stopped at: 0/16 problems, 1m00s",
    ]


def test_the_heartbeat_thread_writes_while_a_phase_waits_and_stops_with_the_display() -> None:
    stream = io.StringIO()
    p = LineProgress(stream, interval=0.05)
    p.start()
    p.add_task("judge", total=4)
    deadline = time.monotonic() + 10
    while stream.getvalue().count("\n") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    p.stop()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[judge] start: 4 responses"
    assert any(line.startswith("[judge] 0/4 responses, ") for line in lines[1:])
    assert lines[-1].startswith("[judge] stopped at: 0/4 responses")
    time.sleep(0.2)
    assert stream.getvalue().splitlines() == lines  # nothing after stop
