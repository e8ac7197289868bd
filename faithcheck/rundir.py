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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from faithcheck.errors import RunDirError
from faithcheck.jsonio import (
    append_jsonl,
    atomic_write_bytes,
    dumps,
    read_jsonl_numbered,
    repair_jsonl,
    write_json,
)
from faithcheck.probes.records import ProbeRecord
from faithcheck.records import Record
from faithcheck.sampling import SampleRecord

R = TypeVar("R", bound=Record)
T = TypeVar("T")

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
        self._sample_keys: set[tuple[Any, Any]] | None = None

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
        self._sample_keys = None
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
        """Append sample records to samples.jsonl, skipping any already on disk.

        A problem whose samples were only partly written (a kill or a full disk mid-write)
        is sampled again whole on resume; its records that did reach the disk are not
        written a second time.
        """
        if self._sample_keys is None:
            self._sample_keys = {
                (row.get("problem_id"), row.get("sample_index"))
                for _, row in read_jsonl_numbered(self.samples_path)
            }
        keys = self._sample_keys
        fresh = [r for r in records if (r.problem_id, r.sample_index) not in keys]
        self._guard(append_jsonl, self.samples_path, fresh)
        keys.update((r.problem_id, r.sample_index) for r in fresh)

    def load_samples(self) -> list[SampleRecord]:
        """Read back every complete sample record, keeping the first of any duplicate key."""
        seen: dict[tuple[str, int], SampleRecord] = {}
        for rec in self._read(SAMPLES_FILE, SampleRecord.model_validate):
            seen.setdefault((rec.problem_id, rec.sample_index), rec)
        return list(seen.values())

    def append_probes(self, records: list[ProbeRecord]) -> None:
        """Append probe records to probes.jsonl."""
        self._guard(append_jsonl, self.path / PROBES_FILE, records)

    def load_probes(self) -> list[ProbeRecord]:
        """Read back every complete probe record."""
        return list(self._read(PROBES_FILE, _PROBE_ADAPTER.validate_python))

    def append(self, name: str, records: Sequence[Record]) -> None:
        """Append records to one of the run's JSONL files (`JSONL_FILES`)."""
        self._guard(append_jsonl, self.path / name, records)

    def load(self, name: str, model: type[R]) -> list[R]:
        """Read back every complete record of one JSONL file as `model`."""
        return list(self._read(name, model.model_validate))

    def _read(self, name: str, validate: Callable[[dict[str, Any]], T]) -> Iterator[T]:
        """Validated records of one JSONL file.

        Raises:
            RunDirError: a complete line is not valid JSON or not a valid record (the file
                was edited or damaged; a torn last line from a kill is skipped instead).
        """
        path = self.path / name
        try:
            for lineno, row in read_jsonl_numbered(path):
                try:
                    record = validate(row)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(part) for part in first["loc"]) or "record"
                    raise RunDirError(
                        f"{path}:{lineno}: corrupt record ({where}: {first['msg']})"
                    ) from None
                yield record
        except RunDirError as exc:
            raise RunDirError(f"{exc}; use another --out, or --force to discard the run") from None

    def rewrite(self, name: str, records: Sequence[Record]) -> None:
        """Replace one of the run's JSONL files whole and atomically."""
        data = b"".join(dumps(r) + b"\n" for r in records)
        self._guard(atomic_write_bytes, self.path / name, data)

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
