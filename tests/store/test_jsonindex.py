"""Tests for reading run files one problem at a time (`faithcheck.store.jsonindex`) and the
streaming JSONL helpers of `faithcheck.store.jsonio`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from faithcheck.errors import RunDirError
from faithcheck.sampling import SampleRecord
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.jsonio import atomic_jsonl, filter_jsonl, repair_jsonl
from faithcheck.store.rundir import SAMPLES_FILE, RunDir


def _write(path: Path, rows: list[dict[str, object]], tail: bytes = b"") -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + tail)


def _rec(pid: str, index: int, text: str = "x") -> SampleRecord:
    return SampleRecord(
        problem_id=pid,
        sample_index=index,
        seed=index,
        prompt_tokens=1,
        completion=text,
        completion_token_ids=[1, 2],
        finish_reason="stop",
        steps=[],
        answer="1",
        answer_rule="boxed",
        correct=True,
        verify_method="exact",
    )


def test_index_groups_lines_by_problem_in_first_appearance_order(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    rows = [{"problem_id": p, "i": i} for i, p in enumerate("bbaacb")]
    _write(path, rows)
    index = ProblemIndex(path)
    assert list(index) == ["b", "a", "c"]
    assert [index.count(k) for k in "bacz"] == [3, 2, 1, 0]
    assert [row["i"] for _, row in index.rows("b")] == [0, 1, 5]
    assert [n for n, _ in index.rows("b")] == [1, 2, 6]  # line numbers for errors
    assert list(index.rows("z")) == []
    assert index.last_key == "b"


def test_index_skips_a_torn_tail_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    _write(path, [{"problem_id": "a"}, {"problem_id": "b"}], tail=b'\n{"problem_id": "c"')
    index = ProblemIndex(path)
    assert list(index) == ["a", "b"]
    assert index.last_key == "b"
    assert index.line_count == 3
    assert list(ProblemIndex(tmp_path / "missing.jsonl")) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [(b"{not json\n", "not valid JSON"), (b"[1]\n", "not a JSON object"), (b"{}\n", "missing")],
)
def test_index_names_the_damaged_line(tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"problem_id": "a"}\n' + line)
    with pytest.raises(RunDirError, match=rf"f.jsonl:2: corrupt record \(.*{message}"):
        ProblemIndex(path)


def test_note_appended_keeps_the_index_true_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    _write(path, [{"problem_id": "a", "i": 0}])
    index = ProblemIndex(path)
    lines = [("a", orjson.dumps({"problem_id": "a", "i": 1}) + b"\n")]
    lines.append(("b", orjson.dumps({"problem_id": "b", "i": 2}) + b"\n"))
    with path.open("ab") as fh:
        fh.write(b"".join(line for _, line in lines))
    index.note_appended(lines)
    fresh = ProblemIndex(path)
    for key in ("a", "b"):
        assert list(index.rows(key)) == list(fresh.rows(key))
    assert (index.size, index.line_count, index.last_key) == (fresh.size, fresh.line_count, "b")


def test_sample_groups_read_one_problem_at_a_time(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.open()
    run.append_samples([_rec("p", 1), _rec("q", 0)])
    run.append_samples([_rec("p", 0), _rec("p", 1, "duplicate")])  # a resumed problem
    groups = list(run.sample_groups())
    assert [[(r.problem_id, r.sample_index) for r in g] for g in groups] == [
        [("p", 0), ("p", 1)],
        [("q", 0)],
    ]
    assert groups[0][1].completion == "x"  # the first record of a key wins
    assert [g[0].problem_id for g in run.sample_groups(["q", "missing", "p"])] == ["q", "p"]
    run.release()


def test_sample_groups_name_a_corrupt_record(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.open()
    run.append_samples([_rec("p", 0)])
    with (run.path / SAMPLES_FILE).open("ab") as fh:
        fh.write(b'{"problem_id": "p", "sample_index": "zero"}\n')
    with pytest.raises(RunDirError, match=r"samples.jsonl:2: corrupt record .*--force"):
        list(run.sample_groups())
    run.release()


def test_repair_cuts_a_torn_tail_longer_than_one_block(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    good = b'{"a": 1}\n'
    path.write_bytes(good + b'{"a": "' + b"x" * 200_000)
    assert repair_jsonl(path) == 200_007
    assert path.read_bytes() == good
    path.write_bytes(b"y" * 100_000)  # no complete line at all
    assert repair_jsonl(path) == 100_000
    assert path.read_bytes() == b""


def test_filter_jsonl_streams_and_drops_the_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    _write(path, [{"problem_id": p} for p in "abab"], tail=b'{"problem_id": "a"')
    filter_jsonl(path, lambda row: row["problem_id"] != "b")
    assert path.read_bytes() == b'{"problem_id":"a"}\n' * 2
    assert [p.name for p in tmp_path.iterdir()] == ["f.jsonl"]


def test_atomic_jsonl_leaves_the_old_file_on_error(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"old\n")
    with pytest.raises(ValueError), atomic_jsonl(path) as write:
        write([{"a": 1}])
        raise ValueError
    assert path.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.jsonl"]
    with atomic_jsonl(path) as write:
        write([{"a": 1}])
        write([{"a": 2}])
    assert path.read_bytes() == b'{"a":1}\n{"a":2}\n'
