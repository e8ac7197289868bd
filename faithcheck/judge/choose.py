"""Which judges a run asks for: `JudgeOptions` from the keywords named as the command
line's options, with its one-line errors (`judge_options`), and a jury from --judge-model
given more than once (`jury_options`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faithcheck.errors import UsageError
from faithcheck.judge.jury import split_judge_spec
from faithcheck.judge.jury_stage import juror_prices
from faithcheck.judge.options import JUDGE_BACKENDS, READOUTS, JudgeOptions
from faithcheck.judge.plan import default_max_tokens
from faithcheck.models import DEFAULT_MODEL

REASONING_EFFORTS = ("minimal", "low", "medium", "high")
_NULLABLE = frozenset(
    {"base_url", "api_key_env", "samples", "reasoning_effort", "max_items", "price_in", "price_out"}
    | {"max_cost"}
)


def jury_options(specs: str | Sequence[str] | None, **shared: Any) -> dict[str, Any]:
    """`judge` and `jury` of `ScoreOptions` from the --judge-model values (each
    `MODEL[,key=value...]`, `faithcheck.judge.jury.split_judge_spec`; None: the default
    model) and the other --judge-* options, which every judge shares unless its spec sets
    the key (a judge run in process is free: `faithcheck.judge.jury_stage.juror_prices`).
    Only the first judge clusters strategies."""
    specs = [specs] if isinstance(specs, str) else list(specs or ()) or [DEFAULT_MODEL]
    judges = []
    for n, spec in enumerate(specs):
        if "," in spec and not Path(spec).exists():
            model, own = split_judge_spec(spec)
        else:
            model, own = spec, {}
        first = {} if n == 0 else {"strategy": False}
        opts = judge_options(**(shared | {"model": model} | own | first))
        judges.append(opts if len(specs) == 1 else juror_prices(opts, own))
    return {"judge": judges[0], "jury": judges[1:] if shared.get("enabled", True) else []}


def judge_options(**values: Any) -> JudgeOptions:
    """`JudgeOptions` from keyword values (None: the default), with the command line's
    one-line errors; an unset max_tokens resolves by judge kind (`default_max_tokens`).

    Raises:
        UsageError: a bad value.
    """
    values = {k: v for k, v in values.items() if v is not None or k in _NULLABLE}
    if values.get("backend", "auto") not in JUDGE_BACKENDS:
        raise UsageError("--judge-backend must be " + ", ".join(JUDGE_BACKENDS))
    if values.get("readout", "auto") not in READOUTS:
        raise UsageError("--judge-readout must be " + ", ".join(READOUTS))
    floors = {
        "samples": ("--judge-samples", 1),
        "max_tokens": ("--judge-max-tokens", 16),
        "calibration_per_domain": ("--calibration-size", 1),
        "concurrency": ("--judge-concurrency", 1),
        "http_retries": ("--judge-http-retries", 0),
        "max_items": ("--judge-max-items", 1),
        "max_cost": ("--judge-max-cost", 0),
        "price_in": ("--judge-price-in", 0),
        "price_out": ("--judge-price-out", 0),
        "rationale_tokens": ("--judge-rationale-tokens", 0),
    }
    for key, (flag, floor) in floors.items():
        if values.get(key) is not None and values[key] < floor:
            raise UsageError(f"{flag} must be at least {floor}")
    effort = values.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise UsageError("--judge-reasoning-effort must be " + ", ".join(REASONING_EFFORTS))
    if values.get("max_tokens") is None:
        values.pop("max_tokens", None)
        values["max_tokens"] = default_max_tokens(JudgeOptions.model_validate(values))
    return JudgeOptions.model_validate(values)
