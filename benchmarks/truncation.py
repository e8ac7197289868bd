"""Truncation probe: the fast path vs the naive baseline on the same samples.

Run: .venv/bin/python benchmarks/truncation.py [--backend hf|vllm] [--problems 4] [--samples 2]

Samples chains from the default model once, then runs the truncation probe (5 cuts,
both read-outs) with `--probe-impl fast` and `--probe-impl naive` on exactly those chains,
one after the other in this process, and prints the wall-time ratio and how often the
generated read-outs agree (they must all agree: the fast path is exact).
"""

from __future__ import annotations

import argparse
import os
import time

from faithcheck.backends.precision import describe_machine

os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


def main() -> None:
    """Sample, probe twice, print the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    ap.add_argument("--problems", type=int, default=4)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument(
        "--dtype",
        default="float32",
        help="float32 by default, unlike score's auto: the fast and naive read-outs are "
        "checked for identity, which only fp32 makes exact",
    )
    ap.add_argument("--readout", default="both", choices=["generate", "score", "both"])
    ap.add_argument("--impls", default="fast,naive", help="comma-separated, timed in order")
    ap.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="problems per call (default as score: hf 4, vllm 16)",
    )
    args = ap.parse_args()

    from faithcheck.backends import make_backend
    from faithcheck.models import resolve_model
    from faithcheck.probes import ProbeConfig, run_probes
    from faithcheck.probes.records import TruncationRecord
    from faithcheck.problems.load import load_problems
    from faithcheck.sampling import SamplingConfig, build_request, sample

    path = resolve_model(args.model).path
    backend = make_backend(args.backend, path, dtype=args.dtype, seed=0, max_model_len=2048)
    problems = load_problems("math")[: args.problems]
    cfg = SamplingConfig(samples=args.samples, max_tokens=args.max_tokens)
    samples: list = []
    sample(backend, problems, cfg, samples.extend)

    results = {}
    for impl in args.impls.split(","):
        records: list = []
        start = time.perf_counter()
        run_probes(
            backend,
            problems,
            samples,
            lambda p: build_request(backend, p, cfg).prompt_ids,
            ProbeConfig(probes=["truncation"], impl=impl, readout=args.readout),
            max_tokens=args.max_tokens,
            seed=0,
            on_records=records.extend,
            chunk_size=args.chunk or (4 if args.backend == "hf" else 16),
        )
        results[impl] = (time.perf_counter() - start, records)
    backend.close()

    for impl, (seconds, _) in results.items():
        print(f"{impl:6s} {seconds:7.2f} s  ({args.backend}, readout={args.readout})")
    if set(results) != {"fast", "naive"}:
        return
    fast, naive = results["fast"][1], results["naive"][1]
    pairs = [
        (pf, pn)
        for f, n in zip(fast, naive, strict=True)
        if isinstance(f, TruncationRecord)
        for pf, pn in zip(f.points, n.points, strict=True)
    ]
    same = sum(pf.answer == pn.answer and pf.greedy == pn.greedy for pf, pn in pairs)
    cuts = len(pairs)
    t_fast, t_naive = results["fast"][0], results["naive"][0]
    print(f"chains: {len(fast)}, cuts: {cuts} ({args.backend}, {args.dtype})")
    print(
        f"naive/fast wall-time ratio: {t_naive / t_fast:.2f}x; read-outs identical: "
        f"{same}/{cuts}  ({args.model})"
    )
    print(f"machine: {describe_machine()}")


if __name__ == "__main__":
    main()
