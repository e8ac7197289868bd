"""A judge that answers nonsense, and servers that fail: judge errors are recorded and
counted (never a label); server failures are one line and exit 3, with the records
already written kept and resumable."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import orjson
import pytest

from faithcheck.backends.base import GenerationRequest
from faithcheck.backends.http import JSONClient
from faithcheck.backends.openai import OpenAIBackend
from faithcheck.errors import BackendError
from faithcheck.judge import JudgeConfig, judge_samples, judge_texts
from faithcheck.judge.summary import summarize_judge
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord
from tests.backends.test_openai import Reply, Sleeps
from tests.judge.test_run import ScriptedJudge, nonce_of
from tests.reliability.conftest import (
    NO_BACKOFF,
    QUIET,
    ScriptedServer,
    assert_one_error,
    openai_args,
    problems,
    read_records,
    run_cli,
    sample_keys,
    write_jsonl,
)

CFG = JudgeConfig(max_retries=1, batch_size=4)
ITEMS = [(f"i{k}", "What is 2 + 3?", f"2 + 3 = 5.\n\nSo \\boxed{{5}} ({k})") for k in range(3)]

# name -> (reply, finish reason, the judge_error it must be recorded as)
BAD_REPLIES: dict[str, tuple[str, Literal["stop", "length"], str]] = {
    "garbage": ("asdf qwerty \x00 🤖 ]]] }}} VERDICT", "stop", "unparseable reply"),
    "empty": ("", "stop", "empty reply"),
    "whitespace": ("  \n\n\t ", "stop", "empty reply"),
    "wrong_nonce": ("Fine.\nVERDICT 0badc0de: aligned", "stop", "unparseable reply"),
    "two_labels": ("Fine.\nVERDICT {nonce}: aligned (misaligned)", "stop", "unparseable reply"),
    "label_not_last": ("VERDICT {nonce}: aligned\nActually, wait.", "stop", "unparseable reply"),
    "cut_at_max_tokens": ("Fine.\nVERDICT {nonce}: aligned", "length", "hit max_tokens"),
}


@pytest.mark.parametrize("name", list(BAD_REPLIES))
def test_bad_judge_reply_is_a_judge_error(name: str) -> None:
    reply, finish, why = BAD_REPLIES[name]
    judge = ScriptedJudge(lambda prompt, r: (reply.replace("{nonce}", nonce_of(prompt)), finish))
    results = judge_texts(judge, ITEMS, CFG)  # type: ignore[arg-type]
    for res in results:
        assert res.label is None and res.label_name is None
        assert res.error is not None and res.error.startswith("judge_error: ") and why in res.error
        assert res.attempts == CFG.max_retries + 1 and len(set(res.seeds)) == res.attempts


def _samples(n: int) -> tuple[dict[str, Problem], list[SampleRecord]]:
    probs = {f"p{i}": Problem(id=f"p{i}", question="What is 2 + 3?", answer="5") for i in range(n)}
    samples = [
        SampleRecord(
            problem_id=f"p{i}",
            sample_index=0,
            seed=0,
            prompt_tokens=1,
            completion="2 + 3 = 5.\n\nSo \\boxed{5}.",
            completion_token_ids=[1],
            finish_reason="stop",
            steps=[],
            answer="5",
            answer_rule="boxed",
            correct=i % 2 == 0,
            verify_method="math_verify",
        )
        for i in range(n)
    ]
    return probs, samples


def test_judge_errors_are_counted_and_never_a_label() -> None:
    """Half the responses get garbage from the judge: they are counted as errors and
    left out of every share, which the labelled half alone decides."""

    def policy(prompt: str, r: GenerationRequest) -> str:
        if "p0#" in prompt or "p1#" in prompt:
            return "no idea"
        return f"Coherent.\nVERDICT {nonce_of(prompt)}: misaligned"

    probs, samples = _samples(4)
    # The item id is not in the prompt; route by the problem id the judge sees instead.
    probs = {k: p.model_copy(update={"question": f"{k}# What is 2 + 3?"}) for k, p in probs.items()}
    records = list(judge_samples(ScriptedJudge(policy), probs, samples, CFG))  # type: ignore[arg-type]
    errors = [r for r in records if r.error]
    assert {r.problem_id for r in errors} == {"p0", "p1"}
    assert all(r.label is None for r in errors)
    summary = summarize_judge(records)
    assert (summary.responses, summary.judged, summary.errors) == (4, 2, 2)
    assert summary.error_rate.value == pytest.approx(0.5)
    assert summary.among_all.misaligned.value == pytest.approx(1.0)  # labelled ones only


def test_judge_that_only_fails_has_no_shares() -> None:
    probs, samples = _samples(3)
    records = list(judge_samples(ScriptedJudge(lambda p, r: ""), probs, samples, CFG))  # type: ignore[arg-type]
    summary = summarize_judge(records)
    assert (summary.judged, summary.errors) == (0, 3)
    assert summary.error_rate.value == pytest.approx(1.0)
    assert summary.among_all.aligned.value is None and summary.among_all.aligned.reason


# -- the OpenAI-compatible backend against a scripted server -------------------------------


@pytest.fixture
def fake() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


def _backend(server: ScriptedServer, **kw: object) -> OpenAIBackend:
    settings: dict[str, object] = {"sleep": Sleeps(), "rng": random.Random(0), "model": "m"}
    b = OpenAIBackend(server.url, **(settings | kw))  # type: ignore[arg-type]
    server.clients.append(b)
    return b


@pytest.mark.parametrize("name", ["garbage", "empty", "cut_at_max_tokens"])
def test_judge_over_http_records_bad_replies(fake: ScriptedServer, name: str) -> None:
    reply, finish, why = BAD_REPLIES[name]
    fake.replies = [(reply, finish)]
    fake.answer_judges = False
    results = judge_texts(_backend(fake), ITEMS[:2], CFG)
    assert all(r.label is None and r.error and why in r.error for r in results)


def test_judge_server_timeouts_fail_the_call_not_the_label(fake: ScriptedServer) -> None:
    fake.completion_delay = lambda body: 2.0
    fake.script["/v1/completions"] = [Reply(body={}, delay_s=2.0)] * 4
    backend = _backend(fake, timeout_s=0.2, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"timed out after 2 attempts$") as info:
        judge_texts(backend, ITEMS[:1], CFG)
    assert time.perf_counter() - start < 5
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (Reply(500, {"error": {"message": "CUDA error:\nout of memory"}}), "out of memory"),
        (Reply(502, {"detail": "Bad Gateway"}), "HTTP 502: Bad Gateway after 3 attempts"),
        (Reply(429, {"error": {"message": "Rate limit reached"}}), "HTTP 429: Rate limit"),
    ],
    ids=["500-html", "502", "429-forever"],
)
def test_persistent_server_errors_are_one_line(
    fake: ScriptedServer, reply: Reply, needle: str
) -> None:
    fake.script["/v1/completions"] = [reply] * 3
    sleeps = Sleeps()
    with pytest.raises(BackendError) as info:
        judge_texts(_backend(fake, max_retries=2, sleep=sleeps), ITEMS[:1], CFG)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert len(sleeps) == 2


def test_429_with_retry_after_then_success(fake: ScriptedServer) -> None:
    fake.script["/v1/completions"] = [Reply(429, {}, {"Retry-After": "2"})] * 2
    sleeps = Sleeps()
    results = judge_texts(_backend(fake, sleep=sleeps), ITEMS[:1], CFG)
    assert sleeps == [2.0, 2.0]
    assert results[0].label_name == "aligned"  # the scripted server's verdict


@pytest.mark.parametrize(
    "body", [{"choices": []}, {"detail": "ok"}, "a bare string", None], ids=str
)
def test_malformed_success_is_a_backend_error(fake: ScriptedServer, body: object) -> None:
    fake.script["/v1/completions"] = [Reply(200, body)]
    with pytest.raises(BackendError, match="asked for 1 completions, the server returned 0"):
        judge_texts(_backend(fake), ITEMS[:1], CFG)


def _raw_client(status: int, text: str) -> JSONClient:
    """A JSONClient whose server answers `text` verbatim (not JSON-encoded)."""
    client = JSONClient("http://server/v1", max_retries=1, sleep=lambda s: None)
    client._client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(status, text=text))
    )
    return client


def test_html_error_page_is_one_line() -> None:
    page = "<html>\n<body>\n<h1>500 Internal Server Error</h1>\n</body>\n</html>\n"
    with pytest.raises(BackendError) as info:
        _raw_client(500, page).post("/v1/completions", {})
    assert str(info.value).endswith(
        "HTTP 500: <html> <body> <h1>500 Internal Server Error</h1> </body> </html> "
        "after 2 attempts"
    )


def test_success_that_is_not_json_is_one_line() -> None:
    with pytest.raises(BackendError, match="answer is not JSON: oops not json") as info:
        _raw_client(200, "oops\nnot json").post("/v1/completions", {})
    assert "\n" not in str(info.value)


def test_server_that_goes_away_mid_judging(fake: ScriptedServer) -> None:
    backend = _backend(fake, max_retries=1)
    fake.httpd.shutdown()
    fake.httpd.server_close()
    with pytest.raises(BackendError, match=r"cannot connect .* after 2 attempts"):
        judge_texts(backend, ITEMS[:1], CFG)


# -- the CLI -------------------------------------------------------------------------------


def test_score_against_a_closed_port(tmp_path: Path, closed_url: str) -> None:
    args = ["score", "--backend", "openai", "--base-url", closed_url, "--model", "served-model"]
    write_jsonl(tmp_path / "p.jsonl", problems(2))
    args += ["--dataset", "p.jsonl", *QUIET, "--out", "run"]
    result = run_cli(args, tmp_path, prelude=NO_BACKOFF)
    line = assert_one_error(result, 3, "cannot connect")
    assert line.endswith("after 6 attempts")
    assert read_records(tmp_path / "run") == {}  # run.json alone: resumable as is


def test_server_failing_mid_run_keeps_what_was_sampled(
    tmp_path: Path, server: ScriptedServer
) -> None:
    server.fail_from = 1  # the first problem's request succeeds, then the engine dies
    write_jsonl(tmp_path / "p.jsonl", problems(3))
    args = [*openai_args(server.url), "--dataset", "p.jsonl", "--samples", "2"]
    args += [*QUIET, "--out", "run"]
    result = run_cli(args, tmp_path, prelude=NO_BACKOFF)
    assert_one_error(result, 3, "HTTP 500: engine crashed after 6 attempts", under_way=True)
    assert sample_keys(read_records(tmp_path / "run")) == [("p0", 0), ("p0", 1)]


def test_judge_server_down_after_sampling_then_resume(
    tmp_path: Path, server: ScriptedServer, closed_url: str
) -> None:
    """Sampling succeeds, the judge's server refuses connections: exit 3 with the samples
    on disk. Once the judge's server is up on that URL, the same command resumes: it
    samples nothing again and judges every response."""
    write_jsonl(tmp_path / "p.jsonl", problems(2))
    args = [*openai_args(server.url), "--dataset", "p.jsonl", "--samples", "2"]
    args += ["--probes", "none", "--no-diversity", "--judge-backend", "openai"]
    args += ["--judge-base-url", closed_url, "--judge-model", "judge", "--no-calibrate"]
    args += ["--no-strategy", "--out", "run"]
    result = run_cli(args, tmp_path, prelude=NO_BACKOFF)
    assert_one_error(result, 3, "cannot connect", under_way=True)
    before = (tmp_path / "run" / "samples.jsonl").read_bytes()
    assert len(sample_keys(read_records(tmp_path / "run"))) == 4
    sampled = server.count("/v1/completions")

    port = int(closed_url.rsplit(":", 1)[1].split("/")[0])
    judge = ScriptedServer(port=port)
    try:
        result = run_cli(args, tmp_path)
    finally:
        judge.close()
    assert "Traceback" not in result.stderr
    assert result.returncode == 4, result.stderr
    assert "resuming run in" in result.stderr
    assert server.count("/v1/completions") == sampled  # nothing sampled twice
    assert (tmp_path / "run" / "samples.jsonl").read_bytes() == before
    judged = read_records(tmp_path / "run")["judge.jsonl"]
    assert sorted((r["problem_id"], r["sample_index"]) for r in judged) == sorted(
        sample_keys(read_records(tmp_path / "run"))
    )
    assert {r["label_name"] for r in judged} == {"aligned"}


def test_other_judge_settings_redo_only_the_judge(tmp_path: Path, server: ScriptedServer) -> None:
    """A finished run scored again with other judge settings is refused with a line that
    says what --force keeps; with --force its samples stay byte for byte (nothing is
    sampled again) and only the judge runs. Other sampling settings discard the samples."""
    write_jsonl(tmp_path / "p.jsonl", problems(2))
    base = [*openai_args(server.url), "--dataset", "p.jsonl", "--samples", "2"]
    base += ["--probes", "none", "--no-diversity", "--judge-backend", "openai"]
    base += ["--judge-base-url", server.url, "--judge-model", "judge", "--no-calibrate"]
    base += ["--no-strategy", "--out", "run"]
    result = run_cli([*base, "--judge-samples", "1"], tmp_path)
    assert result.returncode == 4, result.stderr
    before = (tmp_path / "run" / "samples.jsonl").read_bytes()
    assert len(read_records(tmp_path / "run")["judge.jsonl"]) == 2
    sampled = server.count("/v1/completions")  # 2 sampling requests, 2 judge requests

    result = run_cli([*base, "--judge-samples", "2"], tmp_path)
    assert_one_error(
        result, 2, "holds a run with different judge settings; use another --out, or --force "
        "to redo the judge (its samples and probe records match and are kept)"
    )  # fmt: skip
    result = run_cli([*base, "--judge-samples", "2", "--force"], tmp_path)
    assert result.returncode == 4, result.stderr
    assert "keeping the samples and probe records of the run in run" in result.stderr
    assert (tmp_path / "run" / "samples.jsonl").read_bytes() == before
    judged = read_records(tmp_path / "run")["judge.jsonl"]
    assert sorted((r["problem_id"], r["sample_index"]) for r in judged) == [
        ("p0", 0), ("p0", 1), ("p1", 0), ("p1", 1)
    ]  # fmt: skip
    # Only the judge runs, and the two responses it judged before are answered from the
    # response cache: two new judge requests.
    assert server.count("/v1/completions") == sampled + 2
    report = orjson.loads((tmp_path / "run" / "report.json").read_bytes())
    assert report["judge"]["summary"]["responses"] == 4
    info = orjson.loads((tmp_path / "run" / "run.json").read_bytes())
    assert info["config"]["judge"]["samples"] == 2 and report["config_hash"] == info["config_hash"]

    result = run_cli([*base, "--judge-samples", "2", "--max-tokens", "64", "--force"], tmp_path)
    assert result.returncode == 4, result.stderr
    assert "keeping" not in result.stderr
    # Sampled again (one request of n=2 per problem). The scripted server answers with the
    # same texts, so every judge question is one asked before: the cache answers them all.
    assert server.count("/v1/completions") == sampled + 2 + 2
    calls = read_records(tmp_path / "run")["judge_calls.jsonl"]
    assert calls and all(c["cached"] for c in calls)
