"""Experiment-tracker export: the report's numbers as TensorBoard scalars (read back with
faithcheck's own event-file reader, no TensorFlow), as a wandb offline run (read back from
its `.wandb` log with the reader `saturation` uses, no wandb API) and as trackio rows (read
back from its SQLite database)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faithcheck.saturation.tfevents import read_scalar_rows
from faithcheck.saturation.wandb_runs import read_run
from faithcheck.trackers import log_tensorboard, tracker_values, wandb_mode
from tests.conftest import await_wandb_flush
from tests.render.test_page import make_report

ROOT = Path(__file__).resolve().parent.parent


def test_values_carry_cis_verdict_and_the_truncation_curve() -> None:
    report = make_report("ckpt", 0.6)
    values = tracker_values(report)
    acc = report.sampling.accuracy
    assert values["faithcheck/accuracy"] == pytest.approx(acc.value)
    assert values["faithcheck/accuracy_ci_low"] == pytest.approx(acc.ci_low)
    assert values["faithcheck/accuracy_ci_high"] == pytest.approx(acc.ci_high)
    assert values["faithcheck/verdict"] in (0.0, 0.5, 1.0)
    curve = sorted(
        (float(k.rsplit("_", 1)[1]), v) for k, v in values.items() if "/truncation/" in k
    )
    assert curve and all(0.0 <= y <= 1.0 for _, y in curve)
    bare = tracker_values(report, cis=False, curve=False)
    assert set(bare) < set(values)
    assert not any(k.endswith(("_ci_low", "_ci_high")) or "/truncation/" in k for k in bare)


def test_tensorboard_file_reads_back(tmp_path: Path) -> None:
    report = make_report("ckpt", 0.6)
    path = log_tensorboard(report, tmp_path / "tb", step=1200)
    rows, notes = read_scalar_rows([path])
    assert notes == []
    logged = {tag: v for row in rows for tag, v in row.items() if tag != "step"}
    assert {row["step"] for row in rows} == {1200}
    expected = tracker_values(report)
    assert logged.keys() == expected.keys()
    for tag, value in expected.items():
        assert logged[tag] == pytest.approx(value, abs=1e-6)  # stored as float32


def _scored_run(tmp_path: Path, name: str = "run") -> Path:
    from faithcheck.store.jsonio import write_json

    run = tmp_path / name
    run.mkdir()
    write_json(run / "report.json", make_report(name, 0.6))
    return run


def test_export_command_and_a_bad_tracker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from faithcheck.cli import main

    run = _scored_run(tmp_path)
    assert main(["export", str(run), "--step", "5"]) == 0
    (event,) = (run / "tensorboard").iterdir()
    rows, _ = read_scalar_rows([event])
    assert {row["step"] for row in rows} == {5}
    assert main(["export", str(run), "--to", "mlflow"]) == 2
    assert "--log-to mlflow: choose from tensorboard, wandb, trackio" in capsys.readouterr().err


def test_wandb_mode_is_offline_without_a_key_and_online_with_one(
    wandb_offline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert wandb_mode() == "offline"
    (wandb_offline_env / "netrc").write_text("machine api.wandb.ai login user password k\n")
    monkeypatch.setenv("NETRC", str(wandb_offline_env / "netrc"))
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_wandb_offline_run_reads_back(
    wandb_offline_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from faithcheck.cli import main

    run = _scored_run(wandb_offline_env, "step-1200")
    logs = wandb_offline_env / "logs"
    args = ["export", str(run), "--to", "wandb", "--step", "1200", "--log-dir", str(logs)]
    assert main([*args, "--log-name", "sft-ckpt"]) == 0
    out, err = capfd.readouterr()
    assert out == ""  # wandb's console output kept off stdout
    assert "logged to wandb: wandb (offline)" in err
    (folder,) = (logs / "wandb").glob("offline-run-*")
    await_wandb_flush(folder)
    logged = read_run(folder)
    assert logged.name == "sft-ckpt" and logged.project == "faithcheck"
    (row,) = logged.rows
    assert row["_step"] == 1200 and row["faithcheck/step"] == 1200
    expected = tracker_values(make_report("step-1200", 0.6))
    for tag, value in expected.items():
        assert row[tag] == pytest.approx(value)  # JSON: exact doubles


def test_wandb_logs_into_the_active_run(wandb_offline_env: Path) -> None:
    import wandb

    from faithcheck.trackers import log_wandb

    report = make_report("ckpt", 0.6)
    run = wandb.init(mode="offline", dir=str(wandb_offline_env), project="rl", name="grpo")
    try:
        run.log({"train/reward": 0.5}, step=300)
        where = log_wandb(report, step=200, name="ignored", log_dir=None)  # behind the run
        run.log({"train/reward": 0.6}, step=301)
    finally:
        run.finish()
    assert where == "the active wandb run grpo"
    (folder,) = (wandb_offline_env / "wandb").glob("offline-run-*")
    await_wandb_flush(folder)
    rows = read_run(folder).rows
    faith = [r for r in rows if "faithcheck/accuracy" in r]
    assert len(faith) == 1 and faith[0]["faithcheck/step"] == 200
    assert [r["train/reward"] for r in rows if "train/reward" in r] == [0.5, 0.6]


def test_trackio_rows_read_back_and_a_second_step_appends(tmp_path: Path) -> None:
    pytest.importorskip("trackio")
    run = _scored_run(tmp_path, "step-7")
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio"), "PYTHONPATH": str(ROOT)}
    env.pop("TRACKIO_PROJECT", None)
    for step in (7, 9):
        cmd = [sys.executable, "-m", "faithcheck", "export", str(run), "--to", "trackio"]
        cmd += ["--step", str(step), "--log-name", "sft-ckpt"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout == ""
    with sqlite3.connect(tmp_path / "trackio" / "faithcheck.db") as db:
        rows = db.execute("SELECT run_name, step, metrics FROM metrics ORDER BY step").fetchall()
    assert [(name, step) for name, step, _ in rows] == [("sft-ckpt", 7), ("sft-ckpt", 9)]
    metrics = json.loads(rows[0][2])
    for tag, value in tracker_values(make_report("step-7", 0.6)).items():
        assert metrics[tag] == pytest.approx(value)


def test_a_tracker_that_is_not_installed_is_one_line_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from faithcheck.cli import main

    monkeypatch.setitem(sys.modules, "trackio", None)  # import fails as if not installed
    run = _scored_run(tmp_path)
    assert main(["export", str(run), "--to", "trackio"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "faithcheck: error: --log-to trackio needs the trackio package: "
        "pip install 'faithcheck[trackers]'"
    )
    argv = ["score", "--model", "nope", "--log-to", "trackio", "--out", str(tmp_path / "s")]
    assert main(argv) == 2
    assert "needs the trackio package" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_failing_tracker_keeps_the_other_trackers_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from faithcheck import trackers
    from faithcheck.cli import main

    def refuse(*args: object, **kwargs: object) -> str:
        raise OSError("database is locked")

    monkeypatch.setattr(trackers, "log_trackio", refuse)
    monkeypatch.setattr(trackers, "_import", lambda name: None)
    run = _scored_run(tmp_path)
    assert main(["export", str(run), "--to", "trackio", "--to", "tensorboard"]) == 3
    err = capsys.readouterr().err
    assert "--log-to trackio failed, nothing logged there: database is locked" in err
    assert len(list((run / "tensorboard").iterdir())) == 1


def _settled(folder: Path, timeout: float = 20.0) -> Any:
    """The wandb run at `folder` once its run record is on disk. wandb 0.31's service
    process finishes writing the transaction log after `run.finish()` returns (seen: the
    history row present, the run record not yet), so the reader polls for it."""
    import time

    await_wandb_flush(folder)
    deadline = time.monotonic() + timeout
    while True:
        run = read_run(folder)
        if run.name or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def test_score_logs_to_every_tracker_asked_for(
    wandb_offline_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`score --log-to tensorboard --log-to wandb --json`: both written at --log-step, the
    JSON on stdout still parses (no probes or judge: rollouts scored as given)."""
    from faithcheck.cli import main
    from tests.problems.test_from_samples import ROWS, _write

    out = wandb_offline_env / "run"
    argv = ["score", "--from-samples", _write(wandb_offline_env, ROWS), "--out", str(out)]
    argv += ["--backend", "hf", "--probes", "none", "--no-judge", "--no-diversity", "--json"]
    argv += ["--log-to", "tensorboard", "--log-to", "wandb", "--log-step", "40"]
    code = main(argv)
    stdout, err = capfd.readouterr()
    assert code == 4, err[-2000:]  # two problems: inconclusive
    report = json.loads(stdout)
    (event,) = (out / "tensorboard").iterdir()
    rows, _ = read_scalar_rows([event])
    assert {r["step"] for r in rows} == {40}
    tb = {tag: v for r in rows for tag, v in r.items() if tag != "step"}
    assert tb["faithcheck/accuracy"] == pytest.approx(report["sampling"]["accuracy"]["value"])
    (folder,) = (out / "wandb").glob("offline-run-*")
    logged = _settled(folder)
    assert logged.name == "run"
    (row,) = logged.rows
    assert row["_step"] == 40 and row["faithcheck/verdict"] == 0.5
    assert row.keys() >= tb.keys()
