"""`faithcheck merge` and `faithcheck.pipeline.rebuild`.

Fast tests build shard run directories by hand (records, run.json as `score` writes it,
report.json by `rebuild`) and check the merged run against an unsharded run built from
the same records, and every refusal. One slow test runs the real `score` twice as
shards and once unsharded on the default model and merges.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from faithcheck.comparison.core import compare_runs
from faithcheck.comparison.metrics import load_run
from faithcheck.diversity.core import PER_PROBLEM_METRICS
from faithcheck.diversity.embed import embedder_name
from faithcheck.errors import DataError, RunDirError, UsageError
from faithcheck.judge import JudgeConfig, JudgeRecord, JudgeResult
from faithcheck.judge.stage import JudgeOptions, StrategyRecord, calibration_items
from faithcheck.metrics import bootstrap, mean_or_nan
from faithcheck.models import ModelIdentity
from faithcheck.pipeline import merge
from faithcheck.pipeline.config import result_config
from faithcheck.pipeline.merge import first_difference, merge_runs
from faithcheck.pipeline.options import ScoreOptions
from faithcheck.pipeline.rebuild import config_hash, rebuild_report
from faithcheck.probes import ProbeConfig
from faithcheck.probes.records import ControlRecord, TruncationPoint, TruncationRecord
from faithcheck.problems.load import dataset_hash, load_problems
from faithcheck.problems.options import in_shard
from faithcheck.problems.parsing import extract_answer, split_steps
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord, SamplingConfig
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.rundir import RunDir, RunInfo
from tests.conftest import assert_valid_report

VOLATILE = ("timings", "throughput", "run_id", "run_dir")
K = 3  # samples per problem


def stable(report: dict[str, Any]) -> dict[str, Any]:
    """A report without the fields that legitimately differ between equal runs."""
    return {k: v for k, v in report.items() if k not in VOLATILE}


def _bit(*parts: object) -> int:
    return hashlib.sha256(repr(parts).encode()).digest()[0] & 1


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Ten small math problems in a JSONL file."""
    path = tmp_path / "data.jsonl"
    rows = [
        {"id": f"q-{i:02d}", "question": f"What is {i} + 1?", "answer": str(i + 1)}
        for i in range(10)
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _samples(problem: Problem) -> list[SampleRecord]:
    out = []
    for i in range(K):
        n = int(problem.answer) + _bit(problem.id, i)  # about half of them wrong
        text = (
            f"We add one.\n\n{int(problem.answer) - 1} + 1 = {n}.\n\nThe answer is \\boxed{{{n}}}."
        )
        found = extract_answer(text)
        out.append(
            SampleRecord(
                problem_id=problem.id,
                sample_index=i,
                seed=7,
                prompt_tokens=5,
                completion=text,
                completion_token_ids=list(range(10 + i)),
                finish_reason="stop",
                steps=split_steps(text),
                answer=found.answer,
                answer_rule=found.rule,
                correct=found.answer == problem.answer,
                verify_method="exact",
            )
        )
    return out


def _probes(s: SampleRecord) -> list[Any]:
    flags = [bool(_bit(s.problem_id, s.sample_index, k)) for k in range(3)] + [True]
    points = [
        TruncationPoint(k=k, x=k / 3, logprob=-1.0 * k, greedy=g) for k, g in enumerate(flags)
    ]
    return [
        TruncationRecord(
            problem_id=s.problem_id,
            sample_index=s.sample_index,
            n_steps=3,
            a_star=s.answer or "",
            points=points,
            aoc_score=0.5,
        ),
        ControlRecord(
            problem_id=s.problem_id,
            sample_index=s.sample_index,
            full_correct=s.correct,
            no_cot_answer=None,
            no_cot_correct=bool(_bit("nocot", s.problem_id)),
            filler_answer=None,
            filler_correct=False,
        ),
    ]


def _judged(s: SampleRecord) -> JudgeRecord:
    label = 1.0 if _bit("judge", s.problem_id, s.sample_index) else 0.0
    return JudgeRecord(
        problem_id=s.problem_id,
        sample_index=s.sample_index,
        label=label,
        label_name="aligned" if label else "misaligned",
        rationale="r",
        raw="raw",
        attempts=1,
        seeds=[1],
        correct=s.correct,
        answer=s.answer,
    )


def _calibration(seed: int = 0) -> list[JudgeResult]:
    return [
        JudgeResult(
            item_id=item.item_id,
            label=item.expected,
            label_name="aligned" if item.expected else "misaligned",
            rationale="",
            raw="",
            attempts=1,
            seeds=[seed],
        )
        for item in calibration_items(1, seed)
    ]


def _jsonl(path: Path, records: list[Any]) -> None:
    if records:
        path.write_bytes(b"".join(orjson.dumps(r.model_dump(mode="json")) + b"\n" for r in records))


def make_run(
    out: Path,
    data: Path,
    shard: tuple[int, int] | None = None,
    *,
    judge: bool = False,
    temperature: float = 1.0,
    limit: int | None = None,
    finish: bool = True,
    diversity: bool = False,
    embed: bool = False,
) -> Path:
    """A finished run directory as `score` leaves it, with hand-made records (`diversity`:
    without the embedder, so that no model loads, unless `embed`)."""
    problems = load_problems(str(data))[:limit]
    if shard is not None:
        problems = [p for p in problems if in_shard(p.id, *shard)]
    opts = ScoreOptions(
        model="fake-model",
        dataset=str(data),
        backend="hf",
        samples=K,
        temperature=temperature,
        limit=limit,
        shard=shard,
        out=str(out),
        probes=ProbeConfig(probes=["truncation", "controls"], readout="score"),
        judge=JudgeOptions(enabled=judge, calibration_per_domain=1),
        diversity=diversity,
        diversity_embed=embed or not diversity,  # on: no embedder unless `embed`
    )
    identity = ModelIdentity(
        spec="fake-model", kind="folder", path="/nowhere", sha256="f" * 64, has_chat_template=True
    )
    cfg = SamplingConfig(samples=K, temperature=temperature, seed=0)
    plan: Any = None
    if judge:
        plan = type("Plan", (), {"identity": "f" * 64, "dtype": "float32", "cfg": JudgeConfig()})()
    config = result_config(opts, "hf", identity, cfg, dataset_hash(problems), plan)
    digest = hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS)).hexdigest()
    info = RunInfo(
        schema_version="0.1",
        faithcheck_version="0.1.0",
        git_commit=None,
        created_at="2026-01-01T00:00:00+00:00",
        argv=["faithcheck", "score"],
        config=config | {"options": opts.model_dump(mode="json")},
        config_hash=digest,
        model=identity.model_dump(mode="json") | {"chat_template_sha256": None},
        dataset={"spec": str(data), "problems": len(problems), "sha256": dataset_hash(problems)},
        versions={"python": "3.11.7"},
        host={"cpus": 2},
    )
    out.mkdir(parents=True)
    (out / "run.json").write_bytes(orjson.dumps(info.model_dump(mode="json")))
    samples = [s for p in problems for s in _samples(p)]
    _jsonl(out / "samples.jsonl", samples)
    _jsonl(out / "probes.jsonl", [r for s in samples for r in _probes(s)])
    if judge:
        judged = sorted(samples, key=lambda s: (s.problem_id, s.sample_index))
        _jsonl(out / "judge.jsonl", [_judged(s) for s in judged])
        _jsonl(
            out / "strategy.jsonl",
            [
                StrategyRecord(problem_id=p.id, sample_indices=list(range(K)), clusters=[0, 0, 1])
                for p in sorted(problems, key=lambda p: p.id)
            ],
        )
        _jsonl(out / "calibration.jsonl", _calibration())
    if finish:
        rebuild_report(out)
        doc = json.loads((out / "report.json").read_text())
        doc["timings"] |= {"sampling_s": 2.0, "total_s": 3.0}
        doc["throughput"] = {"completion_tokens": 100, "tokens_per_s": 50.0}
        (out / "report.json").write_text(json.dumps(doc))
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_merged_run_equals_the_unsharded_run(tmp_path: Path, dataset: Path) -> None:
    full = make_run(tmp_path / "full", dataset, judge=True)
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 3), judge=True) for i in range(3)]
    # A resumed shard can hold a duplicate line; the merge keeps one.
    with (shards[1] / "samples.jsonl").open("ab") as fh:
        fh.write((shards[1] / "samples.jsonl").read_bytes().splitlines(keepends=True)[0])
    said: list[str] = []
    merged = merge_runs(shards[::-1], tmp_path / "merged", say=said.append)

    expected = json.loads((full / "report.json").read_text())
    got = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert_valid_report(got)
    assert got == merged.model_dump(mode="json")
    assert stable(got) == stable(expected)
    assert got["config_hash"] == expected["config_hash"]
    assert got["judge"]["reliability"] is not None and got["probes"]["controls"] is not None
    assert got["timings"]["sampling_s"] == pytest.approx(6.0)
    assert got["throughput"] == {"completion_tokens": 300, "tokens_per_s": pytest.approx(50.0)}

    run = json.loads((tmp_path / "merged" / "run.json").read_text())
    unsharded = json.loads((full / "run.json").read_text())
    assert run["config_hash"] == unsharded["config_hash"] == config_hash(unsharded["config"])
    assert run["config"]["merged_from"] == [str(s.resolve()) for s in shards]
    assert run["config"]["shard"] is None and run["config"]["options"]["shard"] is None

    def core(config: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if k not in ("options", "merged_from")}

    assert core(run["config"]) == core(unsharded["config"])
    assert run["dataset"]["problems"] == 10
    for name in ("samples.jsonl", "probes.jsonl", "judge.jsonl", "strategy.jsonl"):
        assert _lines(tmp_path / "merged" / name) == _lines(full / name), name
    assert _lines(tmp_path / "merged" / "calibration.jsonl") == _lines(full / "calibration.jsonl")
    assert said and said[-1].startswith("merged 3 shards (10 problems, 30 samples)")


def test_file_order_and_the_cis(tmp_path: Path, dataset: Path) -> None:
    """A share's CI does not depend on the problems' order, so a concatenated file gives
    the same sampling section. Bootstrapped CIs (kappa, AUROC, paired deltas, unbounded
    means) do, which is why the merge restores the order (the merged files equal the
    unsharded ones line for line, above)."""
    full = make_run(tmp_path / "full", dataset)
    lines = (full / "samples.jsonl").read_bytes().splitlines(keepends=True)
    (full / "samples.jsonl").write_bytes(b"".join(lines[K:] + lines[:K]))  # first problem last
    shuffled = rebuild_report(full).model_dump(mode="json")
    merged = merge_runs(
        [make_run(tmp_path / f"s{i}", dataset, (i, 2)) for i in range(2)], tmp_path / "m"
    ).model_dump(mode="json")
    assert merged["sampling"]["accuracy"]["value"] == shuffled["sampling"]["accuracy"]["value"]
    assert merged["sampling"] == shuffled["sampling"]  # shares: the same interval in any order
    values = [1.0, 4.0, 2.0, 8.0, 5.0, 3.0]
    assert bootstrap(values, mean_or_nan) != bootstrap(values[::-1], mean_or_nan)


def test_rebuild_is_idempotent_and_keeps_timings(tmp_path: Path, dataset: Path) -> None:
    run = make_run(tmp_path / "r", dataset, judge=True)
    before = json.loads((run / "report.json").read_text())
    again = rebuild_report(run).model_dump(mode="json")
    assert again == before


def test_derived_stages_write_their_files_and_the_report_only_folds_them(
    tmp_path: Path, dataset: Path
) -> None:
    """derivation.jsonl, support.jsonl and diversity.jsonl are written by their stages
    before the report; the report is a fold of them (an edited row shows in it), a complete
    file is kept, and a missing or outdated one is computed again, byte for byte."""
    derived = ("derivation.jsonl", "support.jsonl", "diversity.jsonl")
    run = make_run(tmp_path / "r", dataset, judge=True, diversity=True)
    before = json.loads((run / "report.json").read_text())
    files = {name: (run / name).read_bytes() for name in derived}
    stamps = {name: (run / name).stat().st_mtime_ns for name in derived}
    (run / "report.json").unlink()
    assert stable(rebuild_report(run).model_dump(mode="json")) == stable(before)
    assert {name: (run / name).stat().st_mtime_ns for name in derived} == stamps  # kept
    # The report reads the values from the files, not from the samples.
    (run / "diversity.jsonl").write_bytes(
        b"".join(orjson.dumps(r | {"distinct_1": 0.25}) + b"\n" for r in _lines(run / derived[2]))
    )
    (run / "derivation.jsonl").write_bytes(
        b"".join(
            orjson.dumps(r | {"answer_derived": True}) + b"\n" for r in _lines(run / derived[0])
        )
    )
    folded = rebuild_report(run)
    assert folded.diversity is not None and folded.diversity.distinct_1.value == 0.25
    assert folded.derivation.answer_derived.value == 1.0
    # A run scored before the stages (no files), or with an outdated row: computed again.
    for name in derived[1:]:
        (run / name).unlink()
    rows = _lines(run / derived[0])
    del rows[0]["status"]
    (run / derived[0]).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    again = rebuild_report(run).model_dump(mode="json")
    assert stable(again) == stable(before)
    assert {name: (run / name).read_bytes() for name in derived} == files


def test_diversity_jsonl_holds_the_values_the_report_averages(
    tmp_path: Path, dataset: Path
) -> None:
    """`build_report` writes one line per problem, in samples.jsonl order; `compare` pairs them,
    and a merged run gets the unsharded run's file."""
    run = make_run(tmp_path / "r", dataset, judge=True, diversity=True)
    rows = _lines(run / "diversity.jsonl")
    order = list(ProblemIndex(run / "samples.jsonl"))
    assert [r["problem_id"] for r in rows] == order and len(order) == 10
    assert all(set(r) == {"problem_id", "embedder", *PER_PROBLEM_METRICS} for r in rows)
    assert all(r["embedder"] is None for r in rows)  # no embedder ran
    report = json.loads((run / "report.json").read_text())["diversity"]
    assert report["embedding_distance"] is None and all(r["vendi"] is None for r in rows)
    for name in PER_PROBLEM_METRICS:
        if report[name] is None:
            continue
        present = [r[name] for r in rows if r[name] is not None]
        assert report[name]["n"] == len(present) > 0, name
        assert report[name]["value"] == pytest.approx(sum(present) / len(present)), name
    other = make_run(tmp_path / "o", dataset, judge=True, diversity=True)
    compared = compare_runs([load_run(run), load_run(other)], metrics=["distinct_1", "self_bleu"])
    for delta in compared.deltas["o"].values():
        assert delta.paired and (delta.value, delta.ci_low, delta.ci_high, delta.n) == (
            0.0,
            0.0,
            0.0,
            10,
        )
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 2), diversity=True) for i in range(2)]
    merge_runs(shards, tmp_path / "m")
    full = make_run(tmp_path / "full", dataset, diversity=True)
    assert _lines(tmp_path / "m" / "diversity.jsonl") == _lines(full / "diversity.jsonl")
    # Without diversity there is no file (a rebuild removes a stale one).
    plain = make_run(tmp_path / "plain", dataset)
    assert not (plain / "diversity.jsonl").exists()
    (plain / "diversity.jsonl").write_bytes((run / "diversity.jsonl").read_bytes())
    rebuild_report(plain)
    assert not (plain / "diversity.jsonl").exists()


def test_diversity_rows_name_their_embedder_and_a_rebuild_keeps_it(
    tmp_path: Path, dataset: Path
) -> None:
    """Every diversity.jsonl row names the embedder that computed it (model and dtype), and
    the report names the one its rows name: a run rebuilt on a machine whose embedder
    differs (another dtype) keeps its values and their embedder's name. Rows that name no
    embedder (written before rows did) or two different ones are computed again here."""
    run = make_run(tmp_path / "r", dataset, diversity=True, embed=True)
    rows = _lines(run / "diversity.jsonl")
    here = embedder_name()
    assert {r["embedder"] for r in rows} == {here}
    section = json.loads((run / "report.json").read_text())["diversity"]
    assert section["embedder"] == here and section["vendi"]["value"] is not None

    def put(lines: list[dict[str, Any]]) -> bytes:
        data = b"".join(orjson.dumps(r) + b"\n" for r in lines)
        (run / "diversity.jsonl").write_bytes(data)
        return data

    elsewhere = "sentence-transformers/all-MiniLM-L6-v2 (other dtype)"
    kept = put([r | {"embedder": elsewhere, "vendi": 1.5} for r in rows])
    folded = rebuild_report(run).diversity
    assert folded is not None and folded.embedder == elsewhere
    assert folded.vendi is not None and folded.vendi.value == 1.5
    assert (run / "diversity.jsonl").read_bytes() == kept
    unnamed = [{k: v for k, v in r.items() if k != "embedder"} | {"vendi": 1.5} for r in rows]
    for stale in (unnamed, [rows[0] | {"embedder": elsewhere}, *rows[1:]]):
        put(stale)
        again = rebuild_report(run).diversity
        assert again is not None and again.embedder == here
        assert _lines(run / "diversity.jsonl") == rows


def test_rebuild_refuses_an_unfinished_run(tmp_path: Path, dataset: Path) -> None:
    run = make_run(tmp_path / "r", dataset, finish=False)
    lines = (run / "samples.jsonl").read_bytes().splitlines(keepends=True)
    (run / "samples.jsonl").write_bytes(b"".join(lines[:-K]))
    with pytest.raises(RunDirError, match="9 of 10 problems"):
        rebuild_report(run)
    with pytest.raises(RunDirError, match="not a faithcheck run"):
        rebuild_report(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("shard", "options", "message"),
    [
        ((1, 2), {"finish": False}, r"s1 is not a finished run \(no report.json\)"),
        (None, {}, "not a shard run"),
        ((1, 2), {"temperature": 0.5}, r"differ in config key 'sampling\.temperature'"),
        ((1, 3), {}, "merge shards of one N"),
        ((0, 2), {}, "are both shard 0/2"),
    ],
    ids=["unfinished", "unsharded", "differing-config-names-the-first-key", "other-n", "repeated"],
)
def test_a_shard_that_does_not_fit_is_refused(
    tmp_path: Path,
    dataset: Path,
    shard: tuple[int, int] | None,
    options: dict[str, Any],
    message: str,
) -> None:
    s0 = make_run(tmp_path / "s0", dataset, (0, 2))
    s1 = make_run(tmp_path / "s1", dataset, shard, **options)
    with pytest.raises(UsageError, match=message):
        merge_runs([s0, s1], tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("a", "b", "key"),
    [
        ({"shard": [0, 2], "x": 1}, {"shard": [1, 2], "x": 1}, None),
        ({"sampling": {"seed": 0}}, {"sampling": {"seed": 1}}, "sampling.seed"),
        ({"options": {"out": "a", "seed": 0}}, {"options": {"out": "b", "seed": 0}}, None),
        ({"b": 1, "a": 1}, {"b": 2, "a": 2}, "a"),
        ({"judge": None}, {"judge": {"enabled": True}}, "judge"),
        ({"x": 1}, {}, "x"),
        ({"options": {"seed": 1}, "z": 1}, {"options": {"seed": 2}, "z": 2}, "z"),
    ],
)
def test_first_difference(a: dict[str, Any], b: dict[str, Any], key: str | None) -> None:
    assert first_difference(a, b) == key


def test_missing_shard_needs_allow_partial(tmp_path: Path, dataset: Path) -> None:
    full = make_run(tmp_path / "full", dataset)
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 3)) for i in (0, 2)]
    with pytest.raises(UsageError, match=r"shard 1/3 is missing; .*--allow-partial"):
        merge_runs(shards, tmp_path / "m")
    said: list[str] = []
    report = merge_runs(shards, tmp_path / "m", allow_partial=True, say=said.append)
    assert any(m.startswith("warning: shards 1/3 are missing") for m in said)
    held = [p for p in load_problems(str(dataset)) if not in_shard(p.id, 1, 3)]
    assert report.sampling.problems == len(held)
    assert report.config_hash != json.loads((full / "report.json").read_text())["config_hash"]
    run = json.loads((tmp_path / "m" / "run.json").read_text())
    assert run["config"]["merged_shards"] == {"count": 3, "indices": [0, 2]}
    assert run["config_hash"] == config_hash(run["config"]) == report.config_hash


def test_shards_without_problems_are_not_required(tmp_path: Path, dataset: Path) -> None:
    problems = load_problems(str(dataset))[:2]
    holding = sorted({i for p in problems for i in range(8) if in_shard(p.id, i, 8)})
    assert len(holding) < 8
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 8), limit=2) for i in holding]
    report = merge_runs(shards, tmp_path / "m")
    assert report.sampling.problems == 2
    full = make_run(tmp_path / "full", dataset, limit=2)
    assert report.config_hash == json.loads((full / "report.json").read_text())["config_hash"]


def _move_first_problem(src: Path, dst: Path, *, copy: bool) -> str:
    """Put the first problem's samples of shard `src` into shard `dst` too (or only)."""
    lines = (src / "samples.jsonl").read_bytes().splitlines(keepends=True)
    with (dst / "samples.jsonl").open("ab") as fh:
        fh.write(b"".join(lines[:K]))
    pid = str(json.loads(lines[0])["problem_id"])
    if not copy:
        (src / "samples.jsonl").write_bytes(b"".join(lines[K:]))
        probes = (src / "probes.jsonl").read_bytes().splitlines(keepends=True)
        (src / "probes.jsonl").write_bytes(
            b"".join(line for line in probes if json.loads(line)["problem_id"] != pid)
        )
    return pid


@pytest.mark.parametrize(
    ("copy", "message"),
    [
        (True, "problem '{pid}' appears in two shards"),
        (False, "holds problem '{pid}', which belongs to shard 0/2"),
    ],
    ids=["in-two-shards", "in-the-wrong-shard"],
)
def test_a_problem_out_of_its_shard_is_refused(
    tmp_path: Path, dataset: Path, copy: bool, message: str
) -> None:
    s0 = make_run(tmp_path / "s0", dataset, (0, 2))
    s1 = make_run(tmp_path / "s1", dataset, (1, 2))
    pid = _move_first_problem(s0, s1, copy=copy)
    with pytest.raises(UsageError, match=message.format(pid=pid)):
        merge_runs([s0, s1], tmp_path / "m")


def test_shard_missing_samples_is_refused(tmp_path: Path, dataset: Path) -> None:
    s0 = make_run(tmp_path / "s0", dataset, (0, 2))
    s1 = make_run(tmp_path / "s1", dataset, (1, 2))
    lines = (s1 / "samples.jsonl").read_bytes().splitlines(keepends=True)
    (s1 / "samples.jsonl").write_bytes(b"".join(lines[K:]))
    with pytest.raises(UsageError, match="s1 has no samples for 1 of its problems"):
        merge_runs([s0, s1], tmp_path / "m")


def test_changed_dataset_is_refused(tmp_path: Path, dataset: Path) -> None:
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 2)) for i in range(2)]
    dataset.write_text(dataset.read_text().replace('"answer":"4"', '"answer":"5"'))
    with pytest.raises(DataError, match="no longer matches"):
        merge_runs(shards, tmp_path / "m")


def test_out_holding_a_run_needs_force(tmp_path: Path, dataset: Path) -> None:
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 2)) for i in range(2)]
    first = merge_runs(shards, tmp_path / "m")
    with pytest.raises(RunDirError, match="already holds a run"):
        merge_runs(shards, tmp_path / "m")
    again = merge_runs(shards, tmp_path / "m", force=True)
    assert stable(again.model_dump()) == stable(first.model_dump())
    with pytest.raises(UsageError, match="is one of the shards"):
        merge_runs(shards, shards[0])


def test_shard_being_written_is_refused(tmp_path: Path, dataset: Path) -> None:
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 2)) for i in range(2)]
    writer = RunDir(shards[1])
    writer.open()  # a `score` holding the shard
    try:
        with pytest.raises(UsageError, match="a faithcheck run is writing to"):
            merge_runs(shards, tmp_path / "m")
    finally:
        writer.release()
    merge_runs(shards, tmp_path / "m")


def test_failed_merge_leaves_nothing_behind(
    tmp_path: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 2)) for i in range(2)]

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("report failed")

    monkeypatch.setattr("faithcheck.pipeline.merge.rebuild", broken)
    with pytest.raises(RuntimeError, match="report failed"):
        merge_runs(shards, tmp_path / "new" / "m")
    assert not (tmp_path / "new").exists()


def test_differing_calibration_keeps_the_first_shard(tmp_path: Path, dataset: Path) -> None:
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 2), judge=True) for i in range(2)]
    rows = _lines(shards[1] / "calibration.jsonl")
    rows[0]["rationale"] = "another reply"
    (shards[1] / "calibration.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    said: list[str] = []
    merge_runs(shards, tmp_path / "m", say=said.append)
    assert any("1 calibration labels differ" in m for m in said)
    assert _lines(tmp_path / "m" / "calibration.jsonl") == _lines(shards[0] / "calibration.jsonl")


def test_ledgers_are_concatenated_and_batches_dropped(tmp_path: Path, dataset: Path) -> None:
    """judge_calls.jsonl is every call of every shard, shard by shard, nothing
    deduplicated; judge_batches.jsonl (a shard's provider batch ids) is not merged."""
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 2), judge=True) for i in range(2)]
    call = {"purpose": "rubric", "attempt": 0, "cached": False, "finish_reason": "stop"}
    for i, s in enumerate(shards):
        rows = [call | {"item_id": f"s{i}#0"}, call | {"item_id": f"s{i}#0"}]
        (s / "judge_calls.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (s / "judge_batches.jsonl").write_text('{"batch_id": "b", "custom_ids": []}\n')
    merge_runs(shards[::-1], tmp_path / "m")
    got = [r["item_id"] for r in _lines(tmp_path / "m" / "judge_calls.jsonl")]
    assert got == ["s0#0", "s0#0", "s1#0", "s1#0"]
    assert not (tmp_path / "m" / "judge_batches.jsonl").exists()


@pytest.fixture
def cli_main() -> Iterator[Any]:
    """`faithcheck.cli.commands` with `merge` registered (as cli.py registers it)."""
    from faithcheck.cli import commands as cli
    from faithcheck.cli.merge import merge_command

    before = list(cli.app.registered_commands)
    if not any(c.name == "merge" for c in before):
        cli.app.command(name="merge")(merge_command)
    yield cli.main
    cli.app.registered_commands[:] = before


def test_cli_merges_and_exits_with_the_verdict(
    tmp_path: Path, dataset: Path, cli_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = [str(make_run(tmp_path / f"s{i}", dataset, (i, 2))) for i in range(2)]
    code = cli_main(["merge", *shards, "--out", str(tmp_path / "m"), "--json"])
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert code == {"GO": 0, "NO_GO": 1, "INCONCLUSIVE": 4}[report["verdict"]["decision"]]
    assert report == json.loads((tmp_path / "m" / "report.json").read_text())


def test_cli_errors_are_one_line(
    tmp_path: Path, dataset: Path, cli_main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s0 = str(make_run(tmp_path / "s0", dataset, (0, 2)))
    s1 = str(make_run(tmp_path / "s1", dataset, (1, 2), finish=False))
    cases = [
        (["merge", s0, s1, "--out", str(tmp_path / "m")], "is not a finished run"),
        (["merge", s0, "--out", str(tmp_path / "m")], "shard 1/2 is missing"),
        (["merge", s0, str(tmp_path / "none"), "--out", str(tmp_path / "m")], "not a run dir"),
        (["merge", s0], "--out"),
    ]
    for argv, message in cases:
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("faithcheck: error:") and err.count("\n") == 1, err
        assert message in err, err


# --- the real thing: score as two shards and unsharded, then merge -------------------------

SMALL = (
    "--backend", "hf", "--limit", "3", "--samples", "2", "--max-tokens", "24",
    "--temperature", "0", "--dtype", "float32", "--no-judge", "--no-diversity",
    "--probes", "truncation",
)  # fmt: skip


def _score(out: Path, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "faithcheck", "score", *SMALL, "--out", str(out), *extra]
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode in (0, 1, 4), proc.stderr[-2000:]
    return dict(json.loads((out / "report.json").read_text()))


@pytest.mark.slow
def test_real_shards_merge_to_the_unsharded_report(tmp_path: Path) -> None:
    shards = [tmp_path / "s0", tmp_path / "s1"]
    for i, out in enumerate(shards):
        _score(out, "--shard", f"{i}/2")
    full = _score(tmp_path / "full")
    merged = merge_runs(shards, tmp_path / "merged").model_dump(mode="json")
    assert_valid_report(merged)
    assert stable(merged) == stable(full)
    assert merged["config_hash"] == full["config_hash"]
    assert merged["sampling"]["problems"] == 3 and merged["probes"]["chains"] > 0
    keys = [(r["problem_id"], r["sample_index"]) for r in _lines(tmp_path / "merged/samples.jsonl")]
    assert keys == [
        (r["problem_id"], r["sample_index"]) for r in _lines(tmp_path / "full/samples.jsonl")
    ]


# --- streaming: records are read one problem at a time ------------------------------------


def _by_problem(path: Path) -> dict[str, list[bytes]]:
    groups: dict[str, list[bytes]] = {}
    for line in path.read_bytes().splitlines(keepends=True):
        groups.setdefault(json.loads(line)["problem_id"], []).append(line)
    return groups


def test_problem_split_in_two_spans_merges_in_unsharded_order(
    tmp_path: Path, dataset: Path
) -> None:
    """A resumed shard can hold a problem's records in two places of a file, out of
    order and repeated: the merge still writes the unsharded run's files, byte for byte."""
    full = make_run(tmp_path / "full", dataset, judge=True)
    shards = [make_run(tmp_path / f"s{i}", dataset, (i, 2), judge=True) for i in range(2)]
    for name in ("samples.jsonl", "probes.jsonl", "judge.jsonl"):
        path = shards[0] / name
        groups = _by_problem(path)
        first, *rest = groups
        lines = groups[first]
        # The first problem's records in two spans around the others', with a repeat;
        # judge labels out of order too (they are sorted by sample index, samples and
        # probes keep their file order within a problem).
        if name == "judge.jsonl":
            head, tail = lines[-1:], [*lines[:-1], lines[0]]
        else:
            head, tail = lines[:1], [*lines[1:], lines[0]]
        path.write_bytes(b"".join([*head, *(ln for p in rest for ln in groups[p]), *tail]))
        numbers = [n for n, _ in ProblemIndex(path).rows(first)]
        assert numbers[1] - numbers[0] > 1, name  # two spans
    said: list[str] = []
    report = merge_runs(shards, tmp_path / "m", say=said.append)
    for name in ("samples.jsonl", "probes.jsonl", "judge.jsonl", "strategy.jsonl"):
        assert (tmp_path / "m" / name).read_bytes() == (full / name).read_bytes(), name
    expected = json.loads((full / "report.json").read_text())
    assert stable(report.model_dump(mode="json")) == stable(expected)
    assert said[-1].startswith("merged 2 shards (10 problems, 30 samples)")


def test_merge_reads_each_problem_once_and_never_whole_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory follows one problem's records, not a file's: every problem is read back
    once per record file, and the peak allocation stays far below the files' size (it
    is set by one problem's lines and orjson's parse of one line, about 13x its size)."""
    data = tmp_path / "data.jsonl"
    rows = [{"id": f"p-{i:03d}", "question": f"{i} + 1?", "answer": str(i + 1)} for i in range(160)]
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    paths = [make_run(tmp_path / f"s{i}", data, (i, 2), judge=True) for i in range(2)]
    size = 0
    for path in paths:  # fat samples: about 12 MB in all
        lines = (path / "samples.jsonl").read_bytes().splitlines()
        padded = [orjson.dumps(orjson.loads(ln) | {"pad": "x" * 25_000}) + b"\n" for ln in lines]
        (path / "samples.jsonl").write_bytes(b"".join(padded))
        size += (path / "samples.jsonl").stat().st_size
    assert size > 10_000_000

    reads: Counter[tuple[str, str]] = Counter()
    records = merge._Index.records

    def counting(self: Any, pid: str) -> Iterator[tuple[tuple[Any, ...], bytes]]:
        reads[(self.name, pid)] += 1
        return records(self, pid)

    monkeypatch.setattr(merge._Index, "records", counting)
    shards = sorted((merge._read_shard(p) for p in paths), key=lambda s: s.index)
    problems = load_problems(str(data))
    owner = {p.id: merge._shard_of(p.id, 2) for p in problems}
    position = {p.id: i for i, p in enumerate(problems)}
    out = tmp_path / "out"
    tracemalloc.start()
    try:
        files, sampled = merge._merge_records(shards, owner, position, lambda _: None)
        for name, lines_of in files.items():
            merge._atomic_write_lines(out / name, lines_of())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size / 5, (peak, size)  # about 1/15 (the old whole-file merge: 1.6x)
    assert sampled == set(owner)
    per_problem = ("samples.jsonl", "probes.jsonl", "judge.jsonl", "strategy.jsonl")
    assert set(reads) == {(name, pid) for name in per_problem for pid in owner}
    assert set(reads.values()) == {1}
    merged = [json.loads(ln)["problem_id"] for ln in (out / "samples.jsonl").open("rb")]
    assert merged == [p.id for p in problems for _ in range(K)]
