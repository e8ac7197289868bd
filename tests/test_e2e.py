"""`faithcheck score` end to end on the real default model, through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    assert_valid_report,
    completions_by_key,
    greedy_fp32_cmd,
    skip_if_no_vllm,
)

pytestmark = pytest.mark.slow


def _score(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "faithcheck",
        "score",
        "--limit",
        "2",
        "--samples",
        "2",
        "--max-tokens",
        "48",
        "--out",
        str(out),
        "--json",
        *(("--no-judge", "--no-diversity") if "--judge" not in extra else ()),
        *extra,
    ]
    return _run(cmd)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"VLLM_LOGGING_LEVEL": "INFO"}  # noisy engines must not reach stdout
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    if proc.returncode in (0, 1, 4):  # a verdict: the report is on stdout and on disk
        report = json.loads(proc.stdout)
        assert_valid_report(report)
        out = Path(cmd[cmd.index("--out") + 1])
        assert report == json.loads((out / "report.json").read_text())
    return proc


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("backend", ["hf", pytest.param("vllm", marks=skip_if_no_vllm)])
def test_score_writes_run_directory_and_report(
    greedy_fp32_run: Callable[[str], Path], backend: str
) -> None:
    out = greedy_fp32_run(backend)
    # Two problems are too few to decide on: inconclusive, exit 4 (the fixture checks it, and
    # that stdout is the report and nothing else), and the report says why.
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"]["decision"] == "INCONCLUSIVE"
    assert any("problems" in r for r in report["verdict"]["reasons"])
    assert report["schema_version"] and report["backend"] == backend
    s = report["sampling"]
    assert (s["problems"], s["k"], s["samples"]) == (2, 2, 4)
    assert 0.0 <= s["accuracy"]["value"] <= 1.0
    assert s["accuracy"]["ci_low"] <= s["accuracy"]["value"] <= s["accuracy"]["ci_high"]
    assert s["pass_at_k"]["value"] >= s["accuracy"]["value"]
    assert sum(s["answer_rules"].values()) == 4
    assert report["throughput"]["completion_tokens"] > 0

    samples = _lines(out / "samples.jsonl")
    assert sorted((r["problem_id"], r["sample_index"]) for r in samples) == [
        ("math-001", 0),
        ("math-001", 1),
        ("math-002", 0),
        ("math-002", 1),
    ]
    for rec in samples:
        assert 0 < len(rec["completion_token_ids"]) <= 48
        assert rec["answer_rule"] in {"boxed", "answer_is", "last_number", "none"}
        for step in rec["steps"]:
            assert rec["completion"][step["start"] : step["end"]] == step["text"]

    # --probe-samples 1: the first sample of each problem is probed, when it is scorable.
    scorable = [r for r in samples if r["answer"] is not None and r["steps"]]
    probed = [r for r in scorable if r["sample_index"] == 0]
    assert report["probes"]["chains"] == len(probed)
    if probed:
        probes = _lines(out / "probes.jsonl")
        assert {p["sample_index"] for p in probes} == {0}
        kinds = {p["probe"] for p in probes}
        assert {"truncation", "controls"} <= kinds
        assert report["probes"]["truncation"] and report["probes"]["controls"]

    run = json.loads((out / "run.json").read_text())
    assert run["config_hash"] == report["config_hash"]
    assert run["model"]["sha256"] == report["model_sha256"]
    assert run["dataset"]["problems"] == 2 and run["dataset"]["sha256"]
    assert run["versions"]["torch"] and run["versions"]["transformers"]
    assert run["config"]["sampling"]["samples"] == 2


def test_rerun_resumes_without_duplicates(
    greedy_fp32_run: Callable[[str], Path], model_path: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    shutil.copytree(greedy_fp32_run("hf"), out)  # the shared run stays as it was
    before = (out / "samples.jsonl").read_text()
    first = json.loads((out / "report.json").read_text())
    again = _run(greedy_fp32_cmd(model_path, "hf", out))
    assert again.returncode == 4, again.stderr[-2000:]
    assert "resuming" in again.stderr
    assert (out / "samples.jsonl").read_text() == before  # nothing redone
    assert json.loads(again.stdout)["sampling"] == first["sampling"]
    changed = _run([*greedy_fp32_cmd(model_path, "hf", out), "--seed", "1"])
    assert changed.returncode == 2
    assert "different configuration" in changed.stderr


@skip_if_no_vllm
def test_greedy_fp32_runs_agree_across_backends(greedy_fp32_run: Callable[[str], Path]) -> None:
    hf = completions_by_key(greedy_fp32_run("hf"))
    assert len(hf) == 4 and completions_by_key(greedy_fp32_run("vllm")) == hf


def test_base_prompt_format_uses_plain_prompt_and_stop(tmp_path: Path) -> None:
    out = tmp_path / "base"
    proc = _score(out, "--backend", "hf", "--prompt-format", "base", "--limit", "1")
    assert proc.returncode == 4, proc.stderr[-2000:]
    sampling = json.loads((out / "run.json").read_text())["config"]["sampling"]
    assert sampling["prompt_format"] == "base"
    assert sampling["stop"] == ["\nQuestion:"]
    for rec in _lines(out / "samples.jsonl"):
        assert "\nQuestion:" not in rec["completion"]


@skip_if_no_vllm
def test_judge_calibration_diversity_and_verdict_in_the_report(tmp_path: Path) -> None:
    """The whole battery on a small slice: structure only (a 135M judge is weak)."""
    out = tmp_path / "run"
    gate = tmp_path / "gate.toml"
    gate.write_text("[gate]\nmin_scorable = 1\nmin_problems = 1\n")
    proc = _score(
        out,
        "--backend",
        "vllm",
        "--judge",
        "--judge-samples",
        "1",
        "--calibration-size",
        "1",
        "--judge-max-tokens",
        "48",
        "--probe-samples",
        "1",
        "--gate",
        str(gate),
    )
    assert proc.returncode in (0, 1, 4), proc.stderr[-3000:]  # a verdict, not an error
    report = json.loads(proc.stdout)
    verdict = report["verdict"]
    codes = {"GO": 0, "NO_GO": 1, "INCONCLUSIVE": 4}
    assert proc.returncode == codes[verdict["decision"]], proc.stderr[-2000:]
    assert verdict["checks"] and all(c["reason"] for c in verdict["checks"])

    judged = _lines(out / "judge.jsonl")
    assert sorted((r["problem_id"], r["sample_index"]) for r in judged) == [
        ("math-001", 0),
        ("math-002", 0),
    ]
    for r in judged:  # a label or a recorded judge error, never both
        assert (r["label"] is None) == (r["error"] is not None)
        assert r["label"] in {None, 0.0, 0.5, 1.0}
    judge = report["judge"]
    assert judge["summary"]["responses"] == 2
    assert judge["summary"]["judged"] + judge["summary"]["errors"] == 2
    assert judge["warnings"]  # the small default judge is flagged
    rel = judge["reliability"]
    assert rel["n_items"] == 18 and len(_lines(out / "calibration.jsonl")) == 18
    assert set(rel["per_perturbation"]) == {
        "answer_swapped",
        "steps_shuffled",
        "step_irrelevant",
        "asserted_no_derivation",
        "derivation_mismatch",
    }
    if not rel["reliable"]:  # an unreliable judge cannot decide anything
        judge_checks = [c for c in verdict["checks"] if c["metric"].startswith("judge.")]
        assert all(c["passed"] is None for c in judge_checks)
    html = subprocess.run(
        [sys.executable, "-m", "faithcheck", "report", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert html.returncode == 0, html.stderr
    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 3 and verdict["decision"].replace("_", "-") in page
    assert verdict["decision"].replace("_", "-") in (out / "report.md").read_text()
    div = report["diversity"]
    assert div["n_problems"] == 2 and div["embedder"]
    assert 0.0 <= div["distinct_1"]["value"] <= 1.0
    assert 1.0 - 1e-6 <= div["vendi"]["value"] <= 2.0 + 1e-6
