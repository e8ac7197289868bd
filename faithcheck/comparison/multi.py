"""`faithcheck score --model A --model B ...`: several checkpoints, one comparison.

Every checkpoint runs the same pipeline on the same problems with the same seeds (request
seeds derive from the run seed and the problem id), each into its own run directory under
`--out`; then the runs are compared as `faithcheck compare` would, and the comparison is
written next to them as comparison.json.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faithcheck.errors import ExitCode, UsageError
from faithcheck.report import Report
from faithcheck.store.rundir import default_run_name
from faithcheck.verdict.records import Decision

COMPARISON_FILE = "comparison.json"

_SEVERITY: dict[Decision, int] = {"GO": 0, "INCONCLUSIVE": 1, "NO_GO": 2}


def run_names(models: Sequence[str]) -> list[str]:
    """A file-name-safe, unique run directory name per model spec."""
    names: list[str] = []
    for spec in models:
        base = default_run_name(spec, "").rstrip("-")
        name, i = base, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.append(name)
    return names


def combined_decision(reports: Sequence[Report]) -> Decision | None:
    """The worst decision among the checkpoints: any NO_GO, else any INCONCLUSIVE, else GO."""
    decisions: list[Decision] = [r.verdict.decision for r in reports if r.verdict is not None]
    if not decisions:
        return None
    return max(decisions, key=_SEVERITY.__getitem__)


def score_many(
    opts: Any,
    models: Sequence[str],
    gate: Any,
    *,
    json_out: bool,
    err: Any,
    score_one: Callable[[Any, Any, bool], Report] | None = None,
) -> ExitCode:
    """Score every model into `<out>/<name>`, compare the runs, return the exit code.

    With `--json`, stdout gets the comparison (the per-run reports are in their run
    directories).
    """
    from faithcheck.cli.compare import print_tables
    from faithcheck.cli.progress import score_with_progress
    from faithcheck.cli.summary import print_summary
    from faithcheck.comparison.core import compare_runs
    from faithcheck.comparison.metrics import load_run
    from faithcheck.store.jsonio import dumps, write_json

    if len(set(models)) != len(models):
        raise UsageError("the same --model is given twice")
    run = score_one or score_with_progress
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    root = Path(opts.out) if opts.out else Path("runs") / f"compare-{stamp}"
    reports: list[Report] = []
    dirs: list[Path] = []
    for spec, name in zip(models, run_names(models), strict=True):
        err.print(f"[bold]checkpoint {len(dirs) + 1}/{len(models)}: {spec}[/bold]")
        one = opts.model_copy(update={"model": spec, "out": os.fspath(root / name)})
        report = run(one, gate, json_out)
        if not json_out:
            print_summary(report, err)
        reports.append(report)
        dirs.append(root / name)
    comparison = compare_runs([load_run(d) for d in dirs], seed=opts.seed)
    write_json(root / COMPARISON_FILE, comparison)
    if json_out:
        sys.stdout.buffer.write(dumps(comparison, indent=True) + b"\n")
        sys.stdout.flush()
    else:
        from rich.console import Console

        print_tables(comparison, Console(stderr=True))
        err.print(f"comparison: {root / COMPARISON_FILE}", highlight=False)
    decision = combined_decision(reports)
    return {
        None: ExitCode.GO,
        "GO": ExitCode.GO,
        "NO_GO": ExitCode.NO_GO,
        "INCONCLUSIVE": ExitCode.INCONCLUSIVE,
    }[decision]
