"""Experiment-tracker export: the report's numbers as TensorBoard scalars, read back with
faithcheck's own event-file reader (no TensorFlow or tensorboard installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faithcheck.saturation_tfevents import read_scalar_rows
from faithcheck.trackers import log_tensorboard, tracker_values
from tests.test_html_report import make_report


def test_values_carry_cis_verdict_and_the_truncation_curve() -> None:
    report = make_report("ckpt", 0.6)
    values = tracker_values(report, "ckpt")
    acc = report.sampling.accuracy
    assert values["faithcheck/ckpt/accuracy"] == pytest.approx(acc.value)
    assert values["faithcheck/ckpt/accuracy_ci_low"] == pytest.approx(acc.ci_low)
    assert values["faithcheck/ckpt/accuracy_ci_high"] == pytest.approx(acc.ci_high)
    assert values["faithcheck/ckpt/verdict"] in (0.0, 0.5, 1.0)
    curve = sorted(
        (float(k.rsplit("_", 1)[1]), v) for k, v in values.items() if "/truncation/" in k
    )
    assert curve and all(0.0 <= y <= 1.0 for _, y in curve)


def test_tensorboard_file_reads_back(tmp_path: Path) -> None:
    report = make_report("ckpt", 0.6)
    path = log_tensorboard(report, tmp_path / "tb", step=1200, name="ckpt")
    rows, notes = read_scalar_rows([path])
    assert notes == []
    logged = {tag: v for row in rows for tag, v in row.items() if tag != "step"}
    assert {row["step"] for row in rows} == {1200}
    expected = tracker_values(report, "ckpt")
    assert logged.keys() == expected.keys()
    for tag, value in expected.items():
        assert logged[tag] == pytest.approx(value, abs=1e-6)  # stored as float32


def test_export_command_and_a_bad_tracker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from faithcheck.cli import main
    from faithcheck.jsonio import write_json

    run = tmp_path / "run"
    run.mkdir()
    write_json(run / "report.json", make_report("run", 0.6))
    assert main(["export", str(run), "--step", "5"]) == 0
    (event,) = (run / "tensorboard").iterdir()
    rows, _ = read_scalar_rows([event])
    assert {row["step"] for row in rows} == {5}
    assert main(["export", str(run), "--to", "mlflow"]) == 2
    assert "--log-to mlflow: choose from tensorboard" in capsys.readouterr().err
