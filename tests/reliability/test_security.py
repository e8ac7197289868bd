"""Security: checkpoint code never runs unasked, text is never evaluated, keys never leak.

- `trust_remote_code` reaches transformers and vLLM as False unless `--trust-remote-code`.
- Questions and responses that look like code or templates pass through parsing,
  verification (math-verify in its worker), the derivation check, prompt building, the
  real chat template and the judge prompt as inert text.
- An API key given through `--api-key-env` is sent to the server and appears nowhere
  else: not in the run directory, the reports, stdout, stderr, nor an error message.

Prompt injection against the judge is covered by tests/judge/test_injection.py.
"""

from __future__ import annotations

import json
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

from faithcheck.backends import make_backend
from faithcheck.backends.base import ChatPrompt, TokenizerRenderer
from faithcheck.checks.derivation import analyze, extract_equations
from faithcheck.errors import ModelLoadError
from faithcheck.judge.prompt import judge_prompt
from faithcheck.problems.arith import find_chains, read_value
from faithcheck.problems.parsing import extract_answer, normalize_answer, split_steps
from faithcheck.problems.prompts import build_prompt
from faithcheck.problems.verify import exact_match, verify
from faithcheck.records import Problem
from tests.backends.test_openai import Reply
from tests.reliability.conftest import (
    NO_BACKOFF,
    QUIET,
    ScriptedServer,
    assert_one_error,
    cli_env,
    openai_args,
    problems,
    read_records,
    run_cli,
    write_jsonl,
)

# -- trust_remote_code ----------------------------------------------------------------------


class _Stop(Exception):
    """Raised by the spies once the loading arguments are seen (nothing is loaded)."""


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Record the keyword arguments of every tokenizer and model load, then stop."""
    import transformers

    calls: list[tuple[str, dict[str, Any]]] = []
    real_tokenizer = transformers.AutoTokenizer.from_pretrained

    def tokenizer(path: str, **kwargs: Any) -> Any:
        calls.append(("tokenizer", kwargs))
        return real_tokenizer(path, **kwargs)

    def model(path: str, **kwargs: Any) -> Any:
        calls.append(("model", kwargs))
        raise _Stop

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model)
    return calls


@pytest.mark.parametrize("trust", [False, True])
def test_hf_backend_passes_trust_remote_code_as_asked(
    spies: list[tuple[str, dict[str, Any]]], model_path: str, trust: bool
) -> None:
    with pytest.raises(ModelLoadError):
        make_backend(
            "hf", model_path, dtype="float32", seed=0, max_model_len=64, trust_remote_code=trust
        )
    assert [name for name, _ in spies] == ["tokenizer", "model"]
    assert all(kw["trust_remote_code"] is trust for _, kw in spies)


def test_hf_backend_default_is_no_remote_code(
    spies: list[tuple[str, dict[str, Any]]], model_path: str
) -> None:
    from faithcheck.backends.hf import HFBackend

    with pytest.raises(ModelLoadError):
        HFBackend(model_path)
    assert all(kw["trust_remote_code"] is False for _, kw in spies)


@pytest.mark.parametrize("trust", [False, True])
def test_vllm_backend_passes_trust_remote_code_as_asked(
    spies: list[tuple[str, dict[str, Any]]],
    model_path: str,
    monkeypatch: pytest.MonkeyPatch,
    trust: bool,
) -> None:
    """vLLM itself is replaced by a stand-in that records the engine arguments."""
    engines: list[dict[str, Any]] = []
    fake = types.ModuleType("vllm")

    def llm(**kwargs: Any) -> None:
        engines.append(kwargs)
        raise _Stop

    fake.LLM = llm  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setattr("os.environ", dict(__import__("os").environ))  # CPU settings
    with pytest.raises(ModelLoadError):
        make_backend(
            "vllm", model_path, dtype="float32", seed=0, max_model_len=64, trust_remote_code=trust
        )
    assert engines[0]["trust_remote_code"] is trust
    assert spies[0][1]["trust_remote_code"] is trust


def test_openai_backend_local_tokenizer_trusts_nothing(
    spies: list[tuple[str, dict[str, Any]]], model_path: str, server: ScriptedServer
) -> None:
    backend = make_backend(
        "openai", model_path, dtype="auto", seed=0, max_model_len=64, base_url=server.url
    )
    backend.close()
    assert spies == [("tokenizer", {"trust_remote_code": False})]


_SPY = """
import json, os, transformers
def _record(kind):
    def spy(path, **kwargs):
        with open(os.environ["SPY_LOG"], "a") as fh:
            fh.write(json.dumps([kind, kwargs.get("trust_remote_code", "absent")]) + "\\n")
        raise RuntimeError("spy: nothing is loaded")
    return spy
transformers.AutoTokenizer.from_pretrained = _record("tokenizer")
transformers.AutoModelForCausalLM.from_pretrained = _record("model")
"""


def test_cli_trust_remote_code_is_off_by_default(
    tmp_path: Path, model_path: str, closed_url: str
) -> None:
    """From the command line to the first load (the local tokenizer of the openai
    backend: the cheapest backend that loads checkpoint files)."""
    log = tmp_path / "spy.jsonl"
    args = [*openai_args(closed_url, model_path), "--limit", "1", *QUIET, "--out", "run"]
    result = run_cli(args, tmp_path, prelude=_SPY, env=cli_env(SPY_LOG=str(log)))
    assert_one_error(result, 3, "cannot load tokenizer")  # the spy stops the first load
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["tokenizer", False]]
    options = json.loads((tmp_path / "run" / "run.json").read_text())["config"]["options"]
    assert options["trust_remote_code"] is False


@pytest.mark.parametrize("trust", [False, True])
def test_score_options_reach_the_backend(
    spies: list[tuple[str, dict[str, Any]]], model_path: str, trust: bool
) -> None:
    """`--trust-remote-code` sets ScoreOptions.trust_remote_code (see run.json above);
    the pipeline hands it to the backend it loads."""
    from faithcheck.pipeline.core import _load
    from faithcheck.pipeline.options import ScoreOptions

    opts = ScoreOptions(model=model_path, dataset="math", trust_remote_code=trust)
    with pytest.raises(ModelLoadError):
        _load("hf", model_path, opts, "auto")
    assert [kw["trust_remote_code"] for _, kw in spies] == [trust, trust]


# -- nothing from data or model output is evaluated -----------------------------------------


def _payloads(marker: Path) -> list[str]:
    touch = f"touch {marker}"
    return [
        f"__import__('os').system('{touch}')",
        f"eval(\"__import__('os').system('{touch}')\") = 1 + 1 = 2",
        f"exec('import os; os.system(\"{touch}\")')",
        f"\\boxed{{__import__('os').system('{touch}')}}",
        f"{{{{ cycler.__init__.__globals__.os.system('{touch}') }}}}",
        f"{{% for x in ().__class__.__base__.__subclasses__() %}}{{{{ x }}}}{{% endfor %}} {touch}",
        "{{ 7*7 }} and {{7*'7'}} and ${7*7} and #{7*7} and <%= 7*7 %>",
        "{question} {0.__class__} %(x)s %s {nonce} {response}",
        f"$({touch}) `{touch}`; {touch}",
        f"2**2**2**2**2 = 65536 and 9^9^9^9 = {touch}",
        f"lambda: __import__('os').system('{touch}') \\boxed{{7*7}}",
    ]


def _texts(marker: Path) -> list[str]:
    return [*_payloads(marker), "\n\n".join(_payloads(marker))]


def test_code_in_questions_and_responses_is_never_run(tmp_path: Path, model_path: str) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    renderer = TokenizerRenderer(model_path)  # the real chat template (Jinja)
    for text in _texts(marker):
        problem = Problem(id="x", question=text, answer=text, domain="math")
        steps = split_steps(text)
        found = extract_answer(text)
        if found.answer is not None:
            normalize_answer(found.answer)
            verify(problem, found.answer, timeout_s=5.0)  # math-verify, in its worker
        verify(problem.model_copy(update={"domain": "count"}), text)
        exact_match(text, text)
        analyze("x", 0, text, steps, found.answer)
        extract_equations(text)
        find_chains(text)
        read_value(text)
        for fmt in ("chat", "base"):
            for template in (None, "Q: {question}\n{{question}} {{ 7*7 }}"):
                prompt = build_prompt(text, fmt, template)  # type: ignore[arg-type]
                content = prompt.messages[0]["content"] if fmt == "chat" else prompt.text  # type: ignore[union-attr]
                assert text in content
            judge_prompt(text, text, "0123abcd", fmt)
        rendered = renderer.decode(renderer.render(build_prompt(text, "chat", None)))
        assert text.strip() in rendered
    assert not marker.exists()


def test_templates_in_questions_stay_literal(model_path: str) -> None:
    renderer = TokenizerRenderer(model_path)
    question = "What is {{ 7*7 }}? Also {% if true %}yes{% endif %} and {question}."
    rendered = renderer.decode(renderer.render(build_prompt(question, "chat", None)))
    assert question in rendered and "49" not in rendered and "yes and" not in rendered
    judge = judge_prompt(question, "{{ 7*7 }}", "0123abcd", "chat")
    assert isinstance(judge, ChatPrompt)
    text = "\n".join(m["content"] for m in judge.messages)
    assert "{{ 7*7 }}" in text and "49" not in text


def test_code_through_a_whole_run_is_never_run(
    tmp_path: Path, model_path: str, server: ScriptedServer
) -> None:
    """The payloads as questions, gold answers and saved responses, through re-scoring,
    a probe and the judge (all served by the scripted server)."""
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    rows = [
        {"id": f"q{i}", "question": text, "answer": text, "domain": "math", "response": text}
        for i, text in enumerate(_texts(marker))
    ]
    write_jsonl(tmp_path / "rollouts.jsonl", rows)
    args = [*openai_args(server.url, model_path), "--from-samples", "rollouts.jsonl"]
    args += ["--probes", "truncation", "--no-diversity", "--judge-backend", "openai"]
    args += ["--judge-base-url", server.url, "--judge-model", "judge", "--no-calibrate"]
    result = run_cli([*args, "--no-strategy", "--out", "run"], tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1, 4), result.stderr
    records = read_records(tmp_path / "run")
    assert len(records["samples.jsonl"]) == len(rows)
    assert records["judge.jsonl"]
    assert not marker.exists()


# -- API keys -------------------------------------------------------------------------------


def _everything_written(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_api_key_appears_nowhere_but_in_the_request(tmp_path: Path, server: ScriptedServer) -> None:
    """The served model tokenizes on the server too, so every kind of request (models,
    tokenize, detokenize, completions; sampling, probes and judge) carries the key."""
    key = f"sk-secret-{uuid.uuid4().hex}"
    env = cli_env(MYKEY=key)
    write_jsonl(tmp_path / "p.jsonl", problems(2))
    args = [*openai_args(server.url), "--api-key-env", "MYKEY"]
    args += ["--dataset", "p.jsonl", "--samples", "2", "--probes", "truncation", "--verbose"]
    args += ["--no-diversity", "--judge-backend", "openai", "--judge-base-url", server.url]
    args += ["--judge-api-key-env", "MYKEY", "--judge-model", "judge", "--no-calibrate"]
    score = run_cli([*args, "--json", "--out", "run"], tmp_path, env=env)
    assert score.returncode in (0, 1, 4), score.stderr
    report = run_cli(["report", "run"], tmp_path, env=env)
    assert report.returncode == 0, report.stderr

    sent = {s.headers.get("Authorization") for s in server.seen}
    assert sent == {f"Bearer {key}"}  # the key was used for every request ...
    assert {"/tokenize", "/v1/completions"} <= {s.path for s in server.seen}
    written = _everything_written(tmp_path / "run")
    assert {"run.json", "samples.jsonl", "judge.jsonl", "report.json", "report.html"} <= set(
        written
    )
    for name, data in written.items():  # ... and written nowhere
        assert key.encode() not in data, name
        assert key[len("sk-secret-") :].encode() not in data, name
    for out in (score.stdout, score.stderr, report.stdout, report.stderr):
        assert key not in out
    options = json.loads(written["run.json"])["config"]["options"]
    assert options["api_key_env"] == "MYKEY"


def test_api_key_echoed_by_the_server_is_masked(tmp_path: Path) -> None:
    """Some servers put the rejected key in their error message; it must not reach
    stderr (a CI log) through faithcheck's one error line."""
    key = f"sk-secret-{uuid.uuid4().hex}"
    server = ScriptedServer()
    server.script["/tokenize"] = [
        Reply(401, {"error": {"message": f"Incorrect API key provided: {key}. Check it."}})
    ]
    try:
        args = ["score", "--backend", "openai", "--base-url", server.url, "--model", "served"]
        args += ["--api-key-env", "MYKEY", "--limit", "1", *QUIET, "--out", "run"]
        result = run_cli(args, tmp_path, env=cli_env(MYKEY=key))
    finally:
        server.close()
    line = assert_one_error(result, 3, "HTTP 401: Incorrect API key provided: ***. Check it.")
    assert key not in line and key[-12:] not in result.stderr
    for name, data in _everything_written(tmp_path / "run").items():
        assert key.encode() not in data, name


def test_credentials_in_the_base_url_stay_out_of_error_messages(
    tmp_path: Path, closed_url: str
) -> None:
    url = closed_url.replace("http://", "http://user:hunter2@")
    args = ["score", "--backend", "openai", "--base-url", url, "--model", "served"]
    result = run_cli([*args, "--limit", "1", *QUIET, "--out", "run"], tmp_path, prelude=NO_BACKOFF)
    assert_one_error(result, 3, "cannot connect")
    assert "hunter2" not in result.stderr


def test_credentials_in_the_base_url_stay_out_of_run_json(tmp_path: Path, closed_url: str) -> None:
    url = closed_url.replace("http://", "http://user:hunter2@")
    args = ["score", "--backend", "openai", "--base-url", url, "--model", "served"]
    run_cli([*args, "--limit", "1", *QUIET, "--out", "run"], tmp_path, prelude=NO_BACKOFF)
    assert b"hunter2" not in (tmp_path / "run" / "run.json").read_bytes()
