"""`faithcheck compare`: checkpoints × metrics, paired deltas vs a baseline, a ranking and an
optional max-drop gate.

Registered in `faithcheck.cli.commands`; this module stays import-light (typer only) so that
`faithcheck --help` is instant. The work is `faithcheck.compare`.

Tables go to stdout (they are the command's data; `--json` prints the comparison JSON
instead); warnings and the gate's one-line outcome go to stderr. Exit codes: 0 (no gate,
or it passes), 1 (the max-drop gate fails), 2 (usage: fewer than two runs, a missing
report.json, an unknown metric), 4 (the gate could not be evaluated for some metric).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from faithcheck.api import Comparison
    from faithcheck.metrics import MetricValue

GATE_PANEL = "Baseline and gate"
STATS_PANEL = "Statistics"
OUTPUT_PANEL = "Output"

RunDirs = Annotated[
    list[Path],
    typer.Argument(
        metavar="RUN_DIR...",
        help="Run directories written by `faithcheck score` (each needs report.json).",
        show_default=False,
    ),
]
Baseline = Annotated[
    Path | None,
    typer.Option(
        help="Baseline run: one of the RUN_DIRs, or an extra run compared first "
        "(default: the first RUN_DIR).",
        rich_help_panel=GATE_PANEL,
    ),
]
MaxDrop = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        help="Gate: exit 1 when some candidate's delta on a faithfulness or accuracy metric "
        "shows, at 95%, a worsening larger than this (e.g. 0.05).",
        rich_help_panel=GATE_PANEL,
    ),
]
Metrics = Annotated[
    list[str] | None,
    typer.Option(
        "--metric",
        help="Metric to compare (repeat or comma-separate; a name or report.json path): "
        "accuracy, pass_at_k, truncation_aoc[_score|_generate], flip_rate, necessity_rate, "
        "aligned_share_of_correct, correct_but_misaligned_rate, answer_derived, "
        "correct_but_underived, equation_error_rate, or a diversity metric (paired where both "
        "runs have diversity.jsonl, else unpaired). "
        "Default: the faithfulness and accuracy metrics some run has.",
        show_default=False,
    ),
]
Out = Annotated[
    Path | None,
    typer.Option(
        help="Also write the comparison JSON here (atomically); not written by default.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the comparison JSON to stdout and nothing else.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Bootstrap seed.", rich_help_panel=STATS_PANEL)]
NBoot = Annotated[
    int, typer.Option(min=1, help="Bootstrap resamples.", rich_help_panel=STATS_PANEL)
]


def compare_command(
    runs: RunDirs,
    baseline: Baseline = None,
    max_drop: MaxDrop = None,
    metric: Metrics = None,
    out: Out = None,
    json_out: JsonFlag = False,
    seed: SeedOpt = 0,
    n_boot: NBoot = 1000,
) -> None:
    """Compare scored checkpoints: metrics with CIs, paired deltas vs a baseline, a ranking.

    Exit codes: 0 no gate or it passes, 1 the --max-drop gate fails, 2 usage error,
    4 the gate could not be evaluated.
    """
    from rich.console import Console

    from faithcheck.api import compare
    from faithcheck.errors import ExitCode
    from faithcheck.store.jsonio import dumps

    names = [n.strip() for m in metric or [] for n in m.split(",") if n.strip()] or None
    comparison = compare(
        runs,
        metrics=names,
        baseline=baseline,
        max_drop=max_drop,
        seed=seed,
        n_boot=n_boot,
        out=out,
    )
    err = Console(stderr=True, width=None if _sized() else 200)
    if json_out:
        sys.stdout.buffer.write(dumps(comparison, indent=True) + b"\n")
        sys.stdout.flush()
    else:
        print_tables(comparison, Console(width=None if _sized() else 200))
        for line in comparison.warnings:
            err.print(f"warning: {line}", style="yellow", highlight=False, soft_wrap=True)
        if out:
            err.print(f"wrote comparison: {out}", highlight=False, soft_wrap=True)
    gate = comparison.gate
    if gate is not None and gate.passed is not True:
        if gate.passed is False:
            what, code = f"failed: {', '.join(gate.failed)}", ExitCode.NO_GO
        else:
            unknown = [f"{c.candidate}: {c.metric}" for c in gate.checks if c.passed is None]
            why = "; ".join(unknown) or "no compared metric can be gated"
            what, code = f"inconclusive: {why}", ExitCode.INCONCLUSIVE
        sys.stderr.write(f"faithcheck: max-drop gate ({gate.max_drop:g}) {what}\n")
        sys.stderr.flush()
        raise typer.Exit(int(code))


def _sized() -> bool:
    """Whether rich can size tables itself (a terminal, or COLUMNS set); else 200 columns,
    so that a CI log does not truncate checkpoint names at 80."""
    return sys.stdout.isatty() or "COLUMNS" in os.environ


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _cell(v: MetricValue, signed: bool = False) -> str:
    if v.value is None:
        return "–"
    if v.ci_low is None or v.ci_high is None:
        return _num(v.value, signed)
    return f"{_num(v.value, signed)}\n[{_num(v.ci_low, signed)}, {_num(v.ci_high, signed)}]"


def _delta_cell(d: MetricValue, higher_is_better: bool | None, paired: bool) -> Text:
    from rich.text import Text

    text = _cell(d, signed=True) + ("" if paired or d.value is None else "\n(unpaired)")
    style = ""
    if higher_is_better is not None and d.ci_low is not None and d.ci_high is not None:
        better = d.ci_low > 0 if higher_is_better else d.ci_high < 0
        worse = d.ci_high < 0 if higher_is_better else d.ci_low > 0
        style = "green" if better else "red" if worse else ""
    return Text(text, style=style)


def print_tables(c: Comparison, console: Console) -> None:
    """Checkpoints × metrics, deltas vs the baseline, the ranking and the gate."""
    from rich.table import Table
    from rich.text import Text

    arrow = {True: " ↑", False: " ↓", None: ""}
    decisions = {r.label: r.decision or "–" for r in c.runs}
    values = Table(title="faithcheck · compare", caption="value [95% CI over problems]")
    values.add_column("checkpoint", overflow="fold")
    values.add_column("verdict", no_wrap=True)
    for m in c.metric_info:
        values.add_column(m.name + arrow[m.higher_is_better], justify="right")
    for run in c.runs:
        cells = [_cell(c.metrics[run.label][m.name]) for m in c.metric_info]
        values.add_row(Text(run.label), decisions[run.label], *cells)
    console.print(values)
    for run in c.runs:
        for name, shares in run.judges.items():
            console.print(f"{run.label}: judge {name}: {shares}", highlight=False)

    deltas = Table(
        title=f"delta vs baseline {c.baseline} (paired on shared problems)",
        caption="green / red: the 95% CI excludes 0 in the better / worse direction",
    )
    deltas.add_column("candidate", overflow="fold")
    deltas.add_column("shared", justify="right", no_wrap=True)
    for m in c.metric_info:
        deltas.add_column(m.name + arrow[m.higher_is_better], justify="right")
    for label, per_metric in c.deltas.items():
        marks = [
            _delta_cell(per_metric[m.name], m.higher_is_better, per_metric[m.name].paired)
            for m in c.metric_info
        ]
        deltas.add_row(Text(label), str(c.shared_problems[label]), *marks)
    console.print(deltas)

    if c.ranking_metrics:
        ranking = Table(title=f"ranking by {', then '.join(c.ranking_metrics)}")
        ranking.add_column("#", justify="right")
        ranking.add_column("checkpoint", overflow="fold")
        for name in c.ranking_metrics:
            ranking.add_column(name, justify="right")
        ranking.add_column("verdict", no_wrap=True)
        for r in c.ranking:
            cells = [_num(r.values[m]) for m in c.ranking_metrics]
            ranking.add_row(str(r.rank), Text(r.label), *cells, decisions[r.label])
        console.print(ranking)

    if c.gate is not None:
        outcome = {True: "PASS", False: "FAIL", None: "INCONCLUSIVE"}[c.gate.passed]
        console.print(f"max-drop gate ({c.gate.max_drop:g}): {outcome}", highlight=False)
        for check in c.gate.checks:
            if check.passed is not True:
                line = f"  {check.candidate}: {check.metric}: {check.reason}"
                console.print(Text(line), soft_wrap=True)
