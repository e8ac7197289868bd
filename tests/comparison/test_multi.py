"""`faithcheck score --model A --model B`: several checkpoints, one comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faithcheck.comparison.multi import combined_decision, run_names
from faithcheck.verdict.records import Verdict


def test_run_names_are_safe_and_unique() -> None:
    assert run_names(["./ckpt/a", "/x/ckpt/a", "org/model b"]) == ["a", "a-2", "model-b"]


class _R:
    def __init__(self, decision: str | None) -> None:
        self.verdict = (
            None
            if decision is None
            else Verdict.model_validate({"decision": decision, "exit_code": 0})
        )


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        (["GO", "GO"], "GO"),
        (["GO", "INCONCLUSIVE"], "INCONCLUSIVE"),
        (["INCONCLUSIVE", "NO_GO", "GO"], "NO_GO"),
        ([None, None], None),
    ],
)
def test_combined_decision_is_the_worst(decisions: list[str | None], expected: str | None) -> None:
    assert combined_decision([_R(d) for d in decisions]) == expected  # type: ignore[misc]


@pytest.mark.slow
def test_same_weights_under_two_specs_compare_with_zero_deltas(
    tmp_path: Path, model_path: str
) -> None:
    """The alias and its converted folder are the same weights: paired deltas are exactly 0."""
    out = tmp_path / "cmp"
    cmd = [
        sys.executable, "-m", "faithcheck", "score",
        "--model", "smollm2-135m", "--model", model_path,
        "--backend", "hf", "--limit", "2", "--samples", "2", "--max-tokens", "48",
        "--temperature", "0", "--dtype", "float32", "--probes", "truncation",
        "--no-judge", "--no-diversity", "--out", str(out), "--json",
    ]  # fmt: skip
    # Chatty libraries (their logs on) must still leave stdout to the JSON alone.
    env = os.environ | {"TRANSFORMERS_VERBOSITY": "info", "VLLM_LOGGING_LEVEL": "INFO"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 4, proc.stderr[-2000:]  # 2 problems: inconclusive
    comparison = json.loads(proc.stdout)
    assert comparison == json.loads((out / "comparison.json").read_text())
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(names) == 2
    for name in names:
        assert (out / name / "report.json").is_file()
    deltas = comparison["deltas"]
    assert deltas
    values = [d["value"] for per_metric in deltas.values() for d in per_metric.values()]
    assert any(v is not None for v in values)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in values if v is not None)
