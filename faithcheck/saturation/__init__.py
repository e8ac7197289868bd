"""Reward saturation during RL (`faithcheck saturation`): when a run's training reward
reaches its plateau, and whether that came within ~100 steps (the study's memorization
signature).

- `core`: the analysis, pure functions of (step, value) points: `analyze_run`,
  `build_report`, `SaturationSettings`, and the records they return.
- `logs`: reading a training log into those points (`load_run`, `read_table`): JSONL,
  JSON, CSV, TensorBoard event files (`tfevents`) and wandb run folders (`wandb_runs`),
  each read without the tool that wrote it.
- `page`: the HTML page with one plot per run.

The command (`faithcheck.cli.saturation`) uses only the names below.

The names below are imported on first use, so the command's help stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faithcheck.saturation.core import (
        RunInput,
        SaturationReport,
        SaturationSettings,
        analyze_run,
        build_report,
    )
    from faithcheck.saturation.logs import load_run, read_table
    from faithcheck.saturation.page import render_html

__all__ = [
    "RunInput",
    "SaturationReport",
    "SaturationSettings",
    "analyze_run",
    "build_report",
    "load_run",
    "read_table",
    "render_html",
]

_WHERE = {
    "RunInput": "core",
    "SaturationReport": "core",
    "SaturationSettings": "core",
    "analyze_run": "core",
    "build_report": "core",
    "load_run": "logs",
    "read_table": "logs",
    "render_html": "page",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
