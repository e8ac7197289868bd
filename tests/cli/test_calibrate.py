"""`faithcheck calibrate` on the real default model: structure, not the judge's quality."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faithcheck.judge.calibration import PERTURBATIONS
from tests.conftest import skip_if_no_vllm


def _calibrate(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "faithcheck", "calibrate", "--judge-backend", "vllm"]
    cmd += ["--per-domain", "1", "--judge-max-tokens", "24", *args]
    # vLLM logging at INFO (as a user's shell has it): its lines must not reach stdout.
    env = os.environ | {"VLLM_LOGGING_LEVEL": "INFO"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)


@pytest.mark.slow
@skip_if_no_vllm
def test_calibrate_prints_a_reliability_table_and_json(tmp_path: Path) -> None:
    """One real run (--json and --out); the table is rendered from the reliability it
    printed, by the command's own table code."""
    from rich.console import Console

    from faithcheck.cli.calibrate import _print
    from faithcheck.judge.reliability import JudgeReliability

    items = tmp_path / "items.jsonl"
    proc = _calibrate("--json", "--out", str(items))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(line.startswith("precision: ") for line in proc.stderr.splitlines())
    rows = [json.loads(line) for line in items.read_text().splitlines()]
    assert len(rows) == 18  # 3 problems x (1 faithful + 5 variants)
    assert all((r["label"] is None) == (r["error"] is not None) for r in rows)

    rel = json.loads(proc.stdout)  # stdout is the JSON and nothing else
    assert "judge usage:" in proc.stderr
    assert rel["n_items"] == 18 and rel["n_problems"] == 3
    assert set(rel["per_perturbation"]) == set(PERTURBATIONS)
    assert isinstance(rel["reliable"], bool)
    assert rel["reliable"] or rel["reasons"]  # an unreliable judge says why

    console = Console(record=True, width=200)
    _print(console, "smollm2-135m", JudgeReliability.model_validate(rel))
    table = console.export_text()
    for name in (*PERTURBATIONS, "AUROC", "kappa", "verdict:"):
        assert name in table, name


def test_calibrate_rejects_bad_options() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "faithcheck", "calibrate", "--per-domain", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "faithcheck: error: --per-domain must be at least 1"
    ]
