"""Bad datasets: every one fails before a model loads, with one line and exit 2.

Each case runs the real CLI on a file written here. The 10 MB question also goes all
the way to a (scripted) server that refuses it as longer than the model's context.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faithcheck.problems.load import load_problems
from tests.reliability.conftest import (
    QUIET,
    ScriptedServer,
    assert_one_error,
    cli_env,
    openai_args,
    problems,
    read_records,
    run_cli,
    sample_keys,
    write_jsonl,
)

GOOD = {"id": "a", "question": "What is 1 + 1?", "answer": "2"}


def _line(row: object) -> bytes:
    return json.dumps(row).encode() + b"\n"


# name -> file bytes; each is the whole dataset file.
FILES: dict[str, bytes] = {
    "bad_last_line.jsonl": _line(GOOD) + _line(GOOD | {"id": "b"}) + b"{oops\n",
    "bad_middle_line.jsonl": _line(GOOD) + b'{"id": "b", "question": \n' + _line(GOOD),
    "missing_question.jsonl": _line({"id": "a", "problem": "1 + 1?", "answer": "2"}),
    "missing_answer.jsonl": _line({"id": "a", "question": "1 + 1?"}),
    "question_is_number.jsonl": _line(GOOD | {"question": 5}),
    "question_is_blank.jsonl": _line(GOOD | {"question": "  \n "}),
    "id_is_list.jsonl": _line(GOOD | {"id": [1]}),
    "id_is_bool.jsonl": _line(GOOD | {"id": True}),
    "answer_is_object.jsonl": _line(GOOD | {"answer": {"value": 2}}),
    "answer_is_empty.jsonl": _line(GOOD | {"answer": ""}),
    "row_is_array.jsonl": _line([1, 2, 3]),
    "array_of_numbers.json": b"[1, 2]",
    "object_not_array.json": json.dumps({"problems": [GOOD]}).encode(),
    "empty.jsonl": b"",
    "blank_lines.jsonl": b"\n   \n\t\n",
    "not_utf8.jsonl": _line(GOOD) + b'{"id": "b", "question": "caf\xe9?", "answer": "1"}\n',
    "lone_surrogate.jsonl": b'{"id": "a", "question": "x \\ud800 y", "answer": "1"}\n',
    "duplicate_ids.jsonl": _line(GOOD) + _line(GOOD | {"question": "another"}),
    "duplicate_int_and_str_ids.jsonl": _line(GOOD | {"id": 7}) + _line(GOOD | {"id": "7"}),
    "unsupported.csv": b"id,question,answer\na,1+1,2\n",
}

CASES = [
    ("bad_last_line.jsonl", "bad_last_line.jsonl:3: not valid JSON"),
    ("bad_middle_line.jsonl", "bad_middle_line.jsonl:2: not valid JSON"),
    ("missing_question.jsonl", "missing field 'question' (rename with --question-field)"),
    ("missing_answer.jsonl", "missing field 'answer'"),
    ("question_is_number.jsonl", "field 'question' must be a non-empty string"),
    ("question_is_blank.jsonl", "field 'question' must be a non-empty string"),
    ("id_is_list.jsonl", "field 'id' must be a string or integer"),
    ("id_is_bool.jsonl", "field 'id' must be a string or integer"),
    ("answer_is_object.jsonl", "field 'answer' must be a string or number"),
    ("answer_is_empty.jsonl", "field 'answer' is empty"),
    ("row_is_array.jsonl", "expected a JSON object, got list"),
    ("array_of_numbers.json", "expected a JSON object, got int"),
    ("object_not_array.json", "expected a JSON array of problems"),
    ("empty.jsonl", "the dataset has no problems"),
    ("blank_lines.jsonl", "the dataset has no problems"),
    ("not_utf8.jsonl", "not_utf8.jsonl:2: not UTF-8"),
    ("lone_surrogate.jsonl", "lone_surrogate.jsonl:1: not valid JSON"),
    ("duplicate_ids.jsonl", "duplicate problem id 'a'"),
    ("duplicate_int_and_str_ids.jsonl", "duplicate problem id '7'"),
    ("unsupported.csv", "unsupported file type '.csv'"),
]


@pytest.mark.parametrize(("name", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_dataset_file(tmp_path: Path, name: str, needle: str) -> None:
    (tmp_path / name).write_bytes(FILES[name])
    result = run_cli(["score", "--dataset", name, "--out", "run"], tmp_path)
    assert_one_error(result, 2, needle)
    assert not (tmp_path / "run").exists()  # nothing was created for a run that never began


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("rg:no_such_generator", "unknown reasoning-gym generator"),
        ("rg:basic_arithmetic?size=many", "options must be integers"),
        ("rg:basic_arithmetic?no_such_option=3", "unexpected keyword argument 'no_such_option'"),
        ("hf:just_a_name", "expected hf:org/name[:config]:split"),
    ],
    ids=["rg-unknown-generator", "rg-bad-value", "rg-unknown-option", "hf-no-split"],
)
def test_bad_dataset_spec(tmp_path: Path, spec: str, needle: str) -> None:
    result = run_cli(["score", "--dataset", spec], tmp_path)
    assert_one_error(result, 2, needle)
    assert not (tmp_path / "runs").exists()


def test_hub_dataset_offline(tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1 is how an offline machine is configured: the error is immediate."""
    result = run_cli(
        ["score", "--dataset", "hf:someorg/no-such-dataset:train"],
        tmp_path,
        env=cli_env(HF_HUB_OFFLINE="1"),
    )
    assert_one_error(result, 2, "cannot load from the Hugging Face hub")
    assert "offline?" in result.stderr


def test_hub_dataset_unreachable_logs_nothing_but_the_error(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without HF_HUB_OFFLINE the hub client retries every request, logging each retry
    to stderr; those lines must not reach the user (the retries' sleeps are skipped)."""
    import huggingface_hub.utils._http as hub_http

    from faithcheck.errors import DataError

    monkeypatch.setattr(hub_http.time, "sleep", lambda s: None)
    with pytest.raises(DataError, match="cannot load from the Hugging Face hub") as info:
        load_problems("hf:someorg/no-such-dataset:train")
    assert "\n" not in str(info.value)
    captured = capfd.readouterr()
    assert "Retrying" not in captured.err and "thrown while requesting" not in captured.err


TEN_MB = 10 * 1024 * 1024


def _big_question() -> str:
    return ("Add the next pair of numbers: 12 + 30. " * (TEN_MB // 39 + 1))[:TEN_MB]


def test_ten_megabyte_question_loads_whole(tmp_path: Path) -> None:
    # How fast: benchmarks/adversarial.py.
    big = _big_question()
    rows = [*problems(1), {"id": "big", "question": big, "answer": "42"}]
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    loaded = load_problems(str(path))
    assert [p.id for p in loaded] == ["p0", "big"]
    assert loaded[1].question == big


@pytest.mark.slow  # no model loads, but tokenizing 10 MB takes ~10 s on this machine
def test_ten_megabyte_question_refused_by_the_server_fails_cleanly(
    tmp_path: Path, model_path: str, server: ScriptedServer
) -> None:
    """The prompt is longer than any context: the server refuses it (as vLLM's does),
    the run stops with one line and exit 3, and the problem before it stays on disk."""
    rows = [*problems(1), {"id": "big", "question": _big_question(), "answer": "42"}]
    write_jsonl(tmp_path / "big.jsonl", rows)
    server.max_context = 8192
    args = [*openai_args(server.url, model_path), "--dataset", "big.jsonl", "--samples", "2"]
    result = run_cli([*args, *QUIET, "--out", "run"], tmp_path)
    assert_one_error(result, 3, "maximum context length is 8192 tokens", under_way=True)
    assert "HTTP 400" in result.stderr
    assert sample_keys(read_records(tmp_path / "run")) == [("p0", 0), ("p0", 1)]
