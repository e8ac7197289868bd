"""The verdict's options: which gates decide GO / NO-GO (`--gate`, `--require`), taken by
`faithcheck score`, `merge` and `gate` (and the API's `gate=`, `require=`)."""

from __future__ import annotations

from pathlib import Path

from faithcheck.records import PANEL_VERDICT, Param, Record, declared_params, option


class GateOptions(Record):
    """The gates a verdict is decided with (`faithcheck.verdict.core.load_gate` reads
    them)."""

    gate: str | None = option(
        None,
        cli_type=Path | None,
        help="Gate file (TOML) with the verdict's checks; see docs/gates.md.",
        panel=PANEL_VERDICT,
    )
    """A gate.toml; None: the default checks."""
    require: list[str] = option(
        list,
        cli_type=list[str] | None,
        cli_default=None,
        help="Extra check, repeatable: 'metric>=value' (dotted path into report.json; "
        "a check on a default metric replaces it).",
        panel=PANEL_VERDICT,
    )
    """Extra checks, each `metric>=value` (one on a default metric replaces it)."""


def gate_params() -> list[Param]:
    """`--gate` and `--require`, as declared."""
    return declared_params(GateOptions)
