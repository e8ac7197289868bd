"""vLLM vs transformers sampling throughput on the same checkpoint, prompts and settings.

Run: .venv/bin/python benchmarks/sampling.py [--model ALIAS|DIR] [--prompts 4] [--samples 8]

Both backends render the same chat prompts from the bundled math set and sample with the
same explicit settings and seeds; each is warmed up once, then timed over `--repeats`
calls. The printed ratio is vLLM tokens/s over HF tokens/s, measured side by side in
this one process (the engines run one after the other, never concurrently).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from faithcheck.backends.precision import describe_machine

os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


def _requests(backend: Any, prompts: int, samples: int, max_tokens: int) -> list[Any]:
    from faithcheck.problems.load import load_problems
    from faithcheck.sampling import SamplingConfig, build_request

    cfg = SamplingConfig(samples=samples, max_tokens=max_tokens, temperature=1.0, top_p=1.0)
    return [build_request(backend, p, cfg) for p in load_problems("math")[:prompts]]


def _time(backend: Any, requests: list[Any], repeats: int) -> tuple[float, int]:
    backend.generate(requests[:1])  # warm-up: first call pays one-off setup costs
    tokens, start = 0, time.perf_counter()
    for _ in range(repeats):
        outs = backend.generate(requests)
        tokens += sum(len(c.token_ids) for out in outs for c in out)
    return time.perf_counter() - start, tokens


def main() -> None:
    """Measure both backends and print throughput and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args()

    from faithcheck.backends import make_backend
    from faithcheck.models import resolve_model

    path = resolve_model(args.model).path
    rates = {}
    for name in ("hf", "vllm"):
        backend = make_backend(name, path, dtype=args.dtype, seed=0, max_model_len=2048)
        reqs = _requests(backend, args.prompts, args.samples, args.max_tokens)
        seconds, tokens = _time(backend, reqs, args.repeats)
        backend.close()
        rates[name] = tokens / seconds
        print(f"{name:5s} {tokens:7d} tokens in {seconds:7.1f} s = {rates[name]:7.1f} tok/s")
    print(
        f"vllm/hf throughput ratio: {rates['vllm'] / rates['hf']:.2f}x  "
        f"({args.model}, {args.dtype}, {args.prompts} prompts x n={args.samples}, "
        f"max_tokens={args.max_tokens})"
    )
    print(f"machine: {describe_machine()}")


if __name__ == "__main__":
    main()
