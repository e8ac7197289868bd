"""Self-contained HTML for `saturation --html`: a comparison table and one inline SVG per run.

No JavaScript, no external assets: the file can be attached to a ticket or opened offline.
Each plot shows the reward curve (raw in grey when smoothing is on), the saturation threshold,
the end of the t_sat search window (T - margin), t_sat itself, the rapid-saturation step, and
the eval curve on its own right-hand axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from faithcheck.render.svg import Frame, ticks
from faithcheck.saturation.core import Curves, RunSaturation, SaturationReport, Series

W, H = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 64, 24, 44
MAX_POINTS = 1500  # per polyline; longer curves keep each bucket's min and max

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.rapid{color:#b00020;font-weight:600}.ok{color:#1b7f3b}
.muted{color:#666;font-size:90%}svg{background:#fff;border:1px solid #ddd}
"""


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _decimate(steps: Sequence[int], values: Sequence[float]) -> list[tuple[int, float]]:
    points = list(zip(steps, values, strict=True))
    if len(points) <= MAX_POINTS:
        return points
    size = math.ceil(len(points) / (MAX_POINTS // 2))
    out: list[tuple[int, float]] = []
    for i in range(0, len(points), size):
        bucket = points[i : i + size]
        lo, hi = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
        out.extend(sorted({lo, hi}))
    return out


def _frame(x: tuple[float, float], y: tuple[float, float]) -> Frame:
    """The plot box's frame, y padded by 5% of its range so curves clear the edges."""
    pad = (y[1] - y[0]) * 0.05 or 0.5
    return Frame((LEFT, TOP, W - LEFT - RIGHT, H - TOP - BOTTOM), x, (y[0] - pad, y[1] + pad))


def _polyline(frame: Frame, series: Series, color: str, width: float) -> str:
    pts = " ".join(
        f"{frame.px(s):.1f},{frame.py(v):.1f}" for s, v in _decimate(series.steps, series.values)
    )
    return f'<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{pts}"/>'


def _vline(frame: Frame, x: float, color: str, label: str, dash: str) -> str:
    px = frame.px(x)
    if not LEFT <= px <= W - RIGHT:
        return ""
    return (
        f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{H - BOTTOM}" stroke="{color}" '
        f'stroke-dasharray="{dash}"/><text x="{px + 3:.1f}" y="{TOP + 12}" font-size="11" '
        f'fill="{color}">{escape(label)}</text>'
    )


def _axes(frame: Frame, eval_frame: Frame | None) -> list[str]:
    out = [
        f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#444"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#444"/>',
        f'<text x="{W / 2}" y="{H - 8}" font-size="12" text-anchor="middle">step</text>',
        f'<text x="14" y="{TOP + (H - TOP - BOTTOM) / 2}" font-size="12" fill="#1f5fbf" '
        f'transform="rotate(-90 14 {TOP + (H - TOP - BOTTOM) / 2})" text-anchor="middle">'
        "reward</text>",
    ]
    for t in ticks(frame.x0, frame.x1, 8):
        x = frame.px(t)
        out.append(
            f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" font-size="11" '
            f'text-anchor="middle">{t:g}</text>'
        )
    for t in ticks(frame.y0, frame.y1):
        y = frame.py(t)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{t:g}</text>'
        )
    if eval_frame is not None:
        mid = TOP + (H - TOP - BOTTOM) / 2
        out.append(
            f'<line x1="{W - RIGHT}" y1="{TOP}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#444"/>'
            f'<text x="{W - 10}" y="{mid}" font-size="12" fill="#1b7f3b" '
            f'transform="rotate(90 {W - 10} {mid})" text-anchor="middle">eval</text>'
        )
        for t in ticks(eval_frame.y0, eval_frame.y1):
            out.append(
                f'<text x="{W - RIGHT + 6}" y="{eval_frame.py(t) + 4:.1f}" font-size="11" '
                f'fill="#1b7f3b">{t:g}</text>'
            )
    return out


def plot_svg(run: RunSaturation, curves: Curves, report: SaturationReport) -> str:
    """One run's reward (and eval) curve with threshold, window end and t_sat marked."""
    reward = curves.reward
    if not reward.steps:
        return '<p class="muted">no reward points to plot</p>'
    everything = curves.raw.values + reward.values
    frame = _frame((reward.steps[0], reward.steps[-1]), (min(everything), max(everything)))
    evals = curves.eval if curves.eval is not None and curves.eval.steps else None
    eval_frame = None
    if evals is not None:
        xs = (min(reward.steps[0], evals.steps[0]), max(reward.steps[-1], evals.steps[-1]))
        frame = _frame(xs, (frame.y0, frame.y1))
        eval_frame = _frame(xs, (min(evals.values), max(evals.values)))
    parts = _axes(frame, eval_frame)
    if report.settings.ema:
        parts.append(_polyline(frame, curves.raw, "#bbb", 1))
    parts.append(_polyline(frame, reward, "#1f5fbf", 1.8))
    if run.threshold is not None:
        y = frame.py(run.threshold)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#e08a00" '
            f'stroke-dasharray="6 4"/><text x="{LEFT + 4}" y="{y - 4:.1f}" font-size="11" '
            f'fill="#e08a00">threshold {run.threshold:.4g}</text>'
        )
    if eval_frame is not None and evals is not None:
        parts.append(_polyline(eval_frame, evals, "#1b7f3b", 1.5))
        parts.extend(
            f'<circle cx="{eval_frame.px(s):.1f}" cy="{eval_frame.py(v):.1f}" r="2.5" '
            'fill="#1b7f3b"/>'
            for s, v in _decimate(evals.steps, evals.values)[:300]
        )
    margin, rapid = report.settings.margin, report.settings.rapid_steps
    if run.window_end is not None:
        parts.append(_vline(frame, run.window_end, "#888", f"T-{margin}", "2 3"))
    parts.append(_vline(frame, rapid, "#b00020", f"rapid < {rapid}", "1 4"))
    if run.t_sat is not None:
        parts.append(_vline(frame, run.t_sat, "#b00020", f"t_sat = {run.t_sat}", "0"))
    body = "\n".join(p for p in parts if p)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(run.name)}">\n{body}\n</svg>'
    )


def _row(run: RunSaturation) -> str:
    rapid = {True: '<span class="rapid">RAPID</span>', False: '<span class="ok">no</span>'}
    ev = run.eval
    cells = [
        escape(run.name),
        escape(run.status),
        "–" if run.t_sat is None else str(run.t_sat),
        "–" if run.pre_saturation_steps is None else str(run.pre_saturation_steps),
        "?" if run.rapid is None else rapid[run.rapid],
        f"{run.first_step}–{run.last_step}",
        _fmt(run.reward_max),
        _fmt(run.threshold),
        _fmt(ev.pre_saturation_gain) if ev else "–",
        _fmt(ev.post_saturation_residual) if ev else "–",
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def render_html(report: SaturationReport, curves: Sequence[Curves]) -> str:
    """The whole HTML document for a report and the curves behind each run."""
    s = report.settings
    head = (
        "<tr><th>run</th><th>status</th><th>t_sat</th><th>pre-sat steps</th><th>rapid</th>"
        "<th>steps</th><th>max reward</th><th>threshold</th><th>eval gain</th>"
        "<th>eval residual</th></tr>"
    )
    setting = (
        f"epsilon {s.epsilon}, margin {s.margin}, rapid &lt; {s.rapid_steps}, "
        f"EMA {s.ema if s.ema else 'off'}, floor {s.floor}, min rise {s.min_rise:g}, "
        f"duplicates {s.duplicates}"
    )
    sections = []
    for run, curve in zip(report.runs, curves, strict=True):
        notes = [run.reason] if run.reason else []
        notes += run.notes
        columns = f"step: {run.step_column}, reward: {run.reward_column}"
        if run.eval:
            columns += f", eval: {run.eval.column}"
        legend = "blue: reward" + (f" (EMA {s.ema}; grey: raw)" if s.ema else "")
        if run.eval:
            legend += ", green: eval (right axis)"
        sections.append(
            f"<h2>{escape(run.name)}</h2>"
            f'<p class="muted">{escape(run.format)} · {escape(columns)} · {legend}</p>'
            + plot_svg(run, curve, report)
            + "".join(f'<p class="muted">{escape(n)}</p>' for n in notes)
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>faithcheck saturation</title><style>{_CSS}</style></head><body>"
        "<h1>Reward saturation</h1>"
        f'<p class="muted">{setting}. t_sat = first step &le; T-{s.margin} where reward '
        "reaches floor + epsilon·(max − floor).</p>"
        f"<table>{head}{''.join(_row(r) for r in report.runs)}</table>"
        + "".join(sections)
        + "</body></html>\n"
    )
