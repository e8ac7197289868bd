"""End-to-end checks of the CLI's error contract, run as real subprocesses.

Every failure must be exactly one non-empty stderr line starting with "faithcheck:", no
traceback, nothing on stdout, and the documented exit code (2 usage/data, 3 model/run).
All cases fail before any model is loaded: data, option and template errors are found
first; `--out` cases pass a stub checkpoint folder and `--backend hf` so that neither a
model nor vLLM is touched. Also covers `models`, `schema` and `--help`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_DROP = ("FAITHCHECK_MODEL", "FAITHCHECK_DATASET", "FAITHCHECK_DEBUG", "HF_HUB_OFFLINE")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env["COLUMNS"] = "250"  # keep rich tables unwrapped
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faithcheck", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Input files for the error cases, by placeholder name."""
    good = {"id": "a", "question": "1 + 1?", "answer": "2"}
    (tmp_path / "bad.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n{oops\n")
    (tmp_path / "missing.jsonl").write_text('{"id": "a", "problem": "1 + 1?", "answer": "2"}\n')
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "afile").write_text("not a model\n")
    (tmp_path / "noconfig").mkdir()
    (tmp_path / "noconfig" / "model.safetensors").write_bytes(b"")
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "config.json").write_text("{}\n")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine\n")
    (tmp_path / "tpl.txt").write_text("Solve this problem carefully.\n")
    return {p.name: str(p) for p in tmp_path.iterdir()}


def _fill(args: list[str], files: dict[str, str]) -> list[str]:
    """Replace `{name}` arguments with the path of that fixture file."""
    return [files[a[1:-1]] if a.startswith("{") and a.endswith("}") else a for a in args]


STUB = ["--model", "{stub}", "--backend", "hf"]

ERROR_CASES = [
    pytest.param(
        ["score", "--model", "/nonexistent/dir"], 3, "no such folder", id="model-missing-path"
    ),
    pytest.param(["score", "--model", "{afile}"], 3, "is a file", id="model-is-a-file"),
    pytest.param(["score", "--model", "{noconfig}"], 3, "no config.json", id="model-no-config"),
    pytest.param(
        ["score", "--model", "someorg/some-model"], 3, "Hugging Face hub", id="model-offline-hub"
    ),
    pytest.param(["score", "--dataset", "{bad.jsonl}"], 2, "bad.jsonl:3", id="jsonl-bad-line"),
    pytest.param(
        ["score", "--dataset", "{missing.jsonl}"], 2, "--question-field", id="missing-field"
    ),
    pytest.param(["score", "--dataset", "{empty.jsonl}"], 2, "no problems", id="empty-dataset"),
    pytest.param(
        ["score", "--dataset", "rg:no_such_gen"], 2, "unknown reasoning-gym", id="rg-unknown"
    ),
    pytest.param(["score", "--samples", "0"], 2, "--samples", id="samples-0"),
    pytest.param(["score", "--limit", "0"], 2, "--limit", id="limit-0"),
    pytest.param(["score", "--top-p", "0"], 2, "--top-p", id="top-p-0"),
    pytest.param(["score", "--no-such-option"], 2, "--no-such-option", id="unknown-option"),
    pytest.param(["no-such-command"], 2, "no-such-command", id="unknown-command"),
    pytest.param(["score", *STUB, "--out", "{afile}"], 2, "is a file", id="out-is-a-file"),
    pytest.param(
        ["score", *STUB, "--out", "{foreign}"], 2, "not a faithcheck run", id="out-foreign-dir"
    ),
    pytest.param(
        ["score", "--prompt-template", "{tpl.txt}"], 2, "{question}", id="template-no-placeholder"
    ),
    pytest.param(
        ["score", *STUB, "--require", "probes.truncation.aoc>=0"],
        2,
        "vacuous gate: probes.truncation.aoc lies in [0, 1]",
        id="require-vacuous",
    ),
]


@pytest.mark.parametrize(("args", "code", "needle"), ERROR_CASES)
def test_error_is_one_line_and_exit_code(
    tmp_path: Path,
    files: dict[str, str],
    args: list[str],
    code: int,
    needle: str,
) -> None:
    result = _run(_fill(args, files), tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("faithcheck:")
    assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "runs").exists()  # an early error leaves nothing behind


MODEL_ERROR_CASES = [case for case in ERROR_CASES if case.id and case.id.startswith("model-")]


@pytest.mark.parametrize(("args", "code", "needle"), MODEL_ERROR_CASES)
def test_early_model_error_creates_no_runs_folder(
    tmp_path: Path, files: dict[str, str], args: list[str], code: int, needle: str
) -> None:
    result = _run(_fill(args, files), tmp_path)
    assert result.returncode == code, result.stderr
    assert not (tmp_path / "runs").exists()


def test_early_error_removes_a_fresh_out_dir(tmp_path: Path, files: dict[str, str]) -> None:
    out = tmp_path / "fresh"
    result = _run(["score", "--model", files["noconfig"], "--out", str(out)], tmp_path)
    assert result.returncode == 3, result.stderr
    assert "no config.json" in result.stderr
    assert not out.exists()


def test_early_error_keeps_an_existing_empty_out_dir(tmp_path: Path, files: dict[str, str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    result = _run(["score", "--model", files["noconfig"], "--out", str(out)], tmp_path)
    assert result.returncode == 3, result.stderr
    assert out.is_dir()
    assert [p.name for p in out.iterdir() if p.name != ".lock"] == []


def test_foreign_out_dir_is_left_untouched(tmp_path: Path, files: dict[str, str]) -> None:
    result = _run(_fill(["score", *STUB, "--out", "{foreign}"], files), tmp_path)
    assert result.returncode == 2
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir() if p.name != ".lock") == [
        "notes.txt"
    ]


def test_force_gets_past_a_corrupt_run_json(tmp_path: Path, files: dict[str, str]) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "run.json").write_text("{not json\n")
    result = _run(_fill(["score", *STUB, "--out", str(out), "--force"], files), tmp_path)
    assert "is corrupt" not in result.stderr


_ORDER_PROBE = """
import sys
import faithcheck.pipeline.core as score
from faithcheck.cli import main

def reached(*args, **kwargs):
    raise RuntimeError("model or backend resolved before --out was checked")

score.resolve_model = reached
score.choose_backend = reached
sys.exit(main(["score", "--out", sys.argv[1]]))
"""


def test_out_is_checked_before_model_and_backend(tmp_path: Path, files: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _ORDER_PROBE, files["afile"]],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "is a file" in result.stderr


# --- commands that succeed -----------------------------------------------------------------


def test_models_lists_embedded_aliases(tmp_path: Path) -> None:
    result = _run(["models"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "smollm2-135m" in result.stdout
    assert "qwen2.5-0.5b" in result.stdout
    assert "(default)" in result.stdout


def test_models_shows_install_hint_verbatim(tmp_path: Path) -> None:
    """Hints contain [extras], which rich would otherwise eat as markup."""
    result = _run(["models"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "faithcheck[demo-model]" in result.stdout


def test_schema_is_json_schema_of_the_report(tmp_path: Path) -> None:
    result = _run(["schema"], tmp_path)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert "sampling" in schema["properties"]
    assert "schema_version" in schema["properties"]
    assert schema["type"] == "object"


def test_help_exits_zero(tmp_path: Path) -> None:
    result = _run(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("score", "models", "schema"):
        assert command in result.stdout


_HELP_PROBE = """
import sys
from faithcheck.cli import main
rc = main(["score", "--help"])
names = ("torch", "vllm", "transformers", "datasets", "reasoning_gym")
heavy = [m for m in names if m in sys.modules]
print("HEAVY", heavy, rc, file=sys.stderr)
"""


def test_help_imports_no_heavy_modules(tmp_path: Path) -> None:
    """--help stays instant because engines and data libraries load lazily."""
    result = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "--samples" in result.stdout
    assert "HEAVY [] 0" in result.stderr
