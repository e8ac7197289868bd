"""Metric paths: how a dotted path reads a number (and its CI) out of report.json.

Used by the verdict's checks and gate files; `metric_paths` lists what can be gated.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

from faithcheck.errors import UsageError
from faithcheck.metrics import MetricValue
from faithcheck.probes.records import PRIMARY_READOUT

TRUNCATION_AOC = "probes.truncation.aoc"
"""Alias for the AOC of the run's primary read-out (`default_readout`)."""
TRUNCATION_EARLY = "probes.truncation.early_answer_rate"
"""Alias for the early-answer rate of the run's primary read-out."""
TRUNCATION_ALIASES = (TRUNCATION_AOC, TRUNCATION_EARLY)
"""`probes.truncation.<field>` paths that name the primary read-out's `<field>`."""
HEADLINE_METRICS = (
    "judge.summary.aligned_share_of_correct",
    TRUNCATION_AOC,
    "probes.mistakes.flip_rate",
)
"""Suggested when an unknown metric path has no close match."""
DEFAULT_READOUT_ORDER = (PRIMARY_READOUT, "score")
"""Read-outs preferred, in order, when a report does not name its primary one (reports
written before `probes.primary_readout` existed)."""
_NOT_GATEABLE = frozenset({"verdict", "schema_version"})


@functools.cache
def schema_metric_patterns() -> dict[str, Literal["metric", "number"]]:
    """Every gateable path of the report schema; `*` stands for any key of a mapping.

    `metric`: the path ends at a MetricValue (value and CI); `number`: at a plain number.
    """
    from faithcheck.report import Report  # deferred: the report pulls in every section

    schema = Report.model_json_schema(mode="serialization")
    defs = schema["$defs"]
    out: dict[str, Literal["metric", "number"]] = dict.fromkeys(TRUNCATION_ALIASES, "metric")

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name == "MetricValue":
                out[prefix] = "metric"
            else:
                walk(defs[name], prefix)
            return
        for option in node.get("anyOf", ()):
            walk(option, prefix)
        kind = node.get("type")
        if kind in ("number", "integer"):
            out[prefix] = "number"
        for key, sub in node.get("properties", {}).items():
            if prefix or key not in _NOT_GATEABLE:
                walk(sub, f"{prefix}.{key}" if prefix else key)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{prefix}.*")

    walk(schema, "")
    return out


def _matches(path: str, pattern: str) -> bool:
    parts, pats = path.split("."), pattern.split(".")
    return len(parts) == len(pats) and all(
        p == "*" or p == q for q, p in zip(parts, pats, strict=True)
    )


def validate_metric(path: str, report: Mapping[str, Any] | None = None) -> str:
    """Return `path` when it names a gateable number of report.json (or of `report`);
    `X.value` of a metric `X` is returned as `X`.

    Raises:
        UsageError: one line naming the closest valid paths.
    """
    if any(_matches(path, p) for p in schema_metric_patterns()):
        return path
    if report is not None and path in metric_paths(report):
        return path
    if path.endswith(".value"):  # report.json's spelling of a MetricValue's number
        return validate_metric(path.removesuffix(".value"), report)
    known = sorted(schema_metric_patterns())
    longer = [k for k in known if k.startswith(path)]
    close = longer[:3] or difflib.get_close_matches(path, known, n=3, cutoff=0.5)
    hint = close or list(HEADLINE_METRICS)
    raise UsageError(
        f"unknown metric {path!r}; try {', '.join(hint)} "
        "(`faithcheck schema` shows every field of report.json)"
    )


def metric_paths(report: Mapping[str, Any]) -> list[str]:
    """Every gateable path present (not null) in a report.json dict, sorted.

    A path ends at a MetricValue (gated on its value or CI bounds) or at a plain number
    (gated on the number). `probes.truncation.aoc` is listed when a default read-out exists.
    """
    out: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, Mapping):
            if _is_metric_value(node):
                out.append(prefix)
                return
            for key, sub in node.items():
                if prefix or key not in _NOT_GATEABLE:
                    walk(sub, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(node, int | float) and not isinstance(node, bool):
            out.append(prefix)

    walk(report, "")
    if default_readout(report) is not None:
        out += [a for a in TRUNCATION_ALIASES if read_metric(report, a).value is not None]
    return sorted(out)


def _is_metric_value(node: Mapping[str, Any]) -> bool:
    return {"value", "ci_low", "ci_high"} <= node.keys()


def default_readout(report: Mapping[str, Any]) -> str | None:
    """The truncation read-out the default checks read, or None without truncation.

    The report's `probes.primary_readout` when it names one it has; else (older reports)
    generate, else score, else the first present: with one read-out in the report (the
    usual case) it is that one.
    """
    probes = report.get("probes")
    truncation = probes.get("truncation") if isinstance(probes, Mapping) else None
    if not isinstance(truncation, Mapping) or not truncation:
        return None
    primary = probes.get("primary_readout") if isinstance(probes, Mapping) else None
    for name in (primary, *DEFAULT_READOUT_ORDER):
        if name in truncation:
            return str(name)
    return str(next(iter(truncation)))


class Reading(NamedTuple):
    """What a metric path reads in one report: the canonical path (alias resolved), the
    point estimate and CI bounds (no CI for a plain number: `has_ci` False), the units
    behind it when known, and why there is nothing to read (`missing`) when there is not."""

    path: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    has_ci: bool
    missing: str | None
    units: int | None = None


def canonical_path(report: Mapping[str, Any], path: str) -> str:
    """Resolve the `probes.truncation.aoc` / `.early_answer_rate` aliases to the primary
    read-out's; other paths are returned unchanged."""
    if path in TRUNCATION_ALIASES:
        readout = default_readout(report)
        if readout is not None:
            return f"probes.truncation.{readout}.{path.rsplit('.', 1)[1]}"
    return path


_NOT_RUN = {
    "probes": "probes were not run",
    "judge": "the judge was not run (--no-judge)",
    "derivation": "the derivation check was not run",
    "support": "the support check was not run (a report written before it existed)",
    "diversity": "diversity was not computed",
}


def read_metric(report: Mapping[str, Any], path: str) -> Reading:
    """Read a metric path from a report.json dict (see `metric_paths`).

    Raises:
        UsageError: the path ends at something that is not a number or a MetricValue.
    """
    path = canonical_path(report, path)
    node: object = report
    walked: list[str] = []
    for part in path.split("."):
        if node is None:
            return _absent(path, _null_reason(walked))
        if not isinstance(node, Mapping) or part not in node:
            if path in TRUNCATION_ALIASES:
                return _absent(path, "no truncation read-out in the report")
            return _absent(path, f"{'.'.join(walked) or 'the report'} has no `{part}`")
        walked.append(part)
        node = node[part]
    if node is None:
        return _absent(path, _null_reason(walked))
    if isinstance(node, Mapping) and _is_metric_value(node):
        n, units = node.get("n"), node.get("units")
        return Reading(
            path,
            finite(node["value"]),
            finite(node["ci_low"]),
            finite(node["ci_high"]),
            n if isinstance(n, int) else None,
            True,
            None if finite(node["value"]) is not None else node.get("reason") or "undefined",
            units if isinstance(units, int) else None,
        )
    if isinstance(node, int | float) and not isinstance(node, bool):
        value = finite(node)
        return Reading(path, value, None, None, None, False, None if value is not None else "NaN")
    raise UsageError(f"metric {path!r} is not a number or a metric with a CI")


def metric_value(report: Mapping[str, Any], path: str) -> MetricValue | None:
    """The MetricValue at a dotted path of report.json (aliases resolved), with its CI and
    n as stored, or None when the report has none there."""
    node: Any = report
    for key in canonical_path(report, path).split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping) or "value" not in node:
        return None
    try:
        return MetricValue.model_validate(node)
    except ValueError:
        return None


def finite(x: object) -> float | None:
    """`x` as a float when it is a finite number (not a bool), else None."""
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def _null_reason(walked: Sequence[str]) -> str:
    if len(walked) == 1 and walked[0] in _NOT_RUN:
        return _NOT_RUN[walked[0]]
    return f"`{'.'.join(walked)}` is null in the report (not run)"


def _absent(path: str, reason: str) -> Reading:
    return Reading(path, None, None, None, None, False, reason)
