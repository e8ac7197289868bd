"""`faithcheck merge`: combine the shard runs of `score --shard i/N` into one run.

Registered in `faithcheck.cli.commands`; this module stays import-light (typer only) so that
`faithcheck --help` is instant. The work is `faithcheck.merge` (no model loads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from faithcheck.cli import options as o
from faithcheck.cli.declared import with_options

OUTPUT_PANEL = "Output"

ShardDirs = Annotated[
    list[Path],
    typer.Argument(
        metavar="SHARD_DIR...",
        help="Finished run directories of `faithcheck score --shard i/N`, one per shard "
        "(same options otherwise), in any order.",
        show_default=False,
    ),
]
MergeOut = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        help="The merged run directory (run.json, records, report.json).",
        show_default=False,
        rich_help_panel=OUTPUT_PANEL,
    ),
]
MergeForce = Annotated[
    bool,
    typer.Option("--force", help="Replace a run already in --out.", rich_help_panel=OUTPUT_PANEL),
]
AllowPartial = Annotated[
    bool,
    typer.Option(
        "--allow-partial",
        help="Merge even when shards are missing (with a warning); the merged run then "
        "covers fewer problems and its config hash differs from the full run's.",
    ),
]


def _gate_params() -> list[Any]:
    from faithcheck.api import gate_params

    return gate_params()


@with_options(_gate_params(), after="allow_partial")
def merge_command(
    shards: ShardDirs,
    out: MergeOut,
    force: MergeForce = False,
    allow_partial: AllowPartial = False,
    json_out: o.Json = False,
    **options: Any,
) -> None:
    """Combine shard runs into one run directory and report (no model is loaded)."""
    from rich.console import Console

    from faithcheck.api import merge
    from faithcheck.cli.summary import emit

    err = Console(stderr=True)
    report = merge(
        shards,
        out,
        force=force,
        allow_partial=allow_partial,
        gate=options["gate"],
        require=options["require"] or [],
        on_message=lambda m: err.print(m, highlight=False, soft_wrap=True),
    )
    raise typer.Exit(emit(report, json_out=json_out, console=err))
