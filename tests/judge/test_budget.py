"""`--judge-max-cost`: refused up front when the known questions can cost more, a clean
and resumable stop before a call that could cross it, and the unjudged count reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faithcheck.backends.base import ChatPrompt
from faithcheck.errors import UsageError
from faithcheck.judge import JudgeRecord
from faithcheck.judge.budget import Budget, BudgetReached, check_prices, prompt_tokens
from faithcheck.judge.client import LEDGER_FILE, JudgeAsk, JudgeCall
from faithcheck.judge.jury import split_judge_spec
from faithcheck.judge.jury_stage import juror_prices, jury_judge_report
from faithcheck.judge.plan import JudgePlan, judge_all, open_chat_judge, plan_judge
from faithcheck.judge.run import rubric_asks
from faithcheck.judge.stage import JudgeOptions, judge_config, judge_usage
from faithcheck.judge.usage import BATCH_PRICE_FACTOR, summarize_usage
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


@pytest.fixture
def run(tmp_path: Path) -> Iterator[RunDir]:
    """A run directory, held open, with two samples of each of `PROBLEMS`."""
    run = RunDir(tmp_path / "run")
    run.open()
    run.append_samples([_sample(p, i) for p in ("p1", "p2") for i in range(2)])
    yield run
    run.release()


def _bill_long_prompts(fake: FakeChat) -> None:
    """The server bills far more prompt tokens than estimated, as a long rubric would."""
    fake.answer = lambda path, body: (  # type: ignore[method-assign]
        Reply(body=chat_reply(f"ok\nVERDICT {nonce_of(body)}: aligned", prompt_tokens=3000))
        if path == "/v1/chat/completions"
        else FakeChat.answer(fake, path, body)
    )


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


def test_a_cap_refuses_up_front_and_stops_cleanly_then_resumes(fake: FakeChat, run: RunDir) -> None:
    _bill_long_prompts(fake)
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


# -- the batch price ------------------------------------------------------------------------


def test_a_batched_call_costs_half_the_list_price_everywhere() -> None:
    assert BATCH_PRICE_FACTOR == 0.5  # OpenAI's published Batch API discount
    ask = _ask("x" * 300, max_tokens=100)  # 108 prompt + 100 completion tokens at most
    live = Budget(max_cost=1.0, price_in=1000.0, price_out=1000.0)
    batched = Budget(max_cost=1.0, price_in=1000.0, price_out=1000.0, batch=True)
    assert batched.worst([ask]) == pytest.approx(live.worst([ask]) / 2)
    batched.charge(500, 100, batch=True)
    assert batched.spent == pytest.approx(0.3)
    paid = JudgeCall(
        purpose="rubric", item_id="a#0", attempt=0, cached=False, finish_reason="stop",
        prompt_tokens=1000, completion_tokens=500,
    )  # fmt: skip
    both = [paid, paid.model_copy(update={"batch": True})]
    assert Budget.from_ledger(5.0, 2.0, 8.0, both).spent == pytest.approx(0.006 * 1.5)
    usage = summarize_usage(both, price_in=2.0, price_out=8.0)
    assert usage.cost_usd == pytest.approx(0.006 * 1.5)


def test_a_batch_run_is_charged_the_batch_price(fake: FakeChat, run: RunDir) -> None:
    opts = JudgeOptions(
        model="openai/gpt-4.1", base_url=fake.url, max_tokens=100, readout="text",
        strategy=False, calibrate=False, batch=True, max_cost=1.0, price_in=10.0, price_out=10.0,
    )  # fmt: skip
    plan = plan_judge(opts, 0, None, "hf", print)  # type: ignore[arg-type]
    assert plan is not None and plan.client is not None
    judge_all(run, plan.client, plan, PROBLEMS, None)
    calls = run.load(LEDGER_FILE, JudgeCall)
    assert len(calls) == 4 and all(c.batch for c in calls) and len(fake.batch_submissions()) == 1
    tokens = sum(c.prompt_tokens + c.completion_tokens for c in calls)
    usage = judge_usage(run, plan.opts, None)
    assert usage.cost_usd == pytest.approx(tokens * 10.0 / 1e6 / 2)


# -- one cap for the whole jury -------------------------------------------------------------


def _jury(fake: FakeChat, cap: float) -> list[JudgePlan]:
    plans = []
    for model in ("openai/o3", "openai/gpt-4.1"):
        opts = JudgeOptions(
            model=model, base_url=fake.url, max_tokens=100, concurrency=1, readout="text",
            strategy=False, calibrate=False, max_cost=cap, price_in=10.0, price_out=10.0,
        )  # fmt: skip
        plan = plan_judge(opts, 0, None, "hf", print)  # type: ignore[arg-type]
        assert plan is not None
        plan.name = model
        plans.append(plan)
    for plan in plans:
        plan.jury = plans
    return plans


def _judge_with(run: RunDir, plans: list[JudgePlan], said: list[str]) -> None:
    for plan in plans:
        judge_all(run, plan.client, plan, PROBLEMS, None, say=said.append)


def test_the_cap_refuses_a_jury_whose_judges_together_can_cost_more(
    fake: FakeChat, run: RunDir
) -> None:
    plans = _jury(fake, 1.0)
    asks = rubric_asks(
        [(f"{p}#{i}", "q", "r") for p in ("p1", "p2") for i in range(2)], plans[0].cfg
    )
    one = Budget(1.0, 10.0, 10.0).worst(asks)  # about what one judge's 4 requests can cost
    plans = _jury(fake, one * 1.5)
    with pytest.raises(
        UsageError, match=r"caps the whole jury.*openai/o3: 4 requests.*openai/gpt-4\.1: 4"
    ):
        _judge_with(run, plans, [])
    assert not fake.chats()  # refused before either judge paid for anything
    # Each judge alone fits: the cap holds over the whole jury, not judge by judge.
    alone = _jury(fake, one * 1.5)[0]
    alone.jury = []
    judge_all(run, alone.client, alone, PROBLEMS, None)
    assert len(fake.chats()) == 4


def test_a_jury_spends_from_one_cap_and_says_what_each_judge_left(
    fake: FakeChat, run: RunDir
) -> None:
    _bill_long_prompts(fake)
    said: list[str] = []
    plans = _jury(fake, 0.1)  # both fit the estimate; the server bills 3000 prompt tokens
    _judge_with(run, plans, said)
    calls = run.load(LEDGER_FILE, JudgeCall)
    assert {c.judge for c in calls} == {"openai/o3", "openai/gpt-4.1"}  # each call tagged
    spent = sum(c.prompt_tokens + c.completion_tokens for c in calls) * 10.0 / 1e6
    # The cap holds over the whole jury, up to the estimate's error on each judge's first
    # call (one request here, at most 3100 tokens): per judge, it would allow $0.2.
    assert spent <= 0.1 + 3100 * 10.0 / 1e6
    report = jury_judge_report(run, plans, [None, None], None, 0)
    assert report.jury is not None and report.usage is not None
    left = {j.name: j.usage.unjudged for j in report.jury.judges if j.usage is not None}
    judged = {
        name: sum(r.judge == name for r in run.load(JUDGE_FILE, JudgeRecord)) for name in left
    }
    assert left == {name: 4 - n for name, n in judged.items()} and left["openai/gpt-4.1"] > 0
    assert report.usage.unjudged == sum(left.values())
    assert report.usage.cost_usd == pytest.approx(spent)
    assert any("openai/gpt-4.1: " in w and "left unjudged" in w for w in report.warnings)
    assert sum("--judge-max-cost $0.1 reached" in line for line in said) >= 1


@pytest.mark.parametrize(
    ("model", "own", "prices"),
    [
        ("smollm2-135m", {}, (0.0, 0.0)),
        ("openai/o3", {}, (2.0, 8.0)),
        ("smollm2-135m", {"price_in": 2.0}, (2.0, 8.0)),
    ],
    ids=["in-process", "hosted", "in-process-with-its-own-price"],
)
def test_a_judge_run_in_process_is_free_in_a_jury(
    model: str, own: dict[str, float], prices: tuple[float, float]
) -> None:
    shared = {"price_in": 2.0, "price_out": 8.0, "max_cost": 1.0}
    juror = juror_prices(JudgeOptions(model=model, **shared), own)
    assert (juror.price_in, juror.price_out) == prices


def test_a_juror_spec_carries_its_own_prices() -> None:
    assert split_judge_spec("anthropic/claude-sonnet-4-5,price_in=3,price-out=15")[1] == {
        "price_in": 3.0,
        "price_out": 15.0,
    }
