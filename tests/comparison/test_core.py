"""`faithcheck compare` on hand-built run directories whose deltas are known: paired deltas
and CIs, shared problems only, the max-drop gate, ranking, warnings, --json / --out, and exit
codes through the real CLI error edge (`faithcheck.cli.commands` with a small app)."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from faithcheck.checks.derivation import DerivationFinding, analyze
from faithcheck.checks.derivation import summarize as summarize_derivation
from faithcheck.cli import commands as cli
from faithcheck.cli.compare import compare_command, print_tables
from faithcheck.comparison.core import Comparison, compare_runs, comparison_json_schema
from faithcheck.comparison.metrics import (
    REGISTRY,
    RunData,
    Units,
    load_run,
    paired_delta,
    run_value,
)
from faithcheck.diversity.core import PER_PROBLEM_METRICS, DiversitySummary, ProblemDiversity
from faithcheck.errors import UsageError
from faithcheck.judge.records import LABEL_VALUES, JudgeRecord, LabelName
from faithcheck.judge.report import JudgeReport
from faithcheck.judge.summary import summarize_judge
from faithcheck.metrics import MetricValue, bootstrap_mean
from faithcheck.probes.records import (
    MistakeRecord,
    NecessityRecord,
    ProbeConfig,
    ProbeRecord,
    TruncationPoint,
    TruncationRecord,
)
from faithcheck.probes.summary import summarize_probes
from faithcheck.report import Report, Throughput, Timings, Verdict, summarize_samples
from faithcheck.sampling import SampleRecord, SamplingConfig
from faithcheck.store.jsonio import append_jsonl, write_json
from faithcheck.store.rundir import RunDir, RunInfo

K = 4  # samples per problem


@dataclass
class Spec:
    """What a hand-built run holds, per problem id."""

    correct: dict[str, list[bool]]
    aoc: dict[str, float] = field(default_factory=dict)
    """One truncation chain per problem with this aoc_score."""
    aoc_generate: dict[str, float] = field(default_factory=dict)
    flips: dict[str, list[bool]] = field(default_factory=dict)
    labels: dict[str, list[LabelName]] = field(default_factory=dict)
    """Judge label per sample (aligned to `correct`)."""
    dataset: str = "dataset-sha"
    temperature: float = 1.0
    decision: str | None = None
    probes_in_report: bool = True
    dtype: str = "float32"


def _sample(pid: str, i: int, correct: bool) -> SampleRecord:
    return SampleRecord(
        problem_id=pid,
        sample_index=i,
        seed=0,
        prompt_tokens=1,
        completion="1 + 1 = 2",
        completion_token_ids=[1],
        finish_reason="stop",
        steps=[],
        answer="2",
        answer_rule="boxed",
        correct=correct,
        verify_method="exact",
    )


def _chain(pid: str, score: float | None, generate: float | None) -> TruncationRecord:
    points = [TruncationPoint(k=0, x=0.0, greedy=False), TruncationPoint(k=2, x=1.0, greedy=True)]
    return TruncationRecord(
        problem_id=pid,
        sample_index=0,
        n_steps=2,
        a_star="2",
        points=points,
        aoc_score=score,
        aoc_generate=generate,
    )


def _mistake(pid: str, i: int, flipped: bool) -> MistakeRecord:
    return MistakeRecord(
        problem_id=pid,
        sample_index=i,
        step_index=0,
        position=0.0,
        kind="number",
        original="1",
        replacement="3",
        offset=0,
        continuation="3 + 1 = 4",
        answer="4" if flipped else "2",
        flipped=flipped,
    )


def _judged(pid: str, i: int, correct: bool, label: LabelName) -> JudgeRecord:
    return JudgeRecord(
        problem_id=pid,
        sample_index=i,
        label=LABEL_VALUES[label],
        label_name=label,
        rationale="r",
        raw="r\nVERDICT: x",
        attempts=1,
        seeds=[0],
        correct=correct,
        answer="2",
    )


def write_run(path: Path, spec: Spec) -> Path:
    """A minimal valid run directory: run.json, records and a report made by the real code."""
    path.mkdir(parents=True)
    samples = [_sample(p, i, c) for p, cs in spec.correct.items() for i, c in enumerate(cs)]
    pids = set(spec.aoc) | set(spec.aoc_generate)
    probes: list[ProbeRecord] = [
        _chain(p, spec.aoc.get(p), spec.aoc_generate.get(p)) for p in sorted(pids)
    ]
    probes += [_mistake(p, i, f) for p, fs in spec.flips.items() for i, f in enumerate(fs)]
    judge = [
        _judged(p, i, spec.correct[p][i], label)
        for p, labels in spec.labels.items()
        for i, label in enumerate(labels)
    ]
    sampling = SamplingConfig(samples=K, temperature=spec.temperature).model_dump(mode="json")
    info = RunInfo(
        schema_version="0.1",
        faithcheck_version="0",
        git_commit=None,
        created_at="2026-01-01T00:00:00+00:00",
        argv=["faithcheck", "score"],
        config={
            "sampling": sampling,
            "probes": ProbeConfig().model_dump(mode="json"),
            "dtype": spec.dtype,
        },
        config_hash="h",
        model={"spec": path.name},
        dataset={"sha256": spec.dataset},
        versions={},
        host={},
    )
    write_json(path / "run.json", info)
    append_jsonl(path / "samples.jsonl", samples)
    append_jsonl(path / "probes.jsonl", probes)
    append_jsonl(path / "judge.jsonl", judge)
    report = Report(
        run_id=path.name,
        run_dir=str(path),
        model=f"models/{path.name}",
        model_sha256="m",
        backend="hf",
        dataset="problems.jsonl",
        dataset_sha256=spec.dataset,
        config_hash="h",
        sampling=summarize_samples(samples),
        timings=Timings(model_load_s=0.0, sampling_s=0.0, total_s=0.0),
        throughput=Throughput(completion_tokens=0, tokens_per_s=None),
        probes=summarize_probes(probes) if probes and spec.probes_in_report else None,
        judge=JudgeReport(
            model="judge",
            backend="hf",
            prompt_version="1",
            prompt_hash="ph",
            summary=summarize_judge(judge),
        )
        if judge
        else None,
        verdict=Verdict(decision=spec.decision, exit_code=0) if spec.decision else None,  # type: ignore[arg-type]
    )
    write_json(path / "report.json", report)
    return path


def pids(n: int, start: int = 0) -> list[str]:
    return [f"p{i:02d}" for i in range(start, start + n)]


def ladder(n: int, shift: int = 0) -> dict[str, list[bool]]:
    """Problem i has (i % 3) + shift correct samples of K."""
    return {p: [j < (i % 3) + shift for j in range(K)] for i, p in enumerate(pids(n))}


def full_spec(n: int = 12, shift: int = 0, **kw: Any) -> Spec:
    """Accuracy ladder, one truncation chain, two mistakes and a judge label per sample."""
    correct = ladder(n, shift)
    labels: dict[str, list[LabelName]] = {
        p: ["aligned" if (c and j % 2 == 0) else "misaligned" for j, c in enumerate(cs)]
        for p, cs in correct.items()
    }
    return Spec(
        correct=correct,
        aoc={p: 0.25 * (i % 4) for i, p in enumerate(correct)},
        flips={p: [i % 2 == 0, False] for i, p in enumerate(correct)},
        labels=labels,
        **kw,
    )


def compare(tmp_path: Path, *specs: Spec, **kw: Any) -> Comparison:
    runs = [load_run(write_run(tmp_path / f"run{i}", s)) for i, s in enumerate(specs)]
    return compare_runs(runs, **kw)


# --- paired deltas ---------------------------------------------------------------------------


def test_identical_runs_have_zero_deltas_with_zero_width_cis(tmp_path: Path) -> None:
    c = compare(tmp_path, full_spec(), full_spec())
    names = [m.name for m in c.metric_info]
    assert names == [
        "accuracy",
        "pass_at_k",
        "truncation_aoc",
        "flip_rate",
        "aligned_share_of_correct",
        "correct_but_misaligned_rate",
    ]  # necessity and derivation: in no run, left out by default
    for d in c.deltas["run1"].values():
        assert (d.value, d.ci_low, d.ci_high) == (0.0, 0.0, 0.0)
        assert d.paired and d.n > 0
    assert c.deltas["run1"]["accuracy"].n == 12 and c.shared_problems == {"run1": 12}
    assert c.warnings == []


def test_every_problem_up_a_quarter_is_a_delta_of_exactly_a_quarter(tmp_path: Path) -> None:
    c = compare(tmp_path, Spec(correct=ladder(15)), Spec(correct=ladder(15, shift=1)))
    d = c.deltas["run1"]["accuracy"]
    assert (d.value, d.ci_low, d.ci_high, d.n) == (0.25, 0.25, 0.25, 15)
    assert d.higher_is_better is True
    base, cand = c.metrics["run0"]["accuracy"], c.metrics["run1"]["accuracy"]
    assert base.source == "report" and base.value is not None
    assert cand.value == pytest.approx(base.value + 0.25)


def test_only_shared_problems_are_paired(tmp_path: Path) -> None:
    a = Spec(correct=ladder(12))
    b = Spec(correct=ladder(12) | {p: [True] * K for p in pids(4, start=12)})
    c = compare(tmp_path, a, b)
    d = c.deltas["run1"]["accuracy"]
    assert (d.value, d.ci_low, d.ci_high, d.n) == (0.0, 0.0, 0.0, 12)
    assert c.shared_problems == {"run1": 12}
    # B's own value (its report) does include its extra, all-correct problems.
    assert c.metrics["run1"]["accuracy"].value > c.metrics["run0"]["accuracy"].value  # type: ignore[operator]
    assert any("4 of its problems and 0 of run0's are not shared" in w for w in c.warnings)


def test_pooled_delta_weights_chains_not_problems(tmp_path: Path) -> None:
    # Baseline flips 1 of 4 chains on p00 and 0 of 1 on p01..; the candidate flips all.
    n = 10
    a = Spec(correct=ladder(n), flips={p: [i == 0] + [False] * 3 for i, p in enumerate(pids(n))})
    b = Spec(correct=ladder(n), flips={p: [True] * 4 for p in pids(n)})
    c = compare(tmp_path, a, b, metrics=["flip_rate"])
    assert c.deltas["run1"]["flip_rate"].value == pytest.approx(1 - 1 / 40)


Case = tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]], str, float]
DELTA_CASES: list[Case] = [
    ({"a": (1, 2), "b": (1, 2)}, {"a": (2, 2), "b": (0, 2)}, "pooled", 0.0),
    ({"a": (1, 4), "b": (0, 1)}, {"a": (4, 4), "b": (1, 1)}, "pooled", 1 - 1 / 5),
    ({"a": (1, 4), "b": (0, 1)}, {"a": (4, 4), "b": (1, 1)}, "mean", 1 - 1 / 8),
    ({"a": (1, 2)}, {"a": (1, 2), "z": (2, 2)}, "mean", 0.0),  # z is not shared
]


@pytest.mark.parametrize(("base", "cand", "aggregation", "expected"), DELTA_CASES)
def test_paired_delta_known_values(
    base: Units, cand: Units, aggregation: Any, expected: float
) -> None:
    assert paired_delta(base, cand, aggregation).value == pytest.approx(expected)


def test_paired_delta_without_shared_problems_is_undefined() -> None:
    d = paired_delta({"a": (1, 1)}, {"b": (1, 1)}, "pooled")
    assert d.value is None and d.reason == "no problem measured in both runs"


unit = st.tuples(st.integers(0, 5), st.integers(1, 5)).map(lambda t: (float(min(t)), float(t[1])))
units = st.dictionaries(st.sampled_from(pids(8)), unit, min_size=1)


@settings(max_examples=40, deadline=None)
@given(base=units, cand=units, aggregation=st.sampled_from(["pooled", "mean"]))
def test_swapping_runs_negates_the_delta_and_its_ci(
    base: Units, cand: Units, aggregation: Any
) -> None:
    forward = paired_delta(base, cand, aggregation, n_boot=200)
    backward = paired_delta(cand, base, aggregation, n_boot=200)
    if forward.value is None:
        assert backward.value is None
        return
    assert backward.value == pytest.approx(-forward.value, abs=1e-12)
    assert backward.ci_low == pytest.approx(-forward.ci_high, abs=1e-12)  # type: ignore[operator]
    assert forward.ci_low <= forward.value <= forward.ci_high  # type: ignore[operator]
    reordered = dict(reversed(list(cand.items())))
    assert paired_delta(base, reordered, aggregation, n_boot=200) == forward


# --- metrics, read-outs, sources -------------------------------------------------------------


def test_records_are_used_when_the_report_lacks_the_section(tmp_path: Path) -> None:
    spec = full_spec(probes_in_report=False)
    c = compare(tmp_path, full_spec(), spec)
    with_report, from_records = c.metrics["run0"]["flip_rate"], c.metrics["run1"]["flip_rate"]
    assert (with_report.source, from_records.source) == ("report", "records")
    assert from_records.value == pytest.approx(with_report.value)


def test_record_units_reproduce_the_report_aggregates(tmp_path: Path) -> None:
    """Necessity and derivation from records equal what the real summarizers report."""
    path = write_run(tmp_path / "r", full_spec())
    samples = RunDir(path).load_samples()
    texts = ["2 + 2 = 4", "2 + 2 = 5", "it is 4", "3 * 3 = 9"]
    findings = [
        analyze(s.problem_id, s.sample_index, texts[i % 4], [], ["4", "4", "4", "8"][i % 4])
        for i, s in enumerate(samples)
    ]
    drops = [
        NecessityRecord(
            problem_id=p,
            sample_index=0,
            baseline_answer="2",
            baseline_matches=i % 5 != 0,
            dropped=[0, 1, 2],
            answers=["2", "3", "2"],
            changed=[False, i % 2 == 0, i % 3 == 0],
        )
        for i, p in enumerate(pids(12))
    ]
    append_jsonl(path / "derivation.jsonl", findings)
    append_jsonl(path / "probes.jsonl", drops)
    run = load_run(path)
    correct = {(s.problem_id, s.sample_index): s.correct for s in samples}
    summary = summarize_derivation(findings, correct)
    necessity = summarize_probes(drops, seed=0).necessity
    assert necessity is not None
    expected = {
        "answer_derived": summary.answer_derived,
        "correct_but_underived": summary.correct_but_underived,
        "equation_error_rate": summary.equation_error_rate,
        "necessity_rate": necessity.rate,
    }
    for name, want in expected.items():
        spec = REGISTRY[name]
        assert spec.units is not None
        got, source = run_value(spec, {}, spec.units(run), seed=0, n_boot=1000)
        assert source == "records" and got == want, name


def _move_to_end(path: Path, keep: Callable[[dict[str, Any]], bool], extra: list[str]) -> None:
    """Move the lines `keep` rejects to the end of a JSONL file (a second span of their
    problem, as a resumed run leaves), then append `extra` lines."""
    lines = path.read_text().splitlines(keepends=True)
    stay = [line for line in lines if keep(json.loads(line))]
    moved = [line for line in lines if not keep(json.loads(line))]
    assert moved
    path.write_text("".join([*stay, *moved, *extra]))


def _dup(row: Any, **changes: Any) -> str:
    return json.dumps({**row.model_dump(mode="json"), **changes}) + "\n"


def test_problems_split_into_two_spans_compare_like_contiguous_ones(tmp_path: Path) -> None:
    """Records of one problem in two spans (with resume's duplicates, the first of which
    wins) give the same units, in the same order, and the same comparison."""
    base, cand = full_spec(probes_in_report=False), full_spec(shift=1, probes_in_report=False)
    dirs = {}
    for name in ("contiguous", "split"):
        dirs[name] = [write_run(tmp_path / name / f"run{i}", s) for i, s in enumerate((base, cand))]
        for d in dirs[name]:  # record-only values, so a run's own bootstrap order counts
            report = json.loads((d / "report.json").read_text())
            report["sampling"].pop("accuracy")
            report["judge"] = None
            (d / "report.json").write_text(json.dumps(report))
    split = dirs["split"][1]
    # p02 (2 of 4 correct): its later samples, judgements and mistake records go last.
    later = {"p02"}
    _move_to_end(
        split / "samples.jsonl",
        lambda r: not (r["problem_id"] in later and r["sample_index"] >= 2),
        [_dup(_sample("p02", 0, False)), _dup(_sample("p05", 3, True))],
    )
    _move_to_end(
        split / "judge.jsonl",
        lambda r: not (r["problem_id"] in later and r["sample_index"] >= 2),
        [_dup(_judged("p02", 0, True, "misaligned"))],
    )
    _move_to_end(
        split / "probes.jsonl",
        lambda r: not (r["problem_id"] in later and r.get("sample_index") == 1),
        [],
    )
    runs = {name: [load_run(d) for d in ds] for name, ds in dirs.items()}
    lines = [n for n, _ in RunDir(split).index("samples.jsonl").rows("p02")]
    assert lines != list(range(lines[0], lines[0] + len(lines)))  # two spans
    for a, b in zip(runs["contiguous"], runs["split"], strict=True):
        assert a.problems == b.problems
        assert {n: list(u.items()) for n, u in a.units.items()} == {
            n: list(u.items()) for n, u in b.units.items()
        }
    compared = {
        name: compare_runs(rs, metrics=["accuracy", "pass_at_k", "flip_rate", *JUDGED], n_boot=300)
        for name, rs in runs.items()
    }
    whole, halves = (c.model_dump(exclude={"runs"}) for c in compared.values())
    assert whole == halves and whole["metrics"]["run1"]["accuracy"]["source"] == "records"


JUDGED = ["aligned_share_of_correct", "correct_but_misaligned_rate"]


def test_units_follow_the_first_record_that_counts(tmp_path: Path) -> None:
    """A problem's unit sits where its first counted record is, as grouping the whole
    file would place it: p00's chain comes first, but p01's first mistake does."""
    path = write_run(tmp_path / "r", Spec(correct=ladder(2), aoc={"p00": 0.5}))
    append_jsonl(path / "probes.jsonl", [_mistake("p01", 0, True), _mistake("p00", 0, False)])
    run = load_run(path)
    assert list(run.units["flip_rate"]) == ["p01", "p00"]
    assert list(run.units["truncation_aoc_score"]) == ["p00"] and run.has_truncation


def test_load_run_keeps_no_records(tmp_path: Path) -> None:
    """Only per-problem units stay in memory: no record outlives `load_run`."""
    path = write_run(tmp_path / "r", full_spec())
    append_jsonl(path / "derivation.jsonl", [analyze("p00", 0, "2 + 2 = 4", [], "4")])
    kinds = (SampleRecord, JudgeRecord, TruncationRecord, MistakeRecord, DerivationFinding)

    def alive() -> int:
        gc.collect()
        return sum(isinstance(o, kinds) for o in gc.get_objects())

    before = alive()
    run = load_run(path)
    assert alive() == before
    assert {f.name for f in fields(RunData)} == {
        "path",
        "report",
        "info",
        "problems",
        "units",
        "has_truncation",
        "label",
    }
    assert run.units["accuracy"] and run.units["answer_derived"]


def test_truncation_reads_the_read_out_every_run_has(tmp_path: Path) -> None:
    both = Spec(correct=ladder(10), aoc={"p00": 0.5}, aoc_generate={"p00": 0.75})
    generate_only = Spec(correct=ladder(10), aoc_generate={"p00": 0.25})
    c = compare(tmp_path, both, generate_only, metrics=["truncation_aoc"])
    info = c.metric_info[0]
    assert info.name == "truncation_aoc" and info.path == "probes.truncation.generate.aoc"
    assert c.deltas["run1"]["truncation_aoc"].value == pytest.approx(-0.5)


def test_diversity_is_unpaired_and_never_gated(tmp_path: Path) -> None:
    c = compare(tmp_path, full_spec(), full_spec(), metrics=["vendi", "accuracy"], max_drop=0.0)
    d = c.deltas["run1"]["vendi"]
    assert d.paired is False and d.value is None and d.higher_is_better is None
    assert "vendi: not measured in any run" in c.warnings
    assert c.gate is not None and [ch.metric for ch in c.gate.checks] == ["sampling.accuracy"]


DiversityRows = dict[str, dict[str, float | None]]
"""problem id -> metric -> its value (missing or None: does not apply)."""


def add_diversity(path: Path, rows: DiversityRows, *, file: bool = True) -> Path:
    """Give a hand-built run a diversity section in its report (averaged over problems as
    `summarize_diversity_groups` does) and, with `file`, its diversity.jsonl."""
    lines = [ProblemDiversity(problem_id=p, **values) for p, values in rows.items()]
    metrics: dict[str, MetricValue] = {}
    for name in PER_PROBLEM_METRICS:
        present = [v for r in lines if (v := getattr(r, name)) is not None]
        undefined = MetricValue(value=None, n=0, reason="no values")
        metrics[name] = bootstrap_mean(present, seed=0) if present else undefined
    summary = DiversitySummary(
        **metrics,  # type: ignore[arg-type]
        n_problems=len(rows),
        samples_per_problem=K,
        embedder="hash",
    )
    report = json.loads((path / "report.json").read_text())
    report["diversity"] = summary.model_dump(mode="json")
    write_json(path / "report.json", report)
    if file:
        append_jsonl(path / "diversity.jsonl", lines)
    return path


def diversity_rows(ids: list[str], shift: float = 0.0) -> DiversityRows:
    """Vendi and distinct-1 that vary by problem (moved by `shift`); strategy diversity on
    every other problem only."""
    return {
        p: {
            "vendi": 1.0 + (i % 5) * 0.5 + shift,
            "distinct_1": 0.1 * (i % 7) + shift / 10,
            "strategy_diversity": 0.25 * (i % 3) if i % 2 == 0 else None,
        }
        for i, p in enumerate(ids)
    }


DIVERSITY_METRICS = ["vendi", "distinct_1", "strategy_diversity", "accuracy"]


def _diversity_runs(
    tmp_path: Path, base: DiversityRows, cand: DiversityRows, **kw: Any
) -> list[RunData]:
    files = kw.pop("files", (True, True))
    dirs = [
        add_diversity(write_run(tmp_path / f"run{i}", full_spec(n=len(rows))), rows, file=f)
        for i, (rows, f) in enumerate(zip((base, cand), files, strict=True))
    ]
    return [load_run(d) for d in dirs]


def test_diversity_units_are_read_from_diversity_jsonl(tmp_path: Path) -> None:
    rows = diversity_rows(pids(6))
    (run,) = _diversity_runs(tmp_path, rows, rows)[:1]
    assert run.units["vendi"] == {p: (r["vendi"], 1.0) for p, r in rows.items()}
    assert list(run.units["strategy_diversity"]) == ["p00", "p02", "p04"]  # None: left out
    assert "embedding_distance" not in run.units  # null on every problem: not measured
    # The records reproduce the report's aggregates.
    for name in ("vendi", "distinct_1", "strategy_diversity"):
        spec = REGISTRY[name]
        assert spec.units is not None
        got, source = run_value(spec, {}, spec.units(run), seed=0, n_boot=1000)
        assert source == "records" and got == MetricValue.model_validate(
            run.report["diversity"][name]
        ), name


def test_diversity_deltas_are_paired_on_shared_problems_with_a_ci(tmp_path: Path) -> None:
    base = diversity_rows(pids(12))
    cand = diversity_rows(pids(12), shift=0.5)
    cand |= {p: {"vendi": 9.0} for p in pids(3, start=12)}  # not in the baseline
    runs = _diversity_runs(tmp_path, base, cand)
    c = compare_runs(runs, metrics=DIVERSITY_METRICS, max_drop=0.0)
    vendi = c.deltas["run1"]["vendi"]
    assert vendi.paired and vendi.higher_is_better is None and vendi.reason is None
    assert (vendi.value, vendi.ci_low, vendi.ci_high, vendi.n) == pytest.approx((0.5, 0.5, 0.5, 12))
    distinct = c.deltas["run1"]["distinct_1"]
    assert distinct.paired and distinct.n == 12
    assert distinct.value == pytest.approx(0.05) and distinct.ci_low == pytest.approx(0.05)
    strategy = c.deltas["run1"]["strategy_diversity"]
    assert strategy.paired and (strategy.value, strategy.n) == (0.0, 6)  # judged in both
    assert all(m.paired for m in c.metric_info)
    # Per-run values still come from the reports; the candidate's includes its extras.
    assert c.metrics["run1"]["vendi"].source == "report"
    # A paired delta whose problems move differently has a CI around it.
    noisy = {
        p: {"vendi": r["vendi"] + (0.3 if i % 2 else -0.1)} for i, (p, r) in enumerate(base.items())
    }
    (tmp_path / "noisy").mkdir()
    c = compare_runs(_diversity_runs(tmp_path / "noisy", base, noisy), metrics=["vendi"])
    d = c.deltas["run1"]["vendi"]
    assert d.paired and d.ci_low is not None and d.ci_high is not None
    assert d.ci_low < d.value < d.ci_high and d.value == pytest.approx(0.1)  # type: ignore[operator]
    # Contrast only: never gated, never ranked.
    assert c.ranking_metrics == []
    gated = compare_runs(runs, metrics=DIVERSITY_METRICS, max_drop=0.0).gate
    assert gated is not None and [ch.metric for ch in gated.checks] == ["sampling.accuracy"]


@pytest.mark.parametrize("files", [(False, True), (True, False), (False, False)])
def test_diversity_without_diversity_jsonl_falls_back_to_report_aggregates(
    tmp_path: Path, files: tuple[bool, bool]
) -> None:
    """An older or --no-diversity run has no per-problem values: the delta is the
    difference of the report aggregates, unpaired, without a CI, as before."""
    base, cand = diversity_rows(pids(12)), diversity_rows(pids(12), shift=0.5)
    runs = _diversity_runs(tmp_path, base, cand, files=files)
    c = compare_runs(runs, metrics=DIVERSITY_METRICS, max_drop=0.0)
    d = c.deltas["run1"]["vendi"]
    b, a = c.metrics["run0"]["vendi"].value, c.metrics["run1"]["vendi"].value
    assert b is not None and a is not None
    assert d.paired is False and d.ci_low is None and d.ci_high is None
    assert d.value == pytest.approx(a - b) and d.value == pytest.approx(0.5)
    missing = " and ".join(f"run{i}" for i, f in enumerate(files) if not f)
    assert (
        d.reason
        == f"unpaired: difference of report aggregates (no per-problem values in {missing})"
    )
    assert c.gate is not None and [ch.metric for ch in c.gate.checks] == ["sampling.accuracy"]


def test_diversity_fallback_is_marked_unpaired_in_the_table(tmp_path: Path) -> None:
    rows = diversity_rows(pids(12))
    paired = compare_runs(_diversity_runs(tmp_path / "a", rows, rows), metrics=["vendi"])
    unpaired = compare_runs(
        _diversity_runs(tmp_path / "b", rows, rows, files=(True, False)), metrics=["vendi"]
    )
    texts = []
    for c in (paired, unpaired):
        console = Console(record=True, width=200)
        print_tables(c, console)
        texts.append(console.export_text())
    assert "(unpaired)" not in texts[0] and "(unpaired)" in texts[1]


def test_metric_may_be_named_by_its_report_path(tmp_path: Path) -> None:
    c = compare(
        tmp_path, full_spec(), full_spec(), metrics=["judge.summary.aligned_share_of_correct"]
    )
    assert [m.name for m in c.metric_info] == ["aligned_share_of_correct"]


# --- warnings --------------------------------------------------------------------------------


def test_different_datasets_settings_and_few_problems_are_warned(tmp_path: Path) -> None:
    a = Spec(correct=ladder(5))
    b = Spec(correct=ladder(5), dataset="other-sha", temperature=0.6, dtype="bfloat16")
    warnings = compare(tmp_path, a, b).warnings
    assert "run1: ran in bfloat16, run0 in float32 (--dtype)" in warnings
    assert any("different dataset" in w and "other-sha" in w for w in warnings)
    assert any("sampling settings differ from run0 (temperature)" in w for w in warnings)
    assert any("only 5 problems shared" in w for w in warnings)


# --- gate ------------------------------------------------------------------------------------


def test_gate_fails_when_the_candidate_is_much_worse(tmp_path: Path) -> None:
    c = compare(tmp_path, full_spec(shift=2), full_spec(), max_drop=0.05)
    assert c.gate is not None and c.gate.passed is False
    acc = next(ch for ch in c.gate.checks if ch.metric == "sampling.accuracy")
    assert acc.passed is False and acc.candidate == "run1"
    assert (acc.op, acc.threshold, acc.bound, acc.outcome) == (">=", -0.05, "ci_low", "fail")
    assert acc.value == -0.5 and acc.origin == "baseline"
    assert "the whole CI is a worsening beyond 0.05" in acc.reason
    assert "run1: sampling.accuracy" in c.gate.failed


def test_gate_passes_when_the_candidate_is_as_good_or_better(tmp_path: Path) -> None:
    probes = ["accuracy", "pass_at_k", "truncation_aoc", "flip_rate"]
    c = compare(tmp_path, full_spec(), full_spec(shift=1), metrics=probes, max_drop=0.05)
    assert c.gate is not None and c.gate.passed is True
    assert all(ch.outcome == "pass" for ch in c.gate.checks) and c.gate.failed == []
    assert len(c.gate.checks) == 4


def test_gate_is_undecided_when_the_ci_straddles_the_allowed_drop(tmp_path: Path) -> None:
    # The candidate's judge share moves by -0.067 [-0.288, +0.087] over 10 shared problems:
    # a worsening beyond 0.05 is neither shown nor ruled out.
    metric = ["aligned_share_of_correct"]
    c = compare(tmp_path, full_spec(15), full_spec(15, shift=1), metrics=metric, max_drop=0.05)
    assert c.gate is not None and c.gate.passed is None and c.gate.failed == []
    (check,) = c.gate.checks
    assert (check.outcome, check.n) == ("undecided", 10)
    assert check.ci_low is not None and check.ci_high is not None
    assert check.ci_low < -0.05 < check.ci_high
    assert check.more_problems is not None and check.more_problems > 0
    assert "possible, not shown" in check.reason
    # on 12 problems only 8 have a correct answer to judge: below the floor of 10
    c = compare(tmp_path / "12", full_spec(), full_spec(), metrics=metric, max_drop=0.05)
    assert c.gate is not None and c.gate.passed is None
    assert "rests on 8 shared problem(s) < 10 required" in c.gate.checks[0].reason


def test_gate_on_a_lower_is_better_metric_flips_the_sign(tmp_path: Path) -> None:
    base = full_spec(15)
    worse = full_spec(15)
    worse.labels = {p: ["misaligned"] * K for p in worse.correct}
    c = compare(tmp_path, base, worse, metrics=["correct_but_misaligned_rate"], max_drop=0.1)
    assert c.gate is not None and c.gate.passed is False
    (check,) = c.gate.checks
    assert (check.op, check.threshold, check.bound) == ("<=", 0.1, "ci_high")
    assert check.ci_low is not None and check.ci_low > 0.1 and check.outcome == "fail"


def test_gate_is_inconclusive_when_the_candidate_lacks_a_metric(tmp_path: Path) -> None:
    no_judge = full_spec()
    no_judge.labels = {}
    c = compare(tmp_path, full_spec(), no_judge, max_drop=0.05)
    assert c.gate is not None and c.gate.passed is None
    unknown = [ch for ch in c.gate.checks if ch.passed is None]
    assert {ch.metric for ch in unknown} == {
        "judge.summary.aligned_share_of_correct",
        "judge.summary.correct_but_misaligned_rate",
    }
    assert "not measured in run1" in unknown[0].reason


def test_gate_with_nothing_to_gate_is_inconclusive(tmp_path: Path) -> None:
    c = compare(tmp_path, full_spec(), full_spec(), metrics=["vendi"], max_drop=0.1)
    assert c.gate is not None and c.gate.checks == [] and c.gate.passed is None


# --- ranking ---------------------------------------------------------------------------------


def _judge_share(spec: Spec, aligned_of_4: int) -> Spec:
    aligned: list[LabelName] = ["aligned"]
    misaligned: list[LabelName] = ["misaligned"]
    labels = aligned * aligned_of_4 + misaligned * (K - aligned_of_4)
    spec.correct = {p: [True] * K for p in spec.correct}
    spec.labels = {p: labels for p in spec.correct}
    return spec


def test_ranking_by_aligned_share_then_truncation(tmp_path: Path) -> None:
    low = _judge_share(full_spec(), 1)
    high = _judge_share(full_spec(), 3)
    tie_better_aoc = _judge_share(full_spec(), 3)
    tie_better_aoc.aoc = {p: 1.0 for p in tie_better_aoc.correct}
    c = compare(tmp_path, low, high, tie_better_aoc)
    assert c.ranking_metrics[:2] == ["aligned_share_of_correct", "truncation_aoc"]
    assert [(r.rank, r.label) for r in c.ranking] == [(1, "run2"), (2, "run1"), (3, "run0")]
    assert c.ranking[0].values["aligned_share_of_correct"] == 0.75


def test_ranking_falls_back_to_truncation_and_shares_ties(tmp_path: Path) -> None:
    a = Spec(correct=ladder(10), aoc={"p00": 0.2})
    b = Spec(correct=ladder(10), aoc={"p00": 0.8})
    c = compare(tmp_path, a, b, Spec(correct=ladder(10), aoc={"p00": 0.2}))
    assert c.ranking_metrics == ["truncation_aoc", "accuracy", "pass_at_k"]
    assert [(r.rank, r.label) for r in c.ranking] == [(1, "run1"), (2, "run0"), (2, "run2")]


def test_ranking_leaves_out_a_metric_some_run_lacks(tmp_path: Path) -> None:
    judged = _judge_share(full_spec(), 3)
    unjudged = full_spec(shift=1)
    unjudged.labels = {}
    c = compare(tmp_path, judged, unjudged)
    assert c.ranking_metrics[0] == "truncation_aoc"
    assert "aligned_share_of_correct" not in c.ranking_metrics
    assert "ranking leaves out aligned_share_of_correct: not measured in run1" in c.warnings


def test_labels_fall_back_to_the_path_when_names_clash(tmp_path: Path) -> None:
    runs = [load_run(write_run(tmp_path / d / "ckpt", full_spec())) for d in ("x", "y")]
    # Same directory name and same model: the paths tell them apart.
    labels = [r.label for r in compare_runs(runs).runs]
    assert labels == [str(tmp_path / "x" / "ckpt"), str(tmp_path / "y" / "ckpt")]


# --- command line ----------------------------------------------------------------------------


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    """`faithcheck.cli.commands` (the real one-line error edge) over an app with `compare`."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.command(name="compare")(compare_command)

    @app.command()
    def version() -> None:
        """Keep the app a group of commands."""

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setenv("COLUMNS", "250")
    return cli.main


def test_json_is_the_only_stdout_and_validates(
    tmp_path: Path, main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = write_run(tmp_path / "a", full_spec()), write_run(tmp_path / "b", full_spec(shift=1))
    out = tmp_path / "cmp" / "comparison.json"
    assert main(["compare", str(a), str(b), "--json", "--out", str(out), "--n-boot", "200"]) == 0
    stdout, stderr = capsys.readouterr()
    data = json.loads(stdout)
    jsonschema.validate(data, comparison_json_schema())
    assert data == json.loads(out.read_text()) and stderr == ""
    assert data["baseline"] == "a" and data["deltas"]["b"]["accuracy"]["value"] == 0.25
    assert data["n_boot"] == 200 and data["gate"] is None


def test_tables_name_every_run_and_metric(
    tmp_path: Path, main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "base", full_spec(decision="GO"))
    b = write_run(tmp_path / "sft", Spec(correct=ladder(3)))
    assert main(["compare", str(a), str(b), "--metric", "accuracy,flip_rate"]) == 0
    stdout, stderr = capsys.readouterr()
    for needle in ("base", "sft", "accuracy ↑", "flip_rate ↑", "GO", "ranking by", "+0.000"):
        assert needle in stdout
    assert "warning: sft: only 3 problems shared with base" in stderr


def test_gate_exit_codes(
    tmp_path: Path, main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = (
        write_run(tmp_path / "good", full_spec(shift=2)),
        write_run(tmp_path / "bad", full_spec()),
    )
    better = write_run(tmp_path / "better", full_spec(shift=2))
    assert main(["compare", str(good), str(better), "--max-drop", "0.05"]) == 0
    capsys.readouterr()
    assert main(["compare", str(good), str(bad), "--max-drop", "0.05", "--json"]) == 1
    stdout, stderr = capsys.readouterr()
    assert json.loads(stdout)["gate"]["passed"] is False
    assert (
        stderr.splitlines() == [stderr.strip()]
        and "max-drop gate (0.05) failed: bad: sampling.accuracy" in stderr
    )
    no_judge = full_spec(shift=2)
    no_judge.labels = {}
    blind = write_run(tmp_path / "blind", no_judge)
    assert main(["compare", str(good), str(blind), "--max-drop", "0.05"]) == 4
    assert "gate (0.05) inconclusive" in capsys.readouterr().err


def test_baseline_may_be_an_extra_run_or_one_of_them(
    tmp_path: Path, main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = write_run(tmp_path / "a", full_spec()), write_run(tmp_path / "b", full_spec())
    assert main(["compare", str(a), "--baseline", str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["baseline"] == "b" and [r["label"] for r in data["runs"]] == ["b", "a"]
    assert main(["compare", str(a), str(b), "--baseline", str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["baseline"] == "b" and list(data["deltas"]) == ["a"]


def _usage_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    a, b = write_run(tmp_path / "a", full_spec()), write_run(tmp_path / "b", full_spec())
    empty = tmp_path / "empty"
    empty.mkdir()
    return [
        ([str(a), str(empty)], f"{empty}: no report.json (run `faithcheck score` first)"),
        ([str(a)], "at least two run directories"),
        ([str(a), str(a)], "given twice"),
        ([str(a), str(tmp_path / "nope")], "no such run directory"),
        ([str(a), str(b), "--metric", "vibes"], "unknown metric 'vibes'; known: accuracy"),
        ([str(a), str(b), "--max-drop", "-1"], "--max-drop"),
        ([], "RUN_DIR"),
    ]


def test_usage_errors_are_one_line_exit_2(
    tmp_path: Path, main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    for args, needle in _usage_cases(tmp_path):
        assert main(["compare", *args]) == 2, args
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert out == "" and len(lines) == 1 and lines[0].startswith("faithcheck: error:"), err
        assert needle in lines[0] and "Traceback" not in err


def test_corrupt_record_is_one_line_exit_2(
    tmp_path: Path, main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = write_run(tmp_path / "a", full_spec()), write_run(tmp_path / "b", full_spec())
    with (b / "judge.jsonl").open("a") as fh:
        fh.write('{"problem_id": "p00"}\n')
    assert main(["compare", str(a), str(b)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "a record cannot be read" in lines[0]


def test_cli_runner_exit_codes(tmp_path: Path) -> None:
    app = typer.Typer(add_completion=False)
    app.command(name="compare")(compare_command)

    @app.command()
    def version() -> None:
        """Keep the app a group of commands."""

    good, bad = (
        write_run(tmp_path / "good", full_spec(shift=2)),
        write_run(tmp_path / "bad", full_spec()),
    )
    runner = CliRunner()
    twice = runner.invoke(app, ["compare", str(good), str(good.parent / "good"), "--json"])
    assert isinstance(twice.exception, UsageError)  # `faithcheck.cli.commands` makes it exit 2
    gated = ["--metric", "accuracy,truncation_aoc,flip_rate", "--max-drop", "0.05", "--json"]
    ok = runner.invoke(app, ["compare", str(bad), str(good), *gated])
    assert ok.exit_code == 0, ok.output
    # the judge's shares over 8 problems with a correct answer: undecided, exit 4
    undecided = runner.invoke(app, ["compare", str(bad), str(good), "--max-drop", "0.05"])
    assert undecided.exit_code == 4, undecided.output
    assert "max-drop gate (0.05) inconclusive" in undecided.output
    failed = runner.invoke(app, ["compare", str(good), str(bad), "--max-drop", "0.05", "--json"])
    assert failed.exit_code == 1
