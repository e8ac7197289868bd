"""Sampling throughput by precision: `--dtype auto` vs bfloat16 vs float32, side by side.

Run: .venv/bin/python benchmarks/precision.py [--backend vllm|hf] [--dtypes auto,bfloat16,float32]

Loads the default model once per dtype (one after the other, in this one process), samples
the same chat prompts from the bundled math set with the same seeds, and prints tokens/s
per dtype with its ratio to `auto`, plus the CPU capability everything ran on: on a CPU
without native bf16 (AVX2 only) bfloat16 is emulated and `auto` must pick float32; on one
with avx512_bf16 / AMX, `auto` picks bfloat16. Each engine is warmed up with one request
before timing.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import time

os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


def main() -> None:
    """Measure each dtype and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    default_backend = "vllm" if importlib.util.find_spec("vllm") else "hf"
    ap.add_argument("--backend", default=default_backend, choices=["vllm", "hf"])
    ap.add_argument("--dtypes", default="auto,bfloat16,float32")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()

    from faithcheck.backends import make_backend
    from faithcheck.backends.precision import describe_machine, resolve
    from faithcheck.models import resolve_model
    from faithcheck.problems.load import load_problems
    from faithcheck.sampling import SamplingConfig, build_request

    path = resolve_model(args.model).path
    cfg = SamplingConfig(samples=args.samples, max_tokens=args.max_tokens)
    rows = []
    for dtype in args.dtypes.split(","):
        start = time.perf_counter()
        backend = make_backend(args.backend, path, dtype=dtype, seed=0, max_model_len=2048)  # type: ignore[arg-type]
        load = time.perf_counter() - start
        requests = [build_request(backend, p, cfg) for p in load_problems("math")[: args.prompts]]
        backend.generate(requests[:1])
        start = time.perf_counter()
        outs = backend.generate(requests)
        wall = time.perf_counter() - start
        tokens = sum(len(c.token_ids) for out in outs for c in out)
        backend.close()
        del backend
        gc.collect()
        rows.append((dtype, resolve(dtype), load, wall, tokens))
        print(f"{dtype}: {tokens / wall:.1f} tok/s", flush=True)

    print(
        f"{args.model} on {args.backend}: {args.prompts} prompts x n={args.samples}, "
        f"max {args.max_tokens} tokens, one engine call per dtype"
    )
    print(f"{'--dtype':<10}{'loads as':>10}{'load s':>8}{'sample s':>10}{'tokens':>8}"
          f"{'tok/s':>8}{'vs auto':>9}")  # fmt: skip
    base = next((r for r in rows if r[0] == "auto"), rows[0])
    base_tps = base[4] / base[3]
    for dtype, loaded, load, wall, tokens in rows:
        tps = tokens / wall
        print(
            f"{dtype:<10}{loaded:>10}{load:>8.1f}{wall:>10.1f}{tokens:>8}{tps:>8.1f}"
            f"{tps / base_tps:>8.2f}x"
        )
    print(f"machine: {describe_machine()}")


if __name__ == "__main__":
    main()
