"""faithcheck: reasoning-faithfulness checks before RL.

The public Python API (`faithcheck.api`): `score`, `compare`, `load_report`, `decide`,
`calibrate`, imported on first use so that `import faithcheck` and `faithcheck --help`
stay instant.
"""

from __future__ import annotations

from typing import Any

from faithcheck._version import __version__

__all__ = ["__version__", "calibrate", "compare", "decide", "load_report", "score"]

_API = frozenset({"score", "compare", "load_report", "decide", "calibrate"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from faithcheck import api

        return getattr(api, name)
    raise AttributeError(f"module 'faithcheck' has no attribute {name!r}")
