"""`--judge-batch`: the judge's questions through the scripted server's /v1/files and
/v1/batches, in every final state a batch can reach. No test here reaches the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faithcheck.errors import BackendError, UsageError
from faithcheck.judge import JudgeConfig, judge_texts
from faithcheck.judge.batch import BatchJudge, BatchRecord, check_batch_provider
from faithcheck.judge.cache import ResponseCache
from faithcheck.judge.chat import ChatJudge
from faithcheck.judge.client import JudgeCall, JudgeSession
from faithcheck.judge.providers import resolve_target
from tests.chat_server import BatchPlan, FakeChat, error
from tests.judge.conftest import KEY

pytestmark = pytest.mark.usefixtures("openai_key")

ITEMS = [
    ("p1#0", "What is 2 + 3?", "2 + 3 = 5.\nThe answer is \\boxed{5}."),
    ("p2#0", "What is 4 * 2?", "4 * 2 = 8.\nThe answer is \\boxed{8}."),
    ("p3#0", "What is 9 - 1?", "9 - 1 = 8.\nThe answer is \\boxed{8}."),
]
CFG = JudgeConfig(max_tokens=256, max_retries=1, seed=0, prompt_format="chat", batch_size=100)


class Store:
    """judge_batches.jsonl in memory."""

    def __init__(self) -> None:
        self.records: list[BatchRecord] = []
        self.said: list[str] = []


def batch_judge(fake: FakeChat, store: Store, **kw: object) -> BatchJudge:
    chat = ChatJudge(resolve_target("openai/gpt-4.1", fake.url, None), max_retries=0)
    chat.check_model()
    return BatchJudge(
        chat,
        recorded=lambda: list(store.records),
        record=store.records.append,
        poll_s=0.001,
        say=store.said.append,
        **kw,  # type: ignore[arg-type]
    )


def test_a_completed_batch_labels_every_item_in_one_submission(fake: FakeChat) -> None:
    store = Store()
    calls: list[JudgeCall] = []
    session = JudgeSession(batch_judge(fake, store), ledger=calls.extend)
    out = judge_texts(session, ITEMS, CFG)
    assert [r.label_name for r in out] == ["aligned"] * 3
    assert all(r.usage is not None and r.usage.model == "o3-2025-04-16" for r in out)
    assert len(fake.batch_submissions()) == 1 and not fake.chats()
    (rec,) = store.records
    lines = fake.batch_requests(rec.batch_id)
    assert [line["custom_id"] for line in lines] == rec.custom_ids
    for line in lines:
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        assert line["body"]["model"] == "gpt-4.1" and "messages" in line["body"]
    # The same ledger as live calls: one paid line per reply.
    assert [c.item_id for c in calls] == [i[0] for i in ITEMS]
    assert all(not c.cached and c.prompt_tokens == 100 for c in calls)
    assert any("validating" in s for s in store.said) and any("completed" in s for s in store.said)


def test_replies_reach_the_cache_and_a_rerun_submits_nothing(
    fake: FakeChat, tmp_path: Path
) -> None:
    cache = ResponseCache(tmp_path / "judge")
    store = Store()
    judge_texts(JudgeSession(batch_judge(fake, store), cache=cache), ITEMS, CFG)
    again = judge_texts(JudgeSession(batch_judge(fake, Store()), cache=cache), ITEMS, CFG)
    assert all(r.usage is not None and r.usage.cached for r in again)
    assert len(fake.batch_submissions()) == 1


def test_a_run_stopped_while_waiting_resumes_the_same_batch(fake: FakeChat) -> None:
    store = Store()
    fake.hold_batches = True

    class Killed(Exception):
        pass

    def kill_when_waiting(line: str) -> None:
        if "in_progress" in line:
            raise Killed

    first = batch_judge(fake, store)
    first._say = kill_when_waiting  # the process dies while it waits
    with pytest.raises(Killed):
        judge_texts(JudgeSession(first), ITEMS, CFG)
    assert len(store.records) == 1
    fake.hold_batches = False
    second = batch_judge(fake, store)
    out = judge_texts(JudgeSession(second), ITEMS, CFG)
    assert [r.label_name for r in out] == ["aligned"] * 3
    assert len(fake.batch_submissions()) == 1 and second.submitted == 0
    assert any("resuming" in s for s in store.said)


def test_partial_failures_are_sent_again_and_a_refusal_stops_with_its_message(
    fake: FakeChat,
) -> None:
    store = Store()
    fake.batch_script = [BatchPlan(failed_lines={1: error(500, "The server had an error")})]
    out = judge_texts(JudgeSession(batch_judge(fake, store)), ITEMS, CFG)
    assert [r.label_name for r in out] == ["aligned"] * 3
    subs = fake.batch_submissions()
    assert len(subs) == 2  # the failed request, alone, in a second batch
    assert len(fake.batch_requests(store.records[1].batch_id)) == 1
    fake.batch_script = [BatchPlan(failed_lines={0: error(400, "Invalid content", "messages")})]
    calls: list[JudgeCall] = []
    other = [(f"q{i}", q, r) for i, q, r in ITEMS]
    with pytest.raises(BackendError, match=r"1 requests refused .*Invalid content"):
        judge_texts(JudgeSession(batch_judge(fake, store), ledger=calls.extend), other, CFG)
    assert len(calls) == 2  # the two answered requests are kept (ledger, cache)


def test_a_refused_parameter_is_learned_from_the_error_file(fake: FakeChat) -> None:
    store = Store()
    refused = error(400, "Unsupported parameter: 'seed'", "seed")
    fake.batch_script = [BatchPlan(failed_lines=dict.fromkeys(range(3), refused))]
    out = judge_texts(JudgeSession(batch_judge(fake, store)), ITEMS, CFG)
    assert [r.label_name for r in out] == ["aligned"] * 3
    second = fake.batch_requests(store.records[1].batch_id)
    assert all("seed" not in line["body"] for line in second)


def test_an_expired_batch_keeps_what_ran_and_sends_the_rest_again(fake: FakeChat) -> None:
    store = Store()
    fake.batch_script = [BatchPlan(states=["in_progress", "expired"], ran=2)]
    out = judge_texts(JudgeSession(batch_judge(fake, store)), ITEMS, CFG)
    assert [r.label_name for r in out] == ["aligned"] * 3
    assert [len(r.custom_ids) for r in store.records] == [3, 1]


def test_a_failed_batch_is_one_line_and_is_not_waited_on_again(fake: FakeChat) -> None:
    store = Store()
    bad = {"code": "invalid_json_line", "message": "This line is not parseable.", "line": 2}
    fake.batch_script = [BatchPlan(states=["validating", "failed"], errors=[bad])]
    with pytest.raises(BackendError, match="failed: line 2: This line is not parseable"):
        judge_texts(JudgeSession(batch_judge(fake, store)), ITEMS, CFG)
    out = judge_texts(JudgeSession(batch_judge(fake, store)), ITEMS, CFG)
    assert [r.label_name for r in out] == ["aligned"] * 3
    assert len(fake.batch_submissions()) == 2


def test_passing_failures_that_outlast_the_rounds_end_in_one_line(fake: FakeChat) -> None:
    store = Store()
    fake.batch_script = [
        BatchPlan(failed_lines={0: error(429, "Rate limit reached")}) for _ in range(2)
    ]
    with pytest.raises(BackendError, match="1 requests still unanswered after 2 batches"):
        judge_texts(JudgeSession(batch_judge(fake, store, rounds=2)), ITEMS[:1], CFG)


def test_only_openai_judges_batch() -> None:
    check_batch_provider("openai", "openai/o3")
    for provider in ("anthropic", "google", None):
        with pytest.raises(UsageError, match="--judge-batch speaks OpenAI's batch API"):
            check_batch_provider(provider, "x/y")


# -- `score --judge-batch` end to end ------------------------------------------------------

ROLLOUTS = [
    {"id": "a", "question": "What is 3 + 4?", "answer": "7", "response": "So \\boxed{8}."},
    {"id": "b", "question": "What is 10 / 2?", "answer": "5", "response": "10 / 2 = 5\n\\boxed{5}"},
]


def _score_cmd(tmp_path: Path, out: Path) -> list[str]:
    rollouts = tmp_path / "rollouts.jsonl"
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in ROLLOUTS))
    return [
        sys.executable, "-m", "faithcheck", "score", "--from-samples", str(rollouts),
        "--backend", "hf", "--dtype", "float32", "--probes", "none", "--no-diversity",
        "--judge-model", "openai/o3", "--judge-batch", "--calibration-size", "1",
        "--out", str(out), "--json",
    ]  # fmt: skip


@pytest.mark.slow
def test_score_killed_while_waiting_resumes_its_batch_without_a_second_submission(
    fake: FakeChat, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    env = os.environ | {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": fake.url,
        "FAITHCHECK_JUDGE_CACHE": str(tmp_path / "cache"),
        "FAITHCHECK_JUDGE_BATCH_POLL": "0.05",
    }
    fake.hold_batches = True
    proc = subprocess.Popen(
        _score_cmd(tmp_path, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        polls = [s for s in fake.seen if s.method == "GET" and s.path.startswith("/v1/batches/")]
        if len(polls) >= 3:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    proc.kill()  # SIGKILL while it waits on the batch
    proc.wait(timeout=60)
    assert len(fake.batch_submissions()) == 1
    first = json.loads((out / "judge_batches.jsonl").read_text().splitlines()[0])["batch_id"]

    fake.hold_batches = False
    done = subprocess.run(
        _score_cmd(tmp_path, out), env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr[-2000:]  # 2 problems: inconclusive
    assert f"judge batch {first}: resuming" in done.stderr
    # No request was paid for twice: the rubric batch was resumed, calibration got its own.
    sent = [line["custom_id"] for b in fake.batches for line in fake.batch_requests(b)]
    assert len(sent) == len(set(sent))
    rubric = [b for b in fake.batches if len(fake.batch_requests(b)) == len(ROLLOUTS)]
    assert rubric == [first]
    report = json.loads(done.stdout)
    assert report["judge"]["summary"]["error_rate"]["value"] == 0
    assert report["judge"]["usage"]["by_purpose"]["rubric"]["calls"] == len(ROLLOUTS)
    assert len((out / "judge.jsonl").read_text().splitlines()) == len(ROLLOUTS)
