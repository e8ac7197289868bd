"""Text vs probability read-out of a local judge, on the bundled calibration set.

For each judge model and each read-out, judges the calibration items `score` judges by
default (`--per-domain 4`: 12 problems, 72 items) and prints the judge's reliability as
`score` computes it: AUROC with its 95% CI (ranked by p_aligned for the probs read-out,
by the label for text), Cohen's kappa with its CI, the judge-error rate, the outcome of
the CI-gated reliability floors, the prompt and completion tokens the engine was given,
and wall time. Read-outs:

    text       the judge writes a rationale and `VERDICT <nonce>: <label>` (parsed; one
               retry after an unparseable reply), --judge-max-tokens 256
    probs:N    N greedy rationale tokens, then the verdict prefix; the label is the most
               probable of aligned / partial / misaligned (N = 0: no rationale)

No response cache: every configuration pays its own calls.

    python benchmarks/judge_readout.py [--model smollm2-135m] [--readouts text,probs:0]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from faithcheck.backends import make_backend
from faithcheck.judge import JudgeConfig, JudgeResult
from faithcheck.judge.client import JudgeCall, JudgeSession, as_client
from faithcheck.judge.options import LOCAL_JUDGE_MAX_TOKENS
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.judge.stage import (
    calibrate_into,
    calibration_items,
    calibration_reliability,
)
from faithcheck.metrics import MetricValue
from faithcheck.models import resolve_model


def config(readout: str, fmt: str) -> JudgeConfig:
    """The judge settings of one read-out spec (`text` or `probs:N`), as `score` sets them
    for a local judge."""
    if readout == "text":
        return JudgeConfig(
            max_tokens=LOCAL_JUDGE_MAX_TOKENS, max_retries=1, prompt_format=fmt, batch_size=32
        )
    kind, _, n = readout.partition(":")
    if kind != "probs":
        raise SystemExit(f"unknown read-out {readout!r}: text or probs:N")
    return JudgeConfig(
        readout="probs", rationale_tokens=int(n or 0), prompt_format=fmt, batch_size=32
    )


def cell(m: MetricValue) -> str:
    """`0.712 [0.601, 0.810]`, or n/a."""
    if m.value is None:
        return "n/a"
    ci = f" [{m.ci_low:.2f}, {m.ci_high:.2f}]" if m.ci_low is not None else ""
    return f"{m.value:.3f}{ci}"


def row(
    model: str, readout: str, rel: JudgeReliability, calls: list[JudgeCall], wall: float
) -> str:
    """One markdown table row."""
    prompt = sum(c.prompt_tokens for c in calls)
    completion = sum(c.completion_tokens for c in calls)
    err = f"{rel.error_rate:.2f}" if rel.error_rate is not None else "n/a"
    return (
        f"| {model} | {readout} | {cell(rel.auroc)} | {cell(rel.kappa)} | {err} | "
        f"{rel.outcome} | {prompt:,} | {completion:,} | {wall:.0f} |"
    )


HEADER = (
    "| judge | read-out | AUROC [95% CI] | kappa [95% CI] | error rate | reliability | "
    "prompt tokens | completion tokens | wall s |\n|---|---|---|---|---|---|---|---|---|"
)


def measure(backend: Any, fmt: str, readout: str, items: list[Any], seed: int) -> tuple[Any, ...]:
    """(reliability, ledger, wall seconds, results) of one read-out."""
    calls: list[JudgeCall] = []
    session = JudgeSession(as_client(backend, None), cache=None, ledger=calls.extend)
    cfg = config(readout, fmt).model_copy(update={"seed": seed})
    results: list[JudgeResult] = []
    start = time.perf_counter()
    calibrate_into(None, session, items, cfg, collect=results)
    wall = time.perf_counter() - start
    rel = calibration_reliability(items, {r.item_id: r for r in results}, seed)
    return rel, calls, wall, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="judge alias or folder (repeatable)")
    parser.add_argument("--readouts", default="text,probs:0,probs:32")
    parser.add_argument("--backend", default="vllm", choices=["vllm", "hf"])
    parser.add_argument("--per-domain", type=int, default=4, help="calibration problems per domain")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    items = calibration_items(args.per_domain, args.seed)
    print(f"calibration items: {len(items)} ({args.per_domain} problems per domain)")
    print(f"backend: {args.backend} (float32)\n")
    print(HEADER, flush=True)
    for model in args.model or ["smollm2-135m"]:
        identity = resolve_model(model)
        fmt = "chat" if identity.has_chat_template else "base"
        backend = make_backend(
            args.backend, identity.path, dtype="float32", seed=args.seed, max_model_len=2048
        )
        try:
            for readout in args.readouts.split(","):
                rel, calls, wall, results = measure(backend, fmt, readout, items, args.seed)
                print(row(model, readout, rel, calls, wall), flush=True)
                if readout != "text":
                    masses = sorted(r.label_mass for r in results if r.label_mass is not None)
                    if masses:
                        mid = masses[len(masses) // 2]
                        print(f"<!-- {model} {readout}: median label mass {mid:.3f} -->")
        finally:
            backend.close()


if __name__ == "__main__":
    main()
