"""Full battery vs sampling only: what the faithfulness checks cost on top of sampling.

Run: .venv/bin/python benchmarks/battery.py [--backend auto|vllm|hf] [--limit 8] [--samples 8]

Runs `faithcheck score` twice on the default model, each in a fresh process and a fresh
run directory, one after the other: (i) sampling only (`--probes none --no-judge
--no-diversity`), (ii) the full battery (all four probes on `--probe-samples 2` chains
per problem, the judge with calibration and strategy clusters, diversity). Same model,
data, seed and sampling settings. Prints both wall times (process start to exit, and
the pipeline's own total), their ratio (goal: <= 2x with the local judge), and the
per-phase timings of each run's report.json. The judge's replies are judged afresh (an
empty judge response cache) unless `--warm-calibration`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PHASES = ("model_load_s", "sampling_s", "probes_s", "judge_s", "report_s", "total_s")


def _score(
    out: Path, common: list[str], extra: list[str], env: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    cmd = [sys.executable, "-m", "faithcheck", "score", *common, "--out", str(out), "--json"]
    start = time.perf_counter()
    proc = subprocess.run([*cmd, *extra], capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1, 4):  # a verdict is a result; anything else is not
        sys.exit(f"score failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout)


def main() -> None:
    """Time both runs and print the ratio and phases."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--backend", default="auto", choices=["auto", "vllm", "hf"])
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--probe-samples", type=int, default=2)
    ap.add_argument("--judge-max-tokens", type=int, default=256)
    ap.add_argument("--calibration-size", type=int, default=2, help="as make demo (score: 4)")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--keep", type=Path, default=None, help="write the run dirs here")
    ap.add_argument(
        "--warm-calibration",
        action="store_true",
        help="reuse the judge response cache (default: judge everything afresh)",
    )
    args = ap.parse_args()
    from faithcheck.backends.precision import describe_machine

    env = dict(os.environ)
    if not args.warm_calibration:  # an empty judge response cache: every reply paid for
        env["FAITHCHECK_JUDGE_CACHE"] = tempfile.mkdtemp(prefix="faithcheck-judge-cache-")

    backend = args.backend
    if backend == "auto":
        backend = "vllm" if importlib.util.find_spec("vllm") else "hf"
    common = [
        "--model", args.model, "--backend", backend, "--dtype", args.dtype,
        "--limit", str(args.limit), "--samples", str(args.samples),
        "--max-tokens", str(args.max_tokens), "--seed", "0",
    ]  # fmt: skip
    battery = ["--probe-samples", str(args.probe_samples)]
    battery += ["--judge-max-tokens", str(args.judge_max_tokens)]
    battery += ["--calibration-size", str(args.calibration_size)]
    runs = {
        "sampling only": ["--probes", "none", "--no-judge", "--no-diversity"],
        "full battery": [*battery],
    }
    root = args.keep or Path(tempfile.mkdtemp(prefix="faithcheck-battery-"))
    results = {}
    for i, (name, extra) in enumerate(runs.items()):
        results[name] = _score(root / f"{i}-{name.replace(' ', '-')}", common, extra, env)
        print(f"{name}: {results[name][0]:.1f} s", file=sys.stderr, flush=True)

    print(
        f"{args.model} on {backend} (--dtype {args.dtype}): {args.limit} problems x {args.samples} "
        f"samples, max {args.max_tokens} tokens; full battery probes {args.probe_samples} "
        "chains/problem (truncation, mistakes, necessity, controls), judge "
        f"(max {args.judge_max_tokens} tokens, + calibration {6 * 3 * args.calibration_size} items "
        f"{'cached' if args.warm_calibration else 'judged afresh'}, strategy), "
        "diversity"
    )
    print(f"{'run':<15}{'wall s':>9}" + "".join(f"{p:>14}" for p in PHASES))
    for name, (wall, report) in results.items():
        t = report["timings"]
        print(f"{name:<15}{wall:>9.1f}" + "".join(f"{t.get(p, 0.0):>14.1f}" for p in PHASES))
    (w0, r0), (w1, r1) = results["sampling only"], results["full battery"]
    tokens = r0["throughput"]["completion_tokens"]
    print(f"sampled tokens: {tokens} ({r0['throughput']['tokens_per_s'] or 0:.0f} tok/s)")
    print(
        f"full battery / sampling only: {w1 / w0:.2f}x process wall time, "
        f"{r1['timings']['total_s'] / r0['timings']['total_s']:.2f}x pipeline total "
        f"(goal <= 2x); probes+judge+report add "
        f"{sum(r1['timings'][p] for p in ('probes_s', 'judge_s', 'report_s')):.1f} s"
    )
    print(f"machine: {describe_machine()}")


if __name__ == "__main__":
    main()
