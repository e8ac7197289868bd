"""`faithcheck gate`: decide an already-scored run again with other gates; no model loads.

CI scores a checkpoint once, where the GPU is, and gates it as often as it likes: with a
stricter `--require` for a release branch, a gate file per team, or the defaults again
after faithcheck's own defaults change. The decision is `faithcheck.api.decide`, the one
`score` makes, read from report.json alone.

Registered in `faithcheck.cli.commands`; this module stays import-light (typer only) so that
`faithcheck --help` is instant.

Output, as `score`'s: the summary and the new verdict's reasons on stderr; with `--json`,
stdout holds the report with the new verdict in place of the stored one (the shape
`score --json` prints, so `jq .verdict.decision` reads both) and nothing else. report.json
itself is never rewritten. Exit codes, as `score`'s: 0 GO, 1 NO_GO, 4 INCONCLUSIVE; 2 for
a missing or invalid report, a bad gate file or `--require`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from faithcheck.cli import options as o
from faithcheck.cli.declared import with_options

Run = Annotated[
    Path,
    typer.Argument(
        metavar="RUN",
        help="A run directory written by `faithcheck score` (its report.json), or a "
        "report.json path.",
        show_default=False,
    ),
]


def _gate_params() -> list[Any]:
    from faithcheck.api import gate_params

    return gate_params()


@with_options(_gate_params(), after="run")
def gate_command(
    run: Run,
    json_out: o.Json = False,
    **options: Any,
) -> None:
    """Decide a scored run again with other gates (--gate, --require), from its report.json
    alone: no model loads, report.json is left as it is. --json prints the report with the
    new verdict. Exit codes as `score`: 0 GO, 1 NO-GO, 4 INCONCLUSIVE, 2 usage error."""
    from rich.console import Console

    from faithcheck.api import decide, load_report
    from faithcheck.cli.summary import emit

    err = Console(stderr=True)
    report = load_report(run)
    verdict = decide(report, gate=options["gate"], require=options["require"] or [])
    if not json_out:
        stored = report.verdict
        was = f"{stored.decision.replace('_', '-')} (gates: {stored.gate})" if stored else "none"
        line = f"stored verdict: {was}; decided again with gates: {verdict.gate}"
        err.print(line, highlight=False, soft_wrap=True)
    regated = report.model_copy(update={"verdict": verdict})
    raise typer.Exit(emit(regated, json_out=json_out, console=err))
