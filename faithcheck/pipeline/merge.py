"""`faithcheck merge`: combine the shard runs of one `score --shard i/N` job into one run.

Each input must be a finished shard run (report.json present) of the same job: run.json
configs identical except `shard` (and the dataset hash, which `score` takes over the
shard's own problems), distinct shard indices of one N. The merged run directory gets:

- run.json: the shards' config with `shard` null and the dataset hash of the whole
  (limited) dataset, which is the config of the unsharded run with the same settings, so
  the config hash is the same as that run's; plus `merged_from` (not hashed).
- samples / probes / judge / strategy JSONL: every shard's records, deduplicated by key,
  in the order an unsharded run writes them (bootstrap CIs resample problems in file
  order, so the order is part of the result); no problem may appear in two shards.
  They stream: each shard file is scanned once into a `ProblemIndex` (byte spans per
  problem), then each merged file is written problem by problem from the owning shard,
  so memory grows with the number of problems, not of records.
- calibration.jsonl: one copy per calibration item (every shard labels the same items).
- report.json: rebuilt from those records (`faithcheck.pipeline.rebuild`), equal to the
  unsharded run's report except timings, throughput (both summed over the shards), run_id and
  run_dir.

The dataset is read again (it is small next to the records, and no model is loaded) to
recover the problem order, to check that it still hashes as the shards recorded, and to
know which shard indices hold problems at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from faithcheck.errors import DataError, RunDirError, UsageError
from faithcheck.pipeline.options import ScoreOptions
from faithcheck.pipeline.rebuild import read_run, rebuild
from faithcheck.pipeline.runners import LAYOUT
from faithcheck.problems.load import dataset_hash
from faithcheck.problems.options import in_shard
from faithcheck.records import Problem
from faithcheck.report import Report, Throughput, Timings
from faithcheck.store.confighash import config_hash, stage_hashes
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.jsonio import atomic_file, parse_line, read_jsonl_lines
from faithcheck.store.rundir import (
    REPORT_FILE,
    RUN_FILE,
    SAMPLES_FILE,
    RunDir,
    RunInfo,
)
from faithcheck.store.runmeta import file_hash
from faithcheck.verdict.core import GateSpec

# Options that say where and how a shard ran, not what it computed: they may differ.
_OPERATIONAL = frozenset(
    {
        "options.out",
        "options.force",
        "options.shard",
        "options.tensor_parallel_size",
        "options.gpu_memory_utilization",
        "options.max_concurrency",
        "options.base_url",
        "options.api_key_env",
        "options.chunk_size",
        "options.judge.base_url",
        "options.judge.api_key_env",
    }
)
# Differ between shards by construction (checked against the dataset instead).
_PER_SHARD = frozenset({"shard", "dataset_sha256"})

# How each file is merged, keyed and ordered is declared with its stage
# (`faithcheck.pipeline.runners.LAYOUT`).
_PER_PROBLEM = tuple(f.name for f in LAYOUT.files.values() if f.merge == "problem")
_PER_ITEM = tuple(f.name for f in LAYOUT.files.values() if f.merge == "item")
_LEDGERS = tuple(f.name for f in LAYOUT.files.values() if f.merge == "ledger")


@dataclass(frozen=True)
class Shard:
    """One finished shard run given to `merge`."""

    path: Path
    """Its run directory."""
    info: RunInfo
    """Its run.json."""
    index: int
    """i of `--shard i/N`."""
    count: int
    """N of `--shard i/N`."""
    report: dict[str, Any]
    """Its report.json."""

    @property
    def options(self) -> ScoreOptions:
        """The options the shard ran with."""
        return ScoreOptions.model_validate(self.info.config["options"])


def merge_runs(
    shard_dirs: Sequence[Path],
    out: Path,
    *,
    force: bool = False,
    allow_partial: bool = False,
    gate: GateSpec | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Report:
    """Merge finished shard runs into the run directory `out` and return its report.

    Args:
        shard_dirs: Run directories written by `score --shard i/N` (any order).
        out: The merged run directory (created; an existing run in it needs `force`).
        force: Replace a run already in `out`.
        allow_partial: Merge even when some shard indices that hold problems are
            missing (with a warning; the config hash then differs from a full run's).
        gate: Verdict checks (`GateSpec`); the defaults when None.
        say: Receives warnings and the one-line outcome.

    Raises:
        UsageError: an input is not a finished shard run, the shards belong to different
            jobs, shard indices repeat or are missing, a problem sits in two shards or in
            the wrong one, or `out` is one of the inputs.
        DataError: the dataset cannot be read or no longer matches the shards'.
        RunDirError: `out` cannot be written, is locked, or already holds a run.
    """
    if not shard_dirs:
        raise UsageError("merge needs at least one shard directory")
    shards = sorted((_read_shard(Path(p)) for p in shard_dirs), key=lambda s: s.index)
    _check_shards(shards, out)
    first = shards[0]
    count = first.count
    _check_versions(shards, say)
    problems = _problems(first)
    owner = {p.id: _shard_of(p.id, count) for p in problems}
    _check_dataset(shards, problems)
    holding = sorted(set(owner.values()))
    missing = [i for i in holding if i not in {s.index for s in shards}]
    if missing and not allow_partial:
        raise UsageError(
            f"shard{'s' if len(missing) > 1 else ''} {_spec_list(missing, count)} "
            f"{'are' if len(missing) > 1 else 'is'} missing; pass every shard, or "
            "--allow-partial to merge what is there"
        )
    present = {s.index for s in shards}
    covered = [p for p in problems if owner[p.id] in present]
    if missing:
        say(
            f"warning: shards {_spec_list(missing, count)} are missing: the merged run covers "
            f"{len(covered)} of {len(problems)} problems and is not comparable to a full run"
        )
    position = {p.id: i for i, p in enumerate(problems)}
    files, sampled = _merge_records(shards, owner, position, say)
    _check_complete(shards, covered, owner, sampled)
    info = _run_info(shards, out, dataset_hash(covered), len(covered), missing)
    report = _write(out, files, info, shards, force=force, gate=gate)
    say(
        f"merged {len(shards)} shards ({len(covered)} problems, {report.sampling.samples} "
        f"samples) into {out}"
    )
    return report


def _read_shard(path: Path) -> Shard:
    if not path.is_dir():
        raise UsageError(f"{path} is not a run directory")
    info = read_run(path)
    if _in_use(path):
        raise UsageError(f"a faithcheck run is writing to {path}; merge it once it has finished")
    if not (path / REPORT_FILE).is_file():
        raise UsageError(
            f"{path} is not a finished run (no {REPORT_FILE}); finish it with the same "
            "`faithcheck score` command first"
        )
    spec = info.config.get("shard")
    if spec is None:
        raise UsageError(f"{path} is not a shard run (it was scored without --shard)")
    if (
        not isinstance(spec, list)
        or len(spec) != 2
        or not all(isinstance(x, int) for x in spec)
        or not 0 <= spec[0] < spec[1]
    ):
        raise UsageError(f"{path}/run.json: invalid shard {spec!r}")
    try:
        report = orjson.loads((path / REPORT_FILE).read_bytes())
        Timings.model_validate(report["timings"])
        Throughput.model_validate(report["throughput"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise UsageError(f"{path}/{REPORT_FILE} is not a valid report") from None
    return Shard(path, info, spec[0], spec[1], report)


def _in_use(path: Path) -> bool:
    """Whether a `score` holds the run directory's lock (checked, not taken: the shard
    may be read-only)."""
    try:
        fh = (path / ".lock").open("rb")
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _check_shards(shards: Sequence[Shard], out: Path) -> None:
    first = shards[0]
    for s in shards[1:]:
        if s.count != first.count:
            raise UsageError(
                f"{first.path} is shard {first.index}/{first.count} but {s.path} is shard "
                f"{s.index}/{s.count}: merge shards of one N"
            )
    seen: dict[int, Path] = {}
    for s in shards:
        if s.index in seen:
            raise UsageError(
                f"{seen[s.index]} and {s.path} are both shard {s.index}/{s.count}; "
                "pass each shard once"
            )
        seen[s.index] = s.path
    for s in shards[1:]:
        key = first_difference(first.info.config, s.info.config)
        if key is not None:
            raise UsageError(
                f"{first.path} and {s.path} differ in config key {key!r}: "
                "they are not shards of one run"
            )
    target = out.resolve()
    for s in shards:
        if s.path.resolve() == target:
            raise UsageError(f"--out {out} is one of the shards; merge into a new directory")


def first_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """The first dotted key whose value differs between two run.json configs, ignoring
    the keys that differ between shards of one run; None when none does.

    Keys are taken in sorted order, the hashed settings before the raw `options` (which
    repeat most of them), so the name points at the setting that changes results.
    """
    fa, fb = _flatten(a), _flatten(b)
    for key in sorted(fa.keys() | fb.keys(), key=lambda k: (k.startswith("options."), k)):
        if key in _PER_SHARD or key in _OPERATIONAL:
            continue
        if key not in fa or key not in fb or fa[key] != fb[key]:
            return key
    return None


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flat.update(_flatten(item, f"{name}."))
        else:
            flat[name] = item
    return flat


def _check_versions(shards: Sequence[Shard], say: Callable[[str], None]) -> None:
    base = shards[0].info.versions
    for s in shards[1:]:
        differ = sorted(
            k for k in base.keys() | s.info.versions.keys() if base.get(k) != s.info.versions.get(k)
        )
        if differ:
            k = differ[0]
            say(
                f"warning: {s.path} ran with {k} {s.info.versions.get(k)}, {shards[0].path} "
                f"with {base.get(k)}; run.json keeps the versions of shard {shards[0].index}"
            )


def _problems(shard: Shard) -> list[Problem]:
    """The unsharded problem list of the job, in dataset order (after --limit)."""
    opts = shard.options.problems
    if opts.from_samples:
        if not Path(opts.from_samples).is_file():
            raise DataError(f"{opts.from_samples}: the shards' rollouts file is gone")
        if file_hash(opts.from_samples) != shard.info.config.get("from_samples"):
            raise DataError(f"{opts.from_samples} changed since the shards were scored")
    problems, _ = opts.read()
    return problems[: opts.limit] if opts.limit is not None else problems


def _check_dataset(shards: Sequence[Shard], problems: Sequence[Problem]) -> None:
    whole = dataset_hash(problems)
    for s in shards:
        own = dataset_hash(p for p in problems if in_shard(p.id, s.index, s.count))
        # `score` hashes the shard's own problems; a hash of the whole list is accepted too.
        if s.info.config.get("dataset_sha256") not in {own, whole}:
            given = s.options.problems
            raise DataError(
                f"the dataset {given.from_samples or given.dataset!r} no longer "
                f"matches the one {s.path} was scored on"
            )


def _shard_of(problem_id: str, count: int) -> int:
    return next(i for i in range(count) if in_shard(problem_id, i, count))


def _spec_list(indices: Sequence[int], count: int) -> str:
    return ", ".join(f"{i}/{count}" for i in indices)


class _Index(ProblemIndex):
    """Where each problem's lines sit in one record file of one shard, with the checks
    and messages of `merge` (`DataError`s naming the file) and raw lines read back."""

    def __init__(self, shard: Shard, name: str) -> None:
        self.shard = shard
        self.name = name
        self._record_key = LAYOUT.files[name].record_key
        super().__init__(shard.path / name)

    def _scan(self) -> None:
        if self.path.is_file():  # a missing file (or anything else) holds no records
            super()._scan()

    def _key_of(self, line: bytes, lineno: int) -> str:
        return self._record(line, lineno)[1]

    def _record(self, line: bytes, lineno: int) -> tuple[tuple[Any, ...], str]:
        """The record key and problem id of one line; DataError when it is not a record
        (RunDirError when it is not a JSON object)."""
        row = parse_line(line, self.path, lineno)
        try:
            key = self._record_key(row)
            hash(key)
        except (KeyError, TypeError):
            raise DataError(f"{self.path}: a line is not a {self.name} record") from None
        pid = row["problem_id"]
        if not isinstance(pid, str):
            raise DataError(f"{self.shard.path}: problem {pid!r} is not in the dataset")
        return key, pid

    def records(self, pid: str) -> Iterator[tuple[tuple[Any, ...], bytes]]:
        """(record key, raw line) of every record of one problem, in file order."""
        try:
            for lineno, line in self.lines(pid):
                key, owner = self._record(line, lineno)
                if owner != pid:
                    raise DataError(f"{self.path} changed while it was being merged")
                yield key, line
        except RunDirError as exc:
            raise DataError(str(exc)) from None


_Lines = Callable[[], Iterator[bytes]]
"""A merged file's content, produced piece by piece each time it is called."""


def _merge_records(
    shards: Sequence[Shard],
    owner: Mapping[str, int],
    position: Mapping[str, int],
    say: Callable[[str], None],
) -> tuple[dict[str, _Lines], set[str]]:
    """The merged files that have records (each a function streaming its lines,
    deduplicated and in the order an unsharded run has), and the problems that have
    samples.

    Scans every shard's record files once into `_Index`es (a few numbers per problem) to
    check which shard holds which problem; the lines themselves are read back one problem
    at a time while the merged files are written. Calibration (a fixed, small number of
    items, keyed by item, not problem) is merged in memory.
    """
    indexes: dict[str, dict[int, _Index]] = {name: {} for name in _PER_PROBLEM}
    holders: dict[str, list[Shard]] = {}
    items: dict[str, _Items] = {name: _Items(name) for name in _PER_ITEM}
    for s in shards:
        for name in _PER_PROBLEM:
            index = indexes[name][s.index] = _Index(s, name)
            for pid in index:
                who = holders.setdefault(pid, [])
                if not who or who[-1] is not s:
                    who.append(s)
        for merged in items.values():
            merged.add(s)
    _check_owners(holders, owner)
    del holders
    for merged in items.values():
        if merged.differing:
            say(
                f"warning: {merged.differing} calibration labels differ between shards; "
                f"{merged.name} keeps those of shard {shards[0].index}"
            )
    files: dict[str, _Lines] = {}
    for name, held in indexes.items():
        problems = _problems_in_order(name, held.values(), position)
        if problems:
            files[name] = functools.partial(_problem_lines, name, problems, held, owner, position)
    for name, merged in items.items():
        if merged.lines:
            files[name] = functools.partial(iter, merged.lines)
    for name in _LEDGERS:
        if any((s.path / name).is_file() for s in shards):
            # A ledger is every call each shard paid for (or took from the cache): all of
            # them, shard by shard, nothing deduplicated.
            files[name] = functools.partial(_ledger_lines, name, shards)
    sampled = {pid for index in indexes[SAMPLES_FILE].values() for pid in index}
    return files, sampled


class _Items:
    """One file of items every shard writes alike (the calibration labels: a fixed, small
    number, keyed by item, not problem), merged in memory: one copy of each."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.lines: list[bytes] = []
        self.differing = 0
        """Items whose record differs from the first shard's."""

    def add(self, shard: Shard) -> None:
        """Take the items of one more shard (its first copy of each)."""
        seen: set[tuple[Any, ...]] = set()
        for _, row, line in read_jsonl_lines(shard.path / self.name):
            try:
                key = LAYOUT.files[self.name].record_key(row)
                hash(key)
            except (KeyError, TypeError):
                raise DataError(
                    f"{shard.path / self.name}: a line is not a {self.name} record"
                ) from None
            if key in seen:
                continue
            seen.add(key)
            if key in self.rows:
                self.differing += self.rows[key] != row
                continue
            self.rows[key] = row
            self.lines.append(line)


def _ledger_lines(name: str, shards: Sequence[Shard]) -> Iterator[bytes]:
    return (
        line
        for s in sorted(shards, key=lambda s: s.index)
        for _, _, line in read_jsonl_lines(s.path / name)
    )


def _problems_in_order(
    name: str, held: Iterable[ProblemIndex], position: Mapping[str, int]
) -> list[str]:
    """The problems on record in one merged file, in the order of their records (the
    problem part of `_order`): dataset position for samples and probes, problem id for
    judge labels and strategy clusters."""
    pids = {pid for index in held for pid in index}
    if LAYOUT.files[name].order == "dataset":
        return sorted(pids, key=position.__getitem__)
    return sorted(pids)


def _problem_lines(
    name: str,
    problems: Sequence[str],
    held: Mapping[int, _Index],
    owner: Mapping[str, int],
    position: Mapping[str, int],
) -> Iterator[bytes]:
    """The merged lines of one record file, problem by problem in `problems`' order,
    each problem's lines read from its shard, deduplicated and ordered by `_order`."""
    for pid in problems:
        seen: set[tuple[Any, ...]] = set()
        rows: list[tuple[tuple[Any, ...], bytes]] = []
        for key, line in held[owner[pid]].records(pid):
            if key not in seen:
                seen.add(key)
                rows.append((key, line))
        rows.sort(key=lambda r: _order(name, r[0], position))  # stable: ties keep file order
        yield b"".join(line for _, line in rows)


def _check_owners(holders: Mapping[str, Sequence[Shard]], owner: Mapping[str, int]) -> None:
    """Every problem on record is in the dataset, in one shard, and in its own shard."""
    for pid, who in holders.items():
        if pid not in owner:
            raise DataError(f"{who[0].path}: problem {pid!r} is not in the dataset")
        if len(who) > 1:
            raise UsageError(
                f"problem {pid!r} appears in two shards: {who[0].path} and {who[1].path}"
            )
        if owner[pid] != who[0].index:
            raise UsageError(
                f"{who[0].path} holds problem {pid!r}, which belongs to shard "
                f"{owner[pid]}/{who[0].count}"
            )


def _order(name: str, key: tuple[Any, ...], position: Mapping[str, int]) -> tuple[Any, ...]:
    """Sort key of a merged record (Python's sort is stable: ties keep file order).

    Samples and probes are written problem by problem in dataset order; judge labels
    and strategy clusters in (problem id, sample index) order (as `judge_all` asks);
    calibration items in their construction order, which every shard shares.
    """
    spec = LAYOUT.files[name]
    if spec.order == "dataset":
        return (position[key[spec.key.index("problem_id")]],)
    if spec.order == "key":
        return key
    return ()


def _check_complete(
    shards: Sequence[Shard], covered: Sequence[Problem], owner: Mapping[str, int], sampled: set[str]
) -> None:
    for s in shards:
        lacking = [p.id for p in covered if owner[p.id] == s.index and p.id not in sampled]
        if lacking:
            raise UsageError(
                f"{s.path} has no samples for {len(lacking)} of its problems (e.g. "
                f"{lacking[0]!r}); finish it with the same `faithcheck score` command first"
            )


def _run_info(
    shards: Sequence[Shard], out: Path, data_hash: str, problems: int, missing: Sequence[int]
) -> RunInfo:
    first = shards[0].info
    config = dict(first.config)
    config["options"] = dict(config["options"]) | {"shard": None, "out": str(out), "force": False}
    config["shard"] = None
    config["dataset_sha256"] = data_hash
    if missing:
        # Hashed: a partial merge must never pass for the full run.
        config["merged_shards"] = {
            "count": shards[0].count,
            "indices": [s.index for s in shards],
        }
    digest = config_hash(config)
    config["merged_from"] = [str(s.path.resolve()) for s in shards]
    return first.model_copy(
        update={
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": sys.argv,
            "config": config,
            "config_hash": digest,
            "stage_hashes": stage_hashes(config, LAYOUT),
            "dataset": first.dataset | {"problems": problems, "sha256": data_hash},
        }
    )


def _effort(shards: Sequence[Shard]) -> dict[str, Any]:
    """Timings and throughput of the merged run: the shards' summed (machine time, not
    the wall time of a parallel job)."""
    timings = [Timings.model_validate(s.report["timings"]) for s in shards]
    summed = Timings(**{f: sum(getattr(t, f) for t in timings) for f in Timings.model_fields})
    tokens = sum(
        Throughput.model_validate(s.report["throughput"]).completion_tokens for s in shards
    )
    rate = tokens / summed.sampling_s if tokens and summed.sampling_s > 0 else None
    return {
        "timings": summed,
        "throughput": Throughput(completion_tokens=tokens, tokens_per_s=rate),
    }


def _write(
    out: Path,
    files: Mapping[str, _Lines],
    info: RunInfo,
    shards: Sequence[Shard],
    *,
    force: bool,
    gate: GateSpec | None,
) -> Report:
    """Records first (each file streamed, see `_merge_records`), run.json next,
    report.json last (its presence marks a finished run)."""
    run = RunDir(out)
    run.open()
    try:
        try:
            existing = run.read_run_info()
        except RunDirError:
            if not force:
                raise
            existing = {}
        if existing is not None:
            if not force:
                raise RunDirError(
                    f"--out {out} already holds a run; choose another --out, or --force "
                    "to replace it"
                )
            run.prepare(info.config_hash, LAYOUT, force=True)  # removes the old run's files
        written = list(files)
        try:
            for name in written:
                try:
                    _atomic_write_lines(out / name, files[name]())
                except OSError as exc:
                    raise RunDirError(f"cannot write {out / name}: {exc.strerror or exc}") from None
            run.write_run_info(info)
            return rebuild(run, gate=gate, **_effort(shards))
        except BaseException:
            # Leave no half-merged run behind (an empty directory this call made goes too).
            for name in (*written, RUN_FILE, *LAYOUT.derived_files, REPORT_FILE):
                with contextlib.suppress(OSError):
                    (out / name).unlink()
            raise
    finally:
        run.release()


def _atomic_write_lines(path: Path, chunks: Iterable[bytes]) -> None:
    """Write a whole file from pieces, atomically and streamed (`jsonio.atomic_file`)."""
    with atomic_file(path) as fh:
        for chunk in chunks:
            fh.write(chunk)
