"""The stage declarations (`faithcheck.store.stages`) are complete and consistent: adding a
stage is one `Stage`, and the run-directory docs, resume, merge and the hashes follow it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from faithcheck.store import stages
from faithcheck.store.confighash import stage_hashes
from faithcheck.store.rundir import DERIVED_FILES, JSONL_FILES, REPORT_FILE, RUN_FILE
from faithcheck.store.stages import BY_NAME, FILES, HASHED, STAGES, files_of, part_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def _documented() -> list[str]:
    """The files named in the run-directory listing of docs/formats.md."""
    text = DOCS.read_text()
    listing = text[text.index("## Run directory") :]
    listing = listing[listing.index("```") + 3 :]
    listing = listing[: listing.index("```")]
    return re.findall(r"^\s+([\w.]+\.jsonl?)\b", listing, flags=re.M)


def test_every_documented_file_is_declared_by_exactly_one_stage() -> None:
    documented = [f for f in _documented() if f not in (RUN_FILE, REPORT_FILE)]
    owners = {f: [s.name for s in STAGES if f in {x.name for x in s.files}] for f in documented}
    assert {f: o for f, o in owners.items() if len(o) != 1} == {}
    assert sorted(documented) == sorted(FILES), "a declared file is missing from the docs"


def test_stage_and_file_names_are_unique() -> None:
    assert len(BY_NAME) == len(STAGES)
    assert len(FILES) == sum(len(s.files) for s in STAGES)


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_every_stage_is_well_formed(stage: stages.Stage) -> None:
    names = [s.name for s in STAGES]
    if stage.after is not None:  # comes after a stage declared (and run) before it
        assert names.index(stage.after) < names.index(stage.name)
    assert set(stage.covers_when) <= set(stage.covers)
    for f in stage.files:
        # Merge knows what to do with each file: a key for records it deduplicates.
        if f.merge in ("problem", "item"):
            assert f.key, f.name
            assert set(f.optional) <= set(f.key)
        if f.merge == "problem":
            assert "problem_id" in f.key, f.name
        else:  # only records merged problem by problem are reordered
            assert f.order == "file", f.name
    if stage.hashed:
        assert stage.records and (stage.after is None or stage.settings)
    # Every appended file belongs to exactly one hash, which decides when --force keeps it.
    owner = part_of(stage)
    if any(f.appended for f in stage.files):
        assert owner is not None and owner.hashed
        assert {f.name for f in stage.files if f.appended} <= set(files_of(owner))


def test_files_split_into_appended_and_derived() -> None:
    assert sorted(JSONL_FILES + DERIVED_FILES) == sorted(FILES)
    assert set(JSONL_FILES) == {n for h in HASHED for n in files_of(h)}


def test_stage_hashes_are_the_hashed_stages() -> None:
    assert list(stage_hashes({})) == [s.name for s in HASHED] == ["samples", "probes", "judge"]


def test_record_keys() -> None:
    probe = FILES["probes.jsonl"]
    row = {"probe": "truncation", "problem_id": "p", "sample_index": 2}
    assert probe.record_key(row) == ("truncation", "p", 2, None)
    with pytest.raises(KeyError):
        FILES["samples.jsonl"].record_key({"problem_id": "p"})
