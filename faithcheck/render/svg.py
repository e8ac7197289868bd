"""Small inline-SVG charts for the HTML reports: lines with bands, bars, stacked bars, scatter.

No JavaScript and no external assets. Every chart is an `<svg role="img">` whose `<title>` and
`<desc>` say what it shows; labels are real text. The charts take plain numbers, never report
records, and escape every string they are given (names come from untrusted model specs).
Checkpoints are told apart by color (the Okabe-Ito palette, safe for common color-vision
deficiencies) and, on line charts, by dash pattern too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
DASHES = ("", "7 3", "2 3", "9 3 2 3", "4 4", "1 2", "12 4")
WIDTH = 760
FONT = 'font-family="system-ui,sans-serif"'

Interval = tuple[float | None, float | None]


def color(i: int) -> str:
    """The color of the i-th checkpoint."""
    return PALETTE[i % len(PALETTE)]


def dash(i: int) -> str:
    """The dash pattern of the i-th checkpoint's line (empty: solid)."""
    return DASHES[i % len(DASHES)]


def ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


class Frame:
    """Maps data coordinates to pixels inside a plot box (left, top, width, height)."""

    def __init__(
        self,
        box: tuple[float, float, float, float],
        x: tuple[float, float],
        y: tuple[float, float],
    ) -> None:
        self.left, self.top, self.width, self.height = box
        self.x0, self.x1 = x if x[1] > x[0] else (x[0] - 1, x[0] + 1)
        self.y0, self.y1 = y if y[1] > y[0] else (y[0] - 1, y[0] + 1)

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * self.width

    def py(self, y: float) -> float:
        return self.bottom - (y - self.y0) / (self.y1 - self.y0) * self.height


def text(
    x: float, y: float, body: str, *, size: int = 11, anchor: str = "start", **attrs: str
) -> str:
    """A text element; `body` is escaped here."""
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(body)}</text>"
    )


def document(chart_id: str, title: str, desc: str, height: float, parts: Sequence[str]) -> str:
    """Wrap chart parts in an accessible `<svg>` with a `<title>` and a `<desc>`."""
    cid = escape(chart_id)
    return (
        f'<svg class="chart" width="{WIDTH}" height="{height:.0f}" viewBox="0 0 {WIDTH} '
        f'{height:.0f}" role="img" aria-labelledby="{cid}-t {cid}-d" {FONT}>'
        f'<title id="{cid}-t">{escape(title)}</title><desc id="{cid}-d">{escape(desc)}</desc>\n'
        + "\n".join(p for p in parts if p)
        + "\n</svg>"
    )


def axes(frame: Frame, x_label: str, y_label: str, *, x_ticks: bool = True) -> list[str]:
    """Axis lines, grid, tick labels and axis titles."""
    out = [
        f'<line x1="{frame.left}" y1="{frame.bottom}" x2="{frame.right}" y2="{frame.bottom}" '
        'stroke="#444"/>',
        f'<line x1="{frame.left}" y1="{frame.top}" x2="{frame.left}" y2="{frame.bottom}" '
        'stroke="#444"/>',
        text((frame.left + frame.right) / 2, frame.bottom + 34, x_label, size=12, anchor="middle"),
    ]
    mid = frame.top + frame.height / 2
    out.append(
        text(16, mid, y_label, size=12, anchor="middle", transform=f"rotate(-90 16 {mid:.1f})")
    )
    for t in ticks(frame.y0, frame.y1):
        y = frame.py(t)
        out.append(
            f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.right}" y2="{y:.1f}" stroke="#eee"/>'
        )
        out.append(text(frame.left - 6, y + 4, f"{t:g}", anchor="end"))
    if x_ticks:
        for t in ticks(frame.x0, frame.x1, 8):
            out.append(text(frame.px(t), frame.bottom + 16, f"{t:g}", anchor="middle"))
    return out


def legend(entries: Sequence[tuple[str, str, str]], x: float, y: float) -> list[str]:
    """One row per (label, color, dash): a short line sample, then the label."""
    out = []
    for i, (label, col, pattern) in enumerate(entries):
        yy = y + i * 18
        out.append(
            f'<line x1="{x}" y1="{yy - 4}" x2="{x + 28}" y2="{yy - 4}" stroke="{col}" '
            f'stroke-width="3" stroke-dasharray="{pattern}"/>'
        )
        out.append(text(x + 36, yy, label, size=12))
    return out


def whisker(frame: Frame, x: float, lo: float, hi: float, col: str = "#222") -> str:
    """A vertical error bar at pixel x from data lo to hi."""
    y0, y1 = frame.py(lo), frame.py(hi)
    return (
        f'<path d="M{x - 4:.1f},{y0:.1f}H{x + 4:.1f}M{x:.1f},{y0:.1f}V{y1:.1f}'
        f'M{x - 4:.1f},{y1:.1f}H{x + 4:.1f}" stroke="{col}" stroke-width="1.3" fill="none"/>'
    )


@dataclass(frozen=True)
class LineSeries:
    """One curve: (x, y) points, an optional (x, low, high) band, a legend label.

    `index` picks the color and dash, so that a checkpoint looks the same in every chart.
    """

    label: str
    index: int
    points: Sequence[tuple[float, float]]
    band: Sequence[tuple[float, float, float]] = ()


def line_chart(
    chart_id: str,
    title: str,
    desc: str,
    series: Sequence[LineSeries],
    *,
    x_label: str,
    y_label: str,
) -> str:
    """Curves on [0, 1] x [0, 1] with translucent bands, one color and dash per series."""
    top, plot_h = 16, 260
    frame = Frame((64, top, WIDTH - 64 - 24, plot_h), (0.0, 1.0), (0.0, 1.0))
    parts = axes(frame, x_label, y_label)
    opacity = 0.16 if len(series) <= 2 else 0.08  # many bands stacked turn muddy
    for s in series:
        if s.band:
            upper = [f"{frame.px(x):.1f},{frame.py(hi):.1f}" for x, _, hi in s.band]
            lower = [f"{frame.px(x):.1f},{frame.py(lo):.1f}" for x, lo, _ in reversed(s.band)]
            parts.append(
                f'<polygon points="{" ".join(upper + lower)}" fill="{color(s.index)}" '
                f'fill-opacity="{opacity}" stroke="none"/>'
            )
    for s in series:
        pts = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in s.points)
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{color(s.index)}" stroke-width="2.2" '
            f'stroke-dasharray="{dash(s.index)}"/>'
        )
        parts.extend(
            f'<circle cx="{frame.px(x):.1f}" cy="{frame.py(y):.1f}" r="2.6" '
            f'fill="{color(s.index)}"/>'
            for x, y in s.points
        )
    entries = [(s.label, color(s.index), dash(s.index)) for s in series]
    parts.extend(legend(entries, frame.left, frame.bottom + 62))
    return document(chart_id, title, desc, frame.bottom + 56 + 18 * len(series), parts)


@dataclass(frozen=True)
class StackRow:
    """One horizontal bar: a label, one share per segment (None: no data), a note after it."""

    label: str
    shares: Sequence[float | None]
    note: str = ""


def stacked_bars(
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[StackRow],
    segments: Sequence[tuple[str, str]],
) -> str:
    """Horizontal bars on [0, 1], each split into named, colored segments labelled in %."""
    label_w, row_h, top = 250, 24, 30
    frame = Frame((label_w, top, WIDTH - label_w - 110, row_h * len(rows)), (0.0, 1.0), (0, 1))
    parts = []
    x = label_w
    for name, col in segments:
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{col}"/>')
        parts.append(text(x + 16, 16, name, size=12))
        x += 26 + 8 * len(name)
    for t in ticks(0, 1, 4):
        px = frame.px(t)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top - 2}" x2="{px:.1f}" y2="{frame.bottom}" stroke="#eee"/>'
        )
        parts.append(text(px, frame.bottom + 14, f"{t:.0%}", anchor="middle"))
    for r, row in enumerate(rows):
        y = top + r * row_h
        parts.append(text(label_w - 8, y + 16, row.label, size=12, anchor="end"))
        if all(s is None for s in row.shares):
            parts.append(text(label_w + 4, y + 16, "no judged responses", fill="#666"))
            continue
        start = 0.0
        for share, (_, col) in zip(row.shares, segments, strict=True):
            width = (share or 0.0) * frame.width
            x0 = frame.px(start)
            parts.append(
                f'<rect x="{x0:.1f}" y="{y + 3}" width="{width:.1f}" height="{row_h - 6}" '
                f'fill="{col}"/>'
            )
            if share is not None and width >= 30:
                parts.append(
                    text(x0 + width / 2, y + 16, f"{share:.0%}", anchor="middle", fill="#fff")
                )
            start += share or 0.0
        parts.append(text(frame.right + 6, y + 16, row.note, fill="#444"))
    return document(chart_id, title, desc, frame.bottom + 24, parts)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with an optional interval; value None: not measured."""

    value: float | None
    low: float | None = None
    high: float | None = None


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    groups: Sequence[str],
    series: Sequence[tuple[str, int, Sequence[Estimate]]],
    *,
    y_label: str,
) -> str:
    """Vertical bars on [0, 1] grouped by `groups`, one bar per series, with CI whiskers.

    Each series is (legend label, color index, one estimate per group).
    """
    frame = Frame((64, 16, WIDTH - 64 - 24, 220), (0.0, float(len(groups))), (0.0, 1.0))
    parts = axes(frame, "", y_label, x_ticks=False)
    slot = frame.width / max(1, len(groups))
    bar_w = min(48.0, slot * 0.8 / max(1, len(series)))
    for g, group in enumerate(groups):
        centre = frame.left + slot * (g + 0.5)
        parts.append(text(centre, frame.bottom + 16, group, size=12, anchor="middle"))
        for i, (_, index, values) in enumerate(series):
            est = values[g]
            x = centre + (i - len(series) / 2) * bar_w
            if est.value is None:
                parts.append(text(x + bar_w / 2, frame.bottom - 4, "–", anchor="middle"))
                continue
            y = frame.py(est.value)
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{frame.bottom - y:.1f}" fill="{color(index)}"/>'
            )
            if est.low is not None and est.high is not None:
                parts.append(whisker(frame, x + bar_w / 2, est.low, est.high))
    entries = [(name, color(index), "") for name, index, _ in series]
    parts.extend(legend(entries, frame.left, frame.bottom + 44))
    return document(chart_id, title, desc, frame.bottom + 38 + 18 * len(series), parts)


@dataclass(frozen=True)
class ScatterPoint:
    """One labelled point with intervals on both axes; `index` picks its color."""

    label: str
    index: int
    x: Estimate
    y: Estimate


def scatter(
    chart_id: str,
    title: str,
    desc: str,
    points: Sequence[ScatterPoint],
    *,
    x_label: str,
    y_label: str,
) -> str:
    """Labelled points with horizontal and vertical CI whiskers; y on [0, 1], x fitted."""
    xs = [v for p in points for v in (p.x.value, p.x.low, p.x.high) if v is not None]
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or 0.05
    frame = Frame((64, 16, WIDTH - 64 - 24, 280), (lo - pad, hi + pad), (0.0, 1.0))
    parts = axes(frame, x_label, y_label)
    for p in points:
        if p.x.value is None or p.y.value is None:
            continue
        cx, cy, col = frame.px(p.x.value), frame.py(p.y.value), color(p.index)
        if p.y.low is not None and p.y.high is not None:
            parts.append(whisker(frame, cx, p.y.low, p.y.high, col))
        if p.x.low is not None and p.x.high is not None:
            x0, x1 = frame.px(p.x.low), frame.px(p.x.high)
            parts.append(
                f'<path d="M{x0:.1f},{cy - 4:.1f}V{cy + 4:.1f}M{x0:.1f},{cy:.1f}H{x1:.1f}'
                f'M{x1:.1f},{cy - 4:.1f}V{cy + 4:.1f}" stroke="{col}" stroke-width="1.3" '
                'fill="none"/>'
            )
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{col}" stroke="#fff"/>')
        anchor = "end" if cx > frame.right - 120 else "start"
        dx = -9 if anchor == "end" else 9
        parts.append(text(cx + dx, cy - 8, p.label, size=12, anchor=anchor, font_weight="600"))
    return document(chart_id, title, desc, frame.bottom + 46, parts)
