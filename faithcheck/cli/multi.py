"""`faithcheck score --model A --model B ...`, printed: a header and a summary per
checkpoint, then the comparison's tables (or, with `--json`, the comparison alone on
stdout). The scoring and the comparison are `faithcheck.comparison.multi.score_models`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from faithcheck.errors import ExitCode
from faithcheck.report import Report


def score_many(
    opts: Any,
    models: Sequence[str],
    gate: Any,
    *,
    json_out: bool,
    err: Any,
) -> ExitCode:
    """Score every model into `<out>/<name>`, compare the runs, return the exit code
    (that of the worst decision among the checkpoints).

    With `--json`, stdout gets the comparison (the per-run reports are in their run
    directories).
    """
    from faithcheck.cli.compare import print_tables
    from faithcheck.cli.progress import score_with_progress
    from faithcheck.cli.summary import print_summary
    from faithcheck.comparison.multi import COMPARISON_FILE, combined_decision, score_models
    from faithcheck.store.jsonio import dumps

    done = 0

    def score_one(one: Any) -> Report:
        nonlocal done
        done += 1
        err.print(f"[bold]checkpoint {done}/{len(models)}: {one.model}[/bold]")
        report = score_with_progress(one, gate, json_out)
        if not json_out:
            print_summary(report, err)
        return report

    root, reports, comparison = score_models(opts, models, score_one)
    if json_out:
        sys.stdout.buffer.write(dumps(comparison, indent=True) + b"\n")
        sys.stdout.flush()
    else:
        from rich.console import Console

        print_tables(comparison, Console(stderr=True))
        err.print(f"comparison: {root / COMPARISON_FILE}", highlight=False)
    return {
        None: ExitCode.GO,
        "GO": ExitCode.GO,
        "NO_GO": ExitCode.NO_GO,
        "INCONCLUSIVE": ExitCode.INCONCLUSIVE,
    }[combined_decision(reports)]
