"""Write the sample RL training logs in this folder (deterministic; written for faithcheck).

    python data/samples/logs/make_logs.py            # rewrite the samples next to this file
    python data/samples/logs/make_logs.py OUT_DIR    # write them somewhere else

Two regimes, as in the study behind faithcheck: a run whose training reward saturates within
~50 steps while its eval barely moves (memorization), and a run with a long pre-saturation
phase in which reward and eval climb together (generalization). Batch-mean rewards are drawn
as binomial means over the batch's rollouts, so the noise shrinks as the reward nears 1, the way
real 0/1-reward curves behave.

Files (same curves shape in each format, different seeds):
- trl_grpo_rapid.jsonl, trl_grpo_slow.jsonl: TRL GRPOTrainer per-step log dicts (`reward`,
  `rewards/<func>/mean`, ...), eval dicts every 25 steps (`eval_reward`, eval_on_start); the
  rapid run was resumed from its step-140 checkpoint, so steps 131-140 appear twice.
- verl_grpo_rapid.jsonl, verl_grpo_slow.jsonl: verl's file logger (`{"step": N, "data": {...}}`
  with `critic/score/mean`, `training/global_step`, `val-core/openai/gsm8k/reward/mean@1` every
  10 steps and before training).
- wandb_export_slow.csv: a wandb chart export (`Step`, `<run> - train/reward`, `__MIN`/`__MAX`
  columns, `eval/accuracy` blank between evals).
- openrlhf_tb_rapid/: a TensorBoard event file with OpenRLHF-style tags (`train/reward`,
  `eval/gsm8k_pass1`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rapid_p(step: int) -> float:
    """Training accuracy of a memorizing run: ~1.0 within ~50 steps."""
    return 0.08 + 0.915 * (1 - math.exp(-step / 13))


def slow_p(step: int) -> float:
    """Training accuracy of a generalizing run: a long climb, plateau after ~300 steps."""
    return 0.12 + 0.875 / (1 + math.exp(-(step - 170) / 38))


def rapid_eval(step: int) -> float:
    return 0.31 + 0.04 * (1 - math.exp(-step / 15)) - 0.00008 * max(0, step - 60)


def slow_eval(step: int) -> float:
    return 0.33 + 0.27 / (1 + math.exp(-(step - 170) / 45))


def batch_mean(rng: random.Random, p: float, n: int, jitter: float = 0.02) -> float:
    """Mean of n Bernoulli(p) rollouts; training batches add prompt-difficulty jitter to p."""
    p = min(1.0, max(0.0, p + rng.gauss(0, jitter) * (1 - p)))
    return sum(rng.random() < p for _ in range(n)) / n


def eval_mean(rng: random.Random, p: float, n: int) -> float:
    """Accuracy on a fixed eval set of n problems: sampling noise only."""
    return batch_mean(rng, p, n, jitter=0.0)


def r6(x: float) -> float:
    return round(x, 4)


def trl_lines(seed: int, steps: int, p_fn, e_fn, resume_at: int | None) -> list[dict]:
    rng = random.Random(seed)
    rows: list[dict] = []

    def train_row(step: int) -> dict:
        acc = batch_mean(rng, p_fn(step), 128)
        fmt = batch_mean(rng, min(1.0, 0.6 + step / 40), 128)
        length = 180 + 220 * (1 - p_fn(step)) + rng.gauss(0, 8)
        return {
            "loss": r6(rng.gauss(0.0, 0.01)),
            "grad_norm": r6(abs(rng.gauss(0.25, 0.05))),
            "learning_rate": 1e-6,
            "completions/mean_length": r6(length),
            "rewards/accuracy_reward/mean": r6(acc),
            "rewards/accuracy_reward/std": r6(math.sqrt(acc * (1 - acc))),
            "rewards/format_reward/mean": r6(fmt),
            "rewards/format_reward/std": r6(math.sqrt(fmt * (1 - fmt))),
            "reward": r6(acc + fmt),
            "reward_std": r6(math.sqrt(acc * (1 - acc) + fmt * (1 - fmt))),
            "frac_reward_zero_std": r6(min(1.0, acc**8)),
            "kl": r6(0.0005 * step**0.5),
            "entropy": r6(0.6 - 0.3 * p_fn(step)),
            "epoch": r6(step / steps),
            "step": step,
        }

    def eval_row(step: int) -> dict:
        acc = eval_mean(rng, e_fn(step), 500)
        return {
            "eval_loss": r6(rng.gauss(0.0, 0.01)),
            "eval_reward": r6(acc + 1.0),
            "eval_reward_std": r6(math.sqrt(acc * (1 - acc))),
            "eval_rewards/accuracy_reward/mean": r6(acc),
            "epoch": r6(step / steps),
            "step": step,
        }

    rows.append(eval_row(0))
    for step in range(1, steps + 1):
        rows.append(train_row(step))
        if step % 25 == 0:
            rows.append(eval_row(step))
        if step == resume_at:  # the job died after step 140; resumed from checkpoint-130
            for again in range(131, resume_at + 1):
                rows.append(train_row(again))
    rows.append({"train_runtime": 9123.4, "train_loss": 0.0012, "epoch": 1.0, "step": steps})
    return rows


def verl_lines(seed: int, steps: int, p_fn, e_fn) -> list[dict]:
    rng = random.Random(seed)
    val_key = "val-core/openai/gsm8k/reward/mean@1"
    rows = [{"step": 0, "data": {val_key: r6(eval_mean(rng, e_fn(0), 1319))}}]
    for step in range(1, steps + 1):
        score = batch_mean(rng, p_fn(step), 512)
        kl = 0.001 * step**0.5
        data = {
            "actor/entropy": r6(0.55 - 0.25 * p_fn(step)),
            "actor/kl_loss": r6(kl),
            "actor/pg_loss": r6(rng.gauss(0, 0.02)),
            "actor/grad_norm": r6(abs(rng.gauss(0.3, 0.06))),
            "actor/lr": 1e-6,
            "critic/score/mean": r6(score),
            "critic/rewards/mean": r6(score),
            "response_length/mean": r6(200 + 150 * (1 - p_fn(step)) + rng.gauss(0, 5)),
            "response_length/clip_ratio": r6(max(0.0, 0.03 - step * 5e-5)),
            "timing_s/step": r6(58.0 + rng.random() * 4),
            "training/global_step": step,
            "training/epoch": step // 117,
        }
        if step % 10 == 0:
            data[val_key] = r6(eval_mean(rng, e_fn(step), 1319))
        rows.append({"step": step, "data": data})
    return rows


def wandb_csv(seed: int, steps: int, p_fn, e_fn) -> str:
    rng = random.Random(seed)
    run = "qwen2.5-math-1.5b-grpo"
    cols = ["train/reward", "train/reward__MIN", "train/reward__MAX", "eval/accuracy"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Step", *(f"{run} - {c}" for c in cols)])
    for step in range(0, steps + 1):
        reward = batch_mean(rng, p_fn(step), 256) if step else ""
        ev = f"{eval_mean(rng, e_fn(step), 500):.4f}" if step % 20 == 0 else ""
        if reward == "":
            writer.writerow([step, "", "", "", ev])
            continue
        writer.writerow([step, f"{reward:.4f}", f"{reward:.4f}", f"{reward:.4f}", ev])
    return buf.getvalue()


def tb_scalars(seed: int, steps: int, p_fn, e_fn) -> list[tuple[int, str, float]]:
    rng = random.Random(seed)
    out = [(0, "eval/gsm8k_pass1", eval_mean(rng, e_fn(0), 500))]
    for step in range(1, steps + 1):
        out.append((step, "train/reward", batch_mean(rng, p_fn(step), 256)))
        out.append((step, "train/kl", 0.001 * step**0.5))
        out.append((step, "train/response_length", 180 + 200 * (1 - p_fn(step))))
        if step % 20 == 0:
            out.append((step, "eval/gsm8k_pass1", eval_mean(rng, e_fn(step), 500)))
    return out


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def write_all(out: Path) -> list[Path]:
    """Write every sample log under out; returns the paths written."""
    from faithcheck.saturation.tfevents import write_scalars

    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "trl_grpo_rapid.jsonl": _jsonl(trl_lines(11, 300, rapid_p, rapid_eval, resume_at=140)),
        "trl_grpo_slow.jsonl": _jsonl(trl_lines(12, 400, slow_p, slow_eval, resume_at=None)),
        "verl_grpo_rapid.jsonl": _jsonl(verl_lines(21, 300, rapid_p, rapid_eval)),
        "verl_grpo_slow.jsonl": _jsonl(verl_lines(22, 400, slow_p, slow_eval)),
        "wandb_export_slow.csv": wandb_csv(31, 400, slow_p, slow_eval),
    }
    written = []
    for name, text in texts.items():
        (out / name).write_text(text)
        written.append(out / name)
    tb = out / "openrlhf_tb_rapid" / "events.out.tfevents.1700000000.node0.4242.0"
    write_scalars(tb, tb_scalars(41, 300, rapid_p, rapid_eval))
    written.append(tb)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
