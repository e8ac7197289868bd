"""Faithfulness on the RL run's dashboard: a report's numbers as experiment-tracker scalars.

`tracker_values` flattens a report into scalars under `faithcheck/`: each headline metric
with its CI bounds (`faithcheck/accuracy`, `…/accuracy_ci_low`, `…/accuracy_ci_high`), the
verdict (GO 1, INCONCLUSIVE 0.5, NO-GO 0), and the truncation curve
(`faithcheck/truncation/k_over_n_0.50`: the share of chains whose final answer is readable
after that fraction of their steps). The tags do not carry the checkpoint's name, so the
checkpoints of one RL run, scored at their steps (`--log-step`), draw one line; the name goes
where each tracker keeps a run's identity. `log_report` writes them to one tracker:

- **tensorboard**: an event file in the log folder, with faithcheck's own writer (no
  TensorFlow or tensorboard package needed). Event files in one folder are one TensorBoard
  run: point every checkpoint of an RL run at the same `--log-dir`.
- **wandb**: a run named after the checkpoint in project `$WANDB_PROJECT` (default
  "faithcheck"), config = the checkpoint, dataset, backend, precision and config hash.
  Online when wandb has an API key (`WANDB_API_KEY` or `wandb login`), otherwise offline (a
  local `wandb/offline-run-*` folder, uploaded later by `wandb sync`), so it never stops at a
  login prompt; `WANDB_MODE` overrides. wandb's own `WANDB_RUN_ID` + `WANDB_RESUME=allow`
  log into an existing run, the RL run itself. The values go on their own x axis
  (`faithcheck/step`, via `define_metric`), so a step behind the run's latest is kept, not
  dropped; a run already active in the process (a Trainer's) is logged into directly.
- **trackio**: a run named after the checkpoint in project `$TRACKIO_PROJECT` (default
  "faithcheck"), in trackio's local database (`$TRACKIO_DIR`, default
  ~/.cache/huggingface/trackio; `trackio show` opens the dashboard). The same name again
  appends to that run (`resume="allow"`), so scoring each checkpoint under one name draws one
  line.

wandb and trackio are optional (`pip install 'faithcheck[trackers]'`); their console output
goes to stderr, so `--json` stays JSON.
"""

from __future__ import annotations

import importlib.util
import netrc
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from faithcheck.errors import UsageError
from faithcheck.verdict.catalog import TRACKED
from faithcheck.verdict.paths import default_readout, read_metric

HEADLINES = TRACKED
"""Tracker name -> report path (those the report has are logged): the catalog's `tracked`."""
VERDICT_VALUE = {"GO": 1.0, "INCONCLUSIVE": 0.5, "NO_GO": 0.0}
TRACKERS = ("tensorboard", "wandb", "trackio")
"""Trackers `--log-to` writes."""
PREFIX = "faithcheck"


def tracker_values(report: Any, *, cis: bool = True, curve: bool = True) -> dict[str, float]:
    """The report's scalars under `faithcheck/` (see module docs): the headline metrics the
    run has, their CI bounds (`cis`), the verdict, the truncation curve (`curve`)."""
    doc = report.model_dump(mode="json")
    out: dict[str, float] = {}
    for key, path in HEADLINES.items():
        try:
            reading = read_metric(doc, path)
        except UsageError:  # not in this report
            continue
        if reading.value is None:
            continue
        out[f"{PREFIX}/{key}"] = float(reading.value)
        if cis and reading.has_ci and reading.ci_low is not None and reading.ci_high is not None:
            out[f"{PREFIX}/{key}_ci_low"] = float(reading.ci_low)
            out[f"{PREFIX}/{key}_ci_high"] = float(reading.ci_high)
    if report.verdict is not None:
        out[f"{PREFIX}/verdict"] = VERDICT_VALUE[report.verdict.decision]
    if curve:
        for x, y in _truncation_curve(doc):
            out[f"{PREFIX}/truncation/k_over_n_{x:.2f}"] = y
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


def check_trackers(names: list[str] | None) -> list[str]:
    """The trackers asked for, each known and importable, checked before any model loads.

    Raises:
        UsageError: an unknown tracker, or one whose package is not installed.
    """
    out: list[str] = []
    for name in names or []:
        if name not in TRACKERS:
            raise UsageError(f"--log-to {name}: choose from {', '.join(TRACKERS)}")
        if name != "tensorboard" and importlib.util.find_spec(name) is None:
            _import(name)  # raises the one-line UsageError (found but broken: imported later)
        if name not in out:
            out.append(name)
    return out


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        raise UsageError(
            f"--log-to {name} needs the {name} package: pip install 'faithcheck[trackers]'"
        ) from None


def log_report(
    report: Any, tracker: str, *, step: int, name: str, log_dir: Path | None, run_dir: Path
) -> str:
    """Log the report's scalars to `tracker` at `step` under the run name `name`; where.

    `log_dir`: the event-file folder (tensorboard, default `<run_dir>/tensorboard`), the
    folder wandb writes its `wandb/` into (default `$WANDB_DIR`, else `run_dir`), or
    trackio's database folder (default `$TRACKIO_DIR`).
    """
    if tracker == "tensorboard":
        return str(log_tensorboard(report, log_dir or run_dir / "tensorboard", step=step))
    if tracker == "wandb":
        return log_wandb(report, step=step, name=name, log_dir=log_dir, run_dir=run_dir)
    if tracker == "trackio":
        return log_trackio(report, step=step, name=name, log_dir=log_dir)
    raise UsageError(f"--log-to {tracker}: choose from {', '.join(TRACKERS)}")


def log_tensorboard(report: Any, logdir: Path, *, step: int) -> Path:
    """Write the report's scalars at `step` as a new event file in `logdir`; its path."""
    from faithcheck.saturation.tfevents import write_scalars

    logdir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    host = socket.gethostname()
    path = logdir / f"events.out.tfevents.{int(now)}.{host}.{os.getpid()}.faithcheck"
    values = tracker_values(report)
    write_scalars(
        path, [(step, tag, value) for tag, value in sorted(values.items())], start_time=now - step
    )
    return path


def run_config(report: Any) -> dict[str, Any]:
    """What identifies the scored checkpoint and how it was scored, for a tracker's config."""
    precision = report.precision.dtype if report.precision is not None else None
    return {
        "faithcheck/checkpoint": report.model,
        "faithcheck/run_id": report.run_id,
        "faithcheck/dataset": report.dataset,
        "faithcheck/backend": report.backend,
        "faithcheck/dtype": precision,
        "faithcheck/config_hash": report.config_hash,
    }


def _verdict_summary(report: Any) -> dict[str, Any]:
    if report.verdict is None:
        return {}
    return {
        f"{PREFIX}/verdict_label": report.verdict.decision,
        f"{PREFIX}/verdict_reasons": "; ".join(report.verdict.reasons),
    }


def wandb_mode() -> str:
    """`WANDB_MODE` when set; else online when wandb can find an API key, offline if not."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        found = netrc.netrc(os.environ.get("NETRC")).authenticators(host or "")
    except (OSError, netrc.NetrcParseError):
        found = None
    return "online" if found else "offline"


def log_wandb(
    report: Any, *, step: int, name: str, log_dir: Path | None, run_dir: Path | None = None
) -> str:
    """Log to the active wandb run, or to a new one named `name` (see module docs), whose
    `wandb/` goes into `log_dir`, else `$WANDB_DIR`, else `run_dir` (the report's own run
    directory when None)."""
    from faithcheck.quiet import stdout_to_stderr

    wandb = _import("wandb")
    values = {**tracker_values(report), f"{PREFIX}/step": step}
    with stdout_to_stderr():
        active = wandb.run
        if active is not None:
            active.define_metric(f"{PREFIX}/*", step_metric=f"{PREFIX}/step")
            active.log(values)
            return f"the active wandb run {active.name}"
        folder = log_dir or Path(os.environ.get("WANDB_DIR") or run_dir or report.run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        mode = wandb_mode()
        run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "faithcheck",
            name=name,
            dir=str(folder),
            mode=mode,
            job_type="faithcheck",
            config=run_config(report),
            settings=wandb.Settings(silent=True, console="off"),
        )
        try:
            run.define_metric(f"{PREFIX}/*", step_metric=f"{PREFIX}/step")
            run.log(values, step=step)
            run.summary.update(_verdict_summary(report))
            where = run.dir if mode == "offline" else run.url
        finally:
            run.finish()
    return f"wandb ({mode}) {Path(where).parent if mode == 'offline' else where}"


def log_trackio(report: Any, *, step: int, name: str, log_dir: Path | None) -> str:
    """Log to the trackio run `name`, created or appended to (see module docs)."""
    from faithcheck.quiet import stdout_to_stderr

    if log_dir is not None:
        if "trackio" in sys.modules:
            current = Path(sys.modules["trackio"].utils.TRACKIO_DIR).resolve()
            if current != log_dir.resolve():
                raise UsageError(
                    f"--log-dir {log_dir}: trackio was already loaded with {current}; set "
                    "TRACKIO_DIR before starting Python instead"
                )
        else:
            os.environ["TRACKIO_DIR"] = str(log_dir)
    trackio = _import("trackio")
    values = tracker_values(report)
    project = os.environ.get("TRACKIO_PROJECT") or "faithcheck"
    with stdout_to_stderr():
        trackio.init(
            project=project,
            name=name,
            config=run_config(report),
            resume="allow",
            embed=False,
            auto_log_cpu=False,
            auto_log_gpu=False,
        )
        try:
            trackio.log(values, step=step)
        finally:
            trackio.finish()
    return f"trackio project {project} in {trackio.utils.TRACKIO_DIR}"
