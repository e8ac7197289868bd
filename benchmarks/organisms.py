"""Does the verdict track faithfulness? Score model organisms whose faithfulness is known.

Organisms (all from the embedded default model, SmolLM2-135M-Instruct):

- trained (LoRA fine-tunes on `faithcheck.sets.organisms`, the `dev` phrasing):
  `faithful` (steps compute the answer), `post-hoc` (answer first, steps that do not
  produce it), `filler` (answer first, lines that compute nothing);
- prompted (the untrained model): `base` (the normal prompt), `prompt-post-hoc` (the gold
  answer in the prompt), `prompt-answer-first`, `prompt-wrong-hint` (a wrong suggested
  answer, Turpin et al. 2023).

Every organism is scored with `faithcheck score` (default gates, probes, derivation and
support checks, diversity for contrast; no judge unless --judge-model is given) on the
`heldout` phrasing, which no organism was trained on. The table gives each headline metric
with its 95% CI and the verdict; then, per metric, the ordering accuracy over (faithful,
unfaithful) pairs — the trained `faithful` organism against each trained unfaithful one,
and the `base` prompt against each prompted unfaithful one — with how many of those pairs
have CIs that do not overlap.

The adapters are trained on demand, merged into the base weights and cached under
~/.cache/faithcheck/organisms/<kind>-<hash> (hash of the data generator, this script's
training settings and the base model); nothing binary is committed. Training runs in fp32
on the CPU; the budget is ~15 minutes per organism on 2 cores.

    python benchmarks/organisms.py [--problems 24] [--samples 4] [--only faithful,post-hoc]
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from faithcheck.backends.precision import probe_device
from faithcheck.models import DEFAULT_MODEL, EMBEDDED, cache_root, embedded_checkpoint
from faithcheck.problems.prompts import ChatPrompt, build_prompt
from faithcheck.sets import organisms as organism_sets
from faithcheck.store.jsonio import atomic_write_bytes, dumps
from faithcheck.verdict.catalog import BY_NAME

TRAINED = ("faithful", "post-hoc", "filler")
PROMPTED = {
    "base": None,
    "prompt-post-hoc": "post-hoc",
    "prompt-answer-first": "answer-first",
    "prompt-wrong-hint": "wrong-hint",
}
PAIRS = [
    ("faithful", "post-hoc"),
    ("faithful", "filler"),
    ("base", "prompt-post-hoc"),
    ("base", "prompt-answer-first"),
    ("base", "prompt-wrong-hint"),
]
"""(faithful, unfaithful) organism pairs the ordering accuracy counts."""
METRICS = (
    ("accuracy", "sampling.accuracy"),
    ("supported", "support.supported"),
    ("correct_but_unsupported", "support.correct_but_unsupported"),
    ("answer_derived", "derivation.answer_derived"),
    ("correct_but_underived", "derivation.correct_but_underived"),
    ("truncation_aoc", "probes.truncation.aoc"),
    ("early_answer_rate", "probes.truncation.early_answer_rate"),
    ("flip_rate", "probes.mistakes.flip_rate"),
    ("flip_gain", "probes.mistakes.flip_gain"),
    ("aligned_share_of_correct", "judge.summary.aligned_share_of_correct"),
)
CONTRAST = ("distinct_1", "self_bleu")
"""Diversity metrics shown for contrast (no direction: not in the ordering accuracy)."""
TRAINING = {
    "examples": 480,
    "batch": 8,
    "lr": 1e-3,
    "rank": 16,
    "alpha": 32,
    "top_layers": 15,
    "seed": 0,
}
"""LoRA settings (part of the cache key)."""
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Every projection of the Llama block. `train` spells the list out: its source is part of
the cache key, so the cached organisms stay valid; other scripts use this constant."""
VERDICT_ORDER = {"NO_GO": 0, "INCONCLUSIVE": 1, "GO": 2}


def _cpu() -> str:
    return str(probe_device(cpu=True).cpu_capability)


def _cache_dir(kind: organism_sets.Kind, base: Path) -> Path:
    """Keyed by the training data itself, the settings, the training code and the base."""
    key = hashlib.sha256()
    for problem, text in organism_sets.training_pairs(kind, TRAINING["examples"], seed=0):
        key.update(f"{problem.question}\x00{text}\x00".encode())
    key.update(json.dumps(TRAINING, sort_keys=True).encode())
    key.update(inspect.getsource(train).encode())
    key.update(inspect.getsource(_examples).encode())
    key.update((base / "model.safetensors").read_bytes()[: 1 << 20])
    return cache_root() / "organisms" / f"{kind}-{key.hexdigest()[:12]}"


def _examples(kind: organism_sets.Kind, tokenizer: Any) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per training example: faithcheck's own chat prompt, the
    chain as the assistant's reply, then end of sequence."""
    out = []
    for problem, text in organism_sets.training_pairs(kind, TRAINING["examples"], seed=0):
        prompt = build_prompt(problem.question, "chat", None)
        assert isinstance(prompt, ChatPrompt)
        head = tokenizer.apply_chat_template(
            prompt.messages, add_generation_prompt=True, tokenize=False
        )
        ids_head = tokenizer(head, add_special_tokens=False)["input_ids"]
        ids_tail = tokenizer(text, add_special_tokens=False)["input_ids"]
        out.append((ids_head + ids_tail + [tokenizer.eos_token_id], len(ids_head)))
    return out


def train(kind: organism_sets.Kind, base: Path, dest: Path) -> dict[str, Any]:
    """LoRA-fine-tune the base model on one kind of chain, merge, save to `dest`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(TRAINING["seed"])
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    layers = model.config.num_hidden_layers
    config = LoraConfig(
        r=TRAINING["rank"],
        lora_alpha=TRAINING["alpha"],
        lora_dropout=0.0,
        target_modules=[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        layers_to_transform=list(range(layers - TRAINING["top_layers"], layers)),
    )
    model = get_peft_model(model, config)
    model.train()
    examples = _examples(kind, tokenizer)
    random.Random(TRAINING["seed"]).shuffle(examples)
    batch = TRAINING["batch"]
    steps = len(examples) // batch
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=TRAINING["lr"], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(steps):
        chunk = examples[step * batch : (step + 1) * batch]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad)
        labels = torch.full((len(chunk), width), -100)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (seq, head) in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
            labels[row, head : len(seq)] = torch.tensor(seq[head:])
            mask[row, : len(seq)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        if step % 10 == 0 or step == steps - 1:
            print(f"  {kind} step {step + 1}/{steps} loss {loss.item():.3f}", flush=True)
    seconds = time.perf_counter() - t0
    merged = model.merge_and_unload()
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for extra in ("chat_template.jinja", "generation_config.json"):
        if (base / extra).is_file() and not (tmp / extra).is_file():
            shutil.copy(base / extra, tmp / extra)
    meta = {
        "kind": kind,
        "training": TRAINING,
        "steps": steps,
        "first_loss": losses[0],
        "last_loss": sum(losses[-5:]) / len(losses[-5:]),
        "train_s": round(seconds, 1),
        "cpu_capability": _cpu(),
        "threads": torch.get_num_threads(),
    }
    atomic_write_bytes(tmp / "faithcheck-organism.json", dumps(meta, indent=True))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return meta


def build(kind: organism_sets.Kind, base: Path) -> tuple[Path, dict[str, Any]]:
    """The cached organism's folder (trained now when missing) and its training record."""
    dest = _cache_dir(kind, base)
    meta_file = dest / "faithcheck-organism.json"
    if meta_file.is_file():
        return dest, json.loads(meta_file.read_text())
    print(f"training organism {kind} -> {dest}", flush=True)
    return dest, train(kind, base, dest)


def score(
    model: Path | str,
    name: str,
    dataset: Path,
    out: Path,
    args: argparse.Namespace,
    template: str | None = None,
) -> dict[str, Any]:
    """`faithcheck score` on one organism; its report (kept on disk: reruns resume)."""
    cmd = [sys.executable, "-m", "faithcheck", "score", "--model", str(model)]
    cmd += ["--dataset", str(dataset), "--out", str(out / name), "--json"]
    cmd += ["--samples", str(args.samples), "--max-tokens", str(args.max_tokens)]
    cmd += ["--backend", args.backend, "--seed", "0"]
    if args.probe_samples:
        cmd += ["--probe-samples", str(args.probe_samples)]
    if template:
        cmd += ["--prompt-template", template]
    if args.judge_model:
        cmd += ["--judge-model", args.judge_model]
    else:
        cmd += ["--no-judge"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1, 4):
        sys.exit(f"{name}: faithcheck score failed ({proc.returncode}): {proc.stderr[-1500:]}")
    report = json.loads(proc.stdout)
    print(f"  scored {name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return report


def _read(report: dict[str, Any], path: str) -> tuple[float, float, float] | None:
    from faithcheck.verdict.paths import read_metric

    try:
        r = read_metric(report, path)
    except Exception:
        return None
    if r.value is None:
        return None
    lo = r.ci_low if r.ci_low is not None else r.value
    hi = r.ci_high if r.ci_high is not None else r.value
    return r.value, lo, hi


def _cell(v: tuple[float, float, float] | None) -> str:
    return "–" if v is None else f"{v[0]:.2f} [{v[1]:.2f},{v[2]:.2f}]"


def ordering(reports: dict[str, dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    """Per metric (and the verdict): (name, pairs ordered right, pairs with both values,
    pairs ordered right with non-overlapping CIs)."""
    rows = []
    for name, path in METRICS:
        better_high = BY_NAME[name].higher_is_better
        right = both = separated = 0
        for good, bad in PAIRS:
            if good not in reports or bad not in reports:
                continue
            g, b = _read(reports[good], path), _read(reports[bad], path)
            if g is None or b is None:
                continue
            both += 1
            ok = g[0] > b[0] if better_high else g[0] < b[0]
            right += ok
            separated += ok and (g[1] > b[2] if better_high else g[2] < b[1])
        rows.append((name, right, both, separated))
    right = both = 0
    for good, bad in PAIRS:
        if good in reports and bad in reports:
            both += 1
            g = VERDICT_ORDER[reports[good]["verdict"]["decision"]]
            right += g > VERDICT_ORDER[reports[bad]["verdict"]["decision"]]
    rows.append(("verdict", right, both, right))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=24)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--backend", default="vllm")
    ap.add_argument("--probe-samples", type=int, default=None, help="probe N samples/problem")
    ap.add_argument("--judge-model", default=None)
    ap.add_argument(
        "--prompted-model",
        default=DEFAULT_MODEL,
        help="the model the prompted organisms run on (a name or checkpoint folder)",
    )
    ap.add_argument("--out", type=Path, default=Path("runs/organisms"))
    ap.add_argument("--only", default=",".join((*TRAINED, *PROMPTED)))
    ap.add_argument("--train-only", action="store_true")
    args = ap.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    unknown = set(wanted) - set(TRAINED) - set(PROMPTED)
    if unknown:
        sys.exit(f"unknown organisms: {', '.join(sorted(unknown))}")
    base = embedded_checkpoint(EMBEDDED[DEFAULT_MODEL])
    print(f"CPU capability: {_cpu()}; threads {os.cpu_count()}; base {base.name}")
    args.out.mkdir(parents=True, exist_ok=True)
    dataset = args.out / "heldout.jsonl"
    rows = organism_sets.dataset_rows(args.problems, seed=1, phrasing="heldout")
    atomic_write_bytes(dataset, b"".join(dumps(r) + b"\n" for r in rows))
    models: dict[str, tuple[Path | str, str | None]] = {}
    for kind in TRAINED:
        if kind in wanted:
            folder, meta = build(kind, base)
            print(
                f"  {kind}: loss {meta['first_loss']:.2f} -> {meta['last_loss']:.2f} "
                f"in {meta['train_s']:.0f} s ({meta['cpu_capability']}, "
                f"{meta['threads']} threads)"
            )
            models[kind] = (folder, None)
    if args.train_only:
        return
    for name, template in PROMPTED.items():
        if name in wanted:
            models[name] = (args.prompted_model, template)
    reports = {}
    for name, (model, template) in models.items():
        reports[name] = score(model, name, dataset, args.out, args, template)
    _print(reports, args)


def _print(reports: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    names = list(reports)
    print(
        f"\n{args.problems} held-out problems x {args.samples} samples, "
        f"max {args.max_tokens} tokens, backend {args.backend}\n"
    )
    width = 21
    print("metric".ljust(26) + "".join(n[:width].rjust(width + 1) for n in names))
    for name, path in (*METRICS, *((c, f"diversity.{c}") for c in CONTRAST)):
        cells = [_cell(_read(reports[n], path)).rjust(width + 1) for n in names]
        print(name.ljust(26) + "".join(cells))
    print(
        "verdict".ljust(26)
        + "".join(reports[n]["verdict"]["decision"].rjust(width + 1) for n in names)
    )
    # A chain cut at the token cap has no real final answer: every metric is then about
    # the cut, not about the organism.
    capped = {n: reports[n]["sampling"]["truncated_rate"] for n in names}
    print("hit max tokens".ljust(26) + "".join(f"{capped[n]:.2f}".rjust(width + 1) for n in names))
    over = [n for n in names if capped[n] > 0.25]
    if over:
        print(
            f"warning: more than a quarter of the chains of {', '.join(over)} hit the "
            f"{args.max_tokens}-token cap; raise --max-tokens before reading their rows"
        )
    print(
        "\nordering accuracy over (faithful, unfaithful) pairs: right / comparable (CI-separated)"
    )
    for name, right, both, separated in ordering(reports):
        share = f"{right / both:.2f}" if both else "–"
        print(f"  {name.ljust(26)} {right}/{both} = {share}  ({separated} separated)")


if __name__ == "__main__":
    main()
