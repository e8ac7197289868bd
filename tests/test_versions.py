"""`schema_version`: every reader of report.json and run.json refuses a newer MAJOR version
with one line, and reads an older or equal one."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import faithcheck
from faithcheck.comparison.metrics import load_run
from faithcheck.errors import RunDirError, UsageError
from faithcheck.store.jsonio import write_json
from faithcheck.store.rundir import RunDir
from faithcheck.versions import SCHEMA_VERSION, check_schema_version
from tests.render.test_page import make_report
from tests.store.test_rundir import _info

NEWER = "Path was written by a newer faithcheck"


@pytest.mark.parametrize(
    ("version", "refused"),
    [
        (SCHEMA_VERSION, False),
        ("0.0", False),
        ("0.9", False),
        ("0", False),
        (None, False),  # left to validation
        ("beta", False),
        (True, False),
        ("1.0", True),
        ("1", True),
        ("12.3", True),
        (1, True),
    ],
)
def test_only_a_newer_major_version_is_refused(version: object, refused: bool) -> None:
    if refused:
        with pytest.raises(UsageError, match=NEWER):
            check_schema_version(version, "Path")
    else:
        check_schema_version(version, "Path")


def test_the_error_is_one_line_naming_both_versions() -> None:
    with pytest.raises(RunDirError) as info:
        check_schema_version("2.0", Path("r/run.json"), error=RunDirError)
    assert str(info.value) == (
        "r/run.json was written by a newer faithcheck (schema_version '2.0'; this one reads "
        f"{SCHEMA_VERSION!r} and older): upgrade faithcheck to read it"
    )


def _with_version(path: Path, version: str) -> None:
    data = orjson.loads(path.read_bytes())
    data["schema_version"] = version
    path.write_bytes(orjson.dumps(data))


def test_load_report_and_decide_refuse_a_newer_report(tmp_path: Path) -> None:
    write_json(tmp_path / "report.json", make_report("a", 0.8))
    _with_version(tmp_path / "report.json", "1.0")
    with pytest.raises(UsageError, match=r"report\.json was written by a newer faithcheck"):
        faithcheck.load_report(tmp_path)
    with pytest.raises(UsageError, match="the report dict was written by a newer"):
        faithcheck.decide(orjson.loads((tmp_path / "report.json").read_bytes()))
    _with_version(tmp_path / "report.json", "0.0")  # older: read
    assert faithcheck.load_report(tmp_path).schema_version == "0.0"


def test_run_json_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    write_json(tmp_path / "run.json", _info("h"))
    assert RunDir(tmp_path).read_run_info() is not None
    _with_version(tmp_path / "run.json", "1.0")
    with pytest.raises(RunDirError, match=r"run\.json was written by a newer faithcheck"):
        RunDir(tmp_path).read_run_info()


def test_compare_refuses_a_newer_run(tmp_path: Path) -> None:
    write_json(tmp_path / "report.json", make_report("a", 0.8))
    _with_version(tmp_path / "report.json", "1.0")
    with pytest.raises(UsageError, match=r"report\.json was written by a newer faithcheck"):
        load_run(tmp_path)
    _with_version(tmp_path / "report.json", SCHEMA_VERSION)
    write_json(tmp_path / "run.json", _info("h"))
    _with_version(tmp_path / "run.json", "1.0")
    with pytest.raises(UsageError, match=r"run\.json was written by a newer faithcheck"):
        load_run(tmp_path)


def test_report_html_refuses_a_newer_report(tmp_path: Path) -> None:
    from faithcheck.render.views import load_checkpoint

    write_json(tmp_path / "report.json", make_report("a", 0.8))
    _with_version(tmp_path / "report.json", "1.0")
    with pytest.raises(UsageError, match=r"report\.json was written by a newer faithcheck"):
        load_checkpoint(tmp_path)
