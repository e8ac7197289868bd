"""`faithcheck report`: report.html and report.md from the report.json of one or more runs.

Registered in `faithcheck.cli.commands`; this module stays import-light (typer only) so that
`faithcheck --help` is instant. The work is `faithcheck.render_report`.
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
    from faithcheck.api import render_report

    html_path, md_path = render_report(runs, out, explore_max=explore_max)
    sys.stderr.write(f"wrote HTML: {html_path}\nwrote Markdown: {md_path}\n")
