"""Stage layouts (`faithcheck.store.layout`): what follows from a set of stage declarations,
and the declarations of `faithcheck score` (`faithcheck.pipeline.runners.LAYOUT`) complete
and consistent, so that the run-directory docs, resume, merge and the hashes follow them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from faithcheck.pipeline.runners import LAYOUT
from faithcheck.store.confighash import stage_hashes
from faithcheck.store.layout import Layout, Stage, StageFile
from faithcheck.store.rundir import REPORT_FILE, RUN_FILE

DOCS = Path(__file__).resolve().parents[2] / "docs" / "formats.md"
STAGES = LAYOUT.stages


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
    assert sorted(documented) == sorted(LAYOUT.files), "a declared file is missing from the docs"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_every_stage_is_well_formed(stage: Stage) -> None:
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
    owner = LAYOUT.part_of(stage)
    if any(f.appended for f in stage.files):
        assert owner is not None and owner.hashed
        assert {f.name for f in stage.files if f.appended} <= set(LAYOUT.files_of(owner))


def test_files_split_into_appended_and_derived() -> None:
    assert sorted(LAYOUT.appended_files + LAYOUT.derived_files) == sorted(LAYOUT.files)
    assert set(LAYOUT.appended_files) == {n for h in LAYOUT.hashed for n in LAYOUT.files_of(h)}


def test_stage_hashes_are_the_hashed_stages() -> None:
    hashed = [s.name for s in LAYOUT.hashed]
    assert list(stage_hashes({}, LAYOUT)) == hashed == ["samples", "probes", "judge"]
    assert LAYOUT.root.name == "samples"
    assert [s.name for s in LAYOUT.later] == ["probes", "judge"]


def test_record_keys() -> None:
    probe = LAYOUT.files["probes.jsonl"]
    row = {"probe": "truncation", "problem_id": "p", "sample_index": 2}
    assert probe.record_key(row) == ("truncation", "p", 2, None)
    with pytest.raises(KeyError):
        LAYOUT.files["samples.jsonl"].record_key({"problem_id": "p"})


# -- a layout of hand-built stages ---------------------------------------------------------

ROOT = Stage("a", (StageFile("a.jsonl", "problem", ("problem_id",)),), after=None, hashed=True)
LATER = Stage(
    "b",
    (StageFile("b.jsonl", "problem", ("problem_id",)),),
    after="a",
    covers=("b",),
    hashed=True,
    settings="b",
    records="b records",
)
PART = Stage("c", (StageFile("c.jsonl", "item", ("item_id",)),), after="b")
DERIVED = Stage("d", (StageFile("d.jsonl", "derived"),), after="a", covers=("d",))


def test_a_layout_follows_from_its_stages() -> None:
    layout = Layout((ROOT, LATER, PART, DERIVED))
    assert layout.root is ROOT and layout.later == (LATER,)
    assert layout.part_of(PART) is LATER and layout.part_of(DERIVED) is None
    assert layout.files_of(LATER) == ("b.jsonl", "c.jsonl")
    assert layout.appended_files == ("a.jsonl", "b.jsonl", "c.jsonl")
    assert layout.derived_files == ("d.jsonl",)
    hashes = stage_hashes({"b": 1, "d": 2}, layout)
    assert list(hashes) == ["a", "b"]
    # A derived stage's keys are in no hash; a later stage's are in its own.
    assert stage_hashes({"b": 1, "d": 3}, layout) == hashes
    assert stage_hashes({"b": 2, "d": 2}, layout)["a"] == hashes["a"]
    assert stage_hashes({"b": 2, "d": 2}, layout)["b"] != hashes["b"]


def test_a_new_derived_stage_changes_no_hash_and_is_computed_again() -> None:
    """What adding a stage like the checks does to the rest of the run directory."""
    extra = Stage("extra", (StageFile("extra.jsonl", "derived"),), after="samples")
    layout = Layout((*STAGES, extra))
    config = {"probes": {"probes": ["truncation"]}, "judge": None}
    assert stage_hashes(config, layout) == stage_hashes(config, LAYOUT)
    assert layout.derived_files == (*LAYOUT.derived_files, "extra.jsonl")
    assert layout.appended_files == LAYOUT.appended_files


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ((ROOT, ROOT), "stage 'a' is declared twice"),
        ((LATER, ROOT), "stage 'b' comes after 'a', not before it"),
        (
            (ROOT, Stage("x", (StageFile("a.jsonl", "derived"),), after="a")),
            "file 'a.jsonl' is declared by two stages",
        ),
    ],
)
def test_an_inconsistent_layout_is_refused(stages: tuple[Stage, ...], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Layout(stages)
