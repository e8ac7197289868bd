"""`faithcheck score --model A --model B ...`: several checkpoints, one comparison.

Every checkpoint runs the same pipeline on the same problems with the same seeds (request
seeds derive from the run seed and the problem id), each into its own run directory under
`--out`; then the runs are compared as `faithcheck compare` would, and the comparison is
written next to them as comparison.json.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faithcheck.comparison.core import Comparison
from faithcheck.errors import UsageError
from faithcheck.records import Record
from faithcheck.report import Decision, Report
from faithcheck.store.rundir import default_run_name

COMPARISON_FILE = "comparison.json"

_SEVERITY: dict[Decision, int] = {"GO": 0, "INCONCLUSIVE": 1, "NO_GO": 2}


class ScoredCheckpoints(Record):
    """Several checkpoints scored in one go (`faithcheck.score_many`)."""

    out: str
    """The folder holding one run directory per checkpoint and comparison.json."""
    comparison_file: str
    """Where the comparison is written (`<out>/comparison.json`)."""
    reports: list[Report]
    """Each checkpoint's report, in the order the models were given."""
    comparison: Comparison
    """The runs compared with the first one (as `faithcheck compare`)."""
    decision: Decision | None
    """The worst decision among the checkpoints (`combined_decision`); None: none decided."""


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


def score_models(
    opts: Any, models: Sequence[str], score_one: Callable[[Any], Report]
) -> tuple[Path, list[Report], Comparison]:
    """Score every model into `<out>/<name>` (`score_one` runs one, given its options),
    compare the runs and write the comparison to `<out>/comparison.json`.

    Returns:
        The output folder, the reports in the order of `models`, and the comparison.

    Raises:
        UsageError: the same model is given twice (before anything is scored).
    """
    from faithcheck.comparison.core import compare_runs
    from faithcheck.comparison.metrics import load_run
    from faithcheck.store.jsonio import write_json

    if len(set(models)) != len(models):
        raise UsageError("the same --model is given twice")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    root = Path(opts.out) if opts.out else Path("runs") / f"compare-{stamp}"
    reports: list[Report] = []
    dirs: list[Path] = []
    for spec, name in zip(models, run_names(models), strict=True):
        one = opts.model_copy(update={"model": spec, "out": os.fspath(root / name)})
        reports.append(score_one(one))
        dirs.append(root / name)
    comparison = compare_runs([load_run(d) for d in dirs], seed=opts.sampling.seed)
    write_json(root / COMPARISON_FILE, comparison)
    return root, reports, comparison
