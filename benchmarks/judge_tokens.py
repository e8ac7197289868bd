"""What a hosted judge will cost: prompt tokens per judged item, measured on real prompts.

Renders the exact rubric messages faithcheck sends (system + user, nonce-quoted problem
and response) for
  - the bundled calibration items (what `--calibration-size N` judges: 6 items per
    problem, N problems per domain), and
  - the responses of a finished run (`--run DIR`, its samples.jsonl; e.g. a `make demo`
    run: the embedded model's answers to the bundled problems),
and counts their tokens with a local tokenizer (default: the embedded model's; hosted
models' tokenizers are not available offline, so treat the counts as an estimate within
the usual spread between BPE vocabularies). Also prints the strategy judge's prompt size
(pairs of responses) and the call counts a run makes.

Completion tokens depend on the judge: the rubric asks for two to four sentences and a
verdict line (~60-120 visible tokens); reasoning models add hidden reasoning on top,
which only the provider's `usage` reports — `judge.usage` in report.json records it.

    python benchmarks/judge_tokens.py [--run runs/demo] [--tokenizer smollm2-135m]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from faithcheck.judge.prompt import item_nonce, judge_messages
from faithcheck.judge.stage import calibration_items
from faithcheck.judge.strategy import strategy_question
from faithcheck.models import resolve_model


def _stats(values: list[int]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    mean, median = statistics.fmean(values), statistics.median(values)
    return f"mean {mean:7.0f}   median {median:7.0f}   p90 {p90:7d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a finished run directory (samples.jsonl)")
    parser.add_argument("--tokenizer", default="smollm2-135m", help="alias or checkpoint folder")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(args.tokenizer).path)

    def count(question: str, response: str, item_id: str) -> int:
        nonce = item_nonce(0, item_id, (question, response))
        system, user = judge_messages(question, response, nonce)
        return len(tok(system).input_ids) + len(tok(user).input_ids)

    items = calibration_items(20, 0)
    cal = [count(i.question, i.response, i.item_id) for i in items]
    print(f"tokenizer: {args.tokenizer}")
    print(f"rubric prompt, calibration items ({len(cal)}):  {_stats(cal)}")
    system_only = len(tok(judge_messages("q", "r", "0" * 8)[0]).input_ids)
    print(f"  of which the fixed system message: {system_only} tokens")
    if args.run is not None:
        import orjson

        run = args.run
        info = orjson.loads((run / "run.json").read_bytes())
        samples = [orjson.loads(line) for line in (run / "samples.jsonl").read_bytes().splitlines()]
        questions = _questions(info, samples)
        rub = [
            count(
                questions[s["problem_id"]],
                s["completion"],
                f"{s['problem_id']}#{s['sample_index']}",
            )
            for s in samples
            if s["problem_id"] in questions
        ]
        print(f"rubric prompt, responses of {run} ({len(rub)}):  {_stats(rub)}")
        by_problem: dict[str, list[str]] = {}
        for s in samples:
            by_problem.setdefault(s["problem_id"], []).append(s["completion"])
        from faithcheck.judge import JudgeConfig

        cfg = JudgeConfig(seed=0)
        pairs = []
        for pid, texts in by_problem.items():
            if pid in questions and len(texts) >= 2:
                q = strategy_question(questions[pid], texts[0], texts[1], cfg)
                messages = q.prompt.messages  # type: ignore[union-attr]
                pairs.append(sum(len(tok(m["content"]).input_ids) for m in messages))
        if pairs:
            print(f"strategy prompt (one pair per problem, {len(pairs)}):  {_stats(pairs)}")
    print(
        "calls per run: rubric = judged responses (+ retries); calibration = 18 x "
        "--calibration-size; strategy = up to k(k-1)/2 pairs per problem of k responses "
        "(--no-strategy skips them)"
    )


def _questions(info: dict, samples: list[dict]) -> dict[str, str]:
    """Problem id -> question text, from the run's dataset."""
    from faithcheck.problems.load import FieldMap, load_problems

    opts = info["config"]["options"]
    problems = load_problems(
        opts["dataset"],
        fields=FieldMap(**opts["fields"]) if opts.get("fields") else None,
        default_domain=opts.get("domain") or "math",
    )
    return {p.id: p.question for p in problems}


if __name__ == "__main__":
    main()
