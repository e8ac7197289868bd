"""Tests for problem loading (`faithcheck.problems.load`): formats, field mapping, hashing, errors.

Everything runs on small files written to `tmp_path`, the bundled samples, and the offline
reasoning-gym generators; nothing touches the network or loads a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset

from faithcheck.errors import DataError
from faithcheck.problems import load as data
from faithcheck.problems.load import FieldMap, dataset_hash, load_problems

ROWS = [
    {"id": "p1", "question": "What is 1 + 1?", "answer": "2", "domain": "math"},
    {"id": "p2", "question": "Name the gas we exhale.", "answer": "CO2", "domain": "science"},
]


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _write(tmp_path: Path, fmt: str, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        _jsonl(path, rows)
    elif fmt == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        Dataset.from_list(rows).to_parquet(str(path))
    return path


def _error(spec: str | Path, **kwargs: Any) -> str:
    with pytest.raises(DataError) as info:
        load_problems(str(spec), **kwargs)
    return str(info.value)


# --- loading -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_local_formats_load_the_same_problems(tmp_path: Path, fmt: str) -> None:
    problems = load_problems(str(_write(tmp_path, fmt, ROWS)))
    got = [(p.id, p.question, p.answer, p.domain, p.source) for p in problems]
    assert got == [
        ("p1", "What is 1 + 1?", "2", "math", "file"),
        ("p2", "Name the gas we exhale.", "CO2", "science", "file"),
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_field_map_renames_source_fields(tmp_path: Path, fmt: str) -> None:
    rows = [{"qid": "a", "problem": "2 * 3?", "solution": "6"}]
    fields = FieldMap(id="qid", question="problem", answer="solution")
    (p,) = load_problems(str(_write(tmp_path, fmt, rows)), fields=fields, default_domain="graph")
    assert (p.id, p.question, p.answer, p.domain) == ("a", "2 * 3?", "6", "graph")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_integer_answers_and_ids_become_strings(tmp_path: Path, fmt: str) -> None:
    rows = [
        {"id": 7, "question": "3 + 4?", "answer": 7},
        {"id": 8, "question": "4 * 2?", "answer": 8},
    ]
    problems = load_problems(str(_write(tmp_path, fmt, rows)))
    assert [(p.id, p.answer) for p in problems] == [("7", "7"), ("8", "8")]


def test_json_int_answer_next_to_a_float_stays_an_integer(tmp_path: Path) -> None:
    """Arrow (the old .json route) widened such a column to float64: 5 became '5.0'."""
    rows = [
        {"id": "a", "question": "q1", "answer": 5},
        {"id": "b", "question": "q2", "answer": 2.5},
    ]
    problems = load_problems(str(_write(tmp_path, "json", rows)))
    assert [p.answer for p in problems] == ["5", "2.5"]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_missing_id_field_uses_row_index(tmp_path: Path, fmt: str) -> None:
    rows = [{"question": "q1", "answer": "1"}, {"question": "q2", "answer": "2"}]
    problems = load_problems(str(_write(tmp_path, fmt, rows)))
    assert [p.id for p in problems] == ["0", "1"]


def test_json_file_may_hold_json_lines(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "lines.json", ROWS)
    assert [(p.id, p.answer) for p in load_problems(str(path))] == [("p1", "2"), ("p2", "CO2")]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_utf8_byte_order_mark_is_accepted(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path, fmt, ROWS)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    problems = load_problems(str(path))
    assert [(p.id, p.question, p.answer) for p in problems] == [
        (r["id"], r["question"], r["answer"]) for r in ROWS
    ]


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text("\n" + json.dumps(ROWS[0]) + "\n\n   \n" + json.dumps(ROWS[1]) + "\n")
    assert [p.id for p in load_problems(str(path))] == ["p1", "p2"]


@pytest.mark.parametrize("name", ["math", "science", "graph"])
def test_bundled_sets_have_30_problems(name: str) -> None:
    problems = load_problems(name)
    assert len(problems) == 30
    assert {p.source for p in problems} == {"file"}


def test_reasoning_gym_spec_is_offline_and_deterministic() -> None:
    spec = "rg:basic_arithmetic?size=3&seed=1"
    first, second = load_problems(spec), load_problems(spec)
    assert len(first) == 3
    assert {p.source for p in first} == {"rg"}
    assert [p.id for p in first] == [
        "basic_arithmetic-1-0",
        "basic_arithmetic-1-1",
        "basic_arithmetic-1-2",
    ]
    assert [(p.id, p.question, p.answer) for p in first] == [
        (p.id, p.question, p.answer) for p in second
    ]
    assert first[0].metadata["rg_dataset"] == "basic_arithmetic"


def test_reasoning_gym_seed_changes_the_questions() -> None:
    a = load_problems("rg:basic_arithmetic?size=3&seed=1")
    b = load_problems("rg:basic_arithmetic?size=3&seed=2")
    assert [p.question for p in a] != [p.question for p in b]


# --- dataset_hash --------------------------------------------------------------------------


def test_dataset_hash_is_stable_across_loads(tmp_path: Path) -> None:
    path = str(_write(tmp_path, "jsonl", ROWS))
    first = dataset_hash(load_problems(path))
    assert first == dataset_hash(load_problems(path))
    assert len(first) == 64


@pytest.mark.parametrize(
    ("field", "value"),
    [("question", "What is 1 + 2?"), ("answer", "3"), ("id", "p3"), ("domain", "mathx")],
)
def test_dataset_hash_sees_a_one_character_change(tmp_path: Path, field: str, value: str) -> None:
    changed = [dict(ROWS[0], **{field: value}), ROWS[1]]
    a = dataset_hash(load_problems(str(_jsonl(tmp_path / "a.jsonl", ROWS))))
    b = dataset_hash(load_problems(str(_jsonl(tmp_path / "b.jsonl", changed))))
    assert a != b


def test_dataset_hash_depends_on_order() -> None:
    problems = load_problems("math")
    assert dataset_hash(problems) != dataset_hash(list(reversed(problems)))


# --- errors --------------------------------------------------------------------------------


def test_malformed_jsonl_line_reports_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{oops\n")
    message = _error(path)
    assert "bad.jsonl:3" in message
    assert "not valid JSON" in message


def test_non_utf8_bytes_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(json.dumps(ROWS[0]).encode() + b"\n" + b'{"id": "x", "question": "caf\xe9"}\n')
    message = _error(path)
    assert "latin.jsonl:2" in message
    assert "UTF-8" in message


@pytest.mark.parametrize(
    ("row", "field", "flag"),
    [
        ({"id": "a", "answer": "1"}, "question", "--question-field"),
        ({"id": "a", "question": "q"}, "answer", "--answer-field"),
    ],
)
def test_missing_field_names_field_and_flag(
    tmp_path: Path, row: dict[str, str], field: str, flag: str
) -> None:
    message = _error(_jsonl(tmp_path / "m.jsonl", [row]))
    assert f"'{field}'" in message
    assert flag in message


def test_missing_mapped_field_names_the_mapped_name(tmp_path: Path) -> None:
    message = _error(_jsonl(tmp_path / "m.jsonl", ROWS), fields=FieldMap(question="problem"))
    assert "'problem'" in message
    assert "--question-field" in message


def test_id_missing_on_some_rows_only_is_an_error(tmp_path: Path) -> None:
    rows = [ROWS[0], {"question": "q", "answer": "1"}]
    path = _jsonl(tmp_path / "m.jsonl", rows)
    message = _error(path)
    assert message.startswith(f"{path}:2: ")
    assert "'id'" in message


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"question": 42}, "question"),
        ({"question": "   "}, "question"),
        ({"answer": [1, 2]}, "answer"),
        ({"answer": True}, "answer"),
        ({"id": True}, "id"),
        ({"id": 1.5}, "id"),
    ],
)
def test_wrong_typed_fields(tmp_path: Path, override: dict[str, Any], field: str) -> None:
    path = _jsonl(tmp_path / "t.jsonl", [ROWS[1], dict(ROWS[0], **override)])
    message = _error(path)
    assert f"field '{field}' must be" in message
    assert message.startswith(f"{path}:2: ")


@pytest.mark.parametrize("answer", ["", "   ", "\t\n"])
def test_empty_answer_is_rejected(tmp_path: Path, answer: str) -> None:
    path = _jsonl(tmp_path / "e.jsonl", [ROWS[0], dict(ROWS[1], answer=answer)])
    message = _error(path)
    assert message.startswith(f"{path}:2: ")
    assert "field 'answer' is empty" in message


def test_empty_mapped_answer_names_the_mapped_field(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "e.jsonl", [{"id": "a", "question": "q", "solution": ""}])
    assert "field 'solution' is empty" in _error(path, fields=FieldMap(answer="solution"))


def test_zero_answer_is_not_empty(tmp_path: Path) -> None:
    rows = [dict(ROWS[0], answer=0), dict(ROWS[1], answer="0")]
    assert [p.answer for p in load_problems(str(_jsonl(tmp_path / "z.jsonl", rows)))] == ["0", "0"]


@pytest.mark.parametrize("content", ["", "   \n\n\t\n"])
def test_empty_or_whitespace_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    assert "no problems" in _error(path)


def test_duplicate_ids(tmp_path: Path) -> None:
    message = _error(_jsonl(tmp_path / "d.jsonl", [ROWS[0], dict(ROWS[1], id="p1")]))
    assert "duplicate problem id 'p1'" in message


def test_int_and_string_ids_that_collide_are_duplicates(tmp_path: Path) -> None:
    rows = [dict(ROWS[0], id=1), dict(ROWS[1], id="1")]
    assert "duplicate problem id '1'" in _error(_jsonl(tmp_path / "d.jsonl", rows))


def test_json_line_that_is_an_array(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "arr.jsonl", [ROWS[0], ["p2", "q", "a"]])
    message = _error(path)
    assert message.startswith(f"{path}:2: ")
    assert "expected a JSON object, got list" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (json.dumps({"problems": ROWS}), "expected a JSON array"),
        ("5", "expected a JSON array"),
        ('"text"', "expected a JSON array"),
    ],
)
def test_json_file_must_hold_an_array(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "obj.json"
    path.write_text(content, encoding="utf-8")
    message = _error(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_json_array_of_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([ROWS[0], "not a problem"]), encoding="utf-8")
    message = _error(path)
    assert message.startswith(f"{path}:")
    assert "expected a JSON object, got str" in message


def test_malformed_json_file_reports_a_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(ROWS[0]) + "\n{oops\n", encoding="utf-8")
    message = _error(path)
    assert message.startswith(f"{path}:2: ")
    assert "not valid JSON" in message


@pytest.mark.parametrize("content", ["", "  \n"])
def test_empty_json_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.json"
    path.write_text(content, encoding="utf-8")
    assert "no problems" in _error(path)


def test_hub_rows_are_named_by_spec_and_row(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(1, ROWS[0]), (2, dict(ROWS[1], question=""))]
    monkeypatch.setattr(data, "_load_hub", lambda spec: rows)
    message = _error("hf:org/name:train")
    assert message.startswith("hf:org/name:train row 2: ")
    assert "field 'question' must be a non-empty string" in message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("rg:no_such_gen", "unknown reasoning-gym generator"),
        ("rg:basic_arithmetic?size=abc", "options must be integers"),
        ("rg:basic_arithmetic?size", "options must be integers"),
        ("hf:just-a-name", "expected hf:org/name[:config]:split"),
        ("hf:org/name:cfg:split:extra", "expected hf:org/name[:config]:split"),
        ("hf::train", "expected hf:org/name[:config]:split"),
    ],
)
def test_bad_specs(spec: str, expected: str) -> None:
    message = _error(spec)
    assert expected in message
    assert spec.split("?")[0] in message


@pytest.mark.parametrize("name", ["data.csv", "data.txt", "data"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("id,question,answer\n")
    assert "unsupported file type" in _error(path)


def test_directory_path(tmp_path: Path) -> None:
    assert "is a directory" in _error(tmp_path)


def test_nonexistent_file(tmp_path: Path) -> None:
    message = _error(tmp_path / "missing.jsonl")
    assert "no such dataset file" in message
    assert "missing.jsonl" in message
