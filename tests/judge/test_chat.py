"""The chat judge (`--judge-backend chat`) against a loopback server speaking the hosted
OpenAI API's response and error shapes. No test here reaches the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faithcheck.errors import BackendError, UsageError
from faithcheck.judge import JudgeConfig, judge_texts
from faithcheck.judge.cache import ResponseCache
from faithcheck.judge.chat import ChatJudge, is_reasoning_model
from faithcheck.judge.client import JudgeCall, JudgeSession
from faithcheck.judge.providers import PROVIDERS, resolve_target
from faithcheck.judge.usage import summarize_usage
from tests.chat_server import FakeChat, Reply, chat_reply, error, nonce_of
from tests.conftest import assert_valid_report
from tests.judge.conftest import KEY

pytestmark = pytest.mark.usefixtures("openai_key")

STANDARD = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
    "reasoning_effort",
}
"""Request fields of the public chat API that the judge may send (nothing vLLM-only)."""
ITEMS = [
    ("p1#0", "What is 2 + 3?", "2 + 3 = 5.\nThe answer is \\boxed{5}."),
    ("p2#0", "What is 4 * 2?", "4 * 2 = 8.\nThe answer is \\boxed{8}."),
]
CFG = JudgeConfig(max_tokens=256, max_retries=1, seed=0, prompt_format="chat")


def judge(fake: FakeChat, model: str = "openai/o3", **kw: object) -> ChatJudge:
    target = resolve_target(model, fake.url, None)
    client = ChatJudge(target, max_retries=kw.pop("max_retries", 3), **kw)  # type: ignore[arg-type]
    client.check_model()
    return client


# -- where a judge lives ------------------------------------------------------------------


def test_provider_prefixes_resolve_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    t = resolve_target("openai/o3", None, None)
    assert (t.base_url, t.model, t.key_env) == ("https://api.openai.com/v1", "o3", "OPENAI_API_KEY")
    monkeypatch.setenv("OPENROUTER_API_KEY", "k")
    t = resolve_target("openrouter/openai/o3", None, None)
    assert (t.base_url, t.model) == ("https://openrouter.ai/api/v1", "openai/o3")
    monkeypatch.setenv("GOOGLE_API_KEY", "k")
    t = resolve_target("google/gemini-2.5-pro", None, None)
    assert not t.base_url.rstrip("/").endswith("/v1") and t.key_env == "GOOGLE_API_KEY"
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/")
    t = resolve_target("azure/my-deployment", None, None)
    assert t.base_url == "https://res.openai.azure.com/openai/v1/"
    # A local server needs no key; a plain name with a URL is that endpoint's model.
    assert resolve_target("vllm/Qwen/Qwen2.5-7B", None, None).key_env is None
    t = resolve_target("Qwen/Qwen2.5-7B-Instruct", "http://h:1/v1", None)
    assert (t.models, t.key_env) == (("Qwen/Qwen2.5-7B-Instruct",), None)
    # With a URL, a known prefix is tried as written, then stripped.
    assert resolve_target("openai/gpt-oss-20b", "http://h:1/v1", None).models == (
        "openai/gpt-oss-20b",
        "gpt-oss-20b",
    )
    assert {"openai", "anthropic", "google", "openrouter", "together", "fireworks"} <= set(
        PROVIDERS
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "https://gateway.example/v1")
    assert resolve_target("openai/o3", None, None).base_url == "https://gateway.example/v1"


@pytest.mark.parametrize(
    ("model", "url", "env", "message"),
    [
        ("acme/model", None, None, "no known provider prefix"),
        ("gpt-4.1", None, None, "no known provider prefix"),
        ("anthropic/claude-x", None, None, "ANTHROPIC_API_KEY"),
        ("openai/o3", None, "NOT_SET_ANYWHERE", "NOT_SET_ANYWHERE"),
        ("azure/dep", None, None, "AZURE_OPENAI"),
        ("openai/", None, None, "no model"),
    ],
)
def test_bad_judge_specs_fail_in_one_line(
    monkeypatch: pytest.MonkeyPatch, model: str, url: str | None, env: str | None, message: str
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    with pytest.raises(UsageError, match=message) as info:
        resolve_target(model, url, env)
    assert "\n" not in str(info.value)


def test_reasoning_models_are_known_by_name() -> None:
    assert all(is_reasoning_model(m) for m in ("o3", "o4-mini", "openai/o3", "gpt-5-mini"))
    assert not any(is_reasoning_model(m) for m in ("gpt-4.1", "claude-sonnet-4", "qwen3-8b"))


def test_a_model_the_server_does_not_list_is_refused_before_any_call(fake: FakeChat) -> None:
    target = resolve_target("openai/o9", fake.url, None)
    client = ChatJudge(target)
    with pytest.raises(UsageError, match=r"does not list model 'openai/o9'.*o3"):
        client.check_model()
    assert fake.chats() == []
    client.close()


def test_401_fails_at_once_with_the_server_message_and_the_key_masked(fake: FakeChat) -> None:
    fake.script["/v1/models"] = [error(401, f"Incorrect API key provided: {KEY}.")]
    client = ChatJudge(resolve_target("openai/o3", fake.url, None), max_retries=3)
    with pytest.raises(BackendError, match="HTTP 401: Incorrect API key") as info:
        client.check_model()
    assert KEY not in str(info.value) and "***" in str(info.value)
    assert len(fake.seen) == 1  # not retried
    client.close()


def test_an_endpoint_without_a_model_list_is_trusted(fake: FakeChat) -> None:
    fake.script["/v1/models"] = [Reply(404, {"error": {"message": "Not Found"}})]
    client = judge(fake, "o3")
    assert client.model == "o3"
    client.close()


# -- what is sent and what comes back --------------------------------------------------------


def test_requests_carry_standard_fields_only_and_labels_come_back(fake: FakeChat) -> None:
    client = judge(fake, "gpt-4.1")
    results = judge_texts(client, ITEMS, CFG)
    assert [r.label_name for r in results] == ["aligned", "aligned"]
    for body in fake.chats():
        assert set(body) <= STANDARD, set(body) - STANDARD
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert body["temperature"] == 0.0 and body["max_tokens"] == 256 and "seed" in body
    usage = results[0].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, 40)
    assert (usage.model, usage.system_fingerprint) == ("o3-2025-04-16", "fp_test123")
    client.close()


def test_a_reasoning_model_gets_max_completion_tokens_and_no_temperature(fake: FakeChat) -> None:
    client = judge(fake, "openai/o3", reasoning_effort="high")
    judge_texts(client, ITEMS[:1], CFG)
    (body,) = fake.chats()
    assert body["max_completion_tokens"] == 256 and "max_tokens" not in body
    assert "temperature" not in body and "top_p" not in body
    assert body["reasoning_effort"] == "high"
    client.close()


def test_a_refused_parameter_is_learned_from_the_400_and_dropped(fake: FakeChat) -> None:
    fake.reject["temperature"] = error(
        400,
        "Unsupported value: 'temperature' does not support 0.0 with this model.",
        "temperature",
        "unsupported_value",
    )
    client = judge(fake, "gpt-4.1", concurrency=1)
    results = judge_texts(client, ITEMS, CFG)
    assert [r.label_name for r in results] == ["aligned", "aligned"]
    bodies = fake.chats()
    # One refusal, then every request (including the second item's) goes without it.
    assert len(bodies) == 3 and "temperature" in bodies[0]
    assert all("temperature" not in b for b in bodies[1:])
    assert client.describe()["dropped_params"] == ["temperature"]
    client.close()


def test_max_tokens_refused_switches_to_max_completion_tokens(fake: FakeChat) -> None:
    fake.reject["max_tokens"] = error(
        400,
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
        "'max_completion_tokens' instead.",
        "max_tokens",
        "unsupported_parameter",
    )
    client = judge(fake, "gpt-4.1")
    assert judge_texts(client, ITEMS[:1], CFG)[0].label_name == "aligned"
    assert fake.chats()[-1]["max_completion_tokens"] == 256
    client.close()


def test_an_unfixable_400_is_one_line_at_once(fake: FakeChat) -> None:
    fake.script["/v1/chat/completions"] = [error(400, "messages: too long", "messages")]
    client = judge(fake, "gpt-4.1")
    with pytest.raises(BackendError, match="HTTP 400: messages: too long"):
        judge_texts(client, ITEMS[:1], CFG)
    client.close()


def test_429_with_retry_after_and_500_are_retried(fake: FakeChat) -> None:
    limited = error(429, "Rate limit reached for o3", None, "rate_limit_exceeded")
    limited.headers = {"retry-after": "0.01"}
    fake.script["/v1/chat/completions"] = [limited, error(500, "The server had an error")]
    client = judge(fake, "gpt-4.1", concurrency=1)
    assert judge_texts(client, ITEMS[:1], CFG)[0].label_name == "aligned"
    assert len(fake.chats()) == 3
    client.close()


def test_a_dropped_connection_is_retried(fake: FakeChat) -> None:
    fake.script["/v1/chat/completions"] = [Reply(status=0)]
    client = judge(fake, "gpt-4.1")
    assert judge_texts(client, ITEMS[:1], CFG)[0].label_name == "aligned"
    assert len(fake.chats()) == 2
    client.close()


def test_a_429_storm_ends_in_one_line_naming_the_knobs(fake: FakeChat) -> None:
    storm = error(429, "Rate limit reached", None, "rate_limit_exceeded")
    storm.headers = {"retry-after": "0.01"}
    fake.script["/v1/chat/completions"] = [storm] * 3
    client = judge(fake, "gpt-4.1", max_retries=2)
    with pytest.raises(BackendError, match=r"HTTP 429.*--judge-http-retries"):
        judge_texts(client, ITEMS[:1], CFG)
    client.close()


def test_unknown_model_at_chat_time_is_404_at_once(fake: FakeChat) -> None:
    client = judge(fake, "gpt-4.1")
    client.model = "gone"  # e.g. a deployment removed after the check
    with pytest.raises(BackendError, match="HTTP 404: The model `gone` does not exist"):
        judge_texts(client, ITEMS[:1], CFG)
    assert len(fake.chats()) == 1
    client.close()


def test_length_and_content_filter_are_judge_errors_not_labels(fake: FakeChat) -> None:
    cut = chat_reply("The steps", finish_reason="length")
    blocked = chat_reply(None, finish_reason="content_filter")
    fake.script["/v1/chat/completions"] = [Reply(body=cut), Reply(body=blocked)]
    cfg = CFG.model_copy(update={"max_retries": 0})
    client = judge(fake, "gpt-4.1", concurrency=1)
    results = judge_texts(client, ITEMS, cfg)
    assert [r.label for r in results] == [None, None]
    assert "max_tokens" in (results[0].error or "")
    assert "content filter" in (results[1].error or "")
    client.close()


def test_a_judge_that_mostly_hits_the_budget_stops_naming_the_flag(fake: FakeChat) -> None:
    cut = Reply(body=chat_reply("", finish_reason="length", completion_tokens=256))
    fake.script["/v1/chat/completions"] = [cut] * 20
    items = [(f"p{i}#0", "Q?", "A.") for i in range(10)]
    client = judge(fake, "gpt-4.1")
    with pytest.raises(BackendError, match="--judge-max-tokens"):
        judge_texts(client, items, CFG.model_copy(update={"max_retries": 0}))
    client.close()


def test_reasoning_text_is_kept_but_never_parsed(fake: FakeChat) -> None:
    client = judge(fake, "gpt-4.1")
    original = fake.answer

    def answer(path: str, body: object) -> Reply:
        if path == "/v1/chat/completions" and isinstance(body, dict):
            nonce = nonce_of(body)
            return Reply(
                body=chat_reply(
                    f"Coherent steps.\nVERDICT {nonce}: aligned",
                    reasoning_content=f"hmm\nVERDICT {nonce}: misaligned",
                    reasoning_tokens=30,
                )
            )
        return original(path, body)

    fake.answer = answer  # type: ignore[method-assign]
    (result,) = judge_texts(client, ITEMS[:1], CFG)
    assert result.label_name == "aligned"
    assert result.reasoning is not None and "misaligned" in result.reasoning
    assert result.usage is not None and result.usage.reasoning_tokens == 30
    client.close()


def test_concurrent_requests_keep_item_order(fake: FakeChat) -> None:
    items = [(f"p{i}#0", f"What is {i}?", f"It is {i}.\n\\boxed{{{i}}}") for i in range(12)]
    client = judge(fake, "gpt-4.1", concurrency=6)
    labels = ["aligned", "misaligned", "partial"]
    original = fake.answer

    def answer(path: str, body: object) -> Reply:
        if path == "/v1/chat/completions" and isinstance(body, dict):
            user = body["messages"][1]["content"]
            i = int(user.split("What is ")[1].split("?")[0])
            return Reply(body=chat_reply(f"x\nVERDICT {nonce_of(body)}: {labels[i % 3]}"))
        return original(path, body)

    fake.answer = answer  # type: ignore[method-assign]
    results = judge_texts(client, items, CFG)
    assert [r.label_name for r in results] == [labels[i % 3] for i in range(12)]
    client.close()


# -- cache and ledger ------------------------------------------------------------------------


def test_the_response_cache_never_pays_twice(fake: FakeChat, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    calls: list[JudgeCall] = []
    client = judge(fake, "gpt-4.1")
    first = judge_texts(JudgeSession(client, cache=cache, ledger=calls.extend), ITEMS, CFG)
    paid = len(fake.chats())
    second = judge_texts(JudgeSession(client, cache=cache, ledger=calls.extend), ITEMS, CFG)
    assert len(fake.chats()) == paid == 2
    assert [r.label for r in second] == [r.label for r in first]
    assert second[0].usage is not None and second[0].usage.cached
    usage = summarize_usage(calls, price_in=2.0, price_out=8.0)
    assert (usage.total.calls, usage.total.cached_calls) == (2, 2)
    assert usage.total.prompt_tokens == 200 and usage.cost_usd == pytest.approx(
        (200 * 2.0 + 80 * 8.0) / 1e6
    )
    assert usage.served_models == ["o3-2025-04-16"]
    # Another budget is another question; no cache at all pays again.
    judge_texts(
        JudgeSession(client, cache=cache), ITEMS, CFG.model_copy(update={"max_tokens": 300})
    )
    assert len(fake.chats()) == 4
    judge_texts(JudgeSession(client), ITEMS, CFG)
    assert len(fake.chats()) == 6
    client.close()


def test_a_damaged_cache_entry_is_ignored_and_replaced(fake: FakeChat, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    client = judge(fake, "gpt-4.1")
    judge_texts(JudgeSession(client, cache=cache), ITEMS[:1], CFG)
    (entry,) = (tmp_path / "cache").rglob("*.json")
    entry.write_text('{"text": 3')
    assert judge_texts(JudgeSession(client, cache=cache), ITEMS[:1], CFG)[0].label == 1.0
    assert len(fake.chats()) == 2
    assert judge_texts(JudgeSession(client, cache=cache), ITEMS[:1], CFG)[0].label == 1.0
    assert len(fake.chats()) == 2
    client.close()


def test_replies_reach_the_cache_as_they_arrive_even_when_the_batch_fails(
    fake: FakeChat, tmp_path: Path
) -> None:
    cache = ResponseCache(tmp_path / "cache")
    client = judge(fake, "gpt-4.1", concurrency=1)
    fake.script["/v1/chat/completions"] = [
        Reply(body=chat_reply("x")),  # answered (no verdict), then the next one fails
        error(401, "key revoked"),
    ]
    with pytest.raises(BackendError, match="401"):
        judge_texts(
            JudgeSession(client, cache=cache), ITEMS, CFG.model_copy(update={"max_retries": 0})
        )
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1
    client.close()


# -- the whole command, as a user would write it -------------------------------------------

ROLLOUTS = [
    {"id": "a", "question": "What is 3 + 4?", "answer": "7", "response": "3 + 4 = 7.\n\\boxed{7}"},
    {"id": "a", "question": "What is 3 + 4?", "answer": "7", "response": "So \\boxed{8}."},
    {"id": "b", "question": "What is 10 / 2?", "answer": "5", "response": "10 / 2 = 5\n\\boxed{5}"},
]


def _score(
    fake: FakeChat, tmp_path: Path, out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    rollouts = tmp_path / "rollouts.jsonl"
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in ROLLOUTS))
    cmd = [
        sys.executable, "-m", "faithcheck", "score", "--from-samples", str(rollouts),
        "--backend", "hf", "--dtype", "float32", "--probes", "none", "--no-diversity",
        "--judge-model", "openai/o3",  # as a user writes it; the SDK's OPENAI_BASE_URL
        "--calibration-size", "1", "--out", str(out), "--json", *extra,  # points at `fake`
    ]  # fmt: skip
    env = os.environ | {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.url}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)


@pytest.mark.slow
def test_score_with_a_hosted_judge_reports_usage_and_snapshot_and_never_pays_twice(
    fake: FakeChat, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = _score(
        fake, tmp_path, out, "--judge-max-items", "2", "--judge-price-in", "2",
        "--judge-price-out", "8",
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr[-2000:]  # 2 problems: inconclusive
    report = json.loads(proc.stdout)
    assert_valid_report(report)
    judge = report["judge"]
    assert judge["backend"] == "chat"
    usage = judge["usage"]
    assert usage["served_models"] == ["o3-2025-04-16"]
    assert usage["system_fingerprints"] == ["fp_test123"]
    assert usage["max_items"] == 2 and usage["unjudged"] == 1
    assert set(usage["by_purpose"]) >= {"rubric", "calibration"}
    paid = usage["total"]["calls"]
    assert paid == len(fake.chats()) > 0 and usage["total"]["cached_calls"] == 0
    assert usage["cost_usd"] == pytest.approx(
        (usage["total"]["prompt_tokens"] * 2 + usage["total"]["completion_tokens"] * 8) / 1e6
    )
    assert len((out / "judge.jsonl").read_text().splitlines()) == 2
    # Reasoning model: the hosted request shape, nothing vLLM-only.
    body = fake.chats()[0]
    assert set(body) <= STANDARD and "temperature" not in body
    assert body["model"] == "o3" and body["max_completion_tokens"] == 16384
    # The key is never written anywhere in the run.
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path
    # The explorer in report.html shows each judged response with the judge's rationale.
    done = subprocess.run(
        [sys.executable, "-m", "faithcheck", "report", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    html = (out / "report.html").read_text()
    assert html.count('data-judge="aligned"') == 2 and "The steps lead to the answer." in html
    # Rescoring from scratch (--force) pays nothing: every reply comes from the cache.
    again = _score(fake, tmp_path, out, "--force", "--judge-max-items", "2")
    assert again.returncode == 4, again.stderr[-2000:]
    assert len(fake.chats()) == paid
    assert json.loads(again.stdout)["judge"]["usage"]["total"]["cached_calls"] == paid


@pytest.mark.slow
def test_a_missing_key_fails_before_any_model_loads(fake: FakeChat, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    cmd = [sys.executable, "-m", "faithcheck", "score", "--judge-model", "openai/o3"]
    cmd += ["--out", str(tmp_path / "r")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("faithcheck: error: ") and "OPENAI_API_KEY" in line
    assert "precision:" not in proc.stderr  # no model was loaded


def test_the_chat_judge_writes_mistakes_too(fake: FakeChat, tmp_path: Path) -> None:
    """`--mistakes llm` through a chat judge: the rewritten step comes back, and the calls
    are in the ledger under their own purpose."""
    from faithcheck.judge.mistakes import write_mistakes

    original = fake.answer

    def answer(path: str, body: object) -> Reply:
        if path == "/v1/chat/completions" and isinstance(body, dict):
            return Reply(body=chat_reply(f"Change 5 to 6.\nMISTAKE {nonce_of(body)}: 2 + 3 = 6."))
        return original(path, body)

    fake.answer = answer  # type: ignore[method-assign]
    calls: list[JudgeCall] = []
    client = judge(fake, "gpt-4.1")
    out = write_mistakes(
        JudgeSession(client, ledger=calls.extend),
        [("p1#0:1", "What is 2 + 3?", "We add.", "2 + 3 = 5.")],
        CFG,
    )
    assert out == ["2 + 3 = 6."]
    assert [c.purpose for c in calls] == ["mistakes"]
    client.close()


def test_usage_sums_paid_calls_and_says_what_was_left() -> None:
    from faithcheck.judge.usage import usage_line

    paid = JudgeCall(
        purpose="rubric", item_id="a#0", attempt=0, cached=False, finish_reason="stop",
        prompt_tokens=1000, completion_tokens=500, reasoning_tokens=300, model="o3-2025-04-16",
    )  # fmt: skip
    cached = paid.model_copy(update={"cached": True, "item_id": "b#0"})
    cut = paid.model_copy(update={"purpose": "calibration", "finish_reason": "length"})
    usage = summarize_usage([paid, cached, cut], price_in=2, price_out=8, max_items=2, unjudged=3)
    assert (usage.total.calls, usage.total.cached_calls, usage.total.cut_at_budget) == (2, 1, 1)
    assert usage.total.prompt_tokens == 2000  # the cached call costs nothing
    assert usage.by_purpose["rubric"].calls == 1 and usage.by_purpose["calibration"].calls == 1
    assert usage.tokens_per_item == {"prompt_tokens": 1000.0, "completion_tokens": 500.0}
    assert usage.cost_usd == pytest.approx((2000 * 2 + 1000 * 8) / 1e6)
    line = usage_line(usage)
    for part in ("2 calls paid, 1 from the cache", "600 reasoning", "$0.01", "o3-2025-04-16"):
        assert part in line, part
    assert "3 responses unjudged (--judge-max-items 2)" in line
    assert summarize_usage([]).cost_usd is None
