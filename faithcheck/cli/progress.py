"""One checkpoint through the pipeline with a progress display on stderr (the CLI's way
of running `run_score`, shared by `score` and `score --model A --model B`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from faithcheck.cli.quiet import stdout_to_stderr as _stdout_to_stderr

err = Console(stderr=True)


def score_with_progress(opts: Any, gate_spec: Any, json_out: bool) -> Any:
    """One checkpoint through the pipeline, with a progress display on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from faithcheck.pipeline.core import run_score

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=json_out,
    )
    with _stdout_to_stderr():
        try:
            return run_score(
                opts, say=lambda m: err.print(m, highlight=False), progress=progress, gate=gate_spec
            )
        finally:
            progress.stop()
