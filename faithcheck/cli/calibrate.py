"""`faithcheck calibrate`: how far can this judge be trusted?

Judges the bundled calibration pairs (a faithful worked solution and five unfaithful
variants per problem) and prints the judge's detection accuracy, AUROC and Cohen's
kappa against the construction labels, overall and per perturbation type. The work is
`faithcheck.calibrate`; this module parses the options and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from faithcheck.cli import options as o
from faithcheck.cli.declared import pick, with_options
from faithcheck.quiet import quiet_engines, stdout_to_stderr

_JUDGE = (
    *("judge_model", "judge_backend", "judge_base_url", "judge_api_key_env"),
    *("judge_max_tokens", "judge_reasoning_effort", "judge_concurrency", "judge_http_retries"),
    *("judge_cache", "judge_price_in", "judge_price_out", "judge_readout"),
    "judge_rationale_tokens",
)
"""The `score` options `calibrate` takes about the judge, in `--help` order..."""
_ENGINE = ("dtype", "max_model_len", "seed")
"""... and about loading it (each in its `--help` panel)."""


def _params(names: tuple[str, ...]) -> list[Any]:
    from faithcheck.api import score_params

    return pick(score_params(), names)


@with_options(_params((*_JUDGE, *_ENGINE)), after="per_domain")
def calibrate_command(
    per_domain: Annotated[
        int | None,
        typer.Option(help="Calibration problems per domain (default: all 40 problems)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write every judged item (rationale included) to this JSONL file."),
    ] = None,
    json_out: o.Json = False,
    verbose: o.Verbose = False,
    **options: Any,
) -> None:
    """Measure a judge on faithful vs unfaithful solution pairs; print its reliability
    (--judge-model repeated: each judge's, calibrated one after the other)."""
    quiet_engines(verbose)
    from rich.console import Console

    from faithcheck.api import calibrate
    from faithcheck.models import DEFAULT_MODEL
    from faithcheck.store.jsonio import dumps

    err = Console(stderr=True)
    with stdout_to_stderr():
        measured = calibrate(
            options.pop("judge_model") or [DEFAULT_MODEL],
            per_domain=per_domain,
            seed=options.pop("seed"),
            dtype=options.pop("dtype"),
            max_model_len=options.pop("max_model_len"),
            out=out,
            on_message=lambda m: err.print(m, highlight=False),
            **{name.removeprefix("judge_"): value for name, value in options.items()},
        )
    if json_out:
        rels = {name: c.as_reliability() for name, c in measured.items()}
        # One judge: its reliability, as before juries; several: theirs by name.
        doc: Any = (
            next(iter(rels.values()))
            if len(rels) == 1
            else {n: rel.model_dump(mode="json") for n, rel in rels.items()}
        )
        sys.stdout.buffer.write(dumps(doc, indent=True) + b"\n")
        return
    for name, calibration in measured.items():
        _print(Console(), f"{name} ({calibration.readout} read-out)", calibration)


def _cell(m: Any) -> str:
    if m is None or m.value is None:
        return "n/a"
    ci = f" [{m.ci_low:.2f}, {m.ci_high:.2f}]" if m.ci_low is not None else ""
    return f"{m.value:.3f}{ci}"


def _print(console: Any, model: str, rel: Any) -> None:
    from rich.table import Table

    table = Table(title=f"judge reliability · {model}")
    for col in ("perturbation", "n", "detection", "AUROC vs faithful", "kappa"):
        table.add_column(col)
    for name, p in rel.per_perturbation.items():
        table.add_row(name, str(p.n), _cell(p.detection), _cell(p.auroc), _cell(p.kappa))
    table.add_row("all", str(rel.n_items), _cell(rel.accuracy), _cell(rel.auroc), _cell(rel.kappa))
    console.print(table)
    console.print(
        f"judge errors: {rel.n_errors}/{rel.n_items}; faithful judged aligned: "
        f"{_cell(rel.faithful_aligned)}"
    )
    verdict = "reliable" if rel.reliable else "UNRELIABLE: " + "; ".join(rel.reasons)
    console.print(f"verdict: {verdict}")
