"""The summary table `score` prints on stderr (without --json)."""

from __future__ import annotations

from rich.console import Console

from faithcheck.cli.summary import emit, print_summary
from tests.render.test_page import make_report


def test_summary_shows_probes_judge_diversity_and_the_verdict() -> None:
    console = Console(record=True, width=200)
    report = make_report("a")
    print_summary(report, console)
    text = console.export_text()
    for row in ("accuracy", "truncation AOC", "judge: aligned share of correct", "verdict:"):
        assert row in text, row
    assert report.verdict is not None
    assert report.verdict.decision.replace("_", "-") in text


def test_emit_returns_the_verdicts_exit_code() -> None:
    report = make_report("a")
    assert report.verdict is not None
    code = emit(report, json_out=False, console=Console(record=True))
    assert code == {"GO": 0, "NO_GO": 1, "INCONCLUSIVE": 4}[report.verdict.decision]
