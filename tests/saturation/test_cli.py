"""`faithcheck saturation` end to end: table, --json, --html / --out-json, --fail-on-rapid exit
codes (as real subprocesses), and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faithcheck.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "logs"
RAPID = str(SAMPLES / "trl_grpo_rapid.jsonl")
SLOW = str(SAMPLES / "verl_grpo_slow.jsonl")
TB = str(SAMPLES / "openrlhf_tb_rapid")
CSV = str(SAMPLES / "wandb_export_slow.csv")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FAITHCHECK_DEBUG"}
    env["COLUMNS"] = "250"
    return subprocess.run(
        [sys.executable, "-m", "faithcheck", "saturation", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_fail_on_rapid_exits_1_and_names_the_run(tmp_path: Path) -> None:
    result = _run([RAPID, SLOW, "--fail-on-rapid"], tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("faithcheck: rapid saturation") and "trl_grpo_rapid" in last
    assert "slow" not in last


def test_fail_on_rapid_passes_a_slow_run(tmp_path: Path) -> None:
    result = _run([SLOW, CSV, "--fail-on-rapid"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "331" in result.stderr and "329" in result.stderr  # t_sat of each (floor: start)


def test_without_the_flag_a_rapid_run_exits_0(tmp_path: Path) -> None:
    result = _run([RAPID], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "RAPID" in result.stderr and result.stdout == ""


def test_json_is_the_only_stdout(tmp_path: Path) -> None:
    result = _run([RAPID, TB, "--json", "--fail-on-rapid"], tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [r["t_sat"] for r in report["runs"]] == [36, 50]
    assert report["any_rapid"] is True and report["settings"]["epsilon"] == 0.99
    assert result.stderr.strip().splitlines() == [
        f"faithcheck: rapid saturation (t_sat < 100): {RAPID}, {TB}"
    ]


def test_error_is_one_line_exit_2(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "loss": 0.5, "kl": 0.1}\n')
    result = _run([str(log)], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("faithcheck: error:")
    assert "columns seen: step, loss, kl" in lines[0] and "--reward-col" in lines[0]
    assert result.stdout == ""


# In-process (faster): main() returns the exit code; rich writes to the captured stderr.

ERRORS = [
    pytest.param(["missing.jsonl"], "no such file", id="missing"),
    pytest.param([RAPID, "--epsilon", "0"], "--epsilon", id="epsilon-0"),
    pytest.param([RAPID, "--epsilon", "1.5"], "--epsilon", id="epsilon-big"),
    pytest.param([RAPID, "--ema", "1"], "--ema", id="ema-1"),
    pytest.param([RAPID, "--margin", "-1"], "--margin", id="margin-negative"),
    pytest.param([RAPID, "--floor", "median"], "--floor", id="bad-floor"),
    pytest.param([RAPID, "--floor", "auto"], "--floor", id="auto-floor-is-gone"),
    pytest.param([RAPID, "--min-rise", "-1"], "--min-rise", id="min-rise-negative"),
    pytest.param([RAPID, "--min-rise", "nan"], "--min-rise", id="min-rise-nan"),
    pytest.param([RAPID, "--no-eval", "--eval-col", "x"], "contradict", id="no-eval-and-col"),
    pytest.param([RAPID, "--reward-col", "score"], "no column 'score'", id="named-missing"),
    pytest.param([], "LOG", id="no-logs"),
]


@pytest.mark.parametrize(("args", "needle"), ERRORS)
def test_usage_and_data_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    needle: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["saturation", *args]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("faithcheck:")
    assert needle in lines[0]


def test_html_and_out_json_are_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html, out = tmp_path / "r" / "sat.html", tmp_path / "sat.json"
    args = ["saturation", RAPID, SLOW, TB, "--ema", "0.5", "--html", str(html)]
    assert main([*args, "--out-json", str(out)]) == 0
    _, err = capsys.readouterr()
    assert f"wrote HTML: {html}" in err
    report = json.loads(out.read_text())
    assert report["settings"]["ema"] == 0.5 and len(report["runs"]) == 3
    page = html.read_text()
    assert page.count("<svg") == 3 and "t_sat = " in page and "threshold" in page
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "EMA 0.5; grey: raw" in page


def test_edge_case_logs_report_clear_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps({"step": s, "reward": s / 40}) + "\n" for s in range(40)))
    flat = tmp_path / "flat.csv"
    flat.write_text("step,reward\n" + "".join(f"{s},0\n" for s in range(1, 301)))
    late = tmp_path / "late.jsonl"
    late.write_text(
        "".join(json.dumps({"step": s, "reward": min(1, s / 280)}) + "\n" for s in range(1, 301))
    )
    assert main(["saturation", str(short), str(flat), str(late), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    runs = {Path(r["name"]).name: r for r in json.loads(out)["runs"]}
    assert runs["short.jsonl"]["status"] == "too_short"
    assert "spanning more than 50 steps" in runs["short.jsonl"]["reason"]
    assert runs["flat.csv"]["status"] == "flat"
    assert runs["late.jsonl"]["reason"] == "not saturated within T-50 (step <= 250)"
    assert all(r["t_sat"] is None for r in runs.values())


def test_table_shows_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["saturation", RAPID]) == 0
    _, err = capsys.readouterr()
    assert "10 steps logged more than once; averaged" in err
    assert "eval column detected: eval_reward" in err


def test_min_rise_decides_a_tiny_rise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = tmp_path / "tiny.csv"
    tiny.write_text(
        "step,reward\n" + "".join(f"{s},{0 if s < 10 else 1e-9}\n" for s in range(1, 301))
    )
    assert main(["saturation", str(tiny), "--json", "--fail-on-rapid"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["min_rise"] == 0.001 and report["settings"]["floor"] == "start"
    assert (report["runs"][0]["status"], report["runs"][0]["rapid"]) == ("flat", False)
    assert main(["saturation", str(tiny), "--json", "--min-rise", "0", "--fail-on-rapid"]) == 1
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert (run["status"], run["t_sat"], run["rapid"]) == ("saturated", 10, True)
