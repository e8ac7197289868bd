"""Faithfulness on the RL run's dashboard: a report's numbers as experiment-tracker scalars.

`tracker_values` flattens a report into scalars under `faithcheck/<checkpoint>/`: each
headline metric with its CI bounds (`…/accuracy`, `…/accuracy_ci_low`, `…/accuracy_ci_high`),
the verdict (GO 1, INCONCLUSIVE 0.5, NO-GO 0), and the truncation curve (`…/truncation/
k_over_n_0.50`: the share of chains whose final answer is readable after that fraction of
their steps). `log_tensorboard` writes them as a TensorBoard event file at a given step
(`--log-step`, e.g. the RL step the checkpoint comes from) with faithcheck's own writer,
so no TensorFlow or tensorboard package is needed; `faithcheck export RUN --to
tensorboard` does the same for a run scored earlier.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from faithcheck.metric_paths import default_readout, read_metric

HEADLINES = {
    "accuracy": "sampling.accuracy",
    "supported": "support.supported",
    "correct_but_unsupported": "support.correct_but_unsupported",
    "answer_derived": "derivation.answer_derived",
    "correct_but_underived": "derivation.correct_but_underived",
    "truncation_aoc": "probes.truncation.aoc",
    "early_answer_rate": "probes.truncation.early_answer_rate",
    "flip_rate": "probes.mistakes.flip_rate",
    "aligned_share_of_correct": "judge.summary.aligned_share_of_correct",
    "correct_but_misaligned_rate": "judge.summary.correct_but_misaligned_rate",
}
"""Tracker name -> report path (those the report has are logged)."""
VERDICT_VALUE = {"GO": 1.0, "INCONCLUSIVE": 0.5, "NO_GO": 0.0}
TRACKERS = ("tensorboard",)
"""Trackers `--log-to` writes today."""


def tracker_values(report: Any, name: str) -> dict[str, float]:
    """The report's scalars under `faithcheck/<name>/` (see module docs)."""
    from faithcheck.errors import UsageError

    doc = report.model_dump(mode="json")
    prefix = f"faithcheck/{name}"
    out: dict[str, float] = {}
    for key, path in HEADLINES.items():
        try:
            reading = read_metric(doc, path)
        except UsageError:
            continue
        if reading.value is None:
            continue
        out[f"{prefix}/{key}"] = float(reading.value)
        if reading.has_ci and reading.ci_low is not None and reading.ci_high is not None:
            out[f"{prefix}/{key}_ci_low"] = float(reading.ci_low)
            out[f"{prefix}/{key}_ci_high"] = float(reading.ci_high)
    if report.verdict is not None:
        out[f"{prefix}/verdict"] = VERDICT_VALUE[report.verdict.decision]
    for x, y in _truncation_curve(doc):
        out[f"{prefix}/truncation/k_over_n_{x:.2f}"] = y
    return out


def _truncation_curve(doc: dict[str, Any]) -> list[tuple[float, float]]:
    """The primary read-out's curve pooled over chain lengths: per fraction of steps kept
    (rounded to 0.01), the chain-weighted share of chains whose answer is readable."""
    readout = default_readout(doc)
    if readout is None:
        return []
    section = doc["probes"]["truncation"].get(readout) or {}
    sums: dict[float, list[float]] = {}
    for length in section.get("by_length") or []:
        for point in length.get("points") or []:
            x, n = round(float(point["x"]), 2), float(point["n"])
            acc = sums.setdefault(x, [0.0, 0.0])
            acc[0] += float(point["same"]) * n
            acc[1] += n
    return [(x, total / n) for x, (total, n) in sorted(sums.items()) if n > 0]


def log_tensorboard(report: Any, logdir: Path, *, step: int, name: str) -> Path:
    """Write the report's scalars at `step` as a new event file in `logdir`; its path."""
    from faithcheck.saturation_tfevents import write_scalars

    logdir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    host = socket.gethostname()
    path = logdir / f"events.out.tfevents.{int(now)}.{host}.{os.getpid()}.faithcheck"
    values = tracker_values(report, name)
    write_scalars(
        path, [(step, tag, value) for tag, value in sorted(values.items())], start_time=now - step
    )
    return path
