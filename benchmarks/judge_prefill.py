"""Judge prompt tokens computed per item, with and without prefix reuse, side by side.

Run: .venv/bin/python benchmarks/judge_prefill.py [--backends hf,vllm] [--items 16]

Every judge prompt opens with the same rubric (the system message holds no per-item
text). With reuse, the engines compute it once: the transformers backend holds its keys
and values (`faithcheck.backends.hf_prefix`), vLLM its prefix cache. Without it (hf
`prefix_reuse=False`, vLLM `enable_prefix_caching=False`) each item pays its whole prompt.
For each backend, the same bundled calibration items are judged both ways, one engine
after the other in this one process; printed: prompt tokens per item served and
computed, wall time of the judge call, and whether the labels agree.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import time
from typing import Any

os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


def _load(backend: str, path: str, reuse: bool) -> Any:
    if backend == "hf":
        from faithcheck.backends.hf import HFBackend

        return HFBackend(path, prefix_reuse=reuse)
    from faithcheck.backends.vllm import VLLMBackend

    return VLLMBackend(path, engine_kwargs={"enable_prefix_caching": reuse})


def main() -> None:
    """Judge the items both ways on each backend and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    have_vllm = importlib.util.find_spec("vllm") is not None
    ap.add_argument("--backends", default="hf,vllm" if have_vllm else "hf")
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()

    from faithcheck.backends.precision import describe_machine
    from faithcheck.judge import judge_texts
    from faithcheck.judge.stage import JudgeOptions, calibration_items, judge_config
    from faithcheck.models import resolve_model

    identity = resolve_model(args.model)
    items = calibration_items(10_000, 0)[: args.items]
    triples = [(i.item_id, i.question, i.response) for i in items]
    fmt = "chat" if identity.has_chat_template else "base"
    opts = JudgeOptions(model=args.model, max_tokens=args.max_tokens, max_retries=0)
    cfg = judge_config(opts, 0, fmt)  # type: ignore[arg-type]
    rows = []
    for name in args.backends.split(","):
        labels = {}
        for reuse in (False, True):
            backend = _load(name, identity.path, reuse)
            start = time.perf_counter()
            results = judge_texts(backend, triples, cfg)
            wall = time.perf_counter() - start
            count = backend.prefill
            labels[reuse] = [(r.label, r.raw) for r in results]
            rows.append((name, reuse, count.prompt_tokens, count.computed_tokens, wall, ""))
            backend.close()
            del backend
            gc.collect()
            print(f"{name} reuse={reuse}: {wall:.1f} s", file=sys.stderr, flush=True)
        same = sum(a == b for a, b in zip(labels[False], labels[True], strict=True))
        rows[-1] = (*rows[-1][:5], f"{same}/{len(items)}")

    print(
        f"judge ({args.model}, --dtype auto) on {len(items)} calibration items, "
        f"max {args.max_tokens} reply tokens, no retries"
    )
    print(f"{'backend':<8}{'reuse':>6}{'served/item':>13}{'computed/item':>15}{'judge s':>9}"
          f"{'same replies':>14}")  # fmt: skip
    for name, reuse, served, computed, wall, same in rows:
        print(
            f"{name:<8}{'on' if reuse else 'off':>6}{served / len(items):>13.0f}"
            f"{computed / len(items):>15.0f}{wall:>9.1f}{same:>14}"
        )
    for name in args.backends.split(","):
        off, on = [r for r in rows if r[0] == name]
        print(
            f"{name}: computed prompt tokens per item {off[3] / len(items):.0f} -> "
            f"{on[3] / len(items):.0f} ({off[3] / max(on[3], 1):.1f}x fewer); judge wall "
            f"{off[4] / on[4]:.2f}x faster"
        )
    print(f"machine: {describe_machine()}")


if __name__ == "__main__":
    main()
