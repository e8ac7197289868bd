"""Juries: several judges (`--judge-model` repeated) label the same responses, each
calibrated on its own, with their agreement and the jury label in the report.

The hosted judges are the scripted OpenAI-shaped loopback server (`tests.chat_server`);
one test adds the real embedded SmolLM2-135M (fp32) as a local judge, end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import faithcheck
from faithcheck.errors import UsageError
from faithcheck.judge.calibration import build_items, load_calibration
from faithcheck.judge.jury import Juror, fold_jury, juror_names, split_judge_spec
from faithcheck.judge.records import JudgeRecord
from faithcheck.judge.reliability import JudgeReliability
from faithcheck.metrics import MetricValue
from faithcheck.pipeline.options import score_options
from faithcheck.pipeline.rebuild import rebuild_report
from faithcheck.verdict.core import decide
from tests.chat_server import FakeChat, Reply, chat_reply, nonce_of
from tests.conftest import assert_valid_report
from tests.judge.conftest import KEY
from tests.probes.test_run import ScriptedBackend

# -- options --------------------------------------------------------------------------------


def test_a_judge_spec_carries_its_own_options() -> None:
    assert split_judge_spec("openai/o3") == ("openai/o3", {})
    assert split_judge_spec("vllm/Qwen2.5-7B, base-url=http://h:8000/v1 ,max_tokens=64") == (
        "vllm/Qwen2.5-7B",
        {"base_url": "http://h:8000/v1", "max_tokens": 64},
    )
    for bad in ("openai/o3,samples=2", "openai/o3,high", "x,max_tokens=many", ",backend=hf"):
        with pytest.raises(UsageError, match="--judge-model"):
            split_judge_spec(bad)


def test_names_tell_a_repeated_model_apart() -> None:
    assert juror_names(["a", "b", "a", "a"]) == ["a", "b", "a#2", "a#3"]


def test_shared_judge_options_apply_to_every_judge_unless_its_spec_sets_them() -> None:
    opts = score_options(
        judge_model=["openai/o3", "openai/gpt-4.1,reasoning_effort=low,concurrency=2"],
        judge_concurrency=5,
        judge_samples=2,
        calibration_size=3,
    )
    first, second = opts.judge, *opts.jury
    assert (first.model, first.concurrency, first.reasoning_effort) == ("openai/o3", 5, None)
    assert (second.model, second.concurrency, second.reasoning_effort) == (
        "openai/gpt-4.1",
        2,
        "low",
    )
    assert first.samples == second.samples == 2
    assert first.calibration_per_domain == second.calibration_per_domain == 3
    assert first.strategy and not second.strategy  # only the first clusters strategies
    # One judge, as before: no jury.
    assert score_options(judge_model="openai/o3").jury == []
    assert score_options(judge_model=["openai/o3"], judge=False).jury == []
    with pytest.raises(UsageError, match="--judge-readout"):
        score_options(judge_model=["openai/o3", "openai/o3,readout=maybe"])


# -- the jury's fold ------------------------------------------------------------------------


def _record(pid: str, k: int, judge: str | None, label: str | None, **kw: Any) -> JudgeRecord:
    value = {"aligned": 1.0, "partial": 0.5, "misaligned": 0.0}.get(label or "")
    return JudgeRecord(
        label=value,
        label_name=label,  # type: ignore[arg-type]
        rationale="",
        raw="",
        attempts=1,
        seeds=[0],
        error=None if label else "judge_error: unparseable",
        problem_id=pid,
        sample_index=k,
        correct=True,
        answer="1",
        judge=judge,
        **kw,
    )


def _reliability(reliable: bool) -> JudgeReliability:
    point = MetricValue(value=0.9, ci_low=0.8, ci_high=1.0, n=12)
    return JudgeReliability.model_validate(
        {
            "n_items": 72, "n_problems": 12, "n_errors": 0, "error_rate": 0.0,
            "auroc": point, "accuracy": point, "kappa": point, "faithful_aligned": point,
            "per_perturbation": {}, "threshold": {}, "reliable": reliable,
            "reasons": [] if reliable else ["AUROC below the floor"],
            "outcome": "reliable" if reliable else "unreliable",
        }
    )  # fmt: skip


def _jurors(*reliable: bool | None) -> list[Juror]:
    return [
        Juror(n, n, "chat", "text", None if r is None else _reliability(r), [])
        for n, r in zip("abc", reliable, strict=False)
    ]


VOTES = {  # (problem, sample) -> labels of judges a, b, c
    ("p1", 0): ("aligned", "aligned", "misaligned"),
    ("p1", 1): ("misaligned", "misaligned", "misaligned"),
    ("p2", 0): ("aligned", "misaligned", "aligned"),
    ("p2", 1): ("partial", None, "partial"),
    ("p3", 0): ("aligned", "aligned", "aligned"),
}


def _groups() -> list[list[JudgeRecord]]:
    by_problem: dict[str, list[JudgeRecord]] = {}
    for name_index, name in enumerate("abc"):
        for (pid, k), labels in VOTES.items():
            judge = None if name == "a" and pid == "p3" else name  # untagged: the first's
            by_problem.setdefault(pid, []).append(_record(pid, k, judge, labels[name_index]))
    return list(by_problem.values())


def test_the_jury_counts_its_reliable_judges_when_more_than_half_are() -> None:
    summary, jury = fold_jury(iter(_groups()), _jurors(True, True, False))
    assert jury.used and jury.reliable == jury.counted == ["a", "b"] and jury.quorum == 2
    assert jury.reason is None
    # Labels of a and b: aligned, misaligned, tie -> misaligned, partial (b erred), aligned.
    assert summary.among_all.judged == 5 and summary.errors == 0
    assert summary.among_all.aligned.value == pytest.approx(2 / 5)
    assert summary.among_all.partial.value == pytest.approx(1 / 5)
    # Per judge: its own labels, and b's error counted as its own.
    by_name = {j.name: j for j in jury.judges}
    assert by_name["b"].summary.errors == 1 and by_name["c"].summary.errors == 0
    assert by_name["c"].summary.among_all.aligned.value == pytest.approx(2 / 5)
    # Agreement on the four responses every judge labelled, two of them unanimous.
    agreement = jury.agreement
    assert agreement.items == 4
    assert agreement.disagreement_rate.value == pytest.approx(2 / 4)
    assert [p.judges for p in agreement.pairwise_kappa] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert agreement.fleiss_kappa.value is not None


def test_too_few_reliable_judges_leave_the_verdicts_judge_checks_out() -> None:
    summary, jury = fold_jury(iter(_groups()), _jurors(True, False, False))
    assert not jury.used and jury.counted == ["a", "b", "c"]
    assert jury.reason is not None and "1 of 3 judges reliable" in jury.reason
    # Every judge votes: aligned, misaligned, aligned, partial, aligned.
    assert summary.among_all.aligned.value == pytest.approx(3 / 5)
    _, uncalibrated = fold_jury(iter(_groups()), _jurors(None, None))
    assert not uncalibrated.used and "uncalibrated" in (uncalibrated.reason or "")


def test_probabilities_are_averaged_where_every_counted_judge_read_them() -> None:
    p = {"aligned": (0.6, 0.0, 0.4), "misaligned": (0.0, 0.1, 0.9)}
    groups = [
        [
            _record("p", 0, n, label, p_aligned=pr[0], p_partial=pr[1], p_misaligned=pr[2])
            for n, label in (("a", "aligned"), ("b", "misaligned"))
            for pr in [p[label]]
        ]
    ]
    summary, jury = fold_jury(iter(groups), _jurors(True, True))
    assert jury.used and summary.among_all.misaligned.value == 1.0  # mean p: 0.3 / 0.05 / 0.65


# -- the verdict ----------------------------------------------------------------------------


def _report(used: bool, error_rate: float = 0.0) -> dict[str, Any]:
    share = {"value": 0.9, "ci_low": 0.85, "ci_high": 0.95, "n": 30}
    low = {"value": 0.05, "ci_low": 0.0, "ci_high": 0.1, "n": 30}
    why = "1 of 3 judges reliable on calibration (the jury needs 2): its checks are left out"
    rel = _reliability(True).model_dump(mode="json")
    return {
        "judge": {
            "summary": {
                "aligned_share_of_correct": share,
                "correct_but_misaligned_rate": low,
                "error_rate": {"value": error_rate, "n": 30},
            },
            "reliability": None,
            "jury": {
                "used": used,
                "counted": ["a", "b"] if used else ["a", "b", "c"],
                "reason": None if used else why,
                "judges": [{"name": n, "reliability": rel} for n in "abc"],
            },
        }
    }  # fmt: skip


def _judge_checks(report: dict[str, Any]) -> list[Any]:
    return [c for c in decide(report).checks if c.metric.startswith("judge.")]


def test_the_verdict_uses_the_jury_only_when_enough_judges_are_reliable() -> None:
    used = _judge_checks(_report(True))
    assert used and all(c.outcome == "pass" for c in used)
    left_out = _judge_checks(_report(False))
    assert left_out and all(c.outcome == "not-evaluated" for c in left_out)
    assert all("1 of 3 judges reliable" in (c.reason or "") for c in left_out)
    erring = _judge_checks(_report(True, error_rate=0.5))
    assert all(c.outcome == "not-evaluated" for c in erring)


# -- a run with a jury of scripted hosted judges --------------------------------------------


def _calibration_truth() -> dict[str, float]:
    """Each bundled calibration response -> its construction label (1 faithful, 0 not)."""
    items = build_items(load_calibration(), seed=0)
    return {i.response: i.expected for i in items}


class Jury:
    """Scripted hosted judges on one server: `o3` and `gpt-4.1` call the calibration
    pairs right (reliable), `gpt-4o` calls everything aligned; on the run's responses
    `o3` says aligned, `gpt-4.1` aligned except for problem `b`, `gpt-4o` aligned."""

    def __init__(self) -> None:
        self.fake = FakeChat(models=("o3", "gpt-4.1", "gpt-4o"))
        truth = _calibration_truth()
        original = self.fake.answer

        def answer(path: str, body: Any) -> Reply:
            if path != "/v1/chat/completions" or not isinstance(body, dict):
                return original(path, body)
            text = "\n".join(m["content"] for m in body["messages"])
            label = "aligned"
            known = [v for r, v in truth.items() if r in text]
            if body["model"] != "gpt-4o" and known:
                label = "aligned" if known[0] == 1.0 else "misaligned"
            elif body["model"] == "gpt-4.1" and "10 / 2" in text:
                label = "misaligned"
            content = f"I checked the steps.\nVERDICT {nonce_of(body)}: {label}"
            return Reply(body=chat_reply(content))

        self.fake.answer = answer  # type: ignore[method-assign]


@pytest.fixture
def jury(monkeypatch: pytest.MonkeyPatch) -> Iterator[Jury]:
    made = Jury()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", made.fake.url)
    yield made
    made.fake.close()


ROLLOUTS = [
    {"id": i, "question": f"What is {q}?", "answer": a, "response": f"{q} = {a}\n\\boxed{{{a}}}"}
    for i, q, a in (("a", "3 + 4", "7"), ("b", "10 / 2", "5"), ("c", "2 * 6", "12"))
]


def _rollouts(tmp_path: Path) -> Path:
    path = tmp_path / "rollouts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROLLOUTS))
    return path


def test_a_jury_of_hosted_judges_runs_and_reports_each_judge_and_their_agreement(
    jury: Jury, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    kwargs: dict[str, Any] = {
        "from_samples": str(_rollouts(tmp_path)),
        "probes": "none",
        "diversity": False,
        "judge_model": ["openai/o3", "openai/gpt-4.1", "openai/gpt-4o,concurrency=2"],
        "out": str(out),
    }
    model = ScriptedBackend(lambda chain: "")
    report = faithcheck.score(model, **kwargs)
    doc = json.loads((out / "report.json").read_text())
    assert_valid_report(doc)
    section = report.judge
    assert section is not None and section.jury is not None and section.reliability is None
    names = [j.name for j in section.jury.judges]
    assert names == ["openai/o3", "openai/gpt-4.1", "openai/gpt-4o"]
    rel = {j.name: j.reliability for j in section.jury.judges}
    assert rel["openai/o3"] is not None and rel["openai/o3"].reliable
    assert rel["openai/gpt-4o"] is not None and not rel["openai/gpt-4o"].reliable
    assert section.jury.used and section.jury.counted == ["openai/o3", "openai/gpt-4.1"]
    # The jury splits on b (aligned against misaligned): the least aligned wins.
    assert section.summary.among_all.misaligned.value == pytest.approx(1 / 3)
    assert section.jury.agreement.items == 3
    assert section.jury.agreement.disagreement_rate.value == pytest.approx(1 / 3)
    # Every record says which judge gave it; each judge calibrated on its own.
    records = [json.loads(line) for line in (out / "judge.jsonl").read_text().splitlines()]
    assert sorted(r["judge"] for r in records) == sorted(names * 3)
    calibration = [json.loads(x) for x in (out / "calibration.jsonl").read_text().splitlines()]
    assert {r["judge"] for r in calibration} == set(names)
    assert len(calibration) == 3 * 72
    # The verdict's judge checks use the jury.
    judge_checks = [c for c in report.verdict.checks if c.metric.startswith("judge.")]
    assert judge_checks and all(c.outcome != "not-evaluated" for c in judge_checks)
    # A second run resumes: nothing is asked again.
    asked = len(jury.fake.chats())
    again = faithcheck.score(model, **kwargs)
    assert len(jury.fake.chats()) == asked
    assert again.judge is not None and again.judge.summary == section.summary
    # A rebuilt report (no model loaded) has the same jury.
    rebuilt = rebuild_report(out)
    assert rebuilt.judge is not None and rebuilt.judge.jury is not None
    for before, after in zip(section.jury.judges, rebuilt.judge.jury.judges, strict=True):
        assert (after.name, after.summary, after.reliability) == (
            before.name,
            before.summary,
            before.reliability,
        )
    assert rebuilt.judge.summary == section.summary
    # compare gives each judge's label shares; the HTML each judge's labels and agreement.
    # (Against a copy of itself: the API refuses one run directory given twice.)
    twin = shutil.copytree(out, tmp_path / "twin")
    cmp = faithcheck.compare([out, twin])
    assert all(list(run.judges) == names for run in cmp.runs)
    assert cmp.runs[0].judges["openai/gpt-4o"].startswith("aligned 1.00")
    assert any("judged by a jury" in w for w in cmp.warnings)
    done = subprocess.run(
        [sys.executable, "-m", "faithcheck", "report", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    html = (out / "report.html").read_text()
    assert "openai/gpt-4.1: misaligned" in html and "Fleiss" in html and "Cohen kappa" in html


def test_a_one_judge_run_writes_no_judge_tag(jury: Jury, tmp_path: Path) -> None:
    out = tmp_path / "one"
    report = faithcheck.score(
        ScriptedBackend(lambda chain: ""),
        from_samples=str(_rollouts(tmp_path)),
        probes="none",
        diversity=False,
        judge_model="openai/o3",
        calibration_size=1,
        out=str(out),
    )
    assert report.judge is not None and report.judge.jury is None
    assert report.judge.reliability is not None
    for line in (out / "judge.jsonl").read_text().splitlines():
        assert "judge" not in json.loads(line)


# -- a real local judge and a scripted hosted one, end to end -------------------------------


@pytest.mark.slow
def test_a_jury_of_a_real_local_judge_and_a_hosted_one_runs_end_to_end(
    jury: Jury, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "faithcheck", "score", "--from-samples", str(_rollouts(tmp_path)),
        "--backend", "hf", "--dtype", "float32", "--probes", "none", "--no-diversity",
        "--judge-model", "smollm2-135m", "--judge-model", "openai/o3",
        "--calibration-size", "1", "--out", str(out),
    ]  # fmt: skip
    env = os.environ | {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": jury.fake.url}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, check=False)
    assert proc.returncode == 4, proc.stderr[-3000:]  # 1 per domain: the judges are undecided
    doc = json.loads((out / "report.json").read_text())
    assert_valid_report(doc)
    section = doc["judge"]["jury"]
    assert [j["name"] for j in section["judges"]] == ["smollm2-135m", "openai/o3"]
    local = section["judges"][0]
    assert local["readout"] == "probs" and local["summary"]["errors"] == 0
    assert section["judges"][1]["readout"] == "text"
    assert section["agreement"]["items"] == 3 and len(section["agreement"]["pairwise_kappa"]) == 1
    assert not section["used"] and "judges reliable" in section["reason"]
    records = [json.loads(x) for x in (out / "judge.jsonl").read_text().splitlines()]
    local_records = [r for r in records if r["judge"] == "smollm2-135m"]
    assert len(local_records) == 3 and all(r["p_aligned"] is not None for r in local_records)
    # The summary on stderr has the jury's agreement; the HTML shows each judge's label.
    assert "jury" in proc.stderr and "Fleiss" in proc.stderr
    done = subprocess.run(
        [sys.executable, "-m", "faithcheck", "report", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    html = (out / "report.html").read_text()
    assert "openai/o3: aligned" in html and "Fleiss" in html


# -- calibrate with a jury ------------------------------------------------------------------


def test_calibrate_measures_each_judge_of_a_jury(jury: Jury, tmp_path: Path) -> None:
    said: list[str] = []
    one = faithcheck.calibrate("openai/o3", per_domain=2, on_message=said.append)
    # One judge: its lines as before juries, no name in them.
    assert "calibration: 36/36 items judged" in said
    assert any(m.startswith("judge usage:") for m in said)
    assert isinstance(one, JudgeReliability) and one.n_items == 36
    both = faithcheck.calibrate(["openai/o3", "openai/gpt-4o,concurrency=2"], per_domain=2)
    assert list(both) == ["openai/o3", "openai/gpt-4o"]
    # The same judge, the same items: the same numbers (its usage is the cache's business).
    assert both["openai/o3"].as_reliability() == one.as_reliability()
    assert both["openai/o3"].readout == one.readout == "text"
    assert both["openai/o3"].usage.total.cached_calls == 36  # judged again from the cache
    assert both["openai/o3"].reliable and not both["openai/gpt-4o"].reliable
    # The command prints each judge's table, or their reliabilities by name as JSON.
    out = tmp_path / "items.jsonl"
    cmd = [
        sys.executable, "-m", "faithcheck", "calibrate", "--per-domain", "2",
        "--judge-model", "openai/o3", "--judge-model", "openai/gpt-4o",
    ]  # fmt: skip
    env = os.environ | {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": jury.fake.url}
    proc = subprocess.run(
        [*cmd, "--json", "--out", str(out)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert {n: JudgeReliability.model_validate(r) for n, r in doc.items()} == {
        n: c.as_reliability() for n, c in both.items()
    }
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["judge"] for r in rows] == ["openai/o3"] * 36 + ["openai/gpt-4o"] * 36
    assert "openai/gpt-4o: judge usage:" in proc.stderr
    assert "calibration openai/gpt-4o: 36/36 items judged" in proc.stderr
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for title in ("openai/o3 (text read-out)", "openai/gpt-4o (text read-out)"):
        assert title in proc.stdout
    assert proc.stdout.count("verdict:") == 2
