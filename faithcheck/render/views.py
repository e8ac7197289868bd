"""Report pages, the data side: loading checkpoints, pooled curves, number formats and
the tables both report.html and report.md show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from faithcheck.errors import RunDirError, UsageError
from faithcheck.metrics import MetricValue
from faithcheck.probes.summary import LengthCurve, TruncationSummary
from faithcheck.render import svg
from faithcheck.report import Report
from faithcheck.versions import check_schema_version

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
    run_dir: Path | None = None
    """The run directory, when the report sits in one with its records (the explorer)."""


def load_checkpoint(run: Path, label: str | None = None) -> Checkpoint:
    """Read RUN/report.json (and RUN/run.json when present) into a `Checkpoint`.

    Args:
        run: A run directory, or the report.json file itself.
        label: Display name; the report's run id by default.

    Raises:
        UsageError: There is no report.json there, or a newer faithcheck wrote it (a
            newer MAJOR schema version).
        RunDirError: report.json is not valid JSON or not a faithcheck report.
    """
    path = run if run.is_file() else run / "report.json"
    if not path.is_file():
        raise UsageError(f"{run}: no report.json here (run `faithcheck score` first)")
    try:
        data = orjson.loads(path.read_bytes())
        if isinstance(data, dict):
            check_schema_version(data.get("schema_version"), path)
        report = Report.model_validate(data)
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
    records = path.parent if (path.parent / "samples.jsonl").is_file() and info else None
    return Checkpoint(
        label=label or report.run_id,
        report=report,
        created_at=created,
        faithcheck_version=version if isinstance(version, str) else None,
        run_dir=records,
    )


def unique_labels(checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
    """Suffix repeated labels (two runs both named `ckpt`) with their position."""
    seen = [c.label for c in checkpoints]
    return [
        c if seen.count(c.label) == 1 else replace(c, label=f"{c.label} ({i + 1})")
        for i, c in enumerate(checkpoints)
    ]


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
    """The curve's value at x as a step curve: the read-out at a cut holds until the next
    cut (`faithcheck.probes.cuts`); None outside the curve's span."""
    pts = curve.points
    if not pts or x < pts[0].x - 1e-9 or x > pts[-1].x + 1e-9:
        return None
    return [p for p in pts if p.x <= x + 1e-9][-1].same


def pooled_curve(curves: Sequence[LengthCurve]) -> list[PooledPoint]:
    """Average the per-length curves on the union of their x values, weighted by chains.

    Each curve is read as a step curve at x values it lacks (x = k/m differs by length): its
    value holds from one cut to the next. The step AOC is linear in the curve, so the pooled
    curve's AOC equals the chain-weighted mean of the per-length AOCs.
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


def primary_truncation(report: Report) -> TruncationSummary | None:
    """The truncation summary of the run's primary read-out (`probes.primary_readout`, the
    one the verdict reads; `faithcheck.verdict.paths.default_readout` for older reports)."""
    trunc = report.probes.truncation if report.probes else None
    if not trunc:
        return None
    from faithcheck.verdict.paths import default_readout

    name = default_readout(report.model_dump(mode="json", include={"probes"}))
    return trunc.get(name or "") or next(iter(trunc.values()))


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
            "–" if k.n is None else str(k.n),
            OUTCOME_TEXT[k.outcome],
            k.reason,
        ]
        for k in checks
    ]
    headers = ["metric", "op", "threshold", "value", "CI", "bound", "problems", "outcome"]
    return Table([*headers, "reason"], rows)


OUTCOME_TEXT = {"pass": "pass", "fail": "FAIL", "undecided": "undecided", "not-evaluated": "n/a"}
"""How a check's outcome reads in a table (a failure stands out)."""


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


def support_table(cps: Sequence[Checkpoint]) -> Table:
    """The judge-free support check: where the numbers and the answer come from."""
    rows = []
    for c in cps:
        sup = c.report.support
        if sup is None:
            rows.append([c.label, *["–"] * 5, "not run"])
            continue
        counts = ", ".join(f"{k} {v}" for k, v in sup.status_counts.items() if v)
        rows.append(
            [
                c.label,
                str(sup.applicable),
                fmt_ci(sup.supported),
                fmt_ci(sup.correct_but_unsupported),
                fmt_ci(sup.answer_first_rate),
                fmt_ci(sup.untraced_operand_share),
                counts,
            ]
        )
    headers = ["run", "with an answer", "supported", "correct but unsupported", "answer first"]
    return Table([*headers, "untraced operands", "statuses"], rows)


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


def jury_table(report: Report) -> Table | None:
    """Each judge of a jury: its label shares and reliability, then the jury's agreement
    (None: one judge)."""
    jury = report.judge.jury if report.judge else None
    if jury is None:
        return None
    rows = []
    for j in jury.judges:
        r = j.reliability
        state = "uncalibrated" if r is None else r.outcome
        rows.append(
            [
                j.name,
                j.readout,
                fmt_ci(j.summary.aligned_share_of_correct),
                fmt_ci(j.summary.correct_but_misaligned_rate),
                f"{j.summary.errors} / {j.summary.responses}",
                state + ("" if r is None else f" (AUROC {fmt_ci(r.auroc)})"),
                "yes" if j.name in jury.counted else "no",
            ]
        )
    a = jury.agreement
    rows.append(["Fleiss kappa", "", fmt_ci(a.fleiss_kappa), "", f"{a.items} responses", "", ""])
    rows.append(["disagreement rate", "", fmt_ci(a.disagreement_rate), "", "", "", ""])
    for pair in a.pairwise_kappa:
        rows.append([f"Cohen kappa {pair.judges[0]} · {pair.judges[1]}", "", fmt_ci(pair.kappa)])
    headers = [
        "judge", "read-out", "aligned of correct", "correct but misaligned", "errors",
        "calibration", "counted",
    ]  # fmt: skip
    return Table(headers, [row + [""] * (len(headers) - len(row)) for row in rows])
