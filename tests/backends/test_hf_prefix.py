"""The transformers backend's prefix reuse: a prefix the requests share and the n copies
of one prompt are prefilled once, and the completions are the ones a plain prefill gives
(fp32, real model: greedy token-identical, sampled logprobs equal to rounding)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from faithcheck.backends.base import GenerationRequest
from faithcheck.backends.hf_prefix import MIN_PREFIX_TOKENS, common_prefix_len
from tests.conftest import skip_if_no_vllm


@pytest.mark.parametrize(
    ("seqs", "want"),
    [
        ([], 0),
        ([[1, 2, 3]], 3),
        ([[1, 2, 3], [1, 2, 4]], 2),
        ([[1, 2, 3], [1, 2]], 2),
        ([[1, 2, 3], [9, 2, 3]], 0),
        ([[5] * 40, [5] * 40 + [1], [5] * 39 + [2]], 39),
    ],
)
def test_common_prefix_len(seqs: list[list[int]], want: int) -> None:
    assert common_prefix_len(seqs) == want


def _judge_requests(backend: Any, n: int, temperature: float) -> list[GenerationRequest]:
    from faithcheck.judge.prompt import item_nonce, judge_prompt

    items = [
        ("What is 2 + 3?", "2 + 3 = 5. The answer is 5."),
        ("Tom has 4 apples and eats 1. How many are left?", "4 - 1 = 3, so \\boxed{3}."),
        ("What is 6 times 7?", "I guess 40."),
    ]
    out = []
    for i, (q, r) in enumerate(items):
        nonce = item_nonce(0, f"item{i}", (q, r))
        ids = backend.render(judge_prompt(q, r, nonce))
        out.append(
            GenerationRequest(
                prompt_ids=ids,
                n=n,
                temperature=temperature,
                top_p=1.0,
                max_tokens=20,
                seed=100 + i,
                logprobs=True,
            )
        )
    return out


@pytest.fixture
def hf(hf_fp32: Any) -> Iterator[Any]:
    """The session's fp32 backend, its prefix state reset around the test."""
    hf_fp32.prefix.clear()
    yield hf_fp32
    hf_fp32.prefix.enabled = True
    hf_fp32.prefix.clear()


def _run(backend: Any, requests: list[GenerationRequest], reuse: bool) -> tuple[Any, int, int]:
    from faithcheck.backends.base import PrefillCount

    backend.prefix.clear()
    backend.prefix.enabled = reuse
    backend.prefix.count = PrefillCount()
    out = backend.generate(requests)
    return out, backend.prefix.count.prompt_tokens, backend.prefix.count.computed_tokens


@pytest.mark.slow
def test_shared_judge_prefix_is_computed_once_and_changes_nothing(hf: Any) -> None:
    requests = _judge_requests(hf, n=1, temperature=0.0)
    lens = [len(r.prompt_ids) for r in requests]
    shared = common_prefix_len([r.prompt_ids for r in requests])
    assert shared >= MIN_PREFIX_TOKENS  # the rubric opens every prompt

    plain, served0, computed0 = _run(hf, requests, reuse=False)
    reused, served1, computed1 = _run(hf, requests, reuse=True)
    assert served0 == served1 == sum(lens) == computed0
    assert computed1 == shared + sum(n - shared for n in lens)
    assert [c[0].token_ids for c in reused] == [c[0].token_ids for c in plain]
    for a, b in zip(reused, plain, strict=True):
        assert a[0].logprobs == pytest.approx(b[0].logprobs, abs=1e-3)

    # A later call of one question (a retry) reuses the held prefix.
    again, _, computed2 = _run_keep(hf, requests[1:2])
    assert computed2 == lens[1] - shared
    assert again[0][0].token_ids == plain[1][0].token_ids


def _run_keep(backend: Any, requests: list[GenerationRequest]) -> tuple[Any, int, int]:
    from faithcheck.backends.base import PrefillCount

    backend.prefix.count = PrefillCount()
    out = backend.generate(requests)
    return out, backend.prefix.count.prompt_tokens, backend.prefix.count.computed_tokens


@pytest.mark.slow
def test_n_copies_of_a_prompt_share_one_prefill(hf: Any) -> None:
    requests = _judge_requests(hf, n=4, temperature=1.0)[:2]
    plain, served0, computed0 = _run(hf, requests, reuse=False)
    reused, served1, computed1 = _run(hf, requests, reuse=True)
    assert served0 == served1 == computed0 == 4 * sum(len(r.prompt_ids) for r in requests)
    assert computed1 < computed0 / 3
    # Same seed, same sampler state, the same distribution up to rounding: the same draws.
    for a, b in zip(reused, plain, strict=True):
        assert [c.token_ids for c in a] == [c.token_ids for c in b]
        for ca, cb in zip(a, b, strict=True):
            assert ca.logprobs == pytest.approx(cb.logprobs, abs=1e-3)


@pytest.mark.slow
@pytest.mark.vllm
@skip_if_no_vllm
def test_vllm_prefix_cache_serves_the_shared_rubric(vllm_fp32: Any) -> None:
    """vLLM's prefix cache (on, explicitly) computes the rubric once per engine: of the
    prompts after the first, at most the block-rounded shared prefix is not recomputed."""
    from faithcheck.backends.base import PrefillCount

    requests = _judge_requests(vllm_fp32, n=1, temperature=0.0)
    lens = [len(r.prompt_ids) for r in requests]
    shared = common_prefix_len([r.prompt_ids for r in requests])
    block = int(vllm_fp32.llm.llm_engine.vllm_config.cache_config.block_size)
    assert vllm_fp32.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching
    vllm_fp32.prefill = PrefillCount()
    vllm_fp32.generate(requests)
    assert vllm_fp32.prefill.prompt_tokens == sum(lens)
    reusable = (shared // block) * block
    assert vllm_fp32.prefill.computed_tokens <= sum(lens) - (len(lens) - 1) * reusable
