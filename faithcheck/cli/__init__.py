"""The `faithcheck` command: a thin client of the Python API and the pipeline.

- `commands`: the Typer app, the `score`, `export`, `models`, `schema` and `version` commands,
  and the one place errors become exit codes (`main`, `entry`);
- one module per other command: `compare`, `report`, `merge`, `calibrate`, `saturation`,
  `gate`;
- `options`: the command line's own options (`--model`, `--json`, the gate, the trackers),
  each declared once; `declared`: the run's options, made from the declarations of the
  packages that own them (`faithcheck.score_params`);
- `summary`, `progress`: what a run prints (the console summary, the progress bars
  or, in a log, progress lines);
- `multi`: `score --model A --model B ...`, printed (the work is
  `faithcheck.comparison.multi`).

Keeping engine chatter off stdout (so that `--json` parses) is `faithcheck.quiet`, which
the trackers use too; nothing outside this package imports it.

`entry` and `main` are imported on first use, so `faithcheck --help` stays instant.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app", "entry", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from faithcheck.cli import commands as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
