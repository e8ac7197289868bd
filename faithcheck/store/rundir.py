"""The run directory: run.json first, records appended as produced, report last.

runs/<name>/
  run.json        config, versions, model identity, dataset hash (written first)
  samples.jsonl   one line per sampled response, appended as produced
  probes.jsonl    one line per probe result
  judge.jsonl     one line per judged response (with the judge's rationale)
  calibration.jsonl  the judge's labels on the bundled calibration pairs
  strategy.jsonl  strategy-judge clusters, one line per problem
  derivation.jsonl   the judge-free derivation check (its stage, from the samples)
  support.jsonl      the judge-free support check (its stage, from the samples)
  diversity.jsonl    each problem's diversity metrics (its stage; only with diversity on)
  judge_calls.jsonl  the judge's call ledger; judge_batches.jsonl: its submitted batches
  report.json     aggregate results (written atomically at the end)
  .lock           held while a run is writing, so two runs cannot share a directory

Which stage writes which file, and which files a changed config discards, is the stages'
declaration (`faithcheck.pipeline.runners.LAYOUT`), which `prepare` is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from faithcheck.backends.precision import Precision
from faithcheck.errors import RunDirError
from faithcheck.probes.records import ProbeRecord
from faithcheck.records import Record
from faithcheck.sampling import SampleRecord
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.jsonio import (
    append_jsonl,
    append_lines,
    atomic_jsonl,
    atomic_write_bytes,
    dumps,
    filter_jsonl,
    read_jsonl_numbered,
    repair_jsonl,
    write_json,
)
from faithcheck.store.layout import Layout, Stage
from faithcheck.versions import check_schema_version

R = TypeVar("R", bound=Record)
T = TypeVar("T")

_PROBE_ADAPTER: TypeAdapter[ProbeRecord] = TypeAdapter(
    Annotated[ProbeRecord, Field(discriminator="probe")]
)
validate_probe = _PROBE_ADAPTER.validate_python
"""A probes.jsonl row as its probe record (the `probe` field picks the kind)."""

RUN_FILE = "run.json"
REPORT_FILE = "report.json"
# The record files the stages write (which stage writes each, and how resume, --force and
# merge treat it, is the stages' declaration: `faithcheck.pipeline.runners.LAYOUT`).
SAMPLES_FILE = "samples.jsonl"
PROBES_FILE = "probes.jsonl"
JUDGE_FILE = "judge.jsonl"
CALIBRATION_FILE = "calibration.jsonl"
STRATEGY_FILE = "strategy.jsonl"
JUDGE_CALLS_FILE = "judge_calls.jsonl"
"""The judge's call ledger: every reply a run received, paid or cached."""
JUDGE_BATCHES_FILE = "judge_batches.jsonl"
"""The judge's submitted batches."""
DERIVATION_FILE = "derivation.jsonl"
SUPPORT_FILE = "support.jsonl"
DIVERSITY_FILE = "diversity.jsonl"
_DISCARD_HINT = "use another --out, or --force to discard the run"


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
    stage_hashes: dict[str, str] | None = None
    """Hash of what the samples, probe records and judge records each depend on (see
    `faithcheck.store.confighash.stage_hashes`): `--force` keeps the records still valid."""
    model: dict[str, Any]
    """Model identity: spec, kind, path, sha256, chat template."""
    dataset: dict[str, Any]
    """Dataset spec, field mapping, problem count and sha256."""
    versions: dict[str, str | None]
    """Versions of python and the packages that shape results."""
    host: dict[str, Any]
    """Machine: platform, CPU count, accelerator."""
    precision: Precision | None = None
    """The dtype the models load in, why, and the CPU threads used."""


class RunDir:
    """A run directory opened for writing by exactly one process (see `lock`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: IO[bytes] | None = None
        self._created_top: Path | None = None
        self._samples_index: ProblemIndex | None = None
        self._kept: list[Stage] = []

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

    def prepare(
        self,
        config_hash: str,
        layout: Layout,
        *,
        force: bool,
        stages: Mapping[str, str] | None = None,
    ) -> bool:
        """Decide between a fresh run and resuming one with the same `config_hash`.

        Call after `open`. Returns True when an earlier run with the same config is
        resumed (its torn last record, if a kill left one, is cut off first). `layout`:
        the run's stages, which say which files hold records and which are derived.

        With `force`, a run with another config is discarded, except that when its
        samples still match (`stages`: the new run's `confighash.stage_hashes`, compared
        with those in run.json) only the records of the stages whose hash changed are
        removed; `kept` then names the stages whose records stay. With `force` and the
        same config, everything is discarded (start over).

        Raises:
            RunDirError: the directory holds a run with another config (without `force`).
        """
        self._kept = []
        appended, derived = layout.appended_files, layout.derived_files
        root, later = layout.root, layout.later
        try:
            existing = self.read_run_info()
        except RunDirError:
            if not force:
                raise
            existing = {}
        if existing is None:
            return False
        if existing.get("config_hash") == config_hash and not force:
            for name in appended:
                repair_jsonl(self.path / name)
            return True
        old = existing.get("stage_hashes")
        old = old if isinstance(old, dict) else {}
        if (
            existing.get("config_hash") != config_hash
            and stages is not None
            and old.get(root.name) == stages[root.name]
        ):
            redo = [s for s in later if old.get(s.name) != stages[s.name]]
            kept = [root, *(s for s in later if s not in redo)]
            if not force:
                what = _and([s.settings for s in redo]) or "report"
                raise RunDirError(
                    f"--out {self.path} holds a run with different {what} settings; use "
                    f"another --out, or --force to redo the {what} (its "
                    f"{_and([s.records for s in kept])} match and are kept)"
                )
            self._kept = kept
            self._discard([name for s in redo for name in layout.files_of(s)], derived)
            for name in appended:
                repair_jsonl(self.path / name)
            return False
        if not force:
            raise RunDirError(
                f"--out {self.path} holds a run with a different configuration; "
                "use another --out, or --force to discard it"
            )
        self._discard([*appended, RUN_FILE], derived)
        return False

    @property
    def kept(self) -> list[str]:
        """Stages whose records `prepare` kept from a run with another config."""
        return [s.name for s in self._kept]

    def kept_records(self) -> str:
        """What `prepare` kept, in words ('samples and probe records')."""
        return _and([s.records for s in self._kept])

    def _discard(self, names: Sequence[str], derived: Sequence[str]) -> None:
        """Remove record files, and every file derived from the records (`derived`)."""
        self._samples_index = None
        for name in (*names, *derived, REPORT_FILE, "report.html", "report.md"):
            (self.path / name).unlink(missing_ok=True)

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
        """The existing run.json as a dict, or None when there is none.

        Raises:
            RunDirError: run.json is corrupt, or written under a newer MAJOR schema
                version (`faithcheck.versions`).
        """
        path = self.path / RUN_FILE
        if not path.is_file():
            return None
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            raise RunDirError(f"{path} is corrupt; use another --out or --force") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{path} is corrupt; use another --out or --force")
        check_schema_version(data.get("schema_version"), path, error=RunDirError)
        return data

    def write_run_info(self, info: RunInfo) -> None:
        """Write run.json atomically."""
        self._guard(write_json, self.path / RUN_FILE, info)

    def append_samples(self, records: list[SampleRecord]) -> None:
        """Append sample records to samples.jsonl, skipping any already on disk.

        A problem whose samples were only partly written (a kill or a full disk mid-write)
        is sampled again whole on resume; its records that did reach the disk are not
        written a second time. Only the incoming problems' lines are read to find them.
        """
        if self._samples_index is None:
            self._samples_index = ProblemIndex(self.samples_path)
        index = self._samples_index
        have: dict[str, set[Any]] = {}
        fresh: list[tuple[str, bytes]] = []
        for r in records:
            if r.problem_id not in have:
                have[r.problem_id] = {
                    row.get("sample_index") for _, row in index.rows(r.problem_id)
                }
            if r.sample_index not in have[r.problem_id]:
                have[r.problem_id].add(r.sample_index)
                fresh.append((r.problem_id, dumps(r) + b"\n"))
        self._guard(append_lines, self.samples_path, [line for _, line in fresh])
        index.note_appended(fresh)

    def load_samples(self) -> list[SampleRecord]:
        """Read back every complete sample record, keeping the first of any duplicate key.

        Holds the whole file: for tests and small runs. The pipeline reads problem by
        problem (`sample_groups`).
        """
        seen: dict[tuple[str, int], SampleRecord] = {}
        for rec in self._read(SAMPLES_FILE, SampleRecord.model_validate):
            seen.setdefault((rec.problem_id, rec.sample_index), rec)
        return list(seen.values())

    def index(self, name: str) -> ProblemIndex:
        """Where each problem's records sit in one of the run's JSONL files (scanned now)."""
        return ProblemIndex(self.path / name)

    def groups(
        self,
        name: str,
        validate: Callable[[dict[str, Any]], T],
        keys: Iterable[str] | None = None,
        index: ProblemIndex | None = None,
    ) -> Iterator[list[T]]:
        """The validated records of one JSONL file, one problem at a time.

        Args:
            name: The file (one of the layout's `appended_files`).
            validate: Turns a row into a record.
            keys: Problems to read, in this order (those without records are skipped);
                default: every problem, in order of first appearance in the file.
            index: An index of the file already scanned.

        Raises:
            RunDirError: a complete line is not a valid record (see `_read`).
        """
        try:
            index = index or self.index(name)
            for key in index if keys is None else keys:
                if key in index:
                    yield [
                        self._validated(index.path, n, row, validate) for n, row in index.rows(key)
                    ]
        except RunDirError as exc:
            raise RunDirError(f"{exc}; {_DISCARD_HINT}") from None

    def sample_groups(
        self, keys: Iterable[str] | None = None, index: ProblemIndex | None = None
    ) -> Iterator[list[SampleRecord]]:
        """Sample records one problem at a time, ordered by sample index, keeping the
        first of any duplicate key (as `load_samples` does)."""
        for group in self.groups(SAMPLES_FILE, SampleRecord.model_validate, keys, index):
            seen: dict[int, SampleRecord] = {}
            for rec in group:
                seen.setdefault(rec.sample_index, rec)
            yield sorted(seen.values(), key=lambda r: r.sample_index)

    def append_probes(self, records: list[ProbeRecord]) -> None:
        """Append probe records to probes.jsonl."""
        self._guard(append_jsonl, self.path / PROBES_FILE, records)

    def load_probes(self) -> list[ProbeRecord]:
        """Read back every complete probe record."""
        return list(self._read(PROBES_FILE, _PROBE_ADAPTER.validate_python))

    def append(self, name: str, records: Sequence[Record]) -> None:
        """Append records to one of the run's record files (the layout's `appended_files`)."""
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
                yield self._validated(path, lineno, row, validate)
        except RunDirError as exc:
            raise RunDirError(f"{exc}; {_DISCARD_HINT}") from None

    @staticmethod
    def _validated(
        path: Path, lineno: int, row: dict[str, Any], validate: Callable[[dict[str, Any]], T]
    ) -> T:
        try:
            return validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "record"
            raise RunDirError(
                f"{path}:{lineno}: corrupt record ({where}: {first['msg']})"
            ) from None

    def drop_problem(self, name: str, key: str) -> None:
        """Rewrite one JSONL file without the records of one problem (atomically,
        streaming line by line)."""
        path = self.path / name
        self._guard(filter_jsonl, path, lambda row: row.get("problem_id") != key)

    def rewrite(self, name: str, records: Sequence[Record]) -> None:
        """Replace one of the run's JSONL files whole and atomically."""
        data = b"".join(dumps(r) + b"\n" for r in records)
        self._guard(atomic_write_bytes, self.path / name, data)

    @contextlib.contextmanager
    def derived_writer(self, name: str) -> Iterator[Callable[[Iterable[Any]], None]]:
        """Write one of the layout's `derived_files` (computed from the records) problem by problem;
        the file is replaced atomically when the block ends without an error."""
        path = self.path / name
        try:
            with atomic_jsonl(path) as write:
                yield write
        except OSError as exc:
            raise RunDirError(f"cannot write {path}: {exc.strerror or exc}") from None

    def derivation_writer(
        self,
    ) -> contextlib.AbstractContextManager[Callable[[Iterable[Any]], None]]:
        """`derived_writer` of derivation.jsonl."""
        return self.derived_writer(DERIVATION_FILE)

    def diversity_writer(
        self,
    ) -> contextlib.AbstractContextManager[Callable[[Iterable[Any]], None]]:
        """`derived_writer` of diversity.jsonl (one line per problem)."""
        return self.derived_writer(DIVERSITY_FILE)

    def drop_derived(self, name: str) -> None:
        """Remove one of the layout's `derived_files` (a report that does not compute it), if
        present."""
        try:
            (self.path / name).unlink(missing_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot remove {self.path / name}: {exc.strerror or exc}") from None

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


def _and(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 2 else items)


def default_run_name(model_spec: str, stamp: str) -> str:
    """`runs/<model>-<stamp>` with the model spec made file-name safe."""
    base = os.path.basename(model_spec.rstrip("/")) or "model"
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in base)
    return f"{safe}-{stamp}"
