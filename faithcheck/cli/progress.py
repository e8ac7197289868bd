"""One checkpoint scored with a progress display on stderr (the CLI's way of running
`faithcheck.score`, shared by `score` and `score --model A --model B`).

On a terminal the display is rich's progress bars. In a log (stderr a file or a pipe: CI,
nohup, `2> file`) rich draws nothing until the end, so a long run would look hung there:
it gets plain lines instead (`LineProgress`). $FAITHCHECK_PROGRESS (auto, bars, lines,
off) overrides the choice.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal, cast

from rich.console import Console

from faithcheck.errors import UsageError
from faithcheck.quiet import stdout_to_stderr as _stdout_to_stderr

if TYPE_CHECKING:
    from faithcheck.api import Report

err = Console(stderr=True)

PROGRESS_ENV = "FAITHCHECK_PROGRESS"
"""auto (default: bars on a terminal, lines otherwise), bars, lines or off."""
ProgressMode = Literal["bars", "lines", "off"]
LINE_INTERVAL_S = 30.0
"""Least time between two progress lines of one phase."""

# What each phase counts (the totals the stages give their tasks); other phases count items.
_UNITS = {"sampling": "problems", "probes": "problems", "judge": "responses"}


def say(message: str) -> None:
    """A status line of the run (`precision: ...`, `resuming run in ...`), on stderr."""
    err.print(message, highlight=False)


def with_progress(score: Callable[[Any], Report], json_out: bool) -> Report:
    """One checkpoint scored by `score(progress)` (`faithcheck.score`), with a progress
    display on stderr, stopped afterwards, and engine chatter kept off stdout."""
    progress = make_progress(progress_mode(err), json_out)
    with _stdout_to_stderr():
        try:
            return score(progress)
        finally:
            if progress is not None:
                progress.stop()


def progress_mode(console: Console, env: Mapping[str, str] = os.environ) -> ProgressMode:
    """The display $FAITHCHECK_PROGRESS asks for; `auto` is bars where rich draws them
    (a terminal that is not dumb, as rich's `Live` decides), else lines."""
    value = env.get(PROGRESS_ENV, "").strip().lower() or "auto"
    if value == "auto":
        drawn = console.is_terminal and not console.is_dumb_terminal
        return "bars" if drawn else "lines"
    if value not in ("bars", "lines", "off"):
        raise UsageError(f"{PROGRESS_ENV}={value!r}: expected auto, bars, lines or off")
    return cast(ProgressMode, value)


def make_progress(mode: ProgressMode, json_out: bool) -> Any:
    """The object the pipeline reports progress to (None: no progress shown)."""
    if mode == "off":
        return None
    if mode == "lines":
        return LineProgress(err.file)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=json_out,
    )


@dataclass
class _Phase:
    name: str
    total: int
    started: float
    done: int = 0
    base: int = 0  # done before this run (a resumed run): not counted in the rate
    moved: bool = False
    last_line: float = 0.0
    ended: bool = False


class LineProgress:
    """The subset of rich's `Progress` the pipeline calls, written as plain lines.

    Phases run one after another: a line when a phase starts, one when it ends, and within
    it one line per `interval` seconds, e.g. `[probes] 12/32 problems, 1m05s, 0.18/s`:
    written when it advances, or by a heartbeat when an engine call runs longer than the
    interval without advancing (a log must not look hung where a bar's clock would tick).
    Each line is flushed as written.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = LINE_INTERVAL_S,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._interval = interval
        self._phases: list[_Phase] = []
        self._lock = threading.RLock()
        self._stopped = threading.Event()
        self._heart: threading.Thread | None = None

    def start(self) -> None:
        """Start the heartbeat (lines themselves are written as progress comes)."""
        if self._heart is None:
            self._heart = threading.Thread(target=self._beat, name="progress", daemon=True)
            self._heart.start()

    def stop(self) -> None:
        """End the phases still open (an error or an interrupt stopped them), and the
        heartbeat."""
        self._stopped.set()
        self._end_open()

    def tick(self) -> None:
        """A line for the open phase if its last one is `interval` old (the heartbeat)."""
        with self._lock:
            for phase in self._phases:
                if not phase.ended:
                    self._line_if_due(phase)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        """Start a phase (ending the one before it); returns its task id."""
        with self._lock:
            self._end_open()
            now = self._clock()
            phase = _Phase(description, int(total or 0), started=now, last_line=now)
            self._phases.append(phase)
            self._write(f"[{phase.name}] start: {phase.total} {_unit(phase)}")
            if phase.total == 0:
                self._end(phase)
            return len(self._phases) - 1

    def update(self, task_id: int, *, completed: float | None = None, **_: Any) -> None:
        """Set how much of the phase is done (before any advance: done by an earlier run)."""
        with self._lock:
            phase = self._phases[task_id]
            if completed is None or phase.ended:
                return
            phase.done = int(completed)
            if not phase.moved:
                phase.base = phase.done
                if 0 < phase.done < phase.total:
                    self._write(f"[{phase.name}] {self._count(phase)} already done")
            self._advanced(phase)

    def advance(self, task_id: int, advance: float = 1) -> None:
        """Count `advance` more done; a line if the last one is `interval` old."""
        with self._lock:
            phase = self._phases[task_id]
            if phase.ended:
                return
            phase.done += int(advance)
            phase.moved = True
            self._advanced(phase)

    def _beat(self) -> None:
        while not self._stopped.wait(min(self._interval, 5.0)):
            self.tick()

    def _end_open(self) -> None:
        with self._lock:
            for phase in self._phases:
                self._end(phase)

    def _advanced(self, phase: _Phase) -> None:
        if phase.done >= phase.total:
            self._end(phase)
            return
        self._line_if_due(phase)

    def _line_if_due(self, phase: _Phase) -> None:
        now = self._clock()
        if now - phase.last_line >= self._interval:
            phase.last_line = now
            self._write(f"[{phase.name}] {self._count(phase)}, {self._pace(phase)}")

    def _end(self, phase: _Phase) -> None:
        if phase.ended:
            return
        phase.ended = True
        if phase.done == phase.base and phase.done >= phase.total:  # nothing left to do
            self._write(f"[{phase.name}] done: {self._count(phase)}, already done")
            return
        verb = "done" if phase.done >= phase.total else "stopped at"
        self._write(f"[{phase.name}] {verb}: {self._count(phase)}, {self._pace(phase)}")

    def _count(self, phase: _Phase) -> str:
        return f"{phase.done}/{phase.total} {_unit(phase)}"

    def _pace(self, phase: _Phase) -> str:
        elapsed = self._clock() - phase.started
        text = format_elapsed(elapsed)
        if elapsed > 0 and phase.done > phase.base:
            text += f", {format_rate((phase.done - phase.base) / elapsed)}"
        return text

    def _write(self, line: str) -> None:
        print(line, file=self._stream, flush=True)


def _unit(phase: _Phase) -> str:
    return _UNITS.get(phase.name, "items")


def format_elapsed(seconds: float) -> str:
    """`45s`, `1m05s`, `2h03m07s` (whole seconds, rounded down)."""
    s = max(0, int(seconds))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_rate(per_second: float) -> str:
    """Items per second to about two significant digits: `0.0033/s`, `0.18/s`, `3.50/s`,
    `12.5/s`, `240/s` (a slow phase still shows a rate, not `0.00/s`)."""
    if per_second >= 100:
        return f"{per_second:.0f}/s"
    if per_second >= 10:
        return f"{per_second:.1f}/s"
    if 0 < per_second < 0.1:
        digits = min(6, 1 - math.floor(math.log10(per_second)))
        return f"{per_second:.{digits}f}/s"
    return f"{per_second:.2f}/s"
