"""`faithcheck saturation`: reward-saturation diagnostics from RL training logs.

Registered in `faithcheck.cli.commands`; this module stays import-light (typer only) so that
`faithcheck --help` is instant. The work happens in `faithcheck.saturation.core` (pure),
`faithcheck.saturation.logs` (reading logs) and `faithcheck.saturation.page` (plots).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from faithcheck.saturation import SaturationReport

COLUMNS_PANEL = "Columns"
DEF_PANEL = "Definition"
OUTPUT_PANEL = "Output"

Logs = Annotated[
    list[Path],
    typer.Argument(
        metavar="LOG...",
        help="Training logs: .jsonl / .json (TRL trainer_state.json) / .csv / .tsv files, "
        "TensorBoard event files or folders.",
        show_default=False,
    ),
]
StepCol = Annotated[
    str | None,
    typer.Option(help="Step column (default: detected).", rich_help_panel=COLUMNS_PANEL),
]
RewardCol = Annotated[
    str | None,
    typer.Option(
        help="Mean-reward column or TensorBoard tag (default: detected, e.g. reward, "
        "train/reward, critic/score/mean).",
        rich_help_panel=COLUMNS_PANEL,
    ),
]
EvalCol = Annotated[
    str | None,
    typer.Option(
        help="Eval metric column, higher is better (default: detected, e.g. eval/accuracy, "
        "eval_reward, val-core/<source>/reward/mean@1).",
        rich_help_panel=COLUMNS_PANEL,
    ),
]
NoEval = Annotated[
    bool,
    typer.Option("--no-eval", help="Ignore eval metrics.", rich_help_panel=COLUMNS_PANEL),
]
Epsilon = Annotated[
    float,
    typer.Option(
        "--epsilon",
        "-e",
        help="t_sat = first step where reward >= floor + epsilon * (max - floor).",
        rich_help_panel=DEF_PANEL,
    ),
]
Margin = Annotated[
    int,
    typer.Option(min=0, help="Search t_sat among steps <= T - margin.", rich_help_panel=DEF_PANEL),
]
RapidSteps = Annotated[
    int,
    typer.Option(
        "--rapid-steps",
        min=1,
        help="Flag rapid saturation when t_sat < this.",
        rich_help_panel=DEF_PANEL,
    ),
]
Ema = Annotated[
    float,
    typer.Option(
        help="Smooth the reward with a debiased EMA of this weight (TensorBoard's slider); "
        "0 = off.",
        rich_help_panel=DEF_PANEL,
    ),
]
FloorOpt = Annotated[
    Literal["start", "min", "zero"],
    typer.Option(
        "--floor",
        help="Reward level the rise is measured from: start (the first reward: shifting every "
        "reward changes nothing), min (run minimum), zero (the study's epsilon*max).",
        rich_help_panel=DEF_PANEL,
    ),
]
MinRise = Annotated[
    float,
    typer.Option(
        "--min-rise",
        help="A run whose maximum is no more than this above its floor is flat, never "
        "saturated (reward units; 0.001 = one more correct answer in 1,000 0/1 rewards).",
        rich_help_panel=DEF_PANEL,
    ),
]
DuplicatesOpt = Annotated[
    Literal["mean", "last"],
    typer.Option(
        "--duplicates",
        help="Rows sharing a step: average them, or keep the last (resumed runs).",
        rich_help_panel=DEF_PANEL,
    ),
]
JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the JSON report to stdout and nothing else.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
OutJson = Annotated[
    Path | None,
    typer.Option(
        "--out-json", help="Also write the JSON report here.", rich_help_panel=OUTPUT_PANEL
    ),
]
Html = Annotated[
    Path | None,
    typer.Option(
        "--html",
        help="Write a self-contained HTML report with the curves and t_sat marked.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
FailOnRapid = Annotated[
    bool,
    typer.Option(
        "--fail-on-rapid",
        help="Exit with code 1 when any run saturates rapidly.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]


def saturation_command(
    logs: Logs,
    step_col: StepCol = None,
    reward_col: RewardCol = None,
    eval_col: EvalCol = None,
    no_eval: NoEval = False,
    epsilon: Epsilon = 0.99,
    margin: Margin = 50,
    rapid_steps: RapidSteps = 100,
    ema: Ema = 0.0,
    floor: FloorOpt = "start",
    min_rise: MinRise = 1e-3,
    duplicates: DuplicatesOpt = "mean",
    json_out: JsonFlag = False,
    out_json: OutJson = None,
    html: Html = None,
    fail_on_rapid: FailOnRapid = False,
) -> None:
    """Reward-saturation diagnostics (t_sat, rapid flag, eval gain) from RL training logs."""
    from rich.console import Console

    from faithcheck.errors import UsageError
    from faithcheck.saturation import SaturationSettings, analyze_run, build_report, load_run
    from faithcheck.store.jsonio import atomic_write_bytes, dumps, write_json

    if no_eval and eval_col:
        raise UsageError("--no-eval and --eval-col contradict each other")
    if not 0.0 < epsilon <= 1.0:
        raise UsageError(f"--epsilon must be in (0, 1], got {epsilon:g}")
    if not 0.0 <= ema < 1.0:
        raise UsageError(f"--ema must be in [0, 1), got {ema:g}")
    if not 0.0 <= min_rise < float("inf"):
        raise UsageError(f"--min-rise must be a finite number >= 0, got {min_rise:g}")
    settings = SaturationSettings(
        epsilon=epsilon,
        margin=margin,
        rapid_steps=rapid_steps,
        ema=ema,
        floor=floor,
        min_rise=min_rise,
        duplicates=duplicates,
    )
    inputs = [
        load_run(p, step=step_col, reward=reward_col, eval_col=eval_col, detect_eval=not no_eval)
        for p in logs
    ]
    results = [analyze_run(i, settings) for i in inputs]
    report = build_report([r for r, _ in results], settings)
    # Not a terminal (CI log, file): rich would assume 80 columns and truncate run names.
    err = Console(stderr=True)
    if not err.is_terminal and "COLUMNS" not in os.environ:
        err = Console(stderr=True, width=200)
    if out_json:
        write_json(out_json, report)
    if html:
        from faithcheck.saturation import render_html

        atomic_write_bytes(html, render_html(report, [c for _, c in results]).encode())
    if json_out:
        sys.stdout.buffer.write(dumps(report, indent=True) + b"\n")
        sys.stdout.flush()
    else:
        print_table(report, err)
    for path, what in ((out_json, "JSON"), (html, "HTML")):
        if path and not json_out:
            err.print(f"wrote {what}: {path}", highlight=False, soft_wrap=True)
    if fail_on_rapid and report.any_rapid:
        rapid = ", ".join(r.name for r in report.runs if r.rapid)
        sys.stderr.write(f"faithcheck: rapid saturation (t_sat < {rapid_steps}): {rapid}\n")
        raise typer.Exit(1)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def print_table(report: SaturationReport, console: Console) -> None:
    """The comparison table and each run's notes, for people (stderr)."""
    from rich.table import Table
    from rich.text import Text

    s = report.settings
    caption = (
        f"epsilon {s.epsilon} · window step <= T-{s.margin} · rapid: t_sat < {s.rapid_steps} · "
        f"EMA {s.ema if s.ema else 'off'} · floor {s.floor} · min rise {s.min_rise:g} · "
        f"duplicates {s.duplicates}"
    )
    table = Table(title="faithcheck · reward saturation", caption=caption)
    table.add_column("run", overflow="fold")
    table.add_column("status", no_wrap=True)
    for name in ("t_sat", "pre-sat", "rapid", "steps", "reward max", "threshold", "eval gain"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("eval residual", justify="right", no_wrap=True)
    for run in report.runs:
        rapid = {True: Text("RAPID", style="bold red"), False: Text("no", style="green")}
        ev = run.eval
        table.add_row(
            Text(run.name),
            Text(run.status),
            "–" if run.t_sat is None else str(run.t_sat),
            "–" if run.pre_saturation_steps is None else str(run.pre_saturation_steps),
            rapid[run.rapid] if run.rapid is not None else Text("?"),
            f"{run.first_step}–{run.last_step}" if run.points else "–",
            _num(run.reward_max),
            _num(run.threshold),
            _num(ev.pre_saturation_gain) if ev else "–",
            _num(ev.post_saturation_residual) if ev else "–",
        )
    console.print(table)
    for run in report.runs:
        lines = ([run.reason] if run.reason else []) + run.notes
        if run.eval and run.eval.reason:
            lines.append(f"eval: {run.eval.reason}")
        for line in lines:
            console.print(Text(f"{run.name}: {line}", style="dim"), soft_wrap=True)
