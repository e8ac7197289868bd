"""The vocabulary a run's stages are declared in, and the layout they make together.

A `Stage` says what it writes to the run directory (`StageFile`s) and what its records
depend on; a `Layout` is the stages of a run, in order, with what follows from them. The
stages themselves are declared by the package that runs them, beside their runners
(`faithcheck.pipeline.runners.LAYOUT`), and passed to the code here that acts on a run
directory, which reads them instead of keeping its own lists:

- the config hash (`faithcheck.store.confighash.stage_hashes`): one hash per stage that
  has its own (`hashed`), over the config keys it `covers` plus the inputs of the stage it
  comes `after`;
- resume and `--force` (`faithcheck.store.rundir.RunDir.prepare`): which files a changed
  config discards, which it keeps, and how the refusal names them;
- `faithcheck merge` (`faithcheck.pipeline.merge`): how each file's records are keyed,
  combined across shards and ordered;
- `faithcheck.pipeline.rebuild`: which files are derived (computed again when missing).

Nothing here names a stage: `store` knows how stages are described, not which there are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

MergeMode = Literal["problem", "item", "ledger", "none", "derived"]
"""How `faithcheck merge` combines one file of several shard runs:

- `problem`: each problem's records from the shard that owns it, deduplicated by key;
- `item`: every shard writes the same items; one copy of each, by key;
- `ledger`: every shard's lines, shard by shard, nothing deduplicated;
- `none`: not merged (it means nothing outside the run that wrote it);
- `derived`: not merged; computed again from the merged records (`rebuild`).
"""

MergeOrder = Literal["dataset", "key", "file"]
"""The order of a merged file's records: problems in dataset order (then file order),
sorted by record key, or in the order of the first shard's file."""


@dataclass(frozen=True)
class StageFile:
    """One file a stage writes to the run directory."""

    name: str
    """File name in the run directory."""
    merge: MergeMode
    """How `faithcheck merge` combines the shards' copies."""
    key: tuple[str, ...] = ()
    """Fields that identify a record (merge keeps the first of each key); () for a file
    whose lines are not deduplicated."""
    optional: tuple[str, ...] = ()
    """Fields of `key` a record may lack (read as None)."""
    order: MergeOrder = "file"
    """Order of the merged file's records."""

    @property
    def appended(self) -> bool:
        """Whether records are appended as produced (repaired on resume) rather than the
        file being written whole from other records."""
        return self.merge != "derived"

    def record_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """The key of one record of this file.

        Raises:
            KeyError: the record lacks a required key field.
        """
        return tuple(row.get(f) if f in self.optional else row[f] for f in self.key)


@dataclass(frozen=True)
class Stage:
    """One stage of `faithcheck score`: what it writes and what its records depend on."""

    name: str
    """Its name (the key of its hash in run.json `stage_hashes`, when it has one)."""
    files: tuple[StageFile, ...]
    """The files it writes."""
    after: str | None
    """The earlier stage whose records it reads (and whose inputs its hash covers)."""
    covers: tuple[str, ...] = ()
    """Keys of run.json `config` its records depend on, beyond those of `after`."""
    covers_when: Mapping[str, Callable[[Mapping[str, Any]], bool]] = field(default_factory=dict)
    """Keys of `covers` that count only when the predicate holds on the config (else their
    place in the hash holds None)."""
    hashed: bool = False
    """Whether it has its own hash in `stage_hashes`: its records are kept by `--force`
    while the hash matches. A stage without one belongs to its `after` stage's hash
    (`part_of`) or, when all its files are derived, is computed again on any change."""
    settings: str = ""
    """Its settings in words, for `--force`'s refusal ('different probe settings')."""
    records: str = ""
    """Its records in words ('probe records'), for what `--force` keeps."""


@dataclass(frozen=True)
class Layout:
    """The stages of a run, in the order it runs them, and what follows from them.

    Raises:
        ValueError: two stages or two files share a name, or a stage comes `after` one
            not declared before it.
    """

    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        files: set[str] = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stage {stage.name!r} is declared twice")
            if stage.after is not None and stage.after not in seen:
                raise ValueError(f"stage {stage.name!r} comes after {stage.after!r}, not before it")
            for f in stage.files:
                if f.name in files:
                    raise ValueError(f"file {f.name!r} is declared by two stages")
                files.add(f.name)
            seen.add(stage.name)

    @cached_property
    def by_name(self) -> dict[str, Stage]:
        """Every stage by name."""
        return {s.name: s for s in self.stages}

    @cached_property
    def files(self) -> dict[str, StageFile]:
        """Every stage file by name."""
        return {f.name: f for s in self.stages for f in s.files}

    def part_of(self, stage: Stage) -> Stage | None:
        """The hashed stage whose hash decides whether `stage`'s records are kept: itself,
        or the nearest stage it comes after that has a hash (None for a derived stage,
        whose files are computed again whenever the config changes)."""
        if all(not f.appended for f in stage.files):
            return None
        while not stage.hashed:
            if stage.after is None:
                return None
            stage = self.by_name[stage.after]
        return stage

    @cached_property
    def hashed(self) -> tuple[Stage, ...]:
        """The stages with a hash of their own in run.json `stage_hashes`, in run order."""
        return tuple(s for s in self.stages if s.hashed)

    @cached_property
    def root(self) -> Stage:
        """The first hashed stage (the samples): when its hash changes, nothing of the run
        is kept."""
        return next(s for s in self.hashed if s.after is None)

    @cached_property
    def later(self) -> tuple[Stage, ...]:
        """The hashed stages after the first: `--force` redoes only those whose hash
        changed."""
        return tuple(s for s in self.hashed if s.after is not None)

    def files_of(self, hashed: Stage) -> tuple[str, ...]:
        """The appended files whose records `hashed`'s hash decides (its own and those of
        the stages that are part of it)."""
        return tuple(
            f.name for s in self.stages if self.part_of(s) is hashed for f in s.files if f.appended
        )

    @cached_property
    def appended_files(self) -> tuple[str, ...]:
        """Files whose records are appended as produced: repaired (torn tail cut) on
        resume, removed by `--force`."""
        return tuple(f.name for f in self.files.values() if f.appended)

    @cached_property
    def derived_files(self) -> tuple[str, ...]:
        """Files the stages compute from the records (written whole, atomically; removed
        with the records they derive from, computed again when missing)."""
        return tuple(f.name for f in self.files.values() if not f.appended)
