"""The run directory: run.json first, records appended as produced, report last.

runs/<name>/
  run.json        config, versions, model identity, dataset hash (written first)
  samples.jsonl   one line per sampled response, appended as produced
  probes.jsonl    one line per probe result
  judge.jsonl     one line per judged response (with the judge's rationale)
  calibration.jsonl  the judge's labels on the bundled calibration pairs
  strategy.jsonl  strategy-judge clusters, one line per problem
  derivation.jsonl   the judge-free derivation check (recomputed from the samples)
  report.json     aggregate results (written atomically at the end)
  .lock           held while a run is writing, so two runs cannot share a directory
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import orjson
from pydantic import Field, TypeAdapter

from faithcheck.errors import RunDirError
from faithcheck.jsonio import (
    append_jsonl,
    atomic_write_bytes,
    dumps,
    read_jsonl,
    repair_jsonl,
    write_json,
)
from faithcheck.probes.records import ProbeRecord
from faithcheck.records import Record
from faithcheck.sampling import SampleRecord

R = TypeVar("R", bound=Record)

_PROBE_ADAPTER: TypeAdapter[ProbeRecord] = TypeAdapter(
    Annotated[ProbeRecord, Field(discriminator="probe")]
)

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
PROBES_FILE = "probes.jsonl"
JUDGE_FILE = "judge.jsonl"
CALIBRATION_FILE = "calibration.jsonl"
STRATEGY_FILE = "strategy.jsonl"
DERIVATION_FILE = "derivation.jsonl"
REPORT_FILE = "report.json"
# Appended record files: repaired (torn tail cut) on resume, removed by --force.
JSONL_FILES = (SAMPLES_FILE, PROBES_FILE, JUDGE_FILE, CALIBRATION_FILE, STRATEGY_FILE)


class RunInfo(Record):
    """run.json: everything needed to reproduce or compare a run."""

    schema_version: str
    """Version of the run directory layout."""
    faithcheck_version: str
    """Version of the tool."""
    git_commit: str | None
    """Commit of the tool's source checkout, when run from one."""
    created_at: str
    """UTC time the run started (ISO 8601)."""
    argv: list[str]
    """The command line."""
    config: dict[str, Any]
    """Every setting that affects results."""
    config_hash: str
    """sha256 of `config`; a run directory only resumes with the same hash."""
    model: dict[str, Any]
    """Model identity: spec, kind, path, sha256, chat template."""
    dataset: dict[str, Any]
    """Dataset spec, field mapping, problem count and sha256."""
    versions: dict[str, str | None]
    """Versions of python and the packages that shape results."""
    host: dict[str, Any]
    """Machine: platform, CPU count, accelerator."""


class RunDir:
    """A run directory opened for writing by exactly one process (see `lock`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: IO[bytes] | None = None
        self._created_top: Path | None = None

    @property
    def samples_path(self) -> Path:
        """Path of samples.jsonl."""
        return self.path / SAMPLES_FILE

    def open(self) -> None:
        """Create (or reopen) the directory and lock it; cheap, so it runs before any model.

        Raises:
            RunDirError: `--out` is a file, unwritable, locked by another run, or a
                non-empty directory that is not a faithcheck run.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"--out {self.path} is a file, not a run directory")
        # The topmost folder this run creates, so that an early failure can remove
        # everything it made (runs/ included) and nothing else.
        self._created_top = None
        for folder in (self.path, *self.path.parents):
            if folder.exists():
                break
            self._created_top = folder
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {self.path}: {exc.strerror}") from None
        self.lock()
        if not (self.path / RUN_FILE).is_file():
            leftovers = [p.name for p in self.path.iterdir() if p.name != ".lock"]
            if leftovers:
                self.release()
                raise RunDirError(
                    f"--out {self.path} is not empty and not a faithcheck run "
                    f"(found {leftovers[0]}); choose another directory"
                )

    def prepare(self, config_hash: str, *, force: bool) -> bool:
        """Decide between a fresh run and resuming one with the same `config_hash`.

        Call after `open`. Returns True when an earlier run with the same config is
        resumed (its torn last record, if a kill left one, is cut off first).

        Raises:
            RunDirError: the directory holds a run with another config (without `force`).
        """
        try:
            existing = self.read_run_info()
        except RunDirError:
            if not force:
                raise
            existing = {}
        if existing is None:
            return False
        if existing.get("config_hash") == config_hash and not force:
            for name in JSONL_FILES:
                repair_jsonl(self.path / name)
            return True
        if not force:
            raise RunDirError(
                f"--out {self.path} holds a run with a different configuration; "
                "use another --out, or --force to discard it"
            )
        for name in (
            *JSONL_FILES,
            DERIVATION_FILE,
            REPORT_FILE,
            "report.html",
            "report.md",
            RUN_FILE,
        ):
            (self.path / name).unlink(missing_ok=True)
        return False

    def lock(self) -> None:
        """Take an exclusive lock on the directory for this process's lifetime."""
        try:
            fh = (self.path / ".lock").open("ab")
        except OSError as exc:
            raise RunDirError(
                f"cannot write to run directory {self.path}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RunDirError(f"another faithcheck run is using {self.path}") from None
        self._lock = fh

    def release(self) -> None:
        """Release the directory lock; remove the directory if this run made it and
        failed before writing anything (an early error leaves no debris)."""
        if self._lock is None:
            return
        if self._created_top is not None and [p.name for p in self.path.iterdir()] == [".lock"]:
            (self.path / ".lock").unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # stop at the first folder not empty
                for folder in (self.path, *self.path.parents):
                    folder.rmdir()
                    if folder == self._created_top:
                        break
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()
        self._lock = None

    def read_run_info(self) -> dict[str, Any] | None:
        """The existing run.json as a dict, or None when there is none."""
        path = self.path / RUN_FILE
        if not path.is_file():
            return None
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            raise RunDirError(f"{path} is corrupt; use another --out or --force") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{path} is corrupt; use another --out or --force")
        return data

    def write_run_info(self, info: RunInfo) -> None:
        """Write run.json atomically."""
        self._guard(write_json, self.path / RUN_FILE, info)

    def append_samples(self, records: list[SampleRecord]) -> None:
        """Append sample records to samples.jsonl."""
        self._guard(append_jsonl, self.samples_path, records)

    def load_samples(self) -> list[SampleRecord]:
        """Read back every complete sample record, keeping the first of any duplicate key."""
        seen: dict[tuple[str, int], SampleRecord] = {}
        for row in read_jsonl(self.samples_path):
            rec = SampleRecord.model_validate(row)
            seen.setdefault((rec.problem_id, rec.sample_index), rec)
        return list(seen.values())

    def append_probes(self, records: list[ProbeRecord]) -> None:
        """Append probe records to probes.jsonl."""
        self._guard(append_jsonl, self.path / PROBES_FILE, records)

    def load_probes(self) -> list[ProbeRecord]:
        """Read back every complete probe record."""
        return [_PROBE_ADAPTER.validate_python(row) for row in read_jsonl(self.path / PROBES_FILE)]

    def append(self, name: str, records: Sequence[Record]) -> None:
        """Append records to one of the run's JSONL files (`JSONL_FILES`)."""
        self._guard(append_jsonl, self.path / name, records)

    def load(self, name: str, model: type[R]) -> list[R]:
        """Read back every complete record of one JSONL file as `model`."""
        return [model.model_validate(row) for row in read_jsonl(self.path / name)]

    def write_derivation(self, findings: Sequence[Record]) -> None:
        """Write derivation.jsonl whole and atomically (it is recomputed from the samples)."""
        data = b"".join(dumps(f) + b"\n" for f in findings)
        self._guard(atomic_write_bytes, self.path / DERIVATION_FILE, data)

    def write_report(self, report: Record) -> None:
        """Write report.json atomically."""
        self._guard(write_json, self.path / REPORT_FILE, report)

    @staticmethod
    def _guard(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except OSError as exc:
            where = args[0]
            raise RunDirError(f"cannot write {where}: {exc.strerror or exc}") from None


def default_run_name(model_spec: str, stamp: str) -> str:
    """`runs/<model>-<stamp>` with the model spec made file-name safe."""
    base = os.path.basename(model_spec.rstrip("/")) or "model"
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in base)
    return f"{safe}-{stamp}"
