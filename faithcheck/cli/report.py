"""`faithcheck report`: report.html and report.md from the report.json of one or more runs.

Registered in `faithcheck.cli.commands`; this module stays import-light (typer only) so that
`faithcheck --help` is instant. The work happens in `faithcheck.render.page`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

Runs = Annotated[
    list[Path],
    typer.Argument(
        metavar="RUN_DIR",
        help="Run directories written by `faithcheck score` (each holds report.json; a "
        "report.json path works too). Several runs become one page, compared side by side.",
        show_default=False,
    ),
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Folder to write report.html and report.md into. Default: the run directory "
        "when one run is given; required with several runs.",
        show_default=False,
    ),
]


ExploreMax = Annotated[
    int,
    typer.Option(
        help="Responses embedded in the per-response explorer per (correctness, support "
        "status) category; 0 leaves the explorer out.",
    ),
]


def report_command(runs: Runs, out: Out = None, explore_max: ExploreMax = 50) -> None:
    """Write report.html (tables, plots) and report.md (for a pull request) from scored runs."""
    from faithcheck.errors import UsageError
    from faithcheck.render.page import write_reports
    from faithcheck.render.views import load_checkpoint

    if len(runs) > 1 and out is None:
        raise UsageError(f"{len(runs)} runs given: pass --out DIR for the combined report")
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder")
    checkpoints = [load_checkpoint(run) for run in runs]
    target = out or (runs[0] if runs[0].is_dir() else runs[0].parent)
    if explore_max < 0:
        raise UsageError("--explore-max must be at least 0")
    html_path, md_path = write_reports(checkpoints, target, explore_max)
    sys.stderr.write(f"wrote HTML: {html_path}\nwrote Markdown: {md_path}\n")
