"""The command line's own options (typer `Annotated` style), each defined once and reused
by every command that takes it: `--model` (one or several checkpoints), `--json`,
`--verbose` and the trackers. The options of a run (`--samples`, `--dtype`,
`--judge-model`, ...) are declared by the packages that use them and made into options
by `faithcheck.cli.declared`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faithcheck.models import DEFAULT_MODEL
from faithcheck.records import PANEL_MODEL, PANEL_OUTPUT

Models = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        "-m",
        help="Embedded alias (see `faithcheck models`), local HF checkpoint folder, or hub id "
        "(default: the embedded default model). Repeat to score several checkpoints on the "
        "same problems and seeds, one run directory each under --out, then compare them.",
        rich_help_panel=PANEL_MODEL,
    ),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the report JSON to stdout and nothing else.",
        rich_help_panel=PANEL_OUTPUT,
    ),
]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show engine logs.", rich_help_panel=PANEL_OUTPUT)
]

DEFAULTS = {"model": DEFAULT_MODEL}

LogTo = Annotated[
    list[str] | None,
    typer.Option(
        "--log-to",
        help="Also log the report's numbers to an experiment tracker (repeatable): "
        "tensorboard (an event file, no TensorFlow needed), wandb (online when logged in, "
        "else an offline run folder), trackio (its local database).",
    ),
]
LogDir = Annotated[
    Path | None,
    typer.Option(
        help="Where trackers write: tensorboard's event folder (default <run dir>/tensorboard), "
        "the folder wandb puts wandb/ in (default $WANDB_DIR or the run dir), trackio's "
        "database folder (default $TRACKIO_DIR)."
    ),
]
LogStep = Annotated[
    int,
    typer.Option(help="The step the numbers are logged at (e.g. the RL step of the checkpoint)."),
]
LogName = Annotated[
    str | None,
    typer.Option(
        help="The tracker run's name (wandb, trackio; default: the run directory's name). "
        "trackio appends to a run of the same name."
    ),
]
