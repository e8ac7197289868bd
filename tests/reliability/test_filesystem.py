"""The run directory under stress: unwritable, full, foreign, damaged. Each failure is one
line and exit 2; whatever was written before it is still there, complete and resumable."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from faithcheck.errors import RunDirError
from faithcheck.store.jsonio import atomic_write_bytes, write_json
from faithcheck.store.rundir import RunDir
from tests.reliability.conftest import (
    QUIET,
    ScriptedServer,
    assert_one_error,
    openai_args,
    problems,
    read_records,
    run_cli,
    sample_keys,
    write_jsonl,
)


@pytest.fixture
def stub(tmp_path: Path) -> list[str]:
    """A checkpoint folder that resolves (config.json) with --backend hf: every case
    below fails at the run directory, before a model would load."""
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "config.json").write_text("{}\n")
    write_jsonl(tmp_path / "p.jsonl", problems(2))
    return ["score", "--model", "stub", "--backend", "hf", "--dataset", "p.jsonl", *QUIET]


def test_out_under_a_read_only_file_system(tmp_path: Path, stub: list[str]) -> None:
    result = run_cli([*stub, "--out", "/proc/faithcheck-run"], tmp_path)
    assert_one_error(result, 2, "cannot create run directory /proc/faithcheck-run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_out_in_a_directory_without_write_permission(tmp_path: Path, stub: list[str]) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        result = run_cli([*stub, "--out", str(parent / "run")], tmp_path)
    finally:
        parent.chmod(0o700)
    assert_one_error(result, 2, "cannot create run directory")


def test_out_is_a_file(tmp_path: Path, stub: list[str]) -> None:
    (tmp_path / "taken").write_text("mine\n")
    result = run_cli([*stub, "--out", "taken"], tmp_path)
    assert_one_error(result, 2, "is a file, not a run directory")
    assert (tmp_path / "taken").read_text() == "mine\n"


def test_out_is_a_directory_that_is_not_a_run(tmp_path: Path, stub: list[str]) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    result = run_cli([*stub, "--out", "photos"], tmp_path)
    assert_one_error(result, 2, "is not empty and not a faithcheck run (found cat.jpg)")
    assert sorted(p.name for p in (tmp_path / "photos").iterdir() if p.name != ".lock") == [
        "cat.jpg"
    ]


def test_out_with_a_corrupt_run_json(tmp_path: Path, stub: list[str]) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text('{"config_hash": "abc", ')
    result = run_cli([*stub, "--out", "run"], tmp_path)
    assert_one_error(result, 2, "run.json is corrupt; use another --out or --force")


def test_out_holding_a_run_with_another_config(tmp_path: Path, stub: list[str]) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_bytes(orjson.dumps({"config_hash": "other"}))
    write_jsonl(tmp_path / "run" / "samples.jsonl", [{"problem_id": "p0"}])
    result = run_cli([*stub, "--out", "run"], tmp_path)
    assert_one_error(result, 2, "holds a run with a different configuration")
    assert (tmp_path / "run" / "samples.jsonl").read_text() == '{"problem_id": "p0"}\n'


# -- a full disk, and damaged records (the run gets under way through a scripted server) --


@pytest.fixture(scope="module")
def module_server() -> Iterator[ScriptedServer]:
    """One scripted server for the module: a served model's identity includes the server
    URL, so a copied run resumes only against the server that started it."""
    s = ScriptedServer()
    yield s
    s.close()


def _sampling_args(url: str, out: Path | str) -> list[str]:
    args = [*openai_args(url), "--dataset", "p.jsonl", "--samples", "2", *QUIET]
    return [*args, "--out", str(out)]


# The second append writes three quarters of its bytes, then the disk is full: the torn
# tail a real ENOSPC (or a kill) leaves mid-write.
_DISK_FULL = """
import errno, faithcheck.store.jsonio as _j, faithcheck.store.rundir as _r
_calls = [0]
_append = _j.append_lines
def _full(path, lines):
    _calls[0] += 1
    if _calls[0] < 2:
        return _append(path, lines)
    data = b"".join(lines)
    with path.open("ab") as fh:
        fh.write(data[: len(data) * 3 // 4])
    raise OSError(errno.ENOSPC, "No space left on device")
_r.append_lines = _full
"""


def test_disk_full_mid_run_then_resume(tmp_path: Path, server: ScriptedServer) -> None:
    """The disk fills while the second problem's samples are appended: one line, exit 2,
    the first problem intact. With space again, the same command completes the run
    without a duplicate (the second problem's first sample reached the disk whole)."""
    write_jsonl(tmp_path / "p.jsonl", problems(3))
    args = _sampling_args(server.url, "run")
    result = run_cli(args, tmp_path, prelude=_DISK_FULL)
    assert_one_error(result, 2, "samples.jsonl: No space left on device", under_way=True)
    records = read_records(tmp_path / "run", allow_torn=True)
    assert sample_keys(records) == [("p0", 0), ("p0", 1), ("p1", 0)]
    assert not (tmp_path / "run" / "report.json").exists()

    result = run_cli(args, tmp_path)
    assert result.returncode == 4, result.stderr
    keys = sample_keys(read_records(tmp_path / "run"))
    assert sorted(keys) == [(f"p{i}", k) for i in range(3) for k in range(2)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, module_server: ScriptedServer) -> Path:
    """The folder of a finished run (2 problems x 2 samples, dataset p.jsonl next to it)."""
    work = tmp_path_factory.mktemp("finished")
    write_jsonl(work / "p.jsonl", problems(2))
    result = run_cli(_sampling_args(module_server.url, "run"), work)
    assert result.returncode == 4, result.stderr
    return work


def _copy_run(finished: Path, dest: Path, server: ScriptedServer) -> list[str]:
    """Copy the finished run and its dataset into `dest`; the arguments that resume it."""
    shutil.copytree(finished / "run", dest / "run")
    shutil.copy(finished / "p.jsonl", dest / "p.jsonl")
    return _sampling_args(server.url, "run")


_REPORT_DISK_FULL = """
import errno, faithcheck.store.rundir as _r
_write_json = _r.write_json
def _full(path, obj):
    if path.name == "report.json":
        raise OSError(errno.ENOSPC, "No space left on device")
    return _write_json(path, obj)
_r.write_json = _full
"""


def test_disk_full_when_writing_the_report(
    tmp_path: Path, module_server: ScriptedServer, finished_run: Path
) -> None:
    """The report cannot be written: one line, exit 2, every record intact and no
    half-written report; with space again the run resumes and only writes the report."""
    args = _copy_run(finished_run, tmp_path, module_server)
    run = tmp_path / "run"
    (run / "report.json").unlink()
    samples = (run / "samples.jsonl").read_bytes()
    sampled = module_server.count("/v1/completions")
    result = run_cli(args, tmp_path, prelude=_REPORT_DISK_FULL)
    assert_one_error(result, 2, "report.json: No space left on device", under_way=True)
    assert (run / "samples.jsonl").read_bytes() == samples
    assert not (run / "report.json").exists()
    read_records(run)
    result = run_cli(args, tmp_path)
    assert result.returncode == 4, result.stderr
    assert module_server.count("/v1/completions") == sampled  # nothing sampled again
    assert (run / "samples.jsonl").read_bytes() == samples
    assert (run / "report.json").is_file()


def test_atomic_write_keeps_the_old_file_when_the_disk_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    write_json(target, {"old": True})

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b'{"new": true}\n')
    assert orjson.loads(target.read_bytes()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left


DAMAGE = {
    "not-json": (b'{"problem_id": "p0", "sample_ind', "corrupt record (not valid JSON)"),
    "not-an-object": (b'["not", "an", "object"]', "corrupt record (not a JSON object)"),
    "not-a-record": (b'{"problem_id": "p0"}', "corrupt record (sample_index: Field required)"),
}


def _damage(run: Path, line: bytes) -> bytes:
    samples = run / "samples.jsonl"
    lines = samples.read_bytes().splitlines(keepends=True)
    lines[1] = line + b"\n"
    samples.write_bytes(b"".join(lines))
    return samples.read_bytes()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_record_is_reported_with_file_and_line(
    tmp_path: Path, module_server: ScriptedServer, finished_run: Path, damage: str
) -> None:
    line, needle = DAMAGE[damage]
    _copy_run(finished_run, tmp_path, module_server)
    run = tmp_path / "run"
    _damage(run, line)
    with pytest.raises(RunDirError) as info:
        RunDir(run).load_samples()
    assert str(info.value).startswith(f"{run / 'samples.jsonl'}:2: {needle}")
    assert "\n" not in str(info.value)


def test_damaged_record_in_a_run_being_resumed(
    tmp_path: Path, module_server: ScriptedServer, finished_run: Path
) -> None:
    """A complete line that does not parse was edited or damaged, not torn by a kill:
    resuming stops with one line naming the file and line (not an internal error) and
    leaves the file as found; --force starts the run afresh."""
    args = _copy_run(finished_run, tmp_path, module_server)
    run = tmp_path / "run"
    damaged = _damage(run, DAMAGE["not-json"][0])
    result = run_cli(args, tmp_path)
    line = assert_one_error(result, 2, "samples.jsonl:2: corrupt record", under_way=True)
    assert "internal error" not in line
    assert (run / "samples.jsonl").read_bytes() == damaged

    result = run_cli([*args, "--force"], tmp_path)
    assert result.returncode == 4, result.stderr
    assert len(sample_keys(read_records(run))) == 4
