"""Command-line interface. Errors become one line on stderr and an exit code here only.

Exit codes: 0 success / GO, 1 NO-GO, 2 usage or data error, 3 model or run failure,
4 inconclusive (see `faithcheck.errors.ExitCode`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

try:  # typer >= 0.2x vendors its own click; its exceptions are not `click`'s
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer on upstream click
    import click.exceptions as click_exc  # type: ignore[no-redef]
from faithcheck.cli import options as o
from faithcheck.cli.declared import with_options
from faithcheck.errors import ExitCode, FaithcheckError
from faithcheck.quiet import quiet_engines as _quiet_engines

app = typer.Typer(
    name="faithcheck",
    help="Will this checkpoint generalize under RLVR, or memorize? Measures reasoning "
    "faithfulness before you spend GPU-weeks on RL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)


def _score_params() -> list[Any]:
    from faithcheck.api import score_params

    return score_params()


def _gate_params() -> list[Any]:
    from faithcheck.api import gate_params

    return gate_params()


@app.command()
@with_options(_score_params(), after="model")
@with_options(_gate_params(), after="model")
def score(
    model: o.Models = None,
    log_to: o.LogTo = None,
    log_dir: o.LogDir = None,
    log_step: o.LogStep = 0,
    log_name: o.LogName = None,
    json_out: o.Json = False,
    verbose: o.Verbose = False,
    **options: Any,
) -> None:
    """Sample chains of thought from a checkpoint, verify them, and write a report."""
    _quiet_engines(verbose)
    from faithcheck.cli.summary import emit

    models = model or [os.environ.get("FAITHCHECK_MODEL") or o.DEFAULTS["model"]]
    gate, require = options.pop("gate"), options.pop("require")
    if len(models) > 1:
        from faithcheck.cli.multi import score_many

        code = score_many(models, gate, require or [], options, json_out=json_out, err=err)
        raise typer.Exit(int(code))
    from faithcheck.api import score as score_one
    from faithcheck.cli.progress import say, with_progress

    trackers = _check_trackers(log_to)
    report = with_progress(
        lambda progress: score_one(
            models[0],
            gate=gate,
            require=require or [],
            on_message=say,
            progress=progress,
            **options,
        ),
        json_out,
    )
    _log_trackers(report, trackers, log_dir, log_step, log_name, Path(report.run_dir))
    raise typer.Exit(emit(report, json_out=json_out, console=err))


def _check_trackers(log_to: list[str] | None) -> list[str]:
    from faithcheck.trackers import check_trackers

    return check_trackers(log_to)


def _log_trackers(
    report: Any,
    trackers: list[str],
    log_dir: Path | None,
    step: int,
    name: str | None,
    run_dir: Path,
) -> bool:
    """Log to each tracker; a tracker that fails is one line on stderr, the run's files and
    its exit code stay as they are. Whether every tracker succeeded."""
    from faithcheck.trackers import log_report

    ok = True
    for tracker in trackers:
        try:
            where = log_report(
                report,
                tracker,
                step=step,
                name=name or report.run_id,
                log_dir=log_dir,
                run_dir=run_dir,
            )
        except Exception as exc:  # a tracker's network or storage failure
            ok = False
            _say_error(f"--log-to {tracker} failed, nothing logged there: {_one_line(str(exc))}")
            continue
        err.print(f"logged to {tracker}: {where}", highlight=False)
    return ok


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="A scored run directory (its report.json).")],
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="The tracker (repeatable): tensorboard, wandb or trackio."),
    ] = None,
    log_dir: o.LogDir = None,
    log_name: o.LogName = None,
    step: Annotated[int, typer.Option(help="The step to log the numbers at.")] = 0,
) -> None:
    """Log a scored run's numbers to experiment trackers (as `score --log-to`)."""
    from faithcheck.api import load_report

    trackers = _check_trackers(to or ["tensorboard"])
    report = load_report(run)
    if not _log_trackers(report, trackers, log_dir, step, log_name, run):
        raise typer.Exit(int(ExitCode.RUN_FAILURE))


@app.command()
def models() -> None:
    """List the embedded model aliases and whether their packages are installed."""
    from rich.table import Table
    from rich.text import Text

    from faithcheck.models import DEFAULT_MODEL, EMBEDDED, embedded_available

    table = Table("alias", "installed", "model", "install")
    for alias, m in EMBEDDED.items():
        name = f"{alias} (default)" if alias == DEFAULT_MODEL else alias
        cells = (name, "yes" if embedded_available(m) else "no", m.description, m.install_hint)
        table.add_row(*(Text(c) for c in cells))  # plain text: hints contain [extras]
    Console().print(table)


@app.command()
def schema(
    what: Annotated[
        str, typer.Argument(help="report (report.json) or comparison (compare --out).")
    ] = "report",
) -> None:
    """Print the JSON Schema of report.json, or of the comparison file."""
    from faithcheck.api import json_schema
    from faithcheck.store.jsonio import dumps

    doc = json_schema(what)  # type: ignore[arg-type]  # the API refuses other names
    sys.stdout.buffer.write(dumps(doc, indent=True) + b"\n")


@app.command()
def version() -> None:
    """Print the faithcheck version."""
    from faithcheck import __version__

    print(__version__)


from faithcheck.cli.saturation import saturation_command  # noqa: E402

app.command(name="saturation")(saturation_command)

from faithcheck.cli.compare import compare_command  # noqa: E402

app.command(name="compare")(compare_command)

from faithcheck.cli.report import report_command  # noqa: E402

app.command(name="report")(report_command)

from faithcheck.cli.merge import merge_command  # noqa: E402

app.command(name="merge")(merge_command)

from faithcheck.cli.calibrate import calibrate_command  # noqa: E402

app.command(name="calibrate")(calibrate_command)

from faithcheck.cli.gate import gate_command  # noqa: E402

app.command(name="gate")(gate_command)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _say_error(message: str) -> None:
    """Exactly one line on stderr, never wrapped (rich would wrap at the terminal width)."""
    sys.stderr.write(f"faithcheck: {_one_line(message)}\n")
    sys.stderr.flush()


INTERRUPT_GRACE_S = 10.0
"""Seconds a run gets to unwind after Ctrl-C (close engines and connections, remove
temporary files) before it leaves anyway; a second Ctrl-C leaves at once."""

_INTERRUPTED = "interrupted; records written so far are kept"


def _on_interrupt(signum: int, frame: Any) -> None:
    """Ctrl-C: raise KeyboardInterrupt as Python does, but make sure the process ends even
    when cleanup blocks (a connection stuck on a server that does not answer, an engine
    that does not shut down). Records are appended and synced batch by batch and whole
    files are replaced atomically, so leaving early loses nothing already written."""
    if _interrupt_deadline.is_set():
        _leave()
    _interrupt_deadline.set()
    timer = threading.Timer(INTERRUPT_GRACE_S, _leave)
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def _leave() -> None:
    _announce_interrupt()
    os._exit(130)


def _announce_interrupt() -> None:
    if not _interrupt_announced.is_set():
        _interrupt_announced.set()
        _say_error(_INTERRUPTED)


_interrupt_deadline = threading.Event()
_interrupt_announced = threading.Event()


@contextlib.contextmanager
def _interrupt_handler() -> Iterator[None]:
    """`_on_interrupt` for SIGINT while the CLI runs (main thread only); the previous
    handler is restored afterwards (tests call `main` in-process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _interrupt_deadline.clear()
    _interrupt_announced.clear()
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every failure into one line and an exit code."""
    with _interrupt_handler():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        result: Any = app(args=argv, standalone_mode=False)
    except FaithcheckError as exc:
        _say_error(f"error: {exc}")
        return int(exc.exit_code)
    except click_exc.NoArgsIsHelpError:
        return int(ExitCode.USAGE)  # help was printed
    except click_exc.ClickException as exc:  # bad option, bad value, unknown command
        _say_error(f"error: {exc.format_message()} (see faithcheck --help)")
        return int(ExitCode.USAGE)
    except (KeyboardInterrupt, typer.Abort):
        _announce_interrupt()
        return 130
    except Exception as exc:  # a bug: still one line, with a way to see the traceback
        if os.environ.get("FAITHCHECK_DEBUG"):
            raise
        _say_error(
            f"internal error: {type(exc).__name__}: {_one_line(str(exc))[:300]} "
            "(set FAITHCHECK_DEBUG=1 for the traceback)"
        )
        return int(ExitCode.RUN_FAILURE)
    if result == 130:  # typer turns Ctrl-C into a plain exit code 130
        _announce_interrupt()
    return result if isinstance(result, int) else 0


def entry() -> None:
    """Console-script entry."""
    sys.exit(main())
