"""A toy test of the study's prediction: does RL under weak supervision generalize better from
a faithful checkpoint than from a post-hoc one, as the pre-RL verdict says it should?

The trained organisms of `benchmarks/organisms.py` (LoRA fine-tunes of the embedded
SmolLM2-135M-Instruct whose chains are faithful or post-hoc by construction) are each trained
further with the same small policy-gradient budget under weak supervision: a few training
problems (`--train-problems`, 8 by default, the `dev` phrasing the organisms were trained on,
other numbers) and optionally noisy rewards (`--reward-noise`). Then:

(a) held-out accuracy gain: greedy accuracy on the `heldout` phrasing (the problems
    `benchmarks/organisms.py` scores, which no organism and no RL step saw) before and after
    RL, per problem, paired; 95% bootstrap CI over problems, per seed and pooled;
(b) `faithcheck saturation` on each run's JSONL training log (t_sat, rapid flag), with the
    study's definitions scaled to the toy budget (see SATURATION);
(c) train-set accuracy before and after: memorization shows as a train gain without a
    held-out one.

The RL algorithm is a minimal on-policy GRPO (group-relative advantages, one gradient step per
batch, so no ratio clipping is needed; no KL term, as in Dr. GRPO and DAPO) on a fresh LoRA
adapter, written out here in ~60 lines rather than TRL's GRPOTrainer: TRL would generate
with transformers too, and its trainer adds an accelerate/datasets stack, vLLM-colocation
settings and per-version API changes for no gain at this size; the loop below is the same
objective, deterministic under a seed, and readable in one screen. Everything runs in fp32
on the CPU; `--scale` multiplies problems, steps and group size for a GPU machine.

    python benchmarks/rl_toy.py [--seeds 0,1] [--steps 30] [--scale 1] [--reward-noise 0]

Pre-RL numbers come from `benchmarks/organisms.py`'s reports under --organisms-out when they
exist (run it first); the table then says whether the pre-RL ordering matched the RL outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from organisms import LORA_TARGETS, _cpu, _read, build  # the sibling benchmark script

from faithcheck.metrics import MetricValue, bootstrap_mean
from faithcheck.models import DEFAULT_MODEL, EMBEDDED, embedded_checkpoint
from faithcheck.problems.parsing import extract_answer, normalize_answer
from faithcheck.problems.prompts import ChatPrompt, build_prompt
from faithcheck.sets import organisms as organism_sets
from faithcheck.store.jsonio import atomic_write_bytes, dumps

ORGANISMS: tuple[organism_sets.Kind, ...] = ("faithful", "post-hoc")
RL = {
    "train_problems": 8,
    "heldout_problems": 24,
    "problems_per_step": 1,
    "group": 8,
    "max_new_tokens": 96,
    "temperature": 1.0,
    "lr": 2e-4,
    "rank": 16,
    "alpha": 32,
    "top_layers": 8,
    "eval_every": 8,
}
"""RL settings at --scale 1 (problems, steps and group size scale with --scale)."""
SATURATION = ("--ema", "0.6")
"""Per-step rewards of 16 samples are noisy: TensorBoard-style smoothing. The window margin
and the rapid threshold are the study's 50 and 100 steps scaled to the run's length
(steps / 6 and steps / 3): a 30-step run searches t_sat in its first 25 steps and calls
t_sat < 10 rapid."""


def _prompt_ids(tokenizer: Any, question: str) -> list[int]:
    prompt = build_prompt(question, "chat", None)
    assert isinstance(prompt, ChatPrompt)
    text = tokenizer.apply_chat_template(
        prompt.messages, add_generation_prompt=True, tokenize=False
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _correct(text: str, gold: int) -> bool:
    found = extract_answer(text).answer
    return found is not None and normalize_answer(found) == normalize_answer(str(gold))


def _generate(
    model: Any, tokenizer: Any, prompts: list[list[int]], *, greedy: bool, max_new: int
) -> list[list[int]]:
    """Completion token ids per prompt (left-padded batch; up to and including EOS)."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = torch.tensor(p)
        mask[row, width - len(p) :] = 1
    kwargs: dict[str, Any] = {"do_sample": False} if greedy else {"do_sample": True}
    if not greedy:
        kwargs |= {"temperature": RL["temperature"], "top_p": 1.0, "top_k": 0}
    with torch.no_grad():
        out = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=max_new,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
            **kwargs,
        )
    completions = []
    for row in out[:, width:].tolist():
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id) + 1]
        completions.append(row)
    return completions


@contextlib.contextmanager
def _merged(model: Any) -> Iterator[None]:
    """The LoRA update folded into the weights while generating (no adapter overhead per
    token); unfolded again for training."""
    model.eval()
    model.merge_adapter()
    try:
        yield
    finally:
        model.unmerge_adapter()


def _accuracy(
    model: Any, tokenizer: Any, problems: list[organism_sets.WordProblem], max_new: int
) -> list[float]:
    """Greedy correctness per problem (batches of 8)."""
    with _merged(model):
        return _greedy(model, tokenizer, problems, max_new)


def _greedy(
    model: Any, tokenizer: Any, problems: list[organism_sets.WordProblem], max_new: int
) -> list[float]:
    out: list[float] = []
    for i in range(0, len(problems), 8):
        chunk = problems[i : i + 8]
        prompts = [_prompt_ids(tokenizer, p.question) for p in chunk]
        for p, ids in zip(
            chunk, _generate(model, tokenizer, prompts, greedy=True, max_new=max_new), strict=True
        ):
            out.append(float(_correct(tokenizer.decode(ids, skip_special_tokens=True), p.answer)))
    return out


def sequence_logprobs(model: Any, pad: int, batch: list[tuple[list[int], list[int]]]) -> Any:
    """Mean token log-probability of each completion after its prompt, with gradients.

    Rows are left-padded so every completion ends its row: the vocabulary projection then
    runs only over the last (longest completion + 1) positions (`logits_to_keep`), not the
    prompts, which are most of the tokens at this size. Positions count from each row's
    first real token, so padding changes nothing (tests/test_benchmarks.py checks this
    against one unpadded forward per sequence)."""
    import torch

    width = max(len(p) + len(c) for p, c in batch)
    keep = max(len(c) for _, c in batch) + 1
    ids = torch.full((len(batch), width), pad)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    target = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, (p, c) in enumerate(batch):
        seq = p + c
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
        target[row, width - len(c) :] = True
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ids, mask, target = ids.to(model.device), mask.to(model.device), target.to(model.device)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions.to(model.device),
        logits_to_keep=keep,
    )
    logits = out.logits[:, :-1].float()  # positions width-keep .. width-2 predict the next
    tokens = ids[:, width - keep + 1 :]
    logp = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
    tmask = target[:, width - keep + 1 :].float()
    return (logp * tmask).sum(-1) / tmask.sum(-1).clamp(min=1)


def _policy_step(
    model: Any, opt: Any, tokenizer: Any, batch: list[tuple[list[int], list[int], float]]
) -> float:
    """One GRPO step: -sum(advantage * mean token log-prob) / sequences."""
    import torch

    model.train()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    per_seq = sequence_logprobs(model, pad, [(p, c) for p, c, _ in batch])
    adv = torch.tensor([a for _, _, a in batch], device=model.device)
    loss = -(adv * per_seq).sum() / len(batch)
    loss.backward()
    opt.step()
    opt.zero_grad()
    return float(loss.item())


def run_one(
    kind: organism_sets.Kind, seed: int, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    """RL one organism under one seed; its before/after accuracies and training log."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = embedded_checkpoint(EMBEDDED[DEFAULT_MODEL])
    folder, _ = build(kind, base)
    torch.manual_seed(seed)
    rng = random.Random(f"rl_toy/{kind}/{seed}")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    layers = model.config.num_hidden_layers
    config = LoraConfig(
        r=RL["rank"],
        lora_alpha=RL["alpha"],
        lora_dropout=0.0,
        target_modules=list(LORA_TARGETS),
        layers_to_transform=list(range(layers - RL["top_layers"], layers)),
    )
    model = get_peft_model(model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=RL["lr"], weight_decay=0.0)
    train = organism_sets.problems(args.train_problems, seed=2, phrasing="dev")
    heldout = organism_sets.problems(args.heldout_problems, seed=1, phrasing="heldout")
    max_new = RL["max_new_tokens"]
    t0 = time.perf_counter()
    before = {"train": _accuracy(model, tokenizer, train, max_new)}
    before["heldout"] = _accuracy(model, tokenizer, heldout, max_new)
    log.unlink(missing_ok=True)
    _append(log, {"step": 0, "eval/accuracy": sum(before["heldout"]) / len(heldout)})
    for step in range(1, args.steps + 1):
        chosen = rng.sample(train, min(args.problems_per_step, len(train)))
        batch: list[tuple[list[int], list[int], float]] = []
        rewards: list[float] = []
        for p in chosen:
            prompt = _prompt_ids(tokenizer, p.question)
            with _merged(model):
                outs = _generate(
                    model, tokenizer, [prompt] * args.group, greedy=False, max_new=max_new
                )
            r = [
                float(_correct(tokenizer.decode(c, skip_special_tokens=True), p.answer))
                for c in outs
            ]
            noisy = [1.0 - x if rng.random() < args.reward_noise else x for x in r]
            mean = sum(noisy) / len(noisy)
            batch += [(prompt, c, x - mean) for c, x in zip(outs, noisy, strict=True)]
            rewards += r
        loss = _policy_step(model, opt, tokenizer, batch) if any(a for *_, a in batch) else 0.0
        row: dict[str, Any] = {"step": step, "reward": sum(rewards) / len(rewards), "loss": loss}
        if step % RL["eval_every"] == 0 and step < args.steps:
            row["eval/accuracy"] = sum(_accuracy(model, tokenizer, heldout, max_new)) / len(heldout)
        if step < args.steps:
            _append(log, row)
        print(
            f"  {kind} seed {seed} step {step}/{args.steps} reward {row['reward']:.3f}", flush=True
        )
    after = {"train": _accuracy(model, tokenizer, train, max_new)}
    after["heldout"] = _accuracy(model, tokenizer, heldout, max_new)
    _append(log, row | {"eval/accuracy": sum(after["heldout"]) / len(heldout)})
    return {
        "organism": kind,
        "seed": seed,
        "before": before,
        "after": after,
        "seconds": round(time.perf_counter() - t0, 1),
        "settings": {
            k: getattr(args, k)
            for k in ("steps", "group", "problems_per_step", "train_problems", "reward_noise")
        },
        "cpu_capability": _cpu(),
        "saturation": _saturation(log, args.steps),
    }


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("ab") as f:
        f.write(dumps(row) + b"\n")


def _saturation(log: Path, steps: int) -> dict[str, Any]:
    """`faithcheck saturation --json` on one log, the study's windows scaled to `steps`."""
    cmd = [sys.executable, "-m", "faithcheck", "saturation", str(log), "--json", *SATURATION]
    cmd += ["--margin", str(max(1, steps // 6)), "--rapid-steps", str(max(2, steps // 3))]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    run = json.loads(proc.stdout)["runs"][0]
    out = {k: run.get(k) for k in ("status", "t_sat", "rapid", "reward_first", "reward_max")}
    return out | {"eval_gain_to_tsat": (run.get("eval") or {}).get("pre_saturation_gain")}


def _gain(result: dict[str, Any], split: str) -> list[float]:
    b, a = result["before"][split], result["after"][split]
    return [y - x for x, y in zip(b, a, strict=True)]


def _fmt(m: MetricValue) -> str:
    if m.value is None:
        return "–"
    return f"{m.value:+.3f} [{m.ci_low:+.2f}, {m.ci_high:+.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--scale", type=int, default=1, help="x problems, steps and group (GPU)")
    ap.add_argument("--reward-noise", type=float, default=0.0, help="flip each reward w.p. p")
    ap.add_argument("--only", default=",".join(ORGANISMS))
    ap.add_argument("--out", type=Path, default=Path("runs/rl_toy"))
    ap.add_argument("--print-only", action="store_true", help="re-print results.json")
    ap.add_argument("--organisms-out", type=Path, default=Path("runs/organisms"))
    args = ap.parse_args()
    args.train_problems = RL["train_problems"] * args.scale
    args.heldout_problems = RL["heldout_problems"] * args.scale
    args.problems_per_step = RL["problems_per_step"] * args.scale
    args.group = RL["group"] * args.scale
    args.steps *= args.scale
    kinds = [k for k in args.only.split(",") if k]
    if unknown := set(kinds) - set(organism_sets.KINDS):
        sys.exit(f"unknown organisms: {', '.join(sorted(unknown))}")
    if args.steps < 1:
        sys.exit("--steps must be at least 1")
    if not 0 <= args.reward_noise < 0.5:
        sys.exit("--reward-noise must be in [0, 0.5)")
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"CPU capability: {_cpu()}; threads {os.cpu_count()}; device {device}; "
        f"{args.train_problems} train problems, {args.steps} steps x {args.problems_per_step} "
        f"problems x {args.group} samples, reward noise {args.reward_noise}",
        flush=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    if args.print_only:
        _print(json.loads((args.out / "results.json").read_text()), kinds, args)
        return
    # results.json keeps every (organism, seed) run so far: a rerun replaces its own rows.
    saved = args.out / "results.json"
    results = json.loads(saved.read_text()) if saved.is_file() else []
    for kind in kinds:
        for seed in (int(s) for s in args.seeds.split(",")):
            result = run_one(kind, seed, args, args.out / f"{kind}-s{seed}.jsonl")
            results = [r for r in results if (r["organism"], r["seed"]) != (kind, seed)]
            results.append(result)
            atomic_write_bytes(saved, dumps(results, indent=True))
    _print(results, [k for k in ORGANISMS if any(r["organism"] == k for r in results)], args)


def _print(results: list[dict[str, Any]], kinds: list[str], args: argparse.Namespace) -> None:
    print(
        f"\n{'organism':10} {'seed':>4} {'train acc':>13} {'held-out acc':>13} "
        f"{'held-out gain [95% CI]':>26} {'t_sat':>6} {'rapid':>6} {'s':>5}"
    )
    for r in results:
        tb, ta = (sum(r[x]["train"]) / len(r[x]["train"]) for x in ("before", "after"))
        hb, ha = (sum(r[x]["heldout"]) / len(r[x]["heldout"]) for x in ("before", "after"))
        sat = r["saturation"]
        print(
            f"{r['organism']:10} {r['seed']:>4} {tb:>6.2f}->{ta:<5.2f} {hb:>6.2f}->{ha:<5.2f} "
            f"{_fmt(bootstrap_mean(_gain(r, 'heldout'), seed=0)):>26} "
            f"{sat.get('t_sat')!s:>6} {sat.get('rapid')!s:>6} {r['seconds']:>5.0f}"
        )
    pooled = {}
    for kind in kinds:
        mine = [r for r in results if r["organism"] == kind]
        # Units: (seed, problem) pairs would overstate n; average the seeds per problem.
        per_problem = [
            sum(v) / len(v) for v in zip(*(_gain(r, "heldout") for r in mine), strict=True)
        ]
        train = [sum(v) / len(v) for v in zip(*(_gain(r, "train") for r in mine), strict=True)]
        pooled[kind] = bootstrap_mean(per_problem, seed=0)
        print(
            f"{kind:10} seeds pooled: held-out gain {_fmt(pooled[kind])}, "
            f"train gain {_fmt(bootstrap_mean(train, seed=0))}"
        )
    _ordering(pooled, args.organisms_out)


def _ordering(pooled: dict[str, MetricValue], runs: Path) -> None:
    """Did the pre-RL metrics and verdict order the organisms as RL did?"""
    if "faithful" not in pooled or "post-hoc" not in pooled:
        return
    g, b = pooled["faithful"], pooled["post-hoc"]
    if g.value is None or b.value is None:
        return
    rl = "faithful" if g.value > b.value else "post-hoc" if b.value > g.value else "tie"
    separated = (g.ci_low or 0) > (b.ci_high or 0) or (b.ci_low or 0) > (g.ci_high or 0)
    print(
        f"\nRL outcome: larger held-out gain: {rl} (CIs {'separate' if separated else 'overlap'})"
    )
    reports = {}
    for kind in ("faithful", "post-hoc"):
        path = runs / kind / "report.json"
        if path.is_file():
            reports[kind] = json.loads(path.read_text())
    if len(reports) < 2:
        print(f"(no pre-RL reports under {runs}: run benchmarks/organisms.py first)")
        return
    if rl == "tie" or not separated:
        print(
            "RL did not order the organisms (equal gains, or CIs overlap): no prediction to check"
        )
    order = {"NO_GO": 0, "INCONCLUSIVE": 1, "GO": 2}
    decisions = {k: r["verdict"]["decision"] for k, r in reports.items()}
    pre = order[decisions["faithful"]] - order[decisions["post-hoc"]]
    if rl == "tie" or not separated:
        agree = "nothing to check"
    elif pre == 0:
        agree = "does not order them"
    else:
        agree = "agrees" if (pre > 0) == (rl == "faithful") else "disagrees"
    print(f"pre-RL verdict: faithful {decisions['faithful']}, post-hoc {decisions['post-hoc']}")
    print(f"  -> {agree}")
    for name, path, high in (
        ("truncation AOC", "probes.truncation.aoc", True),
        ("support.supported", "support.supported", True),
        ("derivation.answer_derived", "derivation.answer_derived", True),
    ):
        f, p = _read(reports["faithful"], path), _read(reports["post-hoc"], path)
        if f is None or p is None:
            continue
        says = "faithful" if (f[0] > p[0]) == high else "post-hoc"
        check = (
            "nothing to check"
            if rl == "tie" or not separated
            else ("agrees" if says == rl else "disagrees")
        )
        print(f"pre-RL {name}: {f[0]:.2f} vs {p[0]:.2f} -> predicts {says}: {check}")


if __name__ == "__main__":
    main()
