"""Report pages, the charts: inline SVG built from report.json sections (see `svg`)."""

from __future__ import annotations

from collections.abc import Sequence

from faithcheck.metrics import MetricValue
from faithcheck.probes.summary import POSITION_BINS
from faithcheck.render import svg
from faithcheck.render.views import (
    DIVERSITY_AXES,
    LABELS,
    Checkpoint,
    estimate,
    fmt,
    fmt_ci,
    pooled_curve,
    primary_truncation,
    short,
)
from faithcheck.report import Report


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
