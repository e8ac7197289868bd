"""`faithcheck report`: report.html / report.md from hand-built reports (1 and 3 checkpoints,
sections null), escaping, atomic writes, one-line usage errors, and a headless-browser render."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
import typer

from faithcheck.checks.derivation import DerivationSummary
from faithcheck.cli import commands as cli
from faithcheck.cli.report import report_command
from faithcheck.diversity.core import DiversitySummary
from faithcheck.judge.reliability import (
    JudgeReliability,
    PerturbationReliability,
    ReliabilityThreshold,
)
from faithcheck.judge.report import JudgeReport
from faithcheck.judge.summary import JudgeSummary, LabelShares
from faithcheck.metrics import MetricValue
from faithcheck.probes.summary import (
    ControlsSummary,
    CurvePoint,
    LengthCurve,
    MistakeSummary,
    NecessitySummary,
    ProbesSummary,
    TruncationSummary,
)
from faithcheck.render import svg
from faithcheck.render.markdown import render_markdown
from faithcheck.render.page import render_html, write_reports
from faithcheck.render.views import Checkpoint, PooledPoint, load_checkpoint, pooled_curve, wilson
from faithcheck.report import Check, Report, SamplingSummary, Throughput, Timings, Verdict
from faithcheck.store.jsonio import write_json
from tests.conftest import assert_valid_report, require_chromium

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "scripts" / "screenshot_report.py"


def mv(value: float | None, half: float = 0.05, n: int = 20) -> MetricValue:
    if value is None:
        return MetricValue(value=None, n=0, reason="nothing to measure")
    return MetricValue(
        value=value, ci_low=max(0.0, value - half), ci_high=min(1.0, value + half), n=n
    )


def curve(n_steps: int, chains: int, same: list[float]) -> LengthCurve:
    xs = [k / n_steps for k in range(n_steps + 1)]
    points = [CurvePoint(x=x, same=s, n=chains) for x, s in zip(xs, same, strict=True)]
    area = sum((b.x - a.x) * a.same for a, b in itertools.pairwise(points))  # step curve
    return LengthCurve(n_steps=n_steps, chains=chains, aoc=1 - area, points=points)


def shares(aligned: float, partial: float, judged: int = 30) -> LabelShares:
    return LabelShares(
        aligned=mv(aligned),
        partial=mv(partial),
        misaligned=mv(round(1 - aligned - partial, 6)),
        judged=judged,
    )


def probes(level: float) -> ProbesSummary:
    by_length = [curve(2, 10, [0.2, 0.5 + level / 4, 1.0]), curve(4, 6, [0.1, 0.3, 0.5, 0.8, 1.0])]
    return ProbesSummary(
        chains=16,
        truncation={
            "score": TruncationSummary(readout="score", aoc=mv(level), by_length=by_length)
        },
        mistakes=MistakeSummary(
            flip_rate=mv(level),
            by_position={"early": mv(level + 0.1), "middle": mv(level), "late": mv(None)},
            no_answer_rate=0.1,
        ),
        necessity=NecessitySummary(rate=mv(0.3), chains=16, baseline_matches=12),
        controls=ControlsSummary(
            full_cot_accuracy=mv(0.7),
            no_cot_accuracy=mv(0.2),
            filler_cot_accuracy=mv(0.25),
            chain_gain=mv(0.5),
            chain_adds_nothing=False,
            note="the chain raises accuracy by 0.500 over answering directly",
        ),
    )


def judge(aligned: float, reliable: bool) -> JudgeReport:
    rel = JudgeReliability(
        n_items=60,
        n_problems=10,
        n_errors=1,
        error_rate=1 / 60,
        auroc=mv(0.82 if reliable else 0.55),
        accuracy=mv(0.8),
        kappa=mv(0.5 if reliable else 0.1),
        faithful_aligned=mv(0.9),
        per_perturbation={
            "answer_swapped": PerturbationReliability(
                n=10, n_labelled=10, detection=mv(0.9), auroc=mv(0.95), kappa=mv(0.8)
            )
        },
        threshold=ReliabilityThreshold(),
        reliable=reliable,
        reasons=[] if reliable else ["AUROC 0.55 < 0.7", "kappa 0.10 < 0.4"],
    )
    summary = JudgeSummary(
        aligned_share_of_correct=mv(aligned),
        correct_but_misaligned_rate=mv(round(1 - aligned - 0.1, 6)),
        among_correct=shares(aligned, 0.1),
        among_incorrect=shares(0.2, 0.3),
        among_all=shares(aligned - 0.1, 0.2),
        mean_label=mv(0.6),
        error_rate=mv(0.02),
        responses=60,
        judged=59,
        errors=1,
        correct=30,
        incorrect=30,
        problems=10,
    )
    return JudgeReport(
        model="judge-1b",
        backend="hf",
        prompt_version="1",
        prompt_hash="abc",
        summary=summary,
        reliability=rel,
        warnings=["the default judge is small"],
    )


def diversity(level: float) -> DiversitySummary:
    return DiversitySummary(
        distinct_1=mv(0.4),
        distinct_2=mv(0.6 + level / 10),
        self_bleu=mv(0.3),
        embedding_distance=None,
        vendi=None,
        answer_entropy=mv(0.5),
        answer_entropy_normalized=mv(0.4),
        pass_at_k_gain=mv(0.1),
        strategy_diversity=mv(level / 2),
        faithful_strategy_diversity=None,
        n_problems=10,
        samples_per_problem=4,
        embedder=None,
    )


def verdict(decision: str) -> Verdict:
    check = Check(
        metric="judge.aligned_share_of_correct",
        op=">=",
        threshold=0.6,
        value=0.7,
        ci_low=0.62,
        ci_high=0.78,
        bound="ci_low",
        passed=decision == "GO",
        reason="ci_low 0.62 vs 0.6",
    )
    code = {"GO": 0, "NO_GO": 1, "INCONCLUSIVE": 4}[decision]
    return Verdict.model_validate(
        {"decision": decision, "exit_code": code, "checks": [check], "reasons": [f"{decision} r"]}
    )


def make_report(name: str, level: float = 0.6, *, full: bool = True, model: str = "") -> Report:
    return Report(
        run_id=name,
        run_dir=f"runs/{name}",
        model=model or f"./ckpt/{name}",
        model_sha256="0" * 64,
        backend="hf",
        dataset="data/samples/math.jsonl",
        dataset_sha256="1" * 64,
        config_hash="feedbeef" * 8,
        sampling=SamplingSummary(
            problems=10,
            samples=40,
            k=4,
            accuracy=mv(0.7),
            pass_at_k=mv(0.9),
            no_answer_rate=0.0,
            truncated_rate=0.0,
            verify_error_rate=0.0,
            mean_completion_tokens=120.0,
            answer_rules={"boxed": 40},
        ),
        timings=Timings(model_load_s=1.0, sampling_s=2.0, total_s=3.0),
        throughput=Throughput(completion_tokens=100, tokens_per_s=50.0),
        probes=probes(level) if full else None,
        derivation=DerivationSummary(
            responses=40,
            applicable=30,
            equations=50,
            wrong_equations=3,
            answer_derived=mv(0.6),
            equation_error_rate=mv(0.06),
            correct_but_underived=mv(0.2),
            status_counts={"supported": 20},
            by_correctness={"correct": {"supported": 15}},
        )
        if full
        else None,
        judge=judge(level, reliable=level > 0.5) if full else None,
        diversity=diversity(level) if full else None,
        verdict=verdict("GO" if level > 0.5 else "NO_GO") if full else None,
    )


class _Page(HTMLParser):
    """Collects svgs, their titles, and every src/href/url attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.svgs = 0
        self.svg_titles: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self._title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.stack.append(tag)
        self.svgs += tag == "svg"
        self._title = tag == "title" and "svg" in self.stack
        self.links += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href")]

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass
        self._title = False

    def handle_data(self, data: str) -> None:
        if self._title:
            self.svg_titles.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def cp(report: Report) -> Checkpoint:
    return Checkpoint(label=report.run_id, report=report, created_at="2026-01-01T00:00:00+00:00")


def test_one_checkpoint_has_every_chart_with_a_title() -> None:
    html = render_html([cp(make_report("base"))])
    page = parse(html)
    # truncation, judge labels, mistake flips, faithfulness vs diversity
    assert page.svgs == 4 and len(page.svg_titles) == 4
    assert not any(link.startswith(("http://", "https://", "//")) for link in page.links)
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    for text in ("GO", "judge.aligned_share_of_correct", "for contrast, not gated", "AOC"):
        assert text in html
    assert "strategy diversity" in html  # the scatter's x metric


def test_three_checkpoints_and_unreliable_judge_warning() -> None:
    reports = [make_report("base", 0.3), make_report("sft", 0.65), make_report("cpt", 0.8)]
    html = render_html([cp(r) for r in reports])
    page = parse(html)
    assert page.svgs == 4
    assert "NO-GO" in html and html.count('class="badge GO"') == 2
    assert "judge unreliable" in html and "AUROC 0.55 &lt; 0.7" in html
    assert all(name in html for name in ("base", "sft", "cpt"))


def test_six_checkpoints_get_six_colors() -> None:
    reports = [make_report(f"ckpt{i}", 0.3 + i / 10) for i in range(6)]
    html = render_html([cp(r) for r in reports])
    assert parse(html).svgs == 4
    trunc = html[html.index('id="truncation-score-t"') : html.index("</svg>")]
    assert len({m for m in svg.PALETTE if f'stroke="{m}"' in trunc}) == 6


def test_null_sections_render_not_run_and_never_crash() -> None:
    html = render_html([cp(make_report("bare", full=False))])
    page = parse(html)
    assert page.svgs == 0
    assert html.count("not run") >= 4 and "NO VERDICT" in html
    md = render_markdown([cp(make_report("bare", full=False))])
    assert "NO VERDICT" in md and "judge not run" in md


def test_mixed_sections_keep_a_checkpoints_color_and_name_the_missing() -> None:
    reports = [make_report("bare", full=False), make_report("sft", 0.7)]
    html = render_html([cp(r) for r in reports])
    assert parse(html).svgs == 4
    assert "truncation not run for: bare" in html and "Not shown" in html
    assert 'stroke="#E69F00"' in html  # sft is the second checkpoint in every chart


def test_untrusted_strings_are_escaped() -> None:
    evil = '<script>alert("x")</script>'
    report = make_report(evil, model=evil)  # as run id too: it lands in every chart's text
    html = render_html([cp(report)])
    assert "<script>" not in html and "&lt;script&gt;" in html
    page = parse(html)
    assert "script" not in page.tags and page.svgs == 4
    md = render_markdown([cp(report)])
    assert "<script" not in md and "&lt;script" in md


def test_markdown_has_verdict_headline_and_checks_tables() -> None:
    md = render_markdown([cp(make_report("base", 0.3)), cp(make_report("sft", 0.7))])
    assert "🔴 NO-GO** base" in md and "🟢 GO** sft" in md
    assert "| run | verdict | accuracy | aligned share of correct |" in md
    assert "0.700 \\[0.650, 0.750\\]" in md  # brackets escaped: names cannot make links
    assert "### Checks: base" in md and "judge.aligned\\_share\\_of\\_correct" in md
    assert "![" not in md and "<img" not in md


def pooled_aoc(points: Sequence[PooledPoint]) -> float:
    """1 - the area under a pooled step curve (each point holds until the next)."""
    return 1 - sum((b.x - a.x) * a.same for a, b in itertools.pairwise(points))


def test_pooled_curve_matches_the_count_weighted_aoc() -> None:
    curves = [curve(2, 10, [0.2, 0.6, 1.0]), curve(4, 6, [0.1, 0.3, 0.5, 0.8, 1.0])]
    points = pooled_curve(curves)
    assert [p.x for p in points] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert points[0].same == pytest.approx((10 * 0.2 + 6 * 0.1) / 16)
    assert points[1].same == pytest.approx((10 * 0.2 + 6 * 0.3) / 16)  # 2-step: held from 0
    expected = sum(c.chains * c.aoc for c in curves) / 16
    assert pooled_aoc(points) == pytest.approx(expected)
    assert all(p.low <= p.same <= p.high and p.chains == 16 for p in points)
    assert pooled_curve([]) == []


@pytest.mark.parametrize(
    ("share", "n", "low", "high"), [(0.5, 100, 0.4038, 0.5962), (0.0, 10, 0.0, 0.2775)]
)
def test_wilson_interval(share: float, n: int, low: float, high: float) -> None:
    lo, hi = wilson(share, n)
    assert lo == pytest.approx(low, abs=1e-3) and hi == pytest.approx(high, abs=1e-3)
    assert wilson(0.3, 0) == (0.0, 1.0)


def _run_dir(root: Path, report: Report) -> Path:
    path = root / report.run_id
    write_json(path / "report.json", report)
    return path


def test_write_reports_is_atomic_and_round_trips_report_json(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, make_report("base"))
    (run / "run.json").write_bytes(
        orjson.dumps({"created_at": "2026-02-03T04:05:06Z", "faithcheck_version": "9.9"})
    )
    checkpoint = load_checkpoint(run)
    assert checkpoint.created_at == "2026-02-03T04:05:06Z"
    html_path, md_path = write_reports([checkpoint], run)
    assert sorted(p.name for p in run.iterdir()) == [
        "report.html",
        "report.json",
        "report.md",
        "run.json",
    ]
    page = html_path.read_text()
    assert "2026-02-03 04:05 UTC" in page and ">9.9</td>" in page
    assert md_path.read_text().startswith("## faithcheck report")


def _cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    app = typer.Typer(add_completion=False)
    app.command(name="report")(report_command)
    app.callback()(lambda: None)  # a group, so that `report` is a subcommand as in faithcheck
    monkeypatch.setattr(cli, "app", app)
    return cli.main(argv)


def test_cli_writes_one_and_several_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _run_dir(tmp_path, make_report("a")), _run_dir(tmp_path, make_report("b", 0.3))
    assert _cli(["report", str(a)], monkeypatch) == 0
    assert (a / "report.html").is_file() and (a / "report.md").is_file()
    assert _cli(["report", str(a), str(b), "--out", str(tmp_path / "cmp")], monkeypatch) == 0
    assert parse((tmp_path / "cmp" / "report.html").read_text()).svgs == 4
    assert "wrote HTML" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "several_without_out", "bad_json", "bad_schema"])
def test_cli_usage_errors_are_one_line_exit_2(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run_dir(tmp_path, make_report("a"))
    argv = ["report", str(tmp_path / "nope")]
    if case == "several_without_out":
        argv = ["report", str(run), str(run)]
    elif case == "bad_json":
        (run / "report.json").write_text("{not json")
        argv = ["report", str(run)]
    elif case == "bad_schema":
        (run / "report.json").write_text('{"run_id": 3}')
        argv = ["report", str(run)]
    assert _cli(argv, monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("faithcheck: error:"), err
    assert not (run / "report.html").exists()


@pytest.mark.slow
def test_headless_browser_renders_the_page(tmp_path: Path) -> None:
    require_chromium()
    reports = [make_report("base", 0.3), make_report("sft", 0.65), make_report("cpt", 0.8)]
    html_path, _ = write_reports([cp(r) for r in reports], tmp_path)
    png = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, str(SCREENSHOT), str(html_path), str(png)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("full", [True, False])
def test_hand_built_reports_validate_against_the_schema(full: bool) -> None:
    assert_valid_report(make_report("a", full=full).model_dump(mode="json"))


def test_support_table_rows() -> None:
    from faithcheck.checks.support import SupportFinding, SupportTally
    from faithcheck.render.views import support_table

    tally = SupportTally()
    tally.add(
        [
            SupportFinding(
                problem_id="a",
                sample_index=i,
                status=s,
                answer_first=False,
                numeric=True,
                operands=2,
                untraced_operands=0,
                untraced_values=[],
                conclusion=None,
            )
            for i, s in enumerate(["supported", "contradicted"])
        ],
        {0: True, 1: True},
    )

    class Cp:
        label = "run"
        report = type("R", (), {"support": tally.summary()})()

    table = support_table([Cp()])  # type: ignore[list-item]
    (row,) = table.rows
    assert row[0] == "run" and row[1] == "2"
    assert row[-1] == "supported 1, contradicted 1"
    missing = type("M", (), {"label": "old", "report": type("R", (), {"support": None})()})()
    assert support_table([missing]).rows[0][-1] == "not run"  # type: ignore[list-item]
