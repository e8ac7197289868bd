"""The metric catalog is the one place a metric's path and direction are written: every path
exists in the report schema, and the verdict, compare, the trackers and the callback read
their lists from it (no second list to drift)."""

from __future__ import annotations

from faithcheck import trackers
from faithcheck.comparison import metrics as compare_metrics
from faithcheck.diversity.core import PER_PROBLEM_METRICS
from faithcheck.verdict import core as verdict
from faithcheck.verdict.catalog import (
    BY_NAME,
    BY_PATH,
    CATALOG,
    LOWER_IS_BETTER,
    TRACKED,
    UNIT,
    bounds,
)
from faithcheck.verdict.paths import schema_metric_patterns, validate_metric


def test_names_and_paths_are_unique_and_every_path_is_in_the_schema() -> None:
    assert len(BY_NAME) == len(CATALOG) == len(BY_PATH)
    assert schema_metric_patterns()  # validate_metric reads the report schema's paths
    for metric in CATALOG:
        assert validate_metric(metric.path) == metric.path  # raises for an unknown path


def test_the_verdict_compare_and_trackers_read_the_catalog() -> None:
    assert verdict.LOWER_IS_BETTER is LOWER_IS_BETTER
    assert trackers.HEADLINES is TRACKED
    for name, spec in compare_metrics.REGISTRY.items():
        if name in PER_PROBLEM_METRICS:
            assert spec.higher_is_better is None and spec.path == f"diversity.{name}"
            continue
        metric = BY_NAME[name]
        assert (spec.path, spec.higher_is_better, spec.aggregation) == (
            metric.path,
            metric.higher_is_better,
            metric.paired,
        )
        assert (spec.path in LOWER_IS_BETTER) == (spec.higher_is_better is False)
    assert set(compare_metrics.DEFAULT_METRICS) <= set(BY_NAME)


def test_directions_follow_the_meaning_of_the_name() -> None:
    """A rate of something bad (misaligned, unsupported, underived, errors, early answers,
    no answer, truncation by max_tokens) is lower-is-better; shares of support are not."""
    bad_words = ("misaligned", "unsupported", "underived", "error", "early", "no_answer")
    for metric in CATALOG:
        if any(word in metric.name for word in bad_words):
            assert metric.higher_is_better is False, metric.name
        if metric.name in ("accuracy", "supported", "answer_derived", "flip_rate"):
            assert metric.higher_is_better is True, metric.name


def test_ranges_are_read_from_the_catalog_and_unknown_paths_have_none() -> None:
    """The range refuses vacuous gates (`faithcheck.verdict.gates.vacuous`); a path the
    catalog does not name has none, so no gate on it is refused."""
    for metric in CATALOG:
        assert metric.bounds is None or metric.bounds[0] < metric.bounds[1], metric.name
        assert bounds(metric.path) == metric.bounds
    for path in ("probes.truncation.aoc", "probes.mistakes.flip_rate", "support.shares.asserted"):
        assert bounds(path) == UNIT
    for path in ("probes.chains", "diversity.vendi", "sampling.mean_completion_tokens"):
        assert bounds(path) is None
