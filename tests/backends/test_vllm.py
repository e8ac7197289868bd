"""One-line summaries of engine failures (`faithcheck.backends.vllm.error_summary`), and
every engine call turning a failure into one."""

from __future__ import annotations

from typing import Any

import pytest

from faithcheck.backends.base import GenerationRequest, NextTokenRequest, ScoreRequest
from faithcheck.backends.vllm import error_summary
from faithcheck.errors import BackendError
from tests.conftest import skip_if_no_vllm


def _chained() -> RuntimeError:
    try:
        try:
            raise ValueError("No available memory for the cache blocks.\nTry raising it.")
        except ValueError as inner:
            raise RuntimeError("Engine core initialization failed.") from inner
    except RuntimeError as outer:
        try:
            raise RuntimeError(
                "Engine core initialization failed. See root cause above.\nFailed core proc(s): {}"
            ) from outer
        except RuntimeError as top:
            return top


def test_a_wrapped_failure_names_its_root_cause_on_one_line() -> None:
    summary = error_summary(_chained())
    assert summary == (
        "Engine core initialization failed. See root cause above. (cause: ValueError: No "
        "available memory for the cache blocks. Try raising it.)"
    )
    assert "\n" not in summary


def test_a_plain_failure_keeps_its_first_line() -> None:
    assert error_summary(OSError("disk on fire\nmore detail")) == "disk on fire"
    assert error_summary(KeyError()) == "KeyError"


def test_a_cycle_in_the_cause_chain_ends() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert error_summary(a) == "a (cause: RuntimeError: b)"


def test_long_causes_are_cut() -> None:
    top = RuntimeError("failed")
    top.__cause__ = ValueError("x" * 1000)
    assert len(error_summary(top)) <= 300


class _FailingEngine:
    """An engine whose every call fails, as a dead engine core does."""

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("EngineCore died\nstack...")


@skip_if_no_vllm
@pytest.mark.parametrize(
    ("call", "request_", "what"),
    [
        ("generate", GenerationRequest(prompt_ids=[1, 2], n=1, seed=0, temperature=0.0,
                                        top_p=1.0, max_tokens=4), "generation"),
        ("score", ScoreRequest(prefix_ids=[1], continuation_ids=[2]), "scoring"),
        ("next_token_logprobs", NextTokenRequest(prompt_ids=[1], token_ids=[2]), "next-token read"),
    ],
)  # fmt: skip
def test_an_engine_failure_is_one_line_naming_the_call(call: str, request_: Any, what: str) -> None:
    from faithcheck.backends.vllm import VLLMBackend

    backend = VLLMBackend.__new__(VLLMBackend)  # no engine loaded: a failing one instead
    backend.llm = _FailingEngine()
    with pytest.raises(BackendError, match=rf"^vLLM {what} failed: EngineCore died$"):
        getattr(backend, call)([request_])
