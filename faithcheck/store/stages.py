"""The stages of a run, declared once: their files, hashes, dependencies and merge keys.

Each `Stage` says what it writes to the run directory and what its records depend on;
the code that acts on a run directory reads these declarations instead of keeping its own
lists:

- the config hash (`faithcheck.store.confighash.stage_hashes`): one hash per stage that
  has its own (`hashed`), over the config keys it `covers` plus the inputs of the stage it
  comes `after`;
- resume and `--force` (`faithcheck.store.rundir.RunDir.prepare`): which files a changed
  config discards, which it keeps, and how the refusal names them;
- `faithcheck merge` (`faithcheck.pipeline.merge`): how each file's records are keyed,
  combined across shards and ordered;
- `faithcheck.pipeline.rebuild`: which files are derived (computed again when missing);
- the running side (`faithcheck.pipeline.runners`): one `Runner` per stage that writes
  files, named as here and listed in `RUNNERS` in the order of `STAGES` (a test checks
  they agree).

Adding a stage is one `Stage` in `STAGES` and its `Runner` in `RUNNERS` (with the code
that writes its files, in the package that computes them).

The declarations are data: they import nothing from the stages themselves, so `store`
reads them without importing the packages above it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


def _llm_mistakes(config: Mapping[str, Any]) -> bool:
    """The judge writes the mistakes probe's wrong steps: the probe records depend on it."""
    probes = config.get("probes") or {}
    return probes.get("mistakes") == "llm" and "mistakes" in probes.get("probes", [])


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

STAGES: tuple[Stage, ...] = (
    Stage(
        name="samples",
        files=(
            StageFile(SAMPLES_FILE, "problem", ("problem_id", "sample_index"), order="dataset"),
        ),
        after=None,
        covers=(
            "model_sha256",
            "backend",
            "dtype",
            "max_model_len",
            "dataset_sha256",
            "from_samples",
            "limit",
            "shard",
            "sampling",
            "merged_shards",  # a merge of only some shards
        ),
        hashed=True,
        records="samples",
    ),
    Stage(
        name="probes",
        files=(
            StageFile(
                PROBES_FILE,
                "problem",
                ("probe", "problem_id", "sample_index", "step_index"),
                optional=("step_index",),
                order="dataset",
            ),
        ),
        after="samples",
        covers=("probes", "judge"),
        covers_when={"judge": _llm_mistakes},
        hashed=True,
        settings="probe",
        records="probe records",
    ),
    Stage(
        name="judge",
        files=(
            StageFile(
                JUDGE_FILE,
                "problem",
                ("problem_id", "sample_index", "judge"),
                optional=("judge",),
                order="key",
            ),
            # The ledger is every call each shard paid for (or took from the cache).
            StageFile(JUDGE_CALLS_FILE, "ledger"),
            # Batch ids of the provider that ran a shard's judge: nothing to resume once
            # the shard finished.
            StageFile(JUDGE_BATCHES_FILE, "none"),
        ),
        after="samples",
        covers=("judge",),
        hashed=True,
        settings="judge",
        records="judge labels",
    ),
    Stage(
        name="calibration",
        files=(
            StageFile(
                CALIBRATION_FILE,
                "item",
                ("item_id", "judge"),
                optional=("judge",),
                order="file",
            ),
        ),
        after="judge",
    ),
    Stage(
        name="strategy",
        files=(StageFile(STRATEGY_FILE, "problem", ("problem_id",), order="key"),),
        after="judge",
    ),
    Stage(
        name="checks",
        files=(StageFile(DERIVATION_FILE, "derived"), StageFile(SUPPORT_FILE, "derived")),
        after="samples",
    ),
    Stage(
        name="diversity",
        files=(StageFile(DIVERSITY_FILE, "derived"),),
        after="judge",
        covers=("diversity",),
    ),
)
"""Every stage, in the order `faithcheck score` runs them."""

BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}
FILES: dict[str, StageFile] = {f.name: f for s in STAGES for f in s.files}
"""Every stage file by name."""


def part_of(stage: Stage) -> Stage | None:
    """The hashed stage whose hash decides whether `stage`'s records are kept: itself, or
    the nearest stage it comes after that has a hash (None for a derived stage, whose
    files are computed again whenever the config changes)."""
    if all(not f.appended for f in stage.files):
        return None
    while not stage.hashed:
        if stage.after is None:
            return None
        stage = BY_NAME[stage.after]
    return stage


HASHED: tuple[Stage, ...] = tuple(s for s in STAGES if s.hashed)
"""The stages with a hash of their own in run.json `stage_hashes`, in run order."""
ROOT = next(s for s in HASHED if s.after is None)
"""The first stage (the samples): when its hash changes, nothing of the run is kept."""
LATER: tuple[Stage, ...] = tuple(s for s in HASHED if s.after is not None)
"""The hashed stages after the first: `--force` redoes only those whose hash changed."""


def files_of(hashed: Stage) -> tuple[str, ...]:
    """The appended files whose records `hashed`'s hash decides (its own and those of
    the stages that are part of it)."""
    return tuple(f.name for s in STAGES if part_of(s) is hashed for f in s.files if f.appended)


APPENDED_FILES: tuple[str, ...] = tuple(f.name for f in FILES.values() if f.appended)
"""Files whose records are appended as produced: repaired (torn tail cut) on resume,
removed by `--force`."""
DERIVED_FILES: tuple[str, ...] = tuple(f.name for f in FILES.values() if not f.appended)
"""Files the stages compute from the records (written whole, atomically; removed with
the records they derive from, computed again when missing)."""
