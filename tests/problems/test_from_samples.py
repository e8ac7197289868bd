"""`--from-samples`: rollouts produced elsewhere, re-scored and probed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from faithcheck.errors import DataError
from faithcheck.problems.load import load_rollouts
from tests.conftest import assert_valid_report

QUESTION = "Tom has 3 apples and buys 4 more. How many?"
ROWS = [
    {
        "id": "a",
        "question": QUESTION,
        "answer": "7",
        "response": "Tom has 3 apples.\n3 + 4 = 7.\nThe answer is \\boxed{7}.",
    },
    {"id": "a", "question": QUESTION, "answer": "7", "response": "3 + 4 = 8.\nSo \\boxed{8}."},
    {
        "id": "b",
        "question": "What is 10 / 2?",
        "answer": "5",
        "completion": "10 / 2 = 5\nAnswer: 5",
    },
]


def _write(tmp_path: Path, rows: list[dict[str, str]]) -> str:
    path = tmp_path / "rollouts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_rollouts_group_by_problem_in_file_order(tmp_path: Path) -> None:
    problems, responses = load_rollouts(_write(tmp_path, ROWS))
    assert [p.id for p in problems] == ["a", "b"]
    assert responses["a"] == [ROWS[0]["response"], ROWS[1]["response"]]
    assert responses["b"] == [ROWS[2]["completion"]]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "a", "question": QUESTION, "answer": "7"}], "missing response text"),
        ([ROWS[0], {**ROWS[1], "answer": "8"}], "differs from its first line"),
        ([{"id": "a", "answer": "7", "response": "x"}], "missing field 'question'"),
    ],
)
def test_bad_rollouts_are_refused(tmp_path: Path, rows: list[dict[str, str]], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_rollouts(_write(tmp_path, rows))


@pytest.mark.slow
def test_score_from_samples_parses_verifies_and_probes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "faithcheck",
        "score",
        "--from-samples",
        _write(tmp_path, ROWS),
        "--backend",
        "hf",
        # fp32 on every CPU; read-outs of at most 64 tokens (512 by default) are enough to
        # run every probe on these three short chains
        "--dtype",
        "float32",
        "--max-tokens",
        "64",
        "--out",
        str(out),
        "--no-judge",
        "--no-diversity",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    # Two problems are too few to decide on: the verdict is inconclusive (exit 4).
    assert proc.returncode == 4, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert_valid_report(report)
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [(s["problem_id"], s["correct"]) for s in samples] == [
        ("a", True),
        ("a", False),
        ("b", True),
    ]
    assert [s["answer_rule"] for s in samples] == ["boxed", "boxed", "answer_is"]
    assert report["sampling"]["samples"] == 3
    assert report["sampling"]["accuracy"]["value"] == pytest.approx((0.5 + 1.0) / 2)
    probes = report["probes"]
    assert probes["chains"] == 3
    for section in ("truncation", "mistakes", "necessity", "controls"):
        assert probes[section] is not None, section
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["from_samples"]  # the rollouts' hash is part of the config
    assert report["verdict"]["decision"] == "INCONCLUSIVE" and report["judge"] is None
