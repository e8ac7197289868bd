"""The judge phase's calibration cache: a second run with the same judge reuses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from faithcheck.judge import JudgeResult
from faithcheck.judge_plan import (
    JudgePlan,
    calibration_cache_path,
    save_calibration,
    seed_calibration,
)
from faithcheck.judge_stage import JudgeOptions, calibration_items, judge_config
from faithcheck.rundir import CALIBRATION_FILE, RunDir


def _plan(identity: str = "judge-sha", max_tokens: int = 256) -> JudgePlan:
    opts = JudgeOptions(max_tokens=max_tokens)
    return JudgePlan(opts, "vllm", "/x", identity, False, judge_config(opts, 0, "chat"))


def _run(path: Path) -> RunDir:
    run = RunDir(path)
    run.open()
    return run


def test_calibration_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAITHCHECK_CACHE", str(tmp_path / "cache"))
    items = calibration_items(1, 0)
    cache = calibration_cache_path(_plan(), items)
    first = _run(tmp_path / "a")
    results = [
        JudgeResult(
            item_id=i.item_id,
            label=1.0,
            label_name="aligned",
            rationale="r",
            raw="x",
            attempts=1,
            seeds=[3],
        )
        for i in items
    ]
    first.append(CALIBRATION_FILE, results)
    save_calibration(first, cache)
    second = _run(tmp_path / "b")
    seed_calibration(second, cache)
    assert second.load(CALIBRATION_FILE, JudgeResult) == results
    first.release()
    second.release()


def test_cache_key_changes_with_judge_settings_and_items() -> None:
    items = calibration_items(1, 0)
    base = calibration_cache_path(_plan(), items)
    assert calibration_cache_path(_plan(), items) == base
    assert calibration_cache_path(_plan(identity="other"), items) != base
    assert calibration_cache_path(_plan(max_tokens=128), items) != base
    assert calibration_cache_path(_plan(), items[:-1]) != base


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "bad.jsonl"
    cache.write_text('{"item_id": "x", "label": 7}\n')
    run = _run(tmp_path / "r")
    seed_calibration(run, cache)
    assert run.load(CALIBRATION_FILE, JudgeResult) == []
    run.release()


def test_problems_with_undecided_strategy_pairs_are_left_out(tmp_path: Path) -> None:
    from faithcheck.judge_stage import StrategyRecord, strategy_clusters
    from faithcheck.rundir import STRATEGY_FILE

    run = _run(tmp_path / "s")
    run.append(
        STRATEGY_FILE,
        [
            StrategyRecord(problem_id="a", sample_indices=[0, 1], clusters=[0, 0]),
            StrategyRecord(problem_id="b", sample_indices=[0, 1], clusters=[0, 1], undecided=1),
        ],
    )
    assert strategy_clusters(run) == {"a": {0: 0, 1: 0}}
    run.release()
