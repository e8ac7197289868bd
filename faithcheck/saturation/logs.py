"""Reading RL training logs into (step, reward) and (step, eval) points for `saturation`.

Formats: JSONL (TRL per-step dicts, verl's file logger `{"step": N, "data": {...}}`,
OpenRLHF), JSON (a list of dicts, or TRL's trainer_state.json with `log_history`), CSV / TSV
(experiment-tracker exports, including wandb's "<run> - <metric>" headers), TensorBoard
event files (a file or a folder of them; see `faithcheck.saturation.tfevents`) and wandb's
local run folders (`wandb/run-*/`, online or offline; see `faithcheck.saturation.wandb_runs`),
read directly without an export. Every format
becomes a table of rows (dicts of column -> raw value); columns are then detected by name or
named by the user.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from faithcheck.errors import DataError
from faithcheck.saturation.core import RunInput
from faithcheck.saturation.wandb_runs import is_wandb_file, read_run

# Candidate names, most specific first. Matching is case-insensitive and also tries the part of
# a wandb export header after "<run> - ".
STEP_NAMES = (
    "step",
    "global_step",
    "training/global_step",
    "train/global_step",
    "trainer/global_step",
    "_step",
    "iteration",
    "iter",
)
REWARD_NAMES = (
    "reward",  # TRL GRPO/RLOO (total reward, all reward functions)
    "rewards/mean",
    "train/reward",  # TRL via wandb, OpenRLHF
    "train/rewards/mean",
    "critic/score/mean",  # verl: task score, before the KL penalty
    "critic/rewards/mean",  # verl: score minus KL penalty
    "env/reward_mean",  # TRL PPO (legacy)
    "objective/scores",  # TRL PPO / RLOO (v0.11+)
    "objective/rlhf_reward",
    "reward/mean",
    "reward_mean",
    "mean_reward",
)
EVAL_NAMES = (
    "eval/accuracy",
    "eval_accuracy",
    "eval/acc",
    "eval_acc",
    "eval/reward",
    "eval_reward",  # TRL GRPO evaluation
    "eval/rewards/mean",
    "eval/score",
    "eval_score",
    "val/accuracy",
    "val/reward",
    "test/accuracy",
    "test_accuracy",
)
EVAL_PATTERNS = (
    re.compile(r"^val-core/.+/(reward|acc|score)/mean@1$"),  # verl >= 0.4
    re.compile(r"^val/test_score/.+$"),  # verl < 0.4
    re.compile(r"^(eval|val|test)[/_-].*(acc|accuracy|reward|score|pass@?1)"),
)
_STATS = re.compile(r"(std|min|max|count|__min|__max)$|/(std|min|max)(@\d+)?$")
_SHOWN = 30  # columns listed in an error message


@dataclass
class LogTable:
    """A log read into rows, before any column is chosen."""

    path: Path
    format: str
    rows: list[dict[str, Any]]
    columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _short(name: str) -> str:
    """Metric name without a wandb export's "<run> - " prefix, lower-cased."""
    return name.rsplit(" - ", 1)[-1].strip().lower()


def _matches(name: str, columns: Sequence[str]) -> list[str]:
    wanted = name.lower()
    exact = [c for c in columns if c == name]
    return exact or [c for c in columns if c.lower() == wanted or _short(c) == wanted]


def _seen(table: LogTable) -> str:
    cols = table.columns
    more = f" (+{len(cols) - _SHOWN} more)" if len(cols) > _SHOWN else ""
    return ", ".join(cols[:_SHOWN]) + more if cols else "none"


def _pick(table: LogTable, names: Iterable[str], what: str, flag: str) -> str | None:
    """First candidate name present in the table; an ambiguous match is an error."""
    for name in names:
        found = _matches(name, table.columns)
        if len(found) > 1:
            raise DataError(
                f"{table.path}: several columns match {what} '{name}': {', '.join(found)}; "
                f"choose one with {flag}"
            )
        if found:
            return found[0]
    return None


def _named(table: LogTable, name: str, flag: str) -> str:
    found = _matches(name, table.columns)
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(f"{table.path}: {flag} {name!r} matches several columns: {found}")
    raise DataError(f"{table.path}: no column {name!r} ({flag}); columns seen: {_seen(table)}")


def _reward_fallback(table: LogTable) -> str | None:
    """A lone column that looks like a mean training reward, when no known name is present."""
    hits = [
        c
        for c in table.columns
        if "reward" in _short(c)
        and not _STATS.search(_short(c))
        and not re.match(r"^(eval|val|test)", _short(c))
    ]
    if len(hits) == 1:
        return hits[0]
    if table.format == "csv" and {_short(c) for c in table.columns} >= {"wall time", "value"}:
        return _matches("value", table.columns)[0]  # TensorBoard's "Download CSV" of one tag
    return None


def _detect_eval(table: LogTable, exclude: set[str]) -> str | None:
    cols = [c for c in table.columns if c not in exclude and not _STATS.search(_short(c))]
    for name in EVAL_NAMES:
        found = _matches(name, cols)
        if len(found) == 1:
            return found[0]
    for pattern in EVAL_PATTERNS:
        found = [c for c in cols if pattern.search(_short(c))]
        if len(found) == 1:
            return found[0]
        if found:
            shown = ", ".join(found[:8])
            table.notes.append(f"several eval columns ({shown}); name one with --eval-col")
            return None
    return None


@dataclass(frozen=True)
class Columns:
    """The columns chosen for one log."""

    step: str
    reward: str
    eval: str | None


def choose_columns(
    table: LogTable,
    *,
    step: str | None = None,
    reward: str | None = None,
    eval_col: str | None = None,
    detect_eval: bool = True,
) -> Columns:
    """Resolve the step, reward and (optional) eval columns: named ones, else detected.

    Raises:
        DataError: a named column is absent, or none can be detected; the message lists the
            columns seen.
    """
    step_c = _named(table, step, "--step-col") if step else None
    step_c = step_c or _pick(table, STEP_NAMES, "step", "--step-col")
    if step_c is None:
        raise DataError(
            f"{table.path}: no step column (tried {', '.join(STEP_NAMES)}); columns seen: "
            f"{_seen(table)}; name it with --step-col"
        )
    reward_c = _named(table, reward, "--reward-col") if reward else None
    reward_c = reward_c or _pick(table, REWARD_NAMES, "reward", "--reward-col")
    reward_c = reward_c or _reward_fallback(table)
    if reward_c is None:
        raise DataError(
            f"{table.path}: no reward column (tried {', '.join(REWARD_NAMES)}); columns seen: "
            f"{_seen(table)}; name it with --reward-col"
        )
    eval_c = _named(table, eval_col, "--eval-col") if eval_col else None
    if eval_c is None and detect_eval:
        eval_c = _detect_eval(table, {step_c, reward_c})
    return Columns(step_c, reward_c, eval_c)


# --- values -----------------------------------------------------------------------------------


def to_number(value: Any) -> float | None:
    """A cell as a float: None when absent (empty cell, null), NaN when present but unusable."""
    if value is None or isinstance(value, bool):
        return None if value is None else math.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return math.nan
    return math.nan


def _step_of(value: Any, table: LogTable, column: str) -> int | None:
    number = to_number(value)
    if number is None or not math.isfinite(number):
        return None
    if not number.is_integer():
        raise DataError(
            f"{table.path}: step column {column!r} has a non-integer value ({number:g}); "
            "is it an epoch? name the step column with --step-col"
        )
    return int(number)


def extract_points(
    table: LogTable, cols: Columns
) -> tuple[list[tuple[int, float]], list[tuple[int, float]], int]:
    """Reward and eval points in file order, plus reward rows dropped for lack of a step.

    Rows without the reward (eval-only or other log entries) are skipped, not counted.
    """
    reward: list[tuple[int, float]] = []
    evals: list[tuple[int, float]] = []
    no_step = 0
    for row in table.rows:
        r = to_number(row.get(cols.reward))
        e = to_number(row.get(cols.eval)) if cols.eval else None
        if r is None and e is None:
            continue
        step = _step_of(row.get(cols.step), table, cols.step)
        if step is None:
            no_step += r is not None
            continue
        if r is not None:
            reward.append((step, r))
        if e is not None:
            evals.append((step, e))
    return reward, evals, no_step


# --- readers ----------------------------------------------------------------------------------


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become "a/b" keys; verl's `data` / a `metrics` wrapper is unwrapped."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            inner = "" if not prefix and key in ("data", "metrics") else f"{prefix}{key}/"
            for k, v in _flatten(value, inner).items():
                out.setdefault(k, v)
        else:
            out[f"{prefix}{key}"] = value
    return out


def _loads(data: bytes) -> Any:
    # Python's json module writes NaN/Infinity tokens (TRL's trainer_state.json does), which
    # orjson rejects; fall back to the stdlib parser only for those.
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _read_jsonl(path: Path, table: LogTable) -> None:
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = _loads(line)
        except ValueError as exc:
            if number == len(lines):  # no newline after it: a torn line from a live writer
                table.notes.append(f"ignored a torn last line ({number})")
                continue
            raise DataError(f"{path}:{number}: not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{number}: expected a JSON object per line")
        table.rows.append(_flatten(obj))


def _read_json(path: Path, table: LogTable) -> None:
    try:
        obj = _loads(path.read_bytes())
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(obj, dict) and isinstance(obj.get("log_history"), list):
        obj = obj["log_history"]  # TRL / transformers trainer_state.json
    if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
        raise DataError(
            f"{path}: expected a list of objects or a trainer_state.json with log_history"
        )
    table.rows.extend(_flatten(r) for r in obj)


def _read_csv(path: Path, table: LogTable) -> None:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    first = text.split("\n", 1)[0]
    delimiter = "\t" if path.suffix == ".tsv" or "\t" in first else ","
    if delimiter == "," and ";" in first and "," not in first:
        delimiter = ";"
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    if not reader.fieldnames:
        raise DataError(f"{path}: empty CSV (no header row)")
    for row in reader:
        table.rows.append({k: v for k, v in row.items() if k is not None})
    table.columns = [c for c in reader.fieldnames if c]


def _is_events(path: Path) -> bool:
    return "tfevents" in path.name


def read_table(path: Path) -> LogTable:
    """Read one log (file or TensorBoard folder) into rows.

    Raises:
        DataError: the path is missing, unreadable, or not a log this reader understands.
    """
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        events = sorted(p for p in path.rglob("*") if p.is_file() and _is_events(p))
        if _has_wandb_run(path):
            table = _read_wandb(path)
        elif events:
            table = _read_events(path, events)
        elif (path / "trainer_state.json").is_file():
            table = LogTable(path / "trainer_state.json", "json", [])
            _read_json(table.path, table)
        else:
            raise DataError(f"{path}: a folder without TensorBoard event files or a wandb run")
    elif is_wandb_file(path):
        table = _read_wandb(path)
    elif _is_events(path):
        table = _read_events(path, [path])
    else:
        table = _read_text_log(path)
    if not table.columns:
        seen: dict[str, None] = {}
        for row in table.rows:
            seen.update(dict.fromkeys(row))
        table.columns = list(seen)
    if not table.rows:
        raise DataError(f"{path}: no rows")
    return table


def _read_events(path: Path, files: list[Path]) -> LogTable:
    from faithcheck.saturation.tfevents import read_scalar_rows

    rows, notes = read_scalar_rows(files)
    return LogTable(path, "tensorboard", rows, notes=notes)


def _has_wandb_run(path: Path) -> bool:
    return any(path.glob("*.wandb")) or any(path.glob("*/*.wandb"))


def _read_wandb(path: Path) -> LogTable:
    run = read_run(path)
    return LogTable(run.path, "wandb", run.rows, notes=run.notes)


def _read_text_log(path: Path) -> LogTable:
    try:
        head = path.read_bytes()[:4096].lstrip()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        kind = "csv"
    elif suffix == ".json" or (suffix not in (".jsonl", ".ndjson") and head.startswith(b"[")):
        kind = "json"
    elif suffix in (".jsonl", ".ndjson") or head.startswith(b"{"):
        kind = "jsonl"
    else:
        kind = "csv"
    table = LogTable(path, kind, [])
    {"csv": _read_csv, "json": _read_json, "jsonl": _read_jsonl}[kind](path, table)
    return table


def load_run(
    path: Path,
    *,
    step: str | None = None,
    reward: str | None = None,
    eval_col: str | None = None,
    detect_eval: bool = True,
) -> RunInput:
    """Read a log and choose its columns: everything `analyze_run` needs."""
    table = read_table(path)
    cols = choose_columns(
        table, step=step, reward=reward, eval_col=eval_col, detect_eval=detect_eval
    )
    reward_pts, eval_pts, no_step = extract_points(table, cols)
    if not reward_pts:
        raise DataError(f"{path}: reward column {cols.reward!r} has no values")
    notes = list(table.notes)
    if reward is None:
        notes.insert(0, f"reward column detected: {cols.reward}")
    if cols.eval and eval_col is None:
        notes.insert(1, f"eval column detected: {cols.eval}")
    return RunInput(
        name=str(path),
        path=str(table.path),
        format=table.format,
        step_column=cols.step,
        reward_column=cols.reward,
        reward_points=reward_pts,
        eval_column=cols.eval,
        eval_points=eval_pts,
        dropped_rows=no_step,
        notes=notes,
    )
