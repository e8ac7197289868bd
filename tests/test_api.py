"""The public Python API (`faithcheck.score`, `compare`, `load_report`, `decide`, `calibrate`):
from a plain Python script, as a notebook or training loop would use it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import faithcheck
from faithcheck.errors import ExitCode, UsageError
from tests.conftest import completions_by_key

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import faithcheck
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from faithcheck.models import resolve_model

    out = sys.argv[1]
    common = dict(dataset="math", limit=2, samples=2, max_tokens=32, temperature=0.0,
                  judge=False, diversity=False, probes="truncation")
    said = []
    by_name = faithcheck.score(model="smollm2-135m", backend="hf", dtype="float32",
                               out=out + "/by-name", on_message=said.append, **common)
    path = resolve_model("smollm2-135m").path
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.train()
    held = faithcheck.score(model=model, tokenizer=tokenizer, out=out + "/in-memory", **common)
    comparison = faithcheck.compare([out + "/by-name", out + "/in-memory"])
    print(json.dumps({
        "decisions": [by_name.verdict.decision, held.verdict.decision],
        "said": said,
        "training_restored": model.training,
        "reloaded": faithcheck.load_report(out + "/by-name").model_dump(mode="json")
            == by_name.model_dump(mode="json"),
        "runs": [r.label for r in comparison.runs],
        "precision": held.precision.dtype if held.precision else None,
    }))
    """
)


@pytest.mark.slow
def test_a_plain_script_scores_by_name_and_an_already_loaded_model(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])  # stdout: only what it printed
    assert out["decisions"] == ["INCONCLUSIVE", "INCONCLUSIVE"]  # 2 problems: too few
    assert any(line.startswith("precision: float32") for line in out["said"])
    assert out["training_restored"] is True and out["reloaded"] is True
    assert len(out["runs"]) == 2 and out["precision"] == "float32"

    def completions(run: str) -> list[str]:
        lines = (tmp_path / run / "samples.jsonl").read_text().splitlines()
        return [json.loads(line)["completion"] for line in lines]

    # The same weights in the same dtype, greedy: the same responses whichever way in.
    assert completions("in-memory") == completions("by-name")
    info = json.loads((tmp_path / "in-memory" / "run.json").read_text())
    assert info["model"]["kind"] == "in-memory" and len(info["model"]["sha256"]) == 64


@pytest.mark.slow
def test_a_vllm_llm_the_caller_holds_is_used_as_is_and_left_running(
    tmp_path: Path, vllm_fp32: object, greedy_fp32_run: Callable[[str], Path]
) -> None:
    """`score(model=llm)` with a `vllm.LLM` already loaded: the same greedy responses as
    `--model <its checkpoint> --backend vllm` (the session's run of it, in another process:
    a second in-process engine's shutdown would tear down vLLM's global parallel state under
    the session's engine), the run identified by the checkpoint's files, and the engine
    still serves afterwards (faithcheck does not shut it down)."""
    from faithcheck.backends.base import GenerationRequest

    llm = vllm_fp32.llm  # type: ignore[attr-defined]
    held = faithcheck.score(
        model=llm, out=str(tmp_path / "held"), dataset="math", limit=2, samples=2,
        max_tokens=48, temperature=0.0, judge=False, diversity=False, probes="none",
    )  # fmt: skip
    request = GenerationRequest(
        prompt_ids=[17, 18, 19], n=1, seed=0, temperature=0.0, top_p=1.0, max_tokens=2
    )
    out = vllm_fp32.generate([request])  # type: ignore[attr-defined]
    by_path = greedy_fp32_run("vllm")
    report = json.loads((by_path / "report.json").read_text())
    assert report["backend"] == "vllm" and report["precision"]["dtype"] == "float32"
    assert llm.llm_engine.model_config.model == str(report["model"])

    got = completions_by_key(tmp_path / "held")
    assert len(got) == 4 and got == completions_by_key(by_path)
    assert held.model_sha256 == report["model_sha256"]
    assert held.precision is not None and held.precision.dtype == "float32"
    assert out and out[0]  # the caller's engine still answers


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"samples": 0}, "--samples must be at least 1"),
        ({"sampels": 2}, "unknown option 'sampels'"),
        ({"probes": "telepathy"}, "unknown probe 'telepathy'"),
        ({"judge_backend": "carrier-pigeon"}, "--judge-backend must be"),
        ({"model": "smollm2-135m", "tokenizer": object()}, "tokenizer= goes with a model object"),
        ({"model": object()}, "model= takes a name"),
    ],
)
def test_bad_input_is_the_clis_usage_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        faithcheck.score(out=str(tmp_path / "r"), **kwargs)
    assert info.value.exit_code == ExitCode.USAGE


def test_the_cli_says_the_same_for_the_same_bad_input(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "faithcheck", "score", "--samples", "0", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "faithcheck: error: --samples must be at least 1"


def test_load_report_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        faithcheck.load_report(tmp_path / "nope")
    (tmp_path / "report.json").write_text('{"not": "a report"}')
    with pytest.raises(UsageError, match="not a valid faithcheck report"):
        faithcheck.load_report(tmp_path)


def test_load_report_says_why_a_report_is_not_valid(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{oops")
    with pytest.raises(UsageError, match=r"not a valid faithcheck report \(not JSON\)"):
        faithcheck.load_report(tmp_path)
    (tmp_path / "report.json").write_text('{"schema_version": "0.0"}')
    with pytest.raises(UsageError, match=r"schema_version '0\.0'; this faithcheck reads"):
        faithcheck.load_report(tmp_path)


FLIP = "probes.mistakes.flip_rate"  # 0.800, 95% CI [0.750, 0.850] in make_report("a", 0.8)


def test_decide_takes_a_report_its_dict_or_its_path(tmp_path: Path) -> None:
    from faithcheck.report import Verdict
    from faithcheck.store.jsonio import write_json
    from tests.render.test_page import make_report

    report = make_report("a", 0.8)
    write_json(tmp_path / "report.json", report)
    given = [report, report.model_dump(mode="json"), tmp_path, str(tmp_path / "report.json")]
    for item in given:
        default = faithcheck.decide(item)
        assert isinstance(default, Verdict)
        assert (default.decision, default.exit_code, default.gate) == ("GO", 0, "default")
        stricter = faithcheck.decide(item, require=[f"{FLIP}>=0.9"])
        assert (stricter.decision, stricter.exit_code) == ("NO_GO", ExitCode.NO_GO)
    assert faithcheck.decide(report, require=f"{FLIP}>=0.8").exit_code == ExitCode.INCONCLUSIVE
    gate = tmp_path / "gate.toml"
    gate.write_text(f'[[gate.check]]\nmetric = "{FLIP}"\nop = ">="\nthreshold = 0.9\n')
    assert faithcheck.decide(tmp_path, gate=gate).gate == f"default + {gate}"


@pytest.mark.parametrize(
    ("report", "kwargs", "message"),
    [
        ({"not": "a report"}, {}, "the report dict is not a valid faithcheck report"),
        ("{tmp}/absent", {}, "cannot read"),
        ("{tmp}", {"require": ["probes.truncation.aoc>=0"]}, "vacuous gate"),
        ("{tmp}", {"require": ["aoc>=0.5"]}, "unknown metric"),
    ],
)
def test_decide_errors_are_usage_errors(
    tmp_path: Path, report: object, kwargs: dict, message: str
) -> None:
    if isinstance(report, str):
        report = report.format(tmp=tmp_path)
    with pytest.raises(UsageError, match=message) as info:
        faithcheck.decide(report, **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == ExitCode.USAGE


def test_import_is_light_and_names_resolve() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, faithcheck; assert 'torch' not in sys.modules; "
            "print(callable(faithcheck.score), callable(faithcheck.compare))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


def test_the_cli_and_the_api_take_the_declared_options() -> None:
    """Each `score` option is declared once, by its package (`faithcheck.api.score_params`,
    `gate_params`): the command's options are made from the declarations (name, type,
    default, help, env var, panel), the API takes exactly those keywords, and every
    default the command line shows builds the options the declarations default to."""
    import inspect

    import faithcheck
    from faithcheck.api import gate_params, score_params
    from faithcheck.cli.commands import score as cli_score
    from faithcheck.pipeline.options import check_names, score_options

    declared = {p.name: p for p in [*score_params(), *gate_params()]}
    cli = inspect.signature(cli_score).parameters
    own = {"model", "json_out", "verbose", "log_to", "log_dir", "log_step", "log_name"}
    assert set(cli) - own == set(declared)
    for name, p in declared.items():
        option = cli[name].annotation.__metadata__[0]
        assert cli[name].default == p.default, name
        assert cli[name].annotation.__origin__ == p.annotation, name
        flag = (option.help, option.envvar, option.rich_help_panel)
        assert flag == (p.flag.help, p.flag.envvar, p.flag.panel), name
    check_names({p.name: p.default for p in score_params()})
    with pytest.raises(UsageError, match="unknown option 'max_token'"):
        check_names({"max_token": 8})
    defaults = {p.name: p.default for p in score_params()}
    assert score_options(**defaults) == score_options()
    for function in (faithcheck.score, faithcheck.score_many, faithcheck.merge):
        api = inspect.signature(function).parameters
        for p in gate_params():  # explicit keywords, for type checkers
            assert not api[p.name].default, (function.__name__, p.name)


TYPED = textwrap.dedent(
    """
    import faithcheck

    reveal_type(faithcheck.score(model="x"))
    reveal_type(faithcheck.score_many(["a", "b"]))
    reveal_type(faithcheck.compare(["a", "b"]))
    reveal_type(faithcheck.load_report("a"))
    reveal_type(faithcheck.decide("a"))
    reveal_type(faithcheck.calibrate("x"))
    reveal_type(faithcheck.calibrate(["x", "y"]))
    reveal_type(faithcheck.merge(["a"], "b"))
    accuracy: float | None = faithcheck.score().sampling.accuracy.value
    """
)


def test_mypy_sees_the_records_the_api_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's type checker sees `Report` from `faithcheck.score` (and each function's
    record), not `Any`: the lazy names of `faithcheck/__init__.py` are typed."""
    mypy = pytest.importorskip("mypy.api")
    root = Path(__file__).resolve().parent.parent
    snippet = tmp_path / "uses_the_api.py"
    snippet.write_text(TYPED)
    monkeypatch.setenv("MYPYPATH", str(root))
    # Third-party packages unread (as Any): only faithcheck's own types matter here.
    flags = ["--no-site-packages", "--ignore-missing-imports", "--follow-imports=silent"]
    cache = ["--no-error-summary", "--cache-dir", str(tmp_path / "cache")]
    out, err, _ = mypy.run([*flags, *cache, str(snippet)])
    marker = 'Revealed type is "'
    revealed = [line.split(marker)[1].rstrip('"') for line in out.splitlines() if marker in line]
    assert revealed == [
        "faithcheck.report.Report",
        "faithcheck.comparison.multi.ScoredCheckpoints",
        "faithcheck.comparison.core.Comparison",
        "faithcheck.report.Report",
        "faithcheck.report.Verdict",
        "faithcheck.judge.reliability.Calibration",
        "dict[str, faithcheck.judge.reliability.Calibration]",
        "faithcheck.report.Report",
    ], out + err
    assert "error" not in out, out
