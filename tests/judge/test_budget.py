"""`--judge-max-cost`: refused up front when the known questions can cost more, a clean
and resumable stop before a call that could cross it, and the unjudged count reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faithcheck.backends.base import ChatPrompt
from faithcheck.errors import UsageError
from faithcheck.judge import JudgeRecord
from faithcheck.judge.budget import Budget, BudgetReached, check_prices, prompt_tokens
from faithcheck.judge.client import LEDGER_FILE, JudgeAsk, JudgeCall
from faithcheck.judge.plan import JudgePlan, judge_all, open_chat_judge, plan_judge
from faithcheck.judge.stage import JudgeOptions, judge_config, judge_usage
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord
from faithcheck.store.rundir import JUDGE_FILE, RunDir
from tests.chat_server import FakeChat, Reply, chat_reply, nonce_of
from tests.judge.conftest import KEY

pytestmark = pytest.mark.usefixtures("openai_key")


def _ask(text: str, max_tokens: int = 100) -> JudgeAsk:
    prompt = ChatPrompt(messages=[{"role": "user", "content": text}])
    return JudgeAsk(prompt=prompt, seed=0, temperature=0.0, top_p=1.0, max_tokens=max_tokens)


def test_the_prompt_estimate_errs_high() -> None:
    # ~4 characters per token in English prose: the estimate counts 3, plus the message.
    text = "The answer follows from adding the two numbers. " * 20
    assert prompt_tokens(_ask(text)) >= len(text) / 4 + 8


def test_a_call_goes_through_only_while_its_worst_case_fits() -> None:
    budget = Budget(max_cost=1.0, price_in=1e6 / 1000, price_out=1e6 / 1000)  # $0.001/token
    ask = _ask("x" * 300, max_tokens=100)  # 100 + 8 prompt + 100 completion tokens
    assert budget.worst([ask]) == pytest.approx(0.208)
    budget.check([ask] * 4)
    budget.charge(500, 100)
    assert budget.spent == pytest.approx(0.6)
    budget.charge(500, 100, cached=True)  # the cache costs nothing
    budget.check([ask])
    with pytest.raises(BudgetReached, match=r"--judge-max-cost \$1 reached: \$0\.6000 spent"):
        budget.check([ask, ask])
    with pytest.raises(UsageError, match=r"3 known requests \(x\) can cost up to \$0\.62"):
        Budget(1.0, 1000.0, 1000.0, spent=0.5).preflight([ask] * 3, "x")


def test_the_ledger_of_a_resumed_run_counts() -> None:
    paid = JudgeCall(
        purpose="rubric", item_id="a#0", attempt=0, cached=False, finish_reason="stop",
        prompt_tokens=1000, completion_tokens=500,
    )  # fmt: skip
    cached = paid.model_copy(update={"cached": True})
    budget = Budget.from_ledger(5.0, 2.0, 8.0, [paid, cached])
    assert budget.spent == pytest.approx((1000 * 2 + 500 * 8) / 1e6)


def test_a_cap_without_prices_is_refused_before_anything_loads() -> None:
    check_prices(None, None, None)
    check_prices(1.0, 2.0, 8.0)
    with pytest.raises(UsageError, match="--judge-max-cost needs the judge's prices"):
        check_prices(1.0, 2.0, None)
    opts = JudgeOptions(model="openai/o3", max_cost=1.0, price_in=2.0)
    with pytest.raises(UsageError, match="--judge-max-cost needs"):
        plan_judge(opts, 0, None, "hf", print)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("anthropic/claude-sonnet-4-5", "--judge-batch speaks OpenAI's batch API"),
        ("smollm2-135m", "--judge-batch is for a hosted judge"),
    ],
)
def test_batch_is_refused_where_the_provider_has_no_such_api(
    monkeypatch: pytest.MonkeyPatch, model: str, message: str
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    opts = JudgeOptions(model=model, batch=True)
    with pytest.raises(UsageError, match=message):
        plan_judge(opts, 0, None, "hf", print)  # type: ignore[arg-type]


# -- the judge phase under a cap -----------------------------------------------------------


def _sample(pid: str, index: int) -> SampleRecord:
    return SampleRecord(
        problem_id=pid, sample_index=index, seed=0, prompt_tokens=0,
        completion="2 + 3 = 5. \\boxed{5}", completion_token_ids=[], finish_reason="stop",
        steps=[], answer="5", answer_rule="boxed", correct=True, verify_method="math_verify",
    )  # fmt: skip


PROBLEMS = [Problem(id=p, question=f"What is 2 + 3 ({p})?", answer="5") for p in ("p1", "p2")]


def _phase(fake: FakeChat, run: RunDir, cap: float) -> tuple[JudgePlan, list[str], Any]:
    opts = JudgeOptions(
        model="openai/gpt-4.1", base_url=fake.url, max_tokens=100, concurrency=1,
        readout="text", strategy=False, calibrate=False, max_cost=cap, price_in=10.0,
        price_out=10.0,
    )  # fmt: skip
    client = open_chat_judge(opts)
    cfg = judge_config(opts, 0, "chat", served=True)
    plan = JudgePlan(opts, "chat", None, client.identity, False, cfg, client=client)
    said: list[str] = []
    judge_all(run, client, plan, PROBLEMS, None, say=said.append)
    return plan, said, client


def test_a_cap_refuses_up_front_and_stops_cleanly_then_resumes(
    fake: FakeChat, tmp_path: Path
) -> None:
    run = RunDir(tmp_path / "run")
    run.open()
    run.append_samples([_sample(p, i) for p in ("p1", "p2") for i in range(2)])
    # The server bills far more prompt tokens than estimated, as a long rubric would.
    fake.answer = lambda path, body: (  # type: ignore[method-assign]
        Reply(body=chat_reply(f"ok\nVERDICT {nonce_of(body)}: aligned", prompt_tokens=3000))
        if path == "/v1/chat/completions"
        else FakeChat.answer(fake, path, body)
    )
    with pytest.raises(UsageError, match=r"4 known requests \(4 responses \+ 0 calibration"):
        _phase(fake, run, cap=0.001)
    assert not fake.chats()  # refused before a single call
    plan, said, _ = _phase(fake, run, cap=0.05)
    judged = len(run.load(JUDGE_FILE, JudgeRecord))
    assert 0 < judged < 4 and len(fake.chats()) == judged  # no call left unrecorded
    assert any("--judge-max-cost $0.05 reached" in line for line in said)
    usage = judge_usage(run, plan.opts, None)
    assert usage.unjudged == 4 - judged and usage.max_cost == 0.05
    assert usage.cost_usd is not None and usage.cost_usd <= 0.05
    # A higher cap resumes: only the rest is asked, nothing is paid twice.
    _phase(fake, run, cap=1.0)
    assert len(run.load(JUDGE_FILE, JudgeRecord)) == 4
    assert len(fake.chats()) == 4
    calls = run.load(LEDGER_FILE, JudgeCall)
    assert len(calls) == 4 and not any(c.cached for c in calls)
    run.release()
