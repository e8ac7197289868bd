"""`faithcheck calibrate`: how far can this judge be trusted?

Judges the bundled calibration pairs (a faithful worked solution and five unfaithful
variants per problem) and prints the judge's detection accuracy, AUROC and Cohen's
kappa against the construction labels, overall and per perturbation type.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from faithcheck import _options as o


def calibrate_command(
    judge_model: o.JudgeModel = o.DEFAULTS["model"],
    judge_backend: o.JudgeBackend = "auto",
    judge_base_url: o.JudgeBaseUrl = None,
    judge_api_key_env: o.JudgeApiKeyEnv = None,
    judge_max_tokens: o.JudgeMaxTokens = 256,
    per_domain: Annotated[
        int | None,
        typer.Option(help="Calibration problems per domain (default: all 40 problems)."),
    ] = None,
    dtype: o.DTypeOpt = "auto",
    max_model_len: o.MaxModelLen = 2048,
    seed: o.Seed = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Write every judged item (rationale included) to this JSONL file."),
    ] = None,
    json_out: o.Json = False,
    verbose: o.Verbose = False,
) -> None:
    """Measure a judge on faithful vs unfaithful solution pairs; print its reliability."""
    from rich.console import Console

    from faithcheck.backends import choose_backend, make_backend
    from faithcheck.backends.precision import precision_for
    from faithcheck.errors import UsageError
    from faithcheck.jsonio import atomic_write_bytes, dumps
    from faithcheck.judge import JudgeResult, judge_texts
    from faithcheck.judge.reliability import reliability
    from faithcheck.judge_stage import JudgeOptions, calibration_items, judge_config
    from faithcheck.models import resolve_model

    err = Console(stderr=True)
    if per_domain is not None and per_domain < 1:
        raise UsageError("--per-domain must be at least 1")
    if judge_backend not in {"auto", "vllm", "hf", "openai"}:
        raise UsageError("--judge-backend must be auto, vllm, hf or openai")
    if judge_backend == "openai" and not judge_base_url:
        raise UsageError("--judge-backend openai needs --judge-base-url")
    items = calibration_items(per_domain or 10_000, seed)
    fmt: Literal["chat", "base"] = "chat"
    say = lambda m: err.print(m, highlight=False)  # noqa: E731
    if judge_backend == "openai":
        backend = make_backend(
            "openai",
            judge_model,
            dtype=dtype,
            seed=seed,
            max_model_len=max_model_len,
            base_url=judge_base_url,
            api_key_env=judge_api_key_env,
        )
    else:
        identity = resolve_model(judge_model)
        fmt = "chat" if identity.has_chat_template else "base"
        name = choose_backend(judge_backend, say)  # type: ignore[arg-type]
        precision = precision_for(dtype, name)
        say(f"precision: {precision.dtype} ({precision.reason})")
        backend = make_backend(
            name, identity.path, dtype=dtype, seed=seed, max_model_len=max_model_len
        )
    if judge_max_tokens < 16:
        raise UsageError("--judge-max-tokens must be at least 16")
    cfg = judge_config(JudgeOptions(model=judge_model, max_tokens=judge_max_tokens), seed, fmt)
    results: list[JudgeResult] = []
    try:
        for start in range(0, len(items), cfg.batch_size):
            chunk = items[start : start + cfg.batch_size]
            results += judge_texts(
                backend, [(i.item_id, i.question, i.response) for i in chunk], cfg
            )
            say(f"calibration: {len(results)}/{len(items)} items judged")
    finally:
        backend.close()
    if out is not None:
        atomic_write_bytes(out, b"".join(dumps(r) + b"\n" for r in results))
    rel = reliability(items, {r.item_id: r.label for r in results}, seed=seed)
    if json_out:
        sys.stdout.buffer.write(dumps(rel, indent=True) + b"\n")
        return
    _print(Console(), judge_model, rel)


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
