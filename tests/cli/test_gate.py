"""`faithcheck gate`: a scored run decided again with other gates, from report.json alone.

The report is a real `Report` (the hand-built one of the page tests) whose stored verdict
the real verdict code made: GO under the default gates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from faithcheck.cli import main
from faithcheck.cli import options as o
from faithcheck.cli.commands import score
from faithcheck.cli.gate import gate_command
from faithcheck.cli.merge import merge_command
from faithcheck.report import Report
from faithcheck.store.jsonio import write_json
from faithcheck.verdict.core import decide
from tests.render.test_page import make_report

FLIP = "probes.mistakes.flip_rate"  # 0.800, 95% CI [0.750, 0.850] on 20 problems


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run directory holding only report.json, scored GO under the default gates."""
    report = make_report("a", 0.8)
    report = report.model_copy(update={"verdict": decide(report)})
    assert report.verdict is not None and report.verdict.decision == "GO"
    write_json(tmp_path / "run" / "report.json", report)
    return tmp_path / "run"


def gate(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["gate", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("require", "decision", "code"),
    [
        ([], "GO", 0),
        ([f"{FLIP}>=0.9"], "NO-GO", 1),  # the whole CI is below 0.9
        ([f"{FLIP}>=0.8"], "INCONCLUSIVE", 4),  # the CI straddles 0.8
        (["judge.summary.aligned_share_of_correct>=0.5", f"{FLIP}>=0.9"], "NO-GO", 1),
    ],
)
def test_a_stricter_require_decides_again_with_scores_exit_codes(
    run: Path, capsys: pytest.CaptureFixture[str], require: list[str], decision: str, code: int
) -> None:
    before = (run / "report.json").read_bytes()
    args = [str(run)] + [a for r in require for a in ("--require", r)]
    rc, out, err = gate(args, capsys)
    assert rc == code, err
    assert out == ""  # without --json the summary is a diagnostic: stderr
    assert f"verdict: {decision}" in err
    assert "stored verdict: GO (gates: default)" in err
    assert (run / "report.json").read_bytes() == before  # never rewritten


def test_json_prints_the_report_with_the_new_verdict_and_nothing_else(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = gate([str(run / "report.json"), "--json", "--require", f"{FLIP}>=0.9"], capsys)
    assert rc == 1
    assert err == ""
    printed = Report.model_validate(json.loads(out))
    stored = Report.model_validate(json.loads((run / "report.json").read_bytes()))
    assert printed.verdict is not None
    assert (printed.verdict.decision, printed.verdict.exit_code) == ("NO_GO", 1)
    assert printed.verdict.gate == "default + --require"
    assert printed.model_copy(update={"verdict": stored.verdict}) == stored  # only the verdict


def test_a_gate_file_replaces_the_defaults(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = run.parent / "gate.toml"
    toml.write_text(
        f'[gate]\ndefaults = false\n[[gate.check]]\nmetric = "{FLIP}"\nop = ">="\nthreshold = 0.9\n'
    )
    rc, out, _ = gate([str(run), "--gate", str(toml), "--json"], capsys)
    verdict = json.loads(out)["verdict"]
    assert (rc, verdict["decision"], verdict["gate"]) == (1, "NO_GO", str(toml))
    assert [c["metric"] for c in verdict["checks"]] == [FLIP]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["{tmp}/absent"], "cannot read", id="missing-path"),
        pytest.param(["{tmp}"], "cannot read", id="dir-without-report"),
        pytest.param(["{tmp}/bad.json"], "not a valid faithcheck report (not JSON)", id="not-json"),
        pytest.param(["{tmp}/other.json"], "not a valid faithcheck report", id="not-a-report"),
        pytest.param(["{tmp}/old.json"], "schema_version '0.0'", id="old-schema"),
        pytest.param(["{run}", "--require", "flip>=0.3"], "unknown metric", id="unknown-metric"),
        pytest.param(["{run}", "--require", f"{FLIP}=0.3"], "expected 'metric OP", id="bad-op"),
        pytest.param(["{run}", "--require", f"{FLIP}>=0"], "vacuous gate", id="vacuous"),
        pytest.param(["{run}", "--gate", "{tmp}/absent.toml"], "cannot read", id="no-gate-file"),
        pytest.param(["{run}", "--gate", "{tmp}/bad.json"], "invalid TOML", id="bad-gate-file"),
        pytest.param([], "Missing argument", id="no-run"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    run: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    tmp = run.parent
    (tmp / "bad.json").write_text("{oops\n")
    (tmp / "other.json").write_text('{"not": "a report"}\n')
    (tmp / "old.json").write_text('{"schema_version": "0.0", "run_id": "x"}\n')
    filled = [a.format(tmp=tmp, run=run) for a in args]
    rc, out, err = gate(filled, capsys)
    lines = err.splitlines()
    assert rc == 2, err
    assert out == ""
    assert len(lines) == 1 and lines[0].startswith("faithcheck: error:"), err
    assert needle in lines[0]
    assert "Traceback" not in err


_NO_ENGINES = """
import sys
from faithcheck.cli import main
rc = main(["gate", sys.argv[1], "--json", "--require", sys.argv[2]])
heavy = [m for m in ("torch", "vllm", "transformers", "datasets") if m in sys.modules]
print("HEAVY", heavy, rc, file=sys.stderr)
"""


def test_gate_loads_no_engine_and_stdout_is_only_json(run: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAITHCHECK_")}
    proc = subprocess.run(
        [sys.executable, "-c", _NO_ENGINES, str(run), f"{FLIP}>=0.9"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.stderr.strip().splitlines()[-1] == "HEAVY [] 1", proc.stderr
    assert json.loads(proc.stdout)["verdict"]["decision"] == "NO_GO"


@pytest.mark.parametrize("command", [score, merge_command, gate_command])
def test_gate_require_and_json_are_the_options_declared_once(command: object) -> None:
    """--json is the CLI's own option; --gate and --require are the verdict's
    (`faithcheck.verdict.options.GateOptions`), made into each command's options."""
    from faithcheck.api import gate_params

    hints = typing.get_type_hints(command, include_extras=True)
    assert hints["json_out"] == o.Json
    for p in gate_params():
        option = hints[p.name].__metadata__[0]
        made = (hints[p.name].__origin__, option.help, option.rich_help_panel)
        assert made == (p.annotation, p.flag.help, p.flag.panel)
