"""`faithcheck score --model A --model B ...`, printed: a header and a summary per
checkpoint, then the comparison's tables (or, with `--json`, the comparison alone on
stdout). The scoring and the comparison are `faithcheck.score_many`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from faithcheck.errors import ExitCode


def score_many(
    models: Sequence[str],
    gate: Path | None,
    require: list[str],
    options: dict[str, Any],
    *,
    json_out: bool,
    err: Any,
) -> ExitCode:
    """Score every model into `<out>/<name>`, compare the runs, return the exit code
    (that of the worst decision among the checkpoints).

    With `--json`, stdout gets the comparison (the per-run reports are in their run
    directories).
    """
    from faithcheck import api
    from faithcheck.cli.compare import print_tables
    from faithcheck.cli.progress import say, with_progress
    from faithcheck.cli.summary import print_summary
    from faithcheck.store.jsonio import dumps

    def each(n: int, spec: str, score_one: Callable[[Any], api.Report]) -> api.Report:
        err.print(f"[bold]checkpoint {n}/{len(models)}: {spec}[/bold]")
        report = with_progress(score_one, json_out)
        if not json_out:
            print_summary(report, err)
        return report

    scored = api.score_many(
        models, gate=gate, require=require, on_message=say, each=each, **options
    )
    if json_out:
        sys.stdout.buffer.write(dumps(scored.comparison, indent=True) + b"\n")
        sys.stdout.flush()
    else:
        from rich.console import Console

        print_tables(scored.comparison, Console(stderr=True))
        err.print(f"comparison: {scored.comparison_file}", highlight=False)
    return {
        None: ExitCode.GO,
        "GO": ExitCode.GO,
        "NO_GO": ExitCode.NO_GO,
        "INCONCLUSIVE": ExitCode.INCONCLUSIVE,
    }[scored.decision]
