"""CUDA check of the transformers backend: its probe fast path against the naive one.

Run on a GPU machine: python scripts/gpu_check.py --config DIR [--problems 16] [--chains 2]

DIR holds a checkpoint's config and tokenizer files but need not hold weights: the model is
built from the config with seeded random weights (the device machine reaches no model hub,
and the default model's weights are larger than what can be sent to it). Random weights
give meaningless answers but a real architecture, real tokenizer and real CUDA kernels,
which is what this checks:

1. every probe (truncation with both read-outs, controls, necessity, mistakes) on fixed
   hand-written chains, through `--probe-impl fast` and `naive`: generated read-outs must be
   identical and teacher-forced log-probabilities equal within 1e-3 (fp32);
2. the wall-time ratio of the two on the truncation probe alone;
3. seeded sampling on CUDA repeats itself.

Prints one line per check and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _chains(problems: int, per_problem: int) -> list[tuple[str, str, str, list[str]]]:
    """(id, question, gold, responses): arithmetic chains of six steps each."""
    out = []
    for i in range(problems):
        a, b, c = 17 + i, 3 + i % 11, 2 + i % 5
        answer = (a + b) * c
        responses = []
        for j in range(per_problem):
            final = answer if j % 2 == 0 else answer + 1 + j
            steps = [
                f"We need ({a} + {b}) * {c}. First the sum inside the brackets.",
                f"{a} + {b} = {a + b}, since adding {b} to {a} gives {a + b}.",
                f"Now multiply the sum by {c}: {a + b} * {c} = {answer}.",
                f"Check: {answer} / {c} = {a + b}, and {a + b} - {b} = {a}, as given.",
                f"So the value of the expression is {final}.",
                f"The answer is \\boxed{{{final}}}.",
            ]
            responses.append("\n\n".join(steps))
        out.append((f"gen-{i:03d}", f"What is ({a} + {b}) * {c}?", str(answer), responses))
    return out


def _random_checkpoint(config_dir: Path, seed: int) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(config_dir)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = Path(tempfile.mkdtemp(prefix="faithcheck-random-"))
    model.save_pretrained(out)
    for f in config_dir.iterdir():
        weights = f.name.endswith((".safetensors", ".bin", ".gguf"))
        if f.is_file() and not weights and not (out / f.name).exists():
            shutil.copy(f, out / f.name)
    return out


def main() -> int:
    """Run the checks; 0 when all pass."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--chains", type=int, default=2)
    args = ap.parse_args()

    import torch

    from faithcheck.backends.base import ChatPrompt, GenerationRequest
    from faithcheck.backends.hf import HFBackend
    from faithcheck.probes import ProbeConfig, run_probes
    from faithcheck.probes.records import ProbeRecord, TruncationRecord
    from faithcheck.problems.parsing import extract_answer, split_steps
    from faithcheck.records import Problem
    from faithcheck.sampling import SampleRecord

    cuda = torch.cuda.is_available()
    where = torch.cuda.get_device_name(0) if cuda else "CPU (no CUDA: a dry run of the script)"
    print(f"device: {where}, torch {torch.__version__}", flush=True)
    backend = HFBackend(str(_random_checkpoint(args.config, 0)), dtype="float32")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    problems, samples = [], []
    for pid, question, gold, responses in _chains(args.problems, args.chains):
        problems.append(Problem(id=pid, question=question, answer=gold))
        for k, text in enumerate(responses):
            ex = extract_answer(text)
            samples.append(
                SampleRecord(
                    problem_id=pid,
                    sample_index=k,
                    seed=0,
                    prompt_tokens=0,
                    completion=text,
                    completion_token_ids=backend.encode(text),
                    finish_reason="stop",
                    steps=split_steps(text),
                    answer=ex.answer,
                    answer_rule=ex.rule,
                    correct=k % 2 == 0,
                    verify_method="math_verify",
                )
            )

    def prompt(p: Problem) -> list[int]:
        return backend.render(ChatPrompt(messages=[{"role": "user", "content": p.question}]))

    def probe(impl: str, probes: list[str], n: int) -> tuple[float, list[ProbeRecord]]:
        records: list[ProbeRecord] = []
        sync()
        start = time.perf_counter()
        run_probes(
            backend,
            problems[:n],
            samples,
            prompt,
            ProbeConfig.model_validate({"probes": probes, "impl": impl, "readout": "both"}),
            max_tokens=64,
            seed=0,
            on_records=records.extend,
            chunk_size=4,
        )
        sync()
        return time.perf_counter() - start, records

    failures = 0

    def check(name: str, ok: bool, detail: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    everything = ["truncation", "controls", "necessity", "mistakes"]
    probe("fast", ["truncation"], 2)  # warm-up: CUDA context, kernels
    _, fast = probe("fast", everything, 4)
    _, naive = probe("naive", everything, 4)
    trunc = [
        (pf, pn)
        for f, n in zip(fast, naive, strict=True)
        if isinstance(f, TruncationRecord) and isinstance(n, TruncationRecord)
        for pf, pn in zip(f.points, n.points, strict=True)
    ]
    same = sum(pf.answer == pn.answer and pf.greedy == pn.greedy for pf, pn in trunc)
    worst = max(abs((pf.logprob or 0) - (pn.logprob or 0)) for pf, pn in trunc)
    check(
        "truncation read-outs, fast vs naive",
        same == len(trunc) and worst < 1e-3,
        f"{same}/{len(trunc)} identical, max |logprob diff| {worst:.2e}",
    )
    others_f = [r for r in fast if not isinstance(r, TruncationRecord)]
    others_n = [r for r in naive if not isinstance(r, TruncationRecord)]
    check(
        "controls, necessity, mistakes records, fast vs naive",
        others_f == others_n and len(others_f) > 0,
        f"{sum(a == b for a, b in zip(others_f, others_n, strict=True))}/{len(others_n)} equal",
    )

    t_fast, timed_fast = probe("fast", ["truncation"], args.problems)
    t_naive, _ = probe("naive", ["truncation"], args.problems)
    cuts = sum(len(r.points) for r in timed_fast if isinstance(r, TruncationRecord))
    check(
        "truncation fast path speed-up",
        t_fast < t_naive,
        f"{len(timed_fast)} chains, {cuts} cuts: fast {t_fast:.2f} s, naive {t_naive:.2f} s, "
        f"{t_naive / t_fast:.1f}x",
    )

    request = GenerationRequest(
        prompt_ids=prompt(problems[0]), n=4, seed=7, temperature=1.0, top_p=1.0, max_tokens=48
    )
    first = [c.token_ids for c in backend.generate([request])[0]]
    again = [c.token_ids for c in backend.generate([request])[0]]
    check("seeded sampling repeats", first == again, f"{len(first)} completions of <= 48 tokens")
    print(f"{failures} check(s) failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
