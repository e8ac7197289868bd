"""Both backends against the real default model: determinism, agreement, contract."""

from __future__ import annotations

from typing import Any

import pytest

from faithcheck.backends.base import (
    ChatPrompt,
    GenerationRequest,
    ScoreRequest,
    TextPrompt,
)

pytestmark = pytest.mark.slow

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have? Think step by step."


@pytest.fixture(params=["hf", "vllm"])
def backend(request: pytest.FixtureRequest) -> Any:
    """Each backend in turn (fp32)."""
    return request.getfixturevalue(f"{request.param}_fp32")


def _request(backend: Any, **kw: Any) -> GenerationRequest:
    ids = backend.render(ChatPrompt(messages=[{"role": "user", "content": QUESTION}]))
    settings = {"n": 2, "seed": 7, "temperature": 1.0, "top_p": 1.0, "max_tokens": 24} | kw
    return GenerationRequest(prompt_ids=ids, **settings)


def test_render_chat_and_text_differ_and_are_stable(backend: Any) -> None:
    chat = backend.render(ChatPrompt(messages=[{"role": "user", "content": QUESTION}]))
    text = backend.render(TextPrompt(text=QUESTION))
    assert chat == backend.render(ChatPrompt(messages=[{"role": "user", "content": QUESTION}]))
    assert len(chat) > len(text) > 5
    assert backend._renderer.decode(text).strip() == QUESTION


def test_backends_render_identical_ids(hf_fp32: Any, vllm_fp32: Any) -> None:
    prompt = ChatPrompt(messages=[{"role": "user", "content": QUESTION}])
    assert hf_fp32.render(prompt) == vllm_fp32.render(prompt)


def test_seeded_sampling_is_reproducible(backend: Any) -> None:
    req = _request(backend)
    first = backend.generate([req])[0]
    again = backend.generate([req])[0]
    other = backend.generate([req.model_copy(update={"seed": 8})])[0]
    assert len(first) == 2
    assert [c.token_ids for c in first] == [c.token_ids for c in again]
    assert [c.token_ids for c in first] != [c.token_ids for c in other]


def test_results_do_not_depend_on_batch_company(backend: Any) -> None:
    req = _request(backend)
    alone = backend.generate([req])[0]
    neighbour = _request(backend, seed=99, n=3, max_tokens=30)
    together = backend.generate([neighbour, req])[1]
    assert [c.token_ids for c in alone] == [c.token_ids for c in together]


def test_max_tokens_reached_is_reported_as_length(backend: Any) -> None:
    out = backend.generate([_request(backend, n=1, max_tokens=5)])[0][0]
    assert out.finish_reason == "length"
    assert len(out.token_ids) == 5
    assert out.text


def test_greedy_generation_agrees_across_backends(hf_fp32: Any, vllm_fp32: Any) -> None:
    req = _request(hf_fp32, n=1, temperature=0.0, max_tokens=24)
    hf_out = hf_fp32.generate([req])[0][0]
    vllm_out = vllm_fp32.generate([req])[0][0]
    assert hf_out.token_ids == vllm_out.token_ids
    assert hf_out.text == vllm_out.text


def test_sampled_logprobs_agree_with_teacher_forcing(hf_fp32: Any, vllm_fp32: Any) -> None:
    """vLLM's sampled-token log-probs equal HF's teacher-forced ones (fp32, 1e-2)."""
    req = _request(vllm_fp32, n=1, logprobs=True, max_tokens=20)
    sampled = vllm_fp32.generate([req])[0][0]
    assert sampled.logprobs is not None and len(sampled.logprobs) == len(sampled.token_ids)
    scored = hf_fp32.score(
        [ScoreRequest(prefix_ids=req.prompt_ids, continuation_ids=sampled.token_ids)]
    )[0]
    for got, want in zip(sampled.logprobs, scored.token_logprobs, strict=True):
        assert got == pytest.approx(want, abs=1e-2)


def test_score_agrees_across_backends_per_token(hf_fp32: Any, vllm_fp32: Any) -> None:
    req = _request(hf_fp32, n=1, temperature=0.0, max_tokens=16)
    greedy = hf_fp32.generate([req])[0][0].token_ids
    other = list(reversed(greedy))
    requests = [
        ScoreRequest(prefix_ids=req.prompt_ids, continuation_ids=greedy),
        ScoreRequest(prefix_ids=req.prompt_ids, continuation_ids=other),
    ]
    hf_scores = hf_fp32.score(requests)
    vllm_scores = vllm_fp32.score(requests)
    for a, b in zip(hf_scores, vllm_scores, strict=True):
        assert len(a.token_logprobs) == len(b.token_logprobs)
        for x, y in zip(a.token_logprobs, b.token_logprobs, strict=True):
            assert x == pytest.approx(y, abs=1e-2)
        assert a.logprob_sum == pytest.approx(sum(a.token_logprobs))
        assert a.greedy == b.greedy
    # The greedy continuation is the arg-max path; its reversal is not, and is less likely.
    assert hf_scores[0].greedy and not hf_scores[1].greedy
    assert hf_scores[0].logprob_sum > hf_scores[1].logprob_sum


def test_stop_string_ends_completion(backend: Any) -> None:
    req = _request(backend, n=1, temperature=0.0, max_tokens=40)
    full = backend.generate([req])[0][0].text
    words = full.split()
    assert len(words) > 4
    stop = " " + words[3]
    cut = backend.generate([req.model_copy(update={"stop": [stop]})])[0][0]
    assert cut.finish_reason == "stop"
    assert stop not in cut.text
    assert full.startswith(cut.text)


def test_greedy_with_several_samples_repeats_the_greedy_answer(backend: Any) -> None:
    """n > 1 at temperature 0 works on every backend and gives n identical completions."""
    outs = backend.generate([_request(backend, n=3, temperature=0.0, max_tokens=12)])[0]
    assert len(outs) == 3
    assert outs[0].token_ids and all(o.token_ids == outs[0].token_ids for o in outs)
