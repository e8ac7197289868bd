"""Tests for the run directory (`faithcheck.store.rundir`) and atomic JSON writes
(`faithcheck.store.jsonio`).

Covers `open` (the single-writer lock, refusal of files and foreign directories), `prepare`
(fresh / resume / config-mismatch / force, torn-tail repair on resume), `release` (removing
a directory it created and never wrote to), the samples round trip with torn-tail and
duplicate handling, `repair_jsonl`, and that a failed `write_json` leaves the previous file
and no temporary file behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from faithcheck.errors import RunDirError
from faithcheck.pipeline.runners import LAYOUT
from faithcheck.sampling import SampleRecord
from faithcheck.store import jsonio
from faithcheck.store.rundir import (
    CALIBRATION_FILE,
    DERIVATION_FILE,
    DIVERSITY_FILE,
    JUDGE_FILE,
    PROBES_FILE,
    REPORT_FILE,
    RUN_FILE,
    SAMPLES_FILE,
    STRATEGY_FILE,
    RunDir,
    RunInfo,
)


def _info(config_hash: str) -> RunInfo:
    return RunInfo(
        schema_version="0.1",
        faithcheck_version="0.0.0",
        git_commit=None,
        created_at="2025-01-01T00:00:00+00:00",
        argv=["faithcheck", "score"],
        config={"seed": 0},
        config_hash=config_hash,
        model={"spec": "m"},
        dataset={"spec": "d"},
        versions={"python": "3.11"},
        host={"cpus": 1},
    )


def _rec(pid: str, index: int, completion: str = "ok") -> SampleRecord:
    return SampleRecord(
        problem_id=pid,
        sample_index=index,
        seed=1,
        prompt_tokens=2,
        completion=completion,
        completion_token_ids=[1, 2],
        finish_reason="stop",
        steps=[],
        answer="1",
        answer_rule="boxed",
        correct=True,
        verify_method="exact",
    )


@pytest.fixture
def opened() -> Iterator[list[RunDir]]:
    """Collects RunDirs a test opens and releases their locks afterwards."""
    dirs: list[RunDir] = []
    yield dirs
    for d in dirs:
        d.release()


def _open(opened: list[RunDir], path: Path, config_hash: str, *, force: bool = False) -> bool:
    """`open` then `prepare`, as `run_score` does; the RunDir is released after the test."""
    run = RunDir(path)
    opened.append(run)
    run.open()
    return run.prepare(config_hash, LAYOUT, force=force)


def _open_only(opened: list[RunDir], path: Path) -> RunDir:
    run = RunDir(path)
    opened.append(run)
    run.open()
    return run


def _is_locked(path: Path) -> bool:
    """Whether some open file description holds the run directory's lock."""
    with (path / ".lock").open("ab") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def _finished_run(path: Path, config_hash: str = "H") -> None:
    """A released run directory holding run.json, samples and a report."""
    run = RunDir(path)
    run.open()
    assert run.prepare(config_hash, LAYOUT, force=False) is False
    run.write_run_info(_info(config_hash))
    run.append_samples([_rec("p", 0)])
    run.write_report(_info("report-stand-in"))
    run.release()


# --- open ----------------------------------------------------------------------------------


def test_open_creates_and_locks_the_directory(tmp_path: Path, opened: list[RunDir]) -> None:
    path = tmp_path / "new" / "run"
    _open_only(opened, path)
    assert path.is_dir()
    assert _is_locked(path)


def test_open_reopens_an_empty_directory(tmp_path: Path, opened: list[RunDir]) -> None:
    (tmp_path / "r").mkdir()
    assert _open(opened, tmp_path / "r", "H") is False


def test_open_reopens_an_existing_run(tmp_path: Path, opened: list[RunDir]) -> None:
    _finished_run(tmp_path / "r")
    _open_only(opened, tmp_path / "r")
    assert opened[0].read_run_info() == _info("H").model_dump(mode="json")


# --- prepare -------------------------------------------------------------------------------


def test_fresh_directory_is_not_a_resume(tmp_path: Path, opened: list[RunDir]) -> None:
    path = tmp_path / "new" / "run"
    assert _open(opened, path, "H") is False
    assert path.is_dir()


def test_same_config_resumes(tmp_path: Path, opened: list[RunDir]) -> None:
    _finished_run(tmp_path / "r")
    assert _open(opened, tmp_path / "r", "H") is True
    assert [r.problem_id for r in opened[0].load_samples()] == ["p"]


def test_other_config_is_refused(tmp_path: Path, opened: list[RunDir]) -> None:
    _finished_run(tmp_path / "r")
    with pytest.raises(RunDirError, match="different configuration"):
        _open(opened, tmp_path / "r", "other")
    assert (tmp_path / "r" / SAMPLES_FILE).exists()


@pytest.mark.parametrize("config_hash", ["other", "H"])
def test_force_discards_the_old_run(tmp_path: Path, opened: list[RunDir], config_hash: str) -> None:
    _finished_run(tmp_path / "r")
    assert _open(opened, tmp_path / "r", config_hash, force=True) is False
    for name in (SAMPLES_FILE, REPORT_FILE, RUN_FILE):
        assert not (tmp_path / "r" / name).exists(), name
    assert opened[0].load_samples() == []


def test_second_writer_is_locked_out(tmp_path: Path, opened: list[RunDir]) -> None:
    _finished_run(tmp_path / "r")
    _open_only(opened, tmp_path / "r")
    with pytest.raises(RunDirError, match="another faithcheck run"):
        _open_only(opened, tmp_path / "r")  # refused by open(), before any prepare()
    assert (tmp_path / "r" / SAMPLES_FILE).exists()


def test_second_writer_is_locked_out_of_a_fresh_directory(
    tmp_path: Path, opened: list[RunDir]
) -> None:
    _open_only(opened, tmp_path / "r")
    with pytest.raises(RunDirError, match="another faithcheck run"):
        _open_only(opened, tmp_path / "r")
    assert (tmp_path / "r").is_dir()  # the refused second RunDir removes nothing


def test_lock_is_free_after_release(tmp_path: Path, opened: list[RunDir]) -> None:
    first = RunDir(tmp_path / "r")
    first.open()
    first.prepare("H", LAYOUT, force=False)
    first.write_run_info(_info("H"))
    first.release()
    assert not _is_locked(tmp_path / "r")
    assert _open(opened, tmp_path / "r", "H") is True


def test_release_twice_is_harmless(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.open()
    run.release()
    run.release()


def test_non_run_directory_is_refused(tmp_path: Path, opened: list[RunDir]) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty and not a faithcheck run"):
        _open_only(opened, tmp_path / "r")
    assert (tmp_path / "r" / "notes.txt").read_text() == "mine"
    assert not _is_locked(tmp_path / "r")  # the refusal releases the lock it took


def test_non_run_directory_is_refused_even_with_force(tmp_path: Path, opened: list[RunDir]) -> None:
    """--force only acts in prepare(); open() refuses a foreign directory before that."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not a faithcheck run"):
        _open(opened, tmp_path / "r", "H", force=True)
    assert sorted(p.name for p in (tmp_path / "r").iterdir() if p.name != ".lock") == ["notes.txt"]


def test_file_as_out_is_refused(tmp_path: Path, opened: list[RunDir]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        _open_only(opened, target)
    assert target.read_text() == "x"


def test_corrupt_run_json_is_reported(tmp_path: Path, opened: list[RunDir]) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / RUN_FILE).write_text("{not json")
    with pytest.raises(RunDirError, match="corrupt"):
        _open(opened, tmp_path / "r", "H")


def test_run_json_round_trips(tmp_path: Path, opened: list[RunDir]) -> None:
    _open(opened, tmp_path / "r", "H")
    opened[0].write_run_info(_info("H"))
    assert opened[0].read_run_info() == _info("H").model_dump(mode="json")


# --- samples -------------------------------------------------------------------------------


def test_samples_round_trip(tmp_path: Path, opened: list[RunDir]) -> None:
    _open(opened, tmp_path / "r", "H")
    batch1 = [_rec("a", 0), _rec("a", 1)]
    batch2 = [_rec("b", 0, completion="second batch")]
    opened[0].append_samples(batch1)
    opened[0].append_samples([])
    opened[0].append_samples(batch2)
    assert opened[0].load_samples() == batch1 + batch2


def test_resume_cuts_a_torn_last_line(tmp_path: Path, opened: list[RunDir]) -> None:
    first = RunDir(tmp_path / "r")
    first.open()
    first.prepare("H", LAYOUT, force=False)
    first.write_run_info(_info("H"))
    first.append_samples([_rec("a", 0)])
    clean = first.samples_path.read_bytes()
    with first.samples_path.open("ab") as fh:
        fh.write(jsonio.dumps(_rec("a", 1))[:25])  # killed mid-write
    first.release()
    assert _open(opened, tmp_path / "r", "H") is True
    assert opened[0].samples_path.read_bytes() == clean


def test_torn_last_line_is_ignored(tmp_path: Path, opened: list[RunDir]) -> None:
    _open(opened, tmp_path / "r", "H")
    run = opened[0]
    run.append_samples([_rec("a", 0)])
    torn = jsonio.dumps(_rec("a", 1))[:25]
    with run.samples_path.open("ab") as fh:
        fh.write(torn)
    assert run.load_samples() == [_rec("a", 0)]


def test_appending_after_a_torn_line_keeps_the_file_readable(
    tmp_path: Path, opened: list[RunDir]
) -> None:
    """A killed run leaves a torn tail; resuming (same config) must still append cleanly."""
    first = RunDir(tmp_path / "r")
    first.open()
    first.prepare("H", LAYOUT, force=False)
    first.write_run_info(_info("H"))
    first.append_samples([_rec("a", 0)])
    with first.samples_path.open("ab") as fh:
        fh.write(jsonio.dumps(_rec("a", 1))[:25])
    first.release()
    assert _open(opened, tmp_path / "r", "H") is True
    run = opened[0]
    run.append_samples([_rec("a", 1), _rec("b", 0)])
    assert run.load_samples() == [_rec("a", 0), _rec("a", 1), _rec("b", 0)]


def test_duplicate_keys_keep_the_first(tmp_path: Path, opened: list[RunDir]) -> None:
    _open(opened, tmp_path / "r", "H")
    run = opened[0]
    run.append_samples([_rec("a", 0, "first"), _rec("a", 1, "other index")])
    run.append_samples([_rec("a", 0, "second"), _rec("b", 0, "other problem")])
    assert [(r.problem_id, r.sample_index, r.completion) for r in run.load_samples()] == [
        ("a", 0, "first"),
        ("a", 1, "other index"),
        ("b", 0, "other problem"),
    ]


def test_no_samples_file_means_no_samples(tmp_path: Path, opened: list[RunDir]) -> None:
    _open(opened, tmp_path / "r", "H")
    assert opened[0].load_samples() == []


# --- release -------------------------------------------------------------------------------


def test_release_removes_a_fresh_directory_nothing_was_written_to(tmp_path: Path) -> None:
    path = tmp_path / "r"
    run = RunDir(path)
    run.open()
    assert run.prepare("H", LAYOUT, force=False) is False
    run.release()
    assert not path.exists()
    assert sorted(tmp_path.iterdir()) == []


def test_release_keeps_a_fresh_directory_with_run_json(tmp_path: Path) -> None:
    path = tmp_path / "r"
    run = RunDir(path)
    run.open()
    run.prepare("H", LAYOUT, force=False)
    run.write_run_info(_info("H"))
    run.release()
    assert orjson.loads((path / RUN_FILE).read_bytes())["config_hash"] == "H"


def test_release_keeps_a_directory_it_did_not_create(tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.mkdir()
    run = RunDir(path)
    run.open()
    run.prepare("H", LAYOUT, force=False)
    run.release()
    assert path.is_dir()


def test_release_keeps_an_existing_run_it_resumed(tmp_path: Path) -> None:
    _finished_run(tmp_path / "r")
    run = RunDir(tmp_path / "r")
    run.open()
    assert run.prepare("H", LAYOUT, force=False) is True
    run.release()
    assert [r.problem_id for r in run.load_samples()] == ["p"]


def test_release_removes_parents_it_created(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r")
    run.open()
    run.release()
    assert not (tmp_path / "runs").exists()


# --- repair_jsonl --------------------------------------------------------------------------


def test_repair_jsonl_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    clean = b'{"a": 1}\n{"a": 2}\n'
    torn = b'{"a": 3, "b'
    path.write_bytes(clean + torn)
    assert jsonio.repair_jsonl(path) == len(torn)
    assert path.read_bytes() == clean
    assert jsonio.repair_jsonl(path) == 0  # idempotent


def test_repair_jsonl_cuts_a_lone_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"a": 1')
    assert jsonio.repair_jsonl(path) == 7
    assert path.read_bytes() == b""


@pytest.mark.parametrize("content", [b'{"a": 1}\n{"a": 2}\n', b"", b"\n"])
def test_repair_jsonl_leaves_a_clean_file_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(content)
    before = path.stat().st_mtime_ns
    assert jsonio.repair_jsonl(path) == 0
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == before


def test_repair_jsonl_on_a_missing_file(tmp_path: Path) -> None:
    assert jsonio.repair_jsonl(tmp_path / "absent.jsonl") == 0
    assert not (tmp_path / "absent.jsonl").exists()


# --- atomic writes -------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_json_replaces_content_without_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    jsonio.write_json(target, {"a": 1})
    jsonio.write_json(target, {"a": 2, "b": [1, 2]})
    assert orjson.loads(target.read_bytes()) == {"a": 2, "b": [1, 2]}
    assert target.read_bytes().endswith(b"\n")
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_failed_write_keeps_old_content_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    jsonio.write_json(target, {"version": 1})
    before = target.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="No space left"):
        jsonio.write_json(target, {"version": 2})
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_failed_rundir_write_becomes_rundir_error(
    tmp_path: Path, opened: list[RunDir], monkeypatch: pytest.MonkeyPatch
) -> None:
    _open(opened, tmp_path / "r", "H")

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(RunDirError, match="No space left on device"):
        opened[0].write_run_info(_info("H"))
    assert not (tmp_path / "r" / RUN_FILE).exists()
    assert _leftovers(tmp_path / "r") == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_write_json_follows_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        jsonio.write_json(tmp_path / "out.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == mode


# --- prepare: keeping the records a changed config leaves valid -----------------------------

STAGES = {"samples": "S", "probes": "P", "judge": "J"}


def _staged_run(path: Path) -> None:
    """A finished run with stage hashes and a record in every record file."""
    run = RunDir(path)
    run.open()
    run.prepare("H", LAYOUT, force=False, stages=STAGES)
    run.write_run_info(_info("H").model_copy(update={"stage_hashes": STAGES}))
    run.append_samples([_rec("p", 0)])
    derived = (DERIVATION_FILE, DIVERSITY_FILE)
    for name in (PROBES_FILE, JUDGE_FILE, CALIBRATION_FILE, STRATEGY_FILE, *derived):
        (path / name).write_bytes(b'{"problem_id": "p"}\n')
    run.write_report(_info("report-stand-in"))
    run.release()


def test_changed_judge_settings_are_refused_naming_what_is_kept(
    tmp_path: Path, opened: list[RunDir]
) -> None:
    _staged_run(tmp_path / "r")
    run = _open_only(opened, tmp_path / "r")
    with pytest.raises(RunDirError) as err:
        run.prepare("H2", LAYOUT, force=False, stages=STAGES | {"judge": "J2"})
    assert str(err.value) == (
        f"--out {tmp_path / 'r'} holds a run with different judge settings; use another "
        "--out, or --force to redo the judge (its samples and probe records match and are kept)"
    )
    assert (tmp_path / "r" / JUDGE_FILE).exists()


@pytest.mark.parametrize(
    ("changed", "gone", "kept"),
    [
        ({"judge": "J2"}, [JUDGE_FILE, CALIBRATION_FILE, STRATEGY_FILE], ["samples", "probes"]),
        ({"probes": "P2"}, [PROBES_FILE], ["samples", "judge"]),
        (
            {"probes": "P2", "judge": "J2"},
            [PROBES_FILE, JUDGE_FILE, CALIBRATION_FILE, STRATEGY_FILE],
            ["samples"],
        ),
        ({}, [], ["samples", "probes", "judge"]),  # e.g. only the diversity settings changed
    ],
)
def test_force_keeps_the_records_still_valid(
    tmp_path: Path,
    opened: list[RunDir],
    changed: dict[str, str],
    gone: list[str],
    kept: list[str],
) -> None:
    _staged_run(tmp_path / "r")
    run = _open_only(opened, tmp_path / "r")
    assert run.prepare("H2", LAYOUT, force=True, stages=STAGES | changed) is False
    assert run.kept == kept
    for name in gone:
        assert not (tmp_path / "r" / name).exists(), name
    for name in (DERIVATION_FILE, DIVERSITY_FILE, REPORT_FILE):  # derived: recomputed
        assert not (tmp_path / "r" / name).exists(), name
    assert [r.problem_id for r in run.load_samples()] == ["p"]
    for name in {PROBES_FILE, JUDGE_FILE, CALIBRATION_FILE, STRATEGY_FILE} - set(gone):
        assert (tmp_path / "r" / name).exists(), name


@pytest.mark.parametrize("old_stages", [STAGES | {"samples": "S2"}, None])
def test_force_discards_everything_when_the_samples_changed(
    tmp_path: Path, opened: list[RunDir], old_stages: dict[str, str] | None
) -> None:
    """Other samples (or a run from before stage hashes) leave nothing to keep."""
    _staged_run(tmp_path / "r")
    info = RunDir(tmp_path / "r").read_run_info()
    assert info is not None
    (tmp_path / "r" / RUN_FILE).write_bytes(orjson.dumps(info | {"stage_hashes": old_stages}))
    run = _open_only(opened, tmp_path / "r")
    with pytest.raises(RunDirError, match="different configuration"):
        run.prepare("H2", LAYOUT, force=False, stages=STAGES)
    assert run.prepare("H2", LAYOUT, force=True, stages=STAGES) is False
    assert run.kept == []
    for name in (SAMPLES_FILE, PROBES_FILE, JUDGE_FILE, RUN_FILE):
        assert not (tmp_path / "r" / name).exists(), name


def test_force_with_the_same_config_starts_over(tmp_path: Path, opened: list[RunDir]) -> None:
    _staged_run(tmp_path / "r")
    run = _open_only(opened, tmp_path / "r")
    assert run.prepare("H", LAYOUT, force=True, stages=STAGES) is False
    assert run.kept == []
    assert not (tmp_path / "r" / SAMPLES_FILE).exists()
