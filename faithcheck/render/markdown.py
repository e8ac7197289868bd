"""report.md: the essentials of report.html for a pull-request comment."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from faithcheck._version import __version__
from faithcheck.judge.usage import usage_line
from faithcheck.render.views import (
    Checkpoint,
    Table,
    checks_table,
    headline_table,
    unique_labels,
)

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
        usage = r.judge.usage
        if usage is not None and (usage.total.calls or usage.total.cached_calls):
            out.append(usage_line(usage))
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
