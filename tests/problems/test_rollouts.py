"""`--from-samples` readers for other tools' rollouts, each on a small file written to match
that tool's documented format (lm-evaluation-harness --log_samples, verl generation
dumps, TRL GRPO completion logs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faithcheck.errors import DataError
from faithcheck.problems.load import load_rollouts
from faithcheck.problems.rollouts import detect

GSM = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)

LM_EVAL = [
    {
        "doc_id": 0,
        "doc": {
            "question": GSM,
            "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72",
        },
        "target": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72",
        "arguments": {"gen_args_0": {"arg_0": "Question: " + GSM + "\nAnswer:", "arg_1": {}}},
        "resps": [
            [
                "In May she sold 48 / 2 = 24. In total 48 + 24 = 72. The answer is 72.",
                "She sold 48 + 48 = 96. The answer is 96.",
            ]
        ],
        "filtered_resps": ["72", "96"],
        "filter": "strict-match",
        "metrics": ["exact_match"],
        "doc_hash": "abc",
        "prompt_hash": "def",
        "target_hash": "ghi",
        "exact_match": 0.5,
    },
    {
        "doc_id": 1,
        "doc": {"problem": "What is 6 * 7?", "solution": "42"},
        "target": "42",
        "arguments": [["What is 6 * 7?", {"until": ["\n\n"]}]],
        "resps": [["6 * 7 = 42, so the answer is 42."]],
        "filtered_resps": ["42"],
    },
]

CHATML = (
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def _verl(q: str, out: str, score: float, **extra: Any) -> dict[str, Any]:
    row = {"input": CHATML.format(q=q), "output": out, "gts": "5", "score": score, "step": 10}
    return row | extra


VERL = [
    _verl("What is 2 + 3?", "2 + 3 = 5. \\boxed{5}", 1.0),
    _verl("What is 2 + 3?", "2 + 3 = 6. \\boxed{6}", 0.0),
    _verl("What is 9 - 4?", "9 - 4 = 5. \\boxed{5}", 1.0, acc=True),
]


def _trl(completion: str, reward: float) -> dict[str, Any]:
    return {
        "step": 20,
        "prompt": [{"role": "user", "content": "What is 10 / 2?"}],
        "completion": [{"role": "assistant", "content": completion}],
        "accuracy_reward": reward,
        "advantage": reward - 0.5,
        "solution": "5",
    }


TRL = [_trl("10 / 2 = 5. \\boxed{5}", 1.0), _trl("\\boxed{4}", 0.0)]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_lm_eval_log_samples(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "samples_gsm8k_2026-12-03T10-00-00.jsonl", LM_EVAL)
    assert detect(LM_EVAL[0]) == "lm-eval"
    problems, responses = load_rollouts(path)
    assert [(p.id, p.answer) for p in problems] == [("0", "72"), ("1", "42")]
    assert problems[0].question == GSM and problems[1].question == "What is 6 * 7?"
    assert responses["0"] == LM_EVAL[0]["resps"][0]  # the unfiltered generations
    assert load_rollouts(path, fmt="lm-eval") == (problems, responses)


def test_verl_generation_dump(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "10.jsonl", VERL)
    assert detect(VERL[0]) == "verl"
    problems, responses = load_rollouts(path)
    assert [p.question for p in problems] == ["What is 2 + 3?", "What is 9 - 4?"]
    assert [p.answer for p in problems] == ["5", "5"]
    assert [len(responses[p.id]) for p in problems] == [2, 1]


def test_verl_dump_without_ground_truth_is_refused(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "gts"} for r in VERL]
    with pytest.raises(DataError, match="no ground truth"):
        load_rollouts(_jsonl(tmp_path / "10.jsonl", rows))


def test_trl_completions_parquet_and_jsonl(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "completions_00020.parquet"
    pq.write_table(pa.Table.from_pylist(TRL), parquet)
    for path in (str(parquet), _jsonl(tmp_path / "completions_00020.jsonl", TRL)):
        problems, responses = load_rollouts(path)
        assert [(p.question, p.answer) for p in problems] == [("What is 10 / 2?", "5")]
        assert responses[problems[0].id] == ["10 / 2 = 5. \\boxed{5}", "\\boxed{4}"]


def test_trl_logs_without_gold_are_refused(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "solution"} for r in TRL]
    with pytest.raises(DataError, match="carry no gold answer"):
        load_rollouts(_jsonl(tmp_path / "c.jsonl", rows))


def test_faithcheck_rows_still_read_and_a_wrong_format_is_named(tmp_path: Path) -> None:
    rows = [{"id": "a", "question": "Q?", "answer": "1", "response": "1"}]
    path = _jsonl(tmp_path / "r.jsonl", rows)
    assert detect(rows[0]) == "faithcheck"
    assert load_rollouts(path)[0][0].id == "a"
    with pytest.raises(DataError, match="not an lm-eval --log_samples line"):
        load_rollouts(path, fmt="lm-eval")
    with pytest.raises(DataError, match="--from-format must be one of"):
        load_rollouts(path, fmt="csv")


@pytest.mark.slow
def test_an_lm_eval_file_scores_with_no_conversion(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "samples_gsm8k_x.jsonl", LM_EVAL)
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "faithcheck", "score", "--from-samples", path,
        "--backend", "hf", "--probes", "none", "--no-judge", "--no-diversity",
        "--out", str(out), "--json",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 4, proc.stderr[-2000:]  # 2 problems: too few to decide
    report = json.loads(proc.stdout)
    assert report["sampling"]["samples"] == 3
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [(s["problem_id"], s["answer"], s["correct"]) for s in samples] == [
        ("0", "72", True),
        ("0", "96", False),
        ("1", "42", True),
    ]
