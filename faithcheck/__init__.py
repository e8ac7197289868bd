"""faithcheck: reasoning-faithfulness checks before RL.

The public Python API (`faithcheck.api`), the functions the `faithcheck` command itself
calls:

- `score(...) -> Report`: score one checkpoint (`faithcheck score`);
- `score_many(models, ...) -> ScoredCheckpoints`: several, compared (`score --model A
  --model B`);
- `compare(runs, ...) -> Comparison`: compare finished runs (`faithcheck compare`);
- `load_report(path) -> Report`: read a run's report.json, its schema version checked;
- `decide(report, ...) -> Verdict`: decide a scored run again with other gates
  (`faithcheck gate`);
- `calibrate(judge_model, ...) -> Calibration`: a judge's reliability on the bundled
  pairs (`faithcheck calibrate`);
- `merge(shards, out, ...) -> Report`, `render_report(runs, out) -> (html, md)`,
  `json_schema(what) -> dict`: `faithcheck merge`, `report` and `schema`.

The record types they return (`Report`, `Verdict`, `Comparison`, `ScoredCheckpoints`,
`Calibration`, `JudgeReliability`) are importable from here too. All of these are
imported on first use, so that `import faithcheck` and `faithcheck --help` stay instant;
type checkers see their real types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faithcheck import api
from faithcheck._version import __version__

if TYPE_CHECKING:
    from faithcheck.api import *  # noqa: F403

# `faithcheck.api` is light to import; what its names need is imported when they are used.
__all__ = ["__version__"]
__all__ += api.__all__


def __getattr__(name: str) -> Any:
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'faithcheck' has no attribute {name!r}")
