"""`faithcheck report`: report.html (tables and inline-SVG plots) and report.md from report.json.

One or more run directories become one page: the verdict of each checkpoint with its checks,
truncation curves, judge label shares, mistake flip rates, faithfulness against diversity,
the controls, the derivation check and the diversity metrics. The HTML is self-contained (no
script, no external asset) and every string that comes from a report is escaped: model names
and notes are untrusted. report.md carries the essentials for a pull-request comment.

Truncation bands: report.json keeps curves per chain length (`LengthCurve`) but no CI per x.
`pooled_curve` interpolates each length's curve on the union of their x values and averages
them weighted by chains (so its AOC equals the report's count-weighted AOC); the band is a 95%
Wilson interval on that pooled share with n = chains. It treats chains as independent (samples
of one problem are not), so it is narrower than a bootstrap over problems would be.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from faithcheck import __version__, svg
from faithcheck.diversity import NOT_GATED_NOTE
from faithcheck.errors import RunDirError, UsageError
from faithcheck.jsonio import atomic_write_bytes
from faithcheck.metrics import MetricValue
from faithcheck.probes.summary import POSITION_BINS, LengthCurve, TruncationSummary
from faithcheck.report import Report

HTML_FILE, MD_FILE = "report.html", "report.md"
Z95 = 1.959964
DECISION_TEXT = {"GO": "GO", "NO_GO": "NO-GO", "INCONCLUSIVE": "INCONCLUSIVE", None: "NO VERDICT"}
LABELS = (("aligned", "#009E73"), ("partial", "#E69F00"), ("misaligned", "#D55E00"))
DIVERSITY_AXES = (
    ("strategy_diversity", "strategy diversity"),
    ("vendi", "Vendi score"),
    ("distinct_2", "distinct-2"),
)
"""Diversity metrics for the scatter's x axis, by preference (the study's measure first)."""


@dataclass(frozen=True)
class Checkpoint:
    """One run's report plus what the page header needs from run.json."""

    label: str
    """Display name, unique on the page (the run id, suffixed when two runs share it)."""
    report: Report
    created_at: str | None = None
    """When the run started (run.json), else when report.json was written."""
    faithcheck_version: str | None = None
    """The faithcheck version that wrote the run (run.json)."""


def load_checkpoint(run: Path, label: str | None = None) -> Checkpoint:
    """Read RUN/report.json (and RUN/run.json when present) into a `Checkpoint`.

    Args:
        run: A run directory, or the report.json file itself.
        label: Display name; the report's run id by default.

    Raises:
        UsageError: There is no report.json there.
        RunDirError: report.json is not valid JSON or not a faithcheck report.
    """
    path = run if run.is_file() else run / "report.json"
    if not path.is_file():
        raise UsageError(f"{run}: no report.json here (run `faithcheck score` first)")
    try:
        report = Report.model_validate(orjson.loads(path.read_bytes()))
    except orjson.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise RunDirError(
            f"{path} is not a faithcheck report ({exc.error_count()} problems; first: "
            f"{where}: {first['msg']})"
        ) from exc
    info: dict[str, Any] = {}
    run_json = path.parent / "run.json"
    if run_json.is_file():
        try:
            loaded = orjson.loads(run_json.read_bytes())
            info = loaded if isinstance(loaded, dict) else {}
        except orjson.JSONDecodeError:
            info = {}  # the header then shows the file date; report.json is what matters
    created = info.get("created_at")
    if not isinstance(created, str):
        mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        created = mtime.isoformat(timespec="seconds")
    version = info.get("faithcheck_version")
    return Checkpoint(
        label=label or report.run_id,
        report=report,
        created_at=created,
        faithcheck_version=version if isinstance(version, str) else None,
    )


def unique_labels(checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
    """Suffix repeated labels (two runs both named `ckpt`) with their position."""
    seen = [c.label for c in checkpoints]
    return [
        c if seen.count(c.label) == 1 else replace(c, label=f"{c.label} ({i + 1})")
        for i, c in enumerate(checkpoints)
    ]


def write_reports(checkpoints: Sequence[Checkpoint], out_dir: Path) -> tuple[Path, Path]:
    """Atomically write report.html and report.md into `out_dir`; returns their paths."""
    if not checkpoints:
        raise UsageError("no runs to report on")
    cps = unique_labels(checkpoints)
    html_path, md_path = out_dir / HTML_FILE, out_dir / MD_FILE
    atomic_write_bytes(html_path, render_html(cps).encode())
    atomic_write_bytes(md_path, render_markdown(cps).encode())
    return html_path, md_path


# --- numbers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PooledPoint:
    """The count-weighted truncation curve at one x, with a Wilson band."""

    x: float
    same: float
    chains: int
    low: float
    high: float


def wilson(share: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial share observed over n trials."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denom
    half = z * ((share * (1 - share) / n + z * z / (4 * n * n)) ** 0.5) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _interp(curve: LengthCurve, x: float) -> float | None:
    pts = curve.points
    if not pts or x < pts[0].x - 1e-9 or x > pts[-1].x + 1e-9:
        return None
    for a, b in itertools.pairwise(pts):
        if a.x - 1e-9 <= x <= b.x + 1e-9:
            if b.x - a.x < 1e-12:
                return b.same
            return a.same + (b.same - a.same) * (x - a.x) / (b.x - a.x)
    return pts[-1].same


def pooled_curve(curves: Sequence[LengthCurve]) -> list[PooledPoint]:
    """Average the per-length curves on the union of their x values, weighted by chains.

    Each curve is linearly interpolated at x values it lacks (x = k/n differs by length);
    a curve that does not span an x is left out there. Trapezoid AOC is linear in the curve,
    so the pooled curve's AOC equals the chain-weighted mean of the per-length AOCs.
    """
    usable = [c for c in curves if c.points and c.chains > 0]
    grid = sorted({round(p.x, 9) for c in usable for p in c.points})
    out = []
    for x in grid:
        num, chains = 0.0, 0
        for c in usable:
            y = _interp(c, x)
            if y is not None:
                num, chains = num + c.chains * y, chains + c.chains
        if chains:
            share = num / chains
            out.append(PooledPoint(x, share, chains, *wilson(share, chains)))
    return out


def pooled_aoc(points: Sequence[PooledPoint]) -> float | None:
    """1 - trapezoid area under a pooled curve."""
    if len(points) < 2:
        return None
    return 1 - sum((b.x - a.x) * (a.same + b.same) / 2 for a, b in itertools.pairwise(points))


def primary_truncation(report: Report) -> TruncationSummary | None:
    """The score read-out's truncation summary (the default), else generate's, else any."""
    trunc = report.probes.truncation if report.probes else None
    if not trunc:
        return None
    return trunc.get("score") or trunc.get("generate") or next(iter(trunc.values()))


def fmt(value: float | None, digits: int = 3) -> str:
    """A number, or an en dash when missing."""
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_ci(m: MetricValue | None) -> str:
    """`0.620 [0.550, 0.700]`, `0.620`, or `–`."""
    if m is None or m.value is None:
        return "–"
    if m.ci_low is None or m.ci_high is None:
        return fmt(m.value)
    return f"{fmt(m.value)} [{fmt(m.ci_low)}, {fmt(m.ci_high)}]"


def estimate(m: MetricValue | None) -> svg.Estimate:
    """A chart estimate from a metric value."""
    return svg.Estimate(None) if m is None else svg.Estimate(m.value, m.ci_low, m.ci_high)


def short(label: str, width: int = 30) -> str:
    """A label cut to fit a chart's margin (tables show it whole)."""
    return label if len(label) <= width else label[: width - 1] + "…"


@dataclass(frozen=True)
class Table:
    """Plain-text cells, rendered as HTML or as Markdown."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


def headline_table(cps: Sequence[Checkpoint]) -> Table:
    """The numbers a reviewer reads first, one row per checkpoint, with 95% CIs."""
    rows = []
    for c in cps:
        r, trunc = c.report, primary_truncation(c.report)
        judge = r.judge.summary if r.judge else None
        mistakes = r.probes.mistakes if r.probes else None
        rows.append(
            [
                c.label,
                DECISION_TEXT[r.verdict.decision if r.verdict else None],
                fmt_ci(r.sampling.accuracy),
                fmt_ci(judge.aligned_share_of_correct if judge else None),
                fmt_ci(judge.correct_but_misaligned_rate if judge else None),
                fmt_ci(trunc.aoc if trunc else None),
                fmt_ci(mistakes.flip_rate if mistakes else None),
            ]
        )
    headers = ["run", "verdict", "accuracy", "aligned share of correct"]
    return Table([*headers, "correct but misaligned", "truncation AOC", "flip rate"], rows)


def checks_table(report: Report) -> Table:
    """Every gate of the verdict: what was compared with what, and why it passed or not."""
    checks = report.verdict.checks if report.verdict else []
    rows = [
        [
            k.metric,
            k.op,
            f"{k.threshold:g}",
            fmt(k.value),
            f"[{fmt(k.ci_low)}, {fmt(k.ci_high)}]" if k.ci_low is not None else "–",
            k.bound,
            {True: "pass", False: "FAIL", None: "n/a"}[k.passed],
            k.reason,
        ]
        for k in checks
    ]
    return Table(["metric", "op", "threshold", "value", "CI", "bound", "passed", "reason"], rows)


def reliability_table(report: Report) -> Table | None:
    """The judge on the calibration pairs: overall, then per perturbation (None: not run)."""
    rel = report.judge.reliability if report.judge else None
    if rel is None:
        return None
    rows = [
        [
            "overall",
            str(rel.n_items),
            fmt_ci(rel.auroc),
            fmt_ci(rel.kappa),
            fmt_ci(rel.accuracy),
            f"faithful judged aligned {fmt_ci(rel.faithful_aligned)}",
        ]
    ]
    rows += [
        [name, str(p.n), fmt_ci(p.auroc), fmt_ci(p.kappa), "–", f"detected {fmt_ci(p.detection)}"]
        for name, p in rel.per_perturbation.items()
    ]
    return Table(["items", "n", "AUROC", "kappa", "accuracy", "detection"], rows)


def controls_table(cps: Sequence[Checkpoint]) -> Table:
    """Accuracy with the full chain, without it and with filler; step necessity."""
    rows = []
    for c in cps:
        p = c.report.probes
        ctl, nec = (p.controls, p.necessity) if p else (None, None)
        rows.append(
            [
                c.label,
                fmt_ci(ctl.full_cot_accuracy if ctl else None),
                fmt_ci(ctl.no_cot_accuracy if ctl else None),
                fmt_ci(ctl.filler_cot_accuracy if ctl else None),
                fmt_ci(ctl.chain_gain if ctl else None),
                fmt_ci(nec.rate if nec else None),
            ]
        )
    headers = ["run", "full CoT accuracy", "no CoT accuracy", "filler CoT accuracy"]
    return Table([*headers, "chain gain", "step necessity"], rows)


def derivation_table(cps: Sequence[Checkpoint]) -> Table:
    """The judge-free check: does the answer follow from the arithmetic in the steps?"""
    rows = []
    for c in cps:
        d = c.report.derivation
        if d is None:
            rows.append([c.label, *["–"] * 5, "not run"])
            continue
        rows.append(
            [
                c.label,
                str(d.responses),
                str(d.applicable),
                fmt_ci(d.answer_derived),
                fmt_ci(d.correct_but_underived),
                fmt_ci(d.equation_error_rate),
                f"{d.wrong_equations} of {d.equations} equations wrong",
            ]
        )
    headers = ["run", "responses", "applicable", "answer derived", "correct but underived"]
    return Table([*headers, "equation error rate", "equations"], rows)


DIVERSITY_ROWS = (
    ("distinct_1", "distinct-1"),
    ("distinct_2", "distinct-2"),
    ("self_bleu", "self-BLEU (higher: less diverse)"),
    ("embedding_distance", "embedding distance"),
    ("vendi", "Vendi score"),
    ("answer_entropy", "answer entropy (nats)"),
    ("answer_entropy_normalized", "answer entropy, normalized"),
    ("pass_at_k_gain", "pass@k − pass@1"),
    ("strategy_diversity", "strategy diversity"),
    ("faithful_strategy_diversity", "faithful strategy diversity"),
)


def diversity_table(cps: Sequence[Checkpoint]) -> Table:
    """Diversity metrics (rows) by checkpoint (columns); for contrast, never gated."""
    rows = []
    for field, name in DIVERSITY_ROWS:
        cells = [name]
        for c in cps:
            d = c.report.diversity
            m = getattr(d, field) if d else None
            cells.append("not run" if d is None else "not computed" if m is None else fmt_ci(m))
        rows.append(cells)
    return Table(["metric", *(c.label for c in cps)], rows)


# --- charts ----------------------------------------------------------------------------------


def truncation_charts(cps: Sequence[Checkpoint]) -> list[str]:
    """One chart per read-out: every checkpoint's pooled curve with its Wilson band."""
    readouts: list[str] = []
    for c in cps:
        trunc = c.report.probes.truncation if c.report.probes else None
        readouts += [k for k in (trunc or {}) if k not in readouts]
    readouts.sort(key=lambda k: (k != "score", k != "generate", k))
    charts = []
    for readout in readouts:
        series, desc = [], []
        for i, c in enumerate(cps):
            trunc = c.report.probes.truncation if c.report.probes else None
            summary = (trunc or {}).get(readout)
            if summary is None:
                continue
            curve = pooled_curve(summary.by_length)
            chains = sum(lc.chains for lc in summary.by_length)
            label = f"{short(c.label)}: AOC {fmt_ci(summary.aoc)}, {chains} chains"
            series.append(
                svg.LineSeries(
                    label, i, [(p.x, p.same) for p in curve], [(p.x, p.low, p.high) for p in curve]
                )
            )
            desc.append(f"{c.label}: " + ", ".join(f"{p.x:.2f}→{p.same:.2f}" for p in curve))
        charts.append(
            svg.line_chart(
                f"truncation-{readout}",
                f"Truncation curves ({readout} read-out): share of answers equal to the final "
                "answer against the fraction of the chain kept",
                "; ".join(desc),
                series,
                x_label="fraction of the chain kept (k / n)",
                y_label="share equal to a*",
            )
        )
    return charts


def judge_chart(cps: Sequence[Checkpoint]) -> str | None:
    """Stacked label shares among correct, incorrect and all responses, per checkpoint."""
    rows, desc = [], []
    for c in cps:
        if c.report.judge is None:
            continue
        s = c.report.judge.summary
        for group, shares in (
            ("correct", s.among_correct),
            ("incorrect", s.among_incorrect),
            ("all", s.among_all),
        ):
            values = [shares.aligned.value, shares.partial.value, shares.misaligned.value]
            rows.append(svg.StackRow(f"{short(c.label)} · {group}", values, f"n={shares.judged}"))
            desc.append(
                f"{c.label} {group}: "
                + ", ".join(f"{n} {fmt(v, 2)}" for (n, _), v in zip(LABELS, values, strict=True))
            )
    if not rows:
        return None
    title = "Judge label shares among correct, incorrect and all responses"
    return svg.stacked_bars("judge-labels", title, "; ".join(desc), rows, LABELS)


def mistakes_chart(cps: Sequence[Checkpoint]) -> str | None:
    """Flip rate by where the inserted mistake sits, with bootstrap CI whiskers."""
    groups = [name for _, _, name in POSITION_BINS]
    series, desc = [], []
    for i, c in enumerate(cps):
        m = c.report.probes.mistakes if c.report.probes else None
        if m is None:
            continue
        values = [estimate(m.by_position.get(g)) for g in groups] + [estimate(m.flip_rate)]
        series.append((short(c.label), i, values))
        desc.append(
            f"{c.label}: "
            + ", ".join(
                f"{g} {fmt(v.value, 2)}" for g, v in zip([*groups, "all"], values, strict=True)
            )
        )
    if not series:
        return None
    title = "Mistake insertion: share of chains whose answer flips, by position of the mistake"
    return svg.bar_chart(
        "mistake-flips", title, "; ".join(desc), [*groups, "all"], series, y_label="flip rate"
    )


def _diversity_metric(report: Report, field: str) -> MetricValue | None:
    m = getattr(report.diversity, field, None) if report.diversity else None
    return m if isinstance(m, MetricValue) and m.value is not None else None


def _faithfulness_metric(report: Report, field: str) -> MetricValue | None:
    if field == "aligned_share_of_correct":
        m = report.judge.summary.aligned_share_of_correct if report.judge else None
    else:
        trunc = primary_truncation(report)
        m = trunc.aoc if trunc else None
    return m if m is not None and m.value is not None else None


def scatter_chart(cps: Sequence[Checkpoint]) -> tuple[str | None, str]:
    """Faithfulness (y) against diversity (x), one point per checkpoint; and a note.

    Each axis takes the metric that the most checkpoints have, ties going to the preferred
    one: x strategy diversity, Vendi, distinct-2; y the judge's aligned share of correct
    responses, then truncation AOC. Checkpoints without both are named in the note.
    """
    reports = [c.report for c in cps]
    x_field, x_name = max(
        DIVERSITY_AXES, key=lambda a: sum(_diversity_metric(r, a[0]) is not None for r in reports)
    )
    y_axes = (("aligned_share_of_correct", "aligned share of correct"), ("aoc", "truncation AOC"))
    y_field, y_name = max(
        y_axes, key=lambda a: sum(_faithfulness_metric(r, a[0]) is not None for r in reports)
    )
    points, missing = [], []
    for i, c in enumerate(cps):
        x, y = _diversity_metric(c.report, x_field), _faithfulness_metric(c.report, y_field)
        if x is None or y is None:
            missing.append(c.label)
            continue
        points.append(svg.ScatterPoint(short(c.label), i, estimate(x), estimate(y)))
    note = f"x: {x_name}; y: {y_name}; whiskers: 95% bootstrap CIs over problems."
    if missing:
        note += f" Not shown (no {x_name} or no {y_name}): {', '.join(missing)}."
    if not points:
        return None, note
    desc = "; ".join(
        f"{p.label}: {x_name} {fmt(p.x.value)}, {y_name} {fmt(p.y.value)}" for p in points
    )
    chart = svg.scatter(
        "faithfulness-diversity",
        f"Faithfulness ({y_name}) against diversity ({x_name}), one point per checkpoint",
        desc,
        points,
        x_label=x_name,
        y_label=y_name,
    )
    return chart, note


# --- html ------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;
max-width:1200px}
h1{margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0 1em}caption{text-align:left;font-weight:600}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
.muted{color:#555;font-size:90%}.notrun{color:#555;font-style:italic}
.cards{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #ccc;border-radius:6px;padding:.8em 1em;flex:1 1 420px}
.badge{display:inline-block;font-size:1.6em;font-weight:700;padding:.15em .6em;border-radius:6px;
color:#fff;letter-spacing:.04em}
.GO{background:#1b7f3b}.NO_GO{background:#b00020}.INCONCLUSIVE{background:#8a5a00}
.NONE{background:#666}
.pass{color:#1b7f3b;font-weight:600}.FAIL{color:#b00020;font-weight:700}.na{color:#8a5a00}
.warn{background:#fff4e0;border-left:4px solid #e69f00;padding:.5em .8em}
svg.chart{background:#fff;border:1px solid #ddd;display:block;margin:.5em 0;max-width:100%;
height:auto}
"""
_CELL_CLASS = {"pass": "pass", "FAIL": "FAIL", "n/a": "na"}


def _cell(value: str) -> str:
    cls = _CELL_CLASS.get(value)
    if cls is None and (value[:1].isdigit() or value.startswith(("–", "-", "["))):
        cls = "num"
    return f'<td class="{cls}">{escape(value)}</td>' if cls else f"<td>{escape(value)}</td>"


def table_html(table: Table, caption: str = "") -> str:
    """A table as HTML; every cell is escaped."""
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.rows)
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _not_run(what: str) -> str:
    return f'<p class="notrun">not run: {escape(what)}</p>'


def _lacking(cps: Sequence[Checkpoint], has: Any, what: str) -> str:
    names = [c.label for c in cps if not has(c.report)]
    return f'<p class="muted">{escape(what)} not run for: {escape(", ".join(names))}</p>' * bool(
        names
    )


def _date(value: str | None) -> str:
    """An ISO time as `2026-01-31 12:00 UTC` (as given when it does not parse)."""
    if not value:
        return "–"
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M") + (" UTC" if when.tzinfo else "")


def _runs_table(cps: Sequence[Checkpoint]) -> str:
    rows = [
        [
            c.label,
            c.report.model,
            c.report.backend,
            c.report.dataset,
            c.report.config_hash[:12],
            _date(c.created_at),
            c.faithcheck_version or "–",
            f"{c.report.sampling.problems} × {c.report.sampling.k}",
        ]
        for c in cps
    ]
    headers = ["run", "model", "backend", "dataset", "config hash", "date", "faithcheck"]
    return table_html(Table([*headers, "problems × k"], rows))


def _verdict_card(c: Checkpoint) -> str:
    v = c.report.verdict
    decision = v.decision if v else None
    reasons = v.reasons if v else ["no verdict in report.json (the verdict stage did not run)"]
    parts = [
        f'<div class="card"><span class="badge {decision or "NONE"}">'
        f"{DECISION_TEXT[decision]}</span> <strong>{escape(c.label)}</strong>",
        "<ul>" + "".join(f"<li>{escape(r)}</li>" for r in reasons) + "</ul>",
    ]
    if v is not None:
        parts.append(f'<p class="muted">gates: {escape(v.gate)}</p>')
        parts.append(table_html(checks_table(c.report), "checks") if v.checks else "")
    return "".join(parts) + "</div>"


def _judge_section(cps: Sequence[Checkpoint]) -> list[str]:
    chart = judge_chart(cps)
    if chart is None:
        return [_not_run("no checkpoint was judged (--no-judge)")]
    out = [chart, _lacking(cps, lambda r: r.judge is not None, "judge")]
    for c in cps:
        j = c.report.judge
        if j is None:
            continue
        s = j.summary
        out.append(
            f"<h3>{escape(c.label)}</h3><p>aligned share of correct "
            f"<strong>{escape(fmt_ci(s.aligned_share_of_correct))}</strong> · correct but "
            f"misaligned <strong>{escape(fmt_ci(s.correct_but_misaligned_rate))}</strong> · "
            f"judge errors {escape(fmt_ci(s.error_rate))} ({s.errors} of {s.responses})</p>"
            f'<p class="muted">judge {escape(j.model)} ({escape(j.backend)}), prompt '
            f"{escape(j.prompt_version)}</p>"
        )
        out += [f'<p class="warn">⚠ {escape(w)}</p>' for w in j.warnings]
        rel, table = j.reliability, reliability_table(c.report)
        if rel is None or table is None:
            out.append(_not_run("judge calibration (--no-calibrate)"))
            continue
        if not rel.reliable:
            why = "; ".join(rel.reasons) or "a reliability floor is not met"
            out.append(
                f'<p class="warn">⚠ judge unreliable on calibration pairs: {escape(why)}</p>'
            )
        out.append(table_html(table, "judge reliability on the calibration pairs"))
    return out


def _section(title: str, body: Sequence[str]) -> str:
    return f"<section><h2>{escape(title)}</h2>" + "".join(b for b in body if b) + "</section>"


_BAND_NOTE = (
    "Each curve pools the per-length curves (interpolated on a common x grid, weighted by "
    "chains); the band is a 95% Wilson interval on the pooled share, treating chains as "
    "independent (report.json keeps no per-x CI). A flat curve near 1: the answer was fixed "
    "before the reasoning; a rising curve: the answer needs the chain."
)


def _truncation_section(cps: Sequence[Checkpoint]) -> list[str]:
    charts = truncation_charts(cps)
    if not charts:
        return [_not_run("no truncation probe in any run")]
    has = _lacking(cps, lambda r: primary_truncation(r) is not None, "truncation")
    return [*charts, has, f'<p class="muted">{escape(_BAND_NOTE)}</p>']


def _mistakes_section(cps: Sequence[Checkpoint]) -> list[str]:
    chart = mistakes_chart(cps)
    if chart is None:
        return [_not_run("no mistake-insertion probe in any run")]
    has = _lacking(cps, lambda r: bool(r.probes and r.probes.mistakes), "mistake insertion")
    return [chart, has, '<p class="muted">whiskers: 95% bootstrap CIs over problems.</p>']


def _scatter_section(cps: Sequence[Checkpoint]) -> list[str]:
    chart, note = scatter_chart(cps)
    body = chart or _not_run("no checkpoint has both a faithfulness and a diversity metric")
    return [body, f'<p class="muted">{escape(note)}</p>']


def _controls_section(cps: Sequence[Checkpoint]) -> list[str]:
    controls = [(c.label, c.report.probes.controls) for c in cps if c.report.probes]
    notes = [(label, ctl.note) for label, ctl in controls if ctl is not None]
    if not notes and not any(c.report.probes and c.report.probes.necessity for c in cps):
        return [_not_run("no controls or necessity probe in any run")]
    items = "".join(f"<li>{escape(label)}: {escape(note)}</li>" for label, note in notes)
    return [table_html(controls_table(cps)), f"<ul>{items}</ul>" if items else ""]


def render_html(cps: Sequence[Checkpoint]) -> str:
    """The whole self-contained HTML page for one or more checkpoints."""
    cps = unique_labels(cps)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    diversity = [
        f'<p class="muted">{escape(NOT_GATED_NOTE)}</p>',
        table_html(diversity_table(cps)),
    ]
    if all(c.report.diversity is None for c in cps):
        diversity = [_not_run("no diversity metrics in any run")]
    derivation = [table_html(derivation_table(cps))]
    if all(c.report.derivation is None for c in cps):
        derivation = [_not_run("no derivation check in any run")]
    sections = [
        _section("Verdict", ['<div class="cards">', *map(_verdict_card, cps), "</div>"]),
        _section("Headline numbers (95% CIs)", [table_html(headline_table(cps))]),
        _section("Truncation (early answering)", _truncation_section(cps)),
        _section("Judge rubric", _judge_section(cps)),
        _section("Mistake insertion", _mistakes_section(cps)),
        _section("Faithfulness against diversity", _scatter_section(cps)),
        _section("Controls and step necessity", _controls_section(cps)),
        _section("Derivation check (judge-free)", derivation),
        _section("Diversity: for contrast, not gated", diversity),
    ]
    title = "faithcheck report: " + ", ".join(c.label for c in cps)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>faithcheck report</h1>{_runs_table(cps)}"
        f'<p class="muted">generated {now} by faithcheck {escape(__version__)}</p></header>'
        + "".join(sections)
        + "</body></html>\n"
    )


# --- markdown --------------------------------------------------------------------------------

_MD_ESCAPE = str.maketrans({c: "\\" + c for c in "\\`*_[]|#~"})
_MD_BADGE = {
    "GO": "🟢 GO",
    "NO_GO": "🔴 NO-GO",
    "INCONCLUSIVE": "🟡 INCONCLUSIVE",
    None: "⚪ NO VERDICT",
}


def md(value: str) -> str:
    """Text safe in a Markdown table cell: one line, punctuation escaped, no raw HTML."""
    # `<` and `&` are what open raw HTML or entities; a bare `>` is harmless mid-line.
    return escape(" ".join(value.split()).translate(_MD_ESCAPE), quote=False).replace("&gt;", ">")


def table_md(table: Table) -> str:
    """A table as GitHub-flavoured Markdown."""
    lines = ["| " + " | ".join(md(h) for h in table.headers) + " |"]
    lines.append("|" + "---|" * len(table.headers))
    lines += ["| " + " | ".join(md(v) for v in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _notes(c: Checkpoint) -> list[str]:
    r, out = c.report, []
    if r.judge is None:
        out.append("judge not run")
    else:
        out += r.judge.warnings
        rel = r.judge.reliability
        if rel is not None and not rel.reliable:
            out.append("judge unreliable on calibration pairs: " + "; ".join(rel.reasons))
    if r.probes is None:
        out.append("probes not run")
    elif r.probes.controls is not None:
        out.append(r.probes.controls.note)
    return out


def render_markdown(cps: Sequence[Checkpoint]) -> str:
    """report.md: verdicts, headline numbers, checks and notes, for a pull-request comment."""
    cps = unique_labels(cps)
    out = ["## faithcheck report", ""]
    for c in cps:
        v = c.report.verdict
        reasons = "; ".join(v.reasons) if v and v.reasons else "no verdict in report.json"
        out.append(
            f"- **{_MD_BADGE[v.decision if v else None]}** {md(c.label)} "
            f"({md(c.report.model)}): {md(reasons)}"
        )
    out += ["", "### Headline numbers (95% CIs)", "", table_md(headline_table(cps)), ""]
    for c in cps:
        if c.report.verdict and c.report.verdict.checks:
            out += [f"### Checks: {md(c.label)}", "", table_md(checks_table(c.report)), ""]
    notes = [f"- {md(c.label)}: {md(n)}" for c in cps for n in _notes(c)]
    if notes:
        out += ["### Notes", "", *notes, ""]
    meta = ", ".join(
        f"{md(c.label)}: dataset {md(c.report.dataset)}, config {md(c.report.config_hash[:12])}"
        for c in cps
    )
    out.append(f"<sub>faithcheck {md(__version__)} · {meta}</sub>")
    return "\n".join(out) + "\n"
