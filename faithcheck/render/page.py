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
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from faithcheck._version import __version__
from faithcheck.diversity.core import NOT_GATED_NOTE
from faithcheck.errors import UsageError
from faithcheck.judge.usage import usage_line
from faithcheck.render import explorer
from faithcheck.render.charts import (
    judge_chart,
    mistakes_chart,
    scatter_chart,
    truncation_charts,
)
from faithcheck.render.explorer import DEFAULT_MAX_PER_CATEGORY
from faithcheck.render.markdown import render_markdown
from faithcheck.render.views import (
    DECISION_TEXT,
    HTML_FILE,
    MD_FILE,
    Checkpoint,
    Table,
    checks_table,
    controls_table,
    derivation_table,
    diversity_table,
    fmt_ci,
    headline_table,
    jury_table,
    primary_truncation,
    reliability_table,
    support_table,
    unique_labels,
)
from faithcheck.store.jsonio import atomic_write_bytes


def write_reports(
    checkpoints: Sequence[Checkpoint],
    out_dir: Path,
    explore_max: int = DEFAULT_MAX_PER_CATEGORY,
) -> tuple[Path, Path]:
    """Atomically write report.html and report.md into `out_dir`; returns their paths.
    `explore_max`: responses per category in the explorer (0: no explorer)."""
    if not checkpoints:
        raise UsageError("no runs to report on")
    cps = unique_labels(checkpoints)
    html_path, md_path = out_dir / HTML_FILE, out_dir / MD_FILE
    atomic_write_bytes(html_path, render_html(cps, explore_max).encode())
    atomic_write_bytes(md_path, render_markdown(cps).encode())
    return html_path, md_path


# --- numbers ---------------------------------------------------------------------------------


_CSS = (
    explorer.CSS
    + """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;
max-width:1200px;overflow-wrap:break-word}
h1{margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0 1em}caption{text-align:left;font-weight:600}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
.muted{color:#555;font-size:90%}.notrun{color:#555;font-style:italic}
.cards{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #ccc;border-radius:6px;padding:.8em 1em;flex:1 1 420px;min-width:0}
.tw{overflow-x:auto;max-width:100%}
.badge{display:inline-block;font-size:1.6em;font-weight:700;padding:.15em .6em;border-radius:6px;
color:#fff;letter-spacing:.04em}
.GO{background:#1b7f3b}.NO_GO{background:#b00020}.INCONCLUSIVE{background:#8a5a00}
.NONE{background:#666}
.pass{color:#1b7f3b;font-weight:600}.FAIL{color:#b00020;font-weight:700}.na{color:#8a5a00}
.warn{background:#fff4e0;border-left:4px solid #e69f00;padding:.5em .8em}
svg.chart{background:#fff;border:1px solid #ddd;display:block;margin:.5em 0;max-width:100%;
height:auto}
@media (max-width:600px){body{margin:.8em}h1{font-size:1.5em}}
"""
)
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
    # The wrapper scrolls a wide table sideways on a phone instead of widening the page.
    return (
        f'<div class="tw"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


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
    if v is not None and v.more_problems is not None:
        parts.append(f"<p>about {v.more_problems} more problems would decide it</p>")
    if v is not None and c.run_dir is not None:
        links = [
            f'<li><a href="{escape(link)}">responses behind {escape(check.metric)}</a></li>'
            for check in v.checks
            if check.outcome in ("fail", "undecided")
            and (link := explorer.check_link(c.label, check.metric)) is not None
        ]
        if links:
            parts.append("<ul>" + "".join(links) + "</ul>")
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
        if j.usage is not None and (j.usage.total.calls or j.usage.total.cached_calls):
            out.append(f'<p class="muted">{escape(usage_line(j.usage))}</p>')
        out += [f'<p class="warn">⚠ {escape(w)}</p>' for w in j.warnings]
        jury = jury_table(c.report)
        if jury is not None and j.jury is not None:
            used = "uses" if j.jury.used else "does not use"
            caption = f"the jury's judges and their agreement (the verdict {used} the jury label)"
            out.append(table_html(jury, caption))
            continue
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


def render_html(cps: Sequence[Checkpoint], explore_max: int = DEFAULT_MAX_PER_CATEGORY) -> str:
    """The whole self-contained HTML page for one or more checkpoints (with the
    per-response explorer for those whose run directory is at hand)."""
    cps = unique_labels(cps)
    explored = _explore(cps, explore_max)
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
    if any(c.report.support is not None for c in cps):
        derivation.append(table_html(support_table(cps)))
    sections = [
        _section("Verdict", ['<div class="cards">', *map(_verdict_card, cps), "</div>"]),
        _section("Headline numbers (95% CIs)", [table_html(headline_table(cps))]),
        _section("Truncation (early answering)", _truncation_section(cps)),
        _section("Judge rubric", _judge_section(cps)),
        _section("Mistake insertion", _mistakes_section(cps)),
        _section("Faithfulness against diversity", _scatter_section(cps)),
        _section("Controls and step necessity", _controls_section(cps)),
        _section("Derivation and support checks (judge-free)", derivation),
        _section("Diversity: for contrast, not gated", diversity),
    ]
    if explored:
        sections.append(
            _section(
                "Responses: what is behind the numbers",
                [f"<h3>{escape(label)}</h3>{explorer.render(label, e)}" for label, e in explored],
            )
        )
    title = "faithcheck report: " + ", ".join(c.label for c in cps)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>faithcheck report</h1>{_runs_table(cps)}"
        f'<p class="muted">generated {now} by faithcheck {escape(__version__)}</p></header>'
        + "".join(sections)
        + (f"<script>{explorer.SCRIPT}</script>" if explored else "")
        + "</body></html>\n"
    )


def _explore(cps: Sequence[Checkpoint], cap: int) -> list[tuple[str, explorer.Explored]]:
    """The explorer's responses of every checkpoint whose records are at hand."""
    if cap <= 0:
        return []
    out = []
    for c in cps:
        if c.run_dir is None:
            continue
        problems = run_problems_of(c.run_dir)
        questions = {pid: p.question for pid, p in problems.items()}
        golds = {pid: p.answer for pid, p in problems.items()}
        out.append((c.label, explorer.collect(c.run_dir, questions, golds, cap)))
    return out


def run_problems_of(run_dir: Path) -> dict[str, Any]:
    """The run's problems by id, from the dataset run.json names (empty when it can no
    longer be read: the explorer then shows responses without their questions)."""
    from faithcheck.errors import FaithcheckError
    from faithcheck.pipeline.core import run_problems
    from faithcheck.pipeline.options import ScoreOptions
    from faithcheck.pipeline.rebuild import read_run

    try:
        opts = ScoreOptions.model_validate(read_run(run_dir).config["options"])
    except (FaithcheckError, ValueError, KeyError):
        return {}
    return run_problems(opts)


# --- markdown --------------------------------------------------------------------------------
