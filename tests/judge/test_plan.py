"""Planning the judge: which kind, which budget, and the response cache across runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from faithcheck.judge import JudgeResult
from faithcheck.judge.client import LEDGER_FILE
from faithcheck.judge.plan import JudgePlan
from faithcheck.judge.stage import JudgeOptions, calibration_items, judge_config
from faithcheck.store.rundir import CALIBRATION_FILE, RunDir


def _plan(identity: str = "judge-sha", max_tokens: int = 256, dtype: str = "float32") -> JudgePlan:
    opts = JudgeOptions(max_tokens=max_tokens, readout="text")
    return JudgePlan(opts, "vllm", "/x", identity, False, judge_config(opts, 0, "chat"), dtype)


def _run(path: Path) -> RunDir:
    run = RunDir(path)
    run.open()
    return run


def test_local_judges_are_cached_by_checkpoint_engine_and_dtype() -> None:
    base = _plan().cache_identity
    assert _plan().cache_identity == base
    assert _plan(identity="other").cache_identity != base
    assert _plan(dtype="bfloat16").cache_identity != base


def test_a_second_calibration_of_the_same_judge_is_answered_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faithcheck.judge.client import JudgeCall
    from faithcheck.judge.stage import calibrate_into
    from tests.judge.test_run import ScriptedJudge, says

    monkeypatch.setenv("FAITHCHECK_CACHE", str(tmp_path / "cache"))
    items = calibration_items(1, 0)
    plan = _plan()
    runs = []
    for name in ("a", "b"):
        backend = ScriptedJudge(says("aligned"))
        run = _run(tmp_path / name)
        calibrate_into(run, plan.session(backend, run), items, plan.cfg)
        runs.append((run, backend))
    (first, b1), (second, b2) = runs
    assert b1.calls and not b2.calls  # the second run paid for nothing
    assert second.load(CALIBRATION_FILE, JudgeResult) == [
        r.model_copy(update={"usage": r.usage.model_copy(update={"cached": True})})
        if r.usage
        else r
        for r in first.load(CALIBRATION_FILE, JudgeResult)
    ]
    ledger = second.load(LEDGER_FILE, JudgeCall)
    assert ledger and all(c.cached and c.purpose == "calibration" for c in ledger)
    # --no-judge-cache pays again.
    plan.opts = plan.opts.model_copy(update={"cache": False})
    b3 = ScriptedJudge(says("aligned"))
    calibrate_into(_run(tmp_path / "c"), plan.session(b3, None), items, plan.cfg)
    assert b3.calls
    for run, _ in runs:
        run.release()


@pytest.mark.parametrize(
    ("model", "backend", "url", "kind"),
    [
        ("openai/o3", "auto", None, "chat"),
        ("anthropic/claude-sonnet-4", "auto", None, "chat"),
        ("smollm2-135m", "auto", None, "local"),
        ("Qwen/Qwen2.5-7B-Instruct", "auto", "http://h:1/v1", "chat"),
        ("Qwen/Qwen2.5-7B-Instruct", "auto", None, "local"),
        ("m", "openai", "http://h:1/v1", "openai"),
        ("m", "chat", "http://h:1/v1", "chat"),
    ],
)
def test_judge_kind(model: str, backend: str, url: str | None, kind: str) -> None:
    from faithcheck.judge.plan import judge_kind

    assert judge_kind(JudgeOptions(model=model, backend=backend, base_url=url)) == kind  # type: ignore[arg-type]


def test_a_base_url_with_a_local_backend_is_refused() -> None:
    from faithcheck.errors import UsageError
    from faithcheck.judge.plan import judge_kind

    with pytest.raises(UsageError, match="--judge-base-url"):
        judge_kind(JudgeOptions(model="m", backend="hf", base_url="http://h:1/v1"))


def test_default_judge_budgets_leave_room_for_hidden_reasoning() -> None:
    from faithcheck.judge.choose import judge_options

    def budget(**kw: object) -> int:
        return judge_options(**({"model": "smollm2-135m", "max_tokens": None} | kw)).max_tokens

    assert budget() == 256
    assert budget(model="anthropic/claude-sonnet-4") == 1024
    assert budget(model="openai/o3") == 16384
    assert budget(model="x", base_url="http://h:1/v1", reasoning_effort="low") == 16384
    assert budget(model="openai/o3", max_tokens=4000) == 4000


def test_operational_judge_options_stay_out_of_the_config_hash() -> None:
    from faithcheck.judge.stage import judge_config_dict

    base = JudgeOptions(model="openai/o3")
    other = base.model_copy(
        update={"concurrency": 2, "cache": False, "max_items": 5, "price_in": 1.0}
    )
    assert judge_config_dict(base) == judge_config_dict(other)
    assert judge_config_dict(base) != judge_config_dict(base.model_copy(update={"max_tokens": 99}))


def test_problems_with_undecided_strategy_pairs_are_left_out(tmp_path: Path) -> None:
    from faithcheck.judge.stage import StrategyRecord, strategy_clusters
    from faithcheck.store.rundir import STRATEGY_FILE

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


def test_judge_settings_hash_as_before_the_chat_judge_existed() -> None:
    """A run scored before the chat judge's options existed must still resume: its judge
    settings dict (hashed) has exactly the old keys."""
    from faithcheck.judge.stage import judge_config_dict

    assert set(judge_config_dict(JudgeOptions())) == {
        "enabled", "model", "backend", "base_url", "samples", "max_tokens", "max_retries",
        "calibrate", "calibration_per_domain", "strategy", "prompt_version", "prompt_hash",
    }  # fmt: skip
    assert judge_config_dict(JudgeOptions(reasoning_effort="high"))["reasoning_effort"] == "high"


@pytest.mark.parametrize(
    ("readout", "chat", "resolved"),
    [
        ("auto", False, "probs"),
        ("auto", True, "text"),
        ("text", False, "text"),
        ("text", True, "text"),
        ("probs", False, "probs"),
    ],
)
def test_the_readout_resolves_by_what_the_judge_exposes(
    readout: str, chat: bool, resolved: str
) -> None:
    opts = JudgeOptions(readout=readout, rationale_tokens=8)  # type: ignore[arg-type]
    cfg = judge_config(opts, 0, "chat", served=chat)
    assert cfg.readout == resolved
    assert cfg.rationale_tokens == 8


def test_probs_of_a_chat_api_is_refused() -> None:
    from faithcheck.errors import UsageError

    with pytest.raises(UsageError, match="--judge-readout probs"):
        judge_config(JudgeOptions(readout="probs"), 0, "chat", served=True)


def test_the_readout_enters_the_config_hash_resolved_and_only_for_probs() -> None:
    """Text runs (every run before the probs read-out) keep their config hash; a probs
    run hashes its read-out and rationale budget, however it was asked for."""
    from faithcheck.judge.stage import judge_config_dict, readout_config

    for readout in ("auto", "text", "probs"):
        opts = JudgeOptions(readout=readout, rationale_tokens=4)  # type: ignore[arg-type]
        assert judge_config_dict(opts) == judge_config_dict(JudgeOptions())
    text = judge_config(JudgeOptions(readout="text"), 0, "chat")
    assert readout_config(text) == {}
    probs = judge_config(JudgeOptions(rationale_tokens=4), 0, "chat")
    assert readout_config(probs) == {"readout": "probs", "rationale_tokens": 4}


@pytest.mark.parametrize(
    ("values", "message"),
    [({"readout": "logits"}, "--judge-readout must be"), ({"rationale_tokens": -1}, "at least 0")],
)
def test_bad_readout_options_are_usage_errors(values: dict, message: str) -> None:
    from faithcheck.errors import UsageError
    from faithcheck.judge.choose import judge_options

    with pytest.raises(UsageError, match=message):
        judge_options(**({"model": "smollm2-135m", "max_tokens": None} | values))
