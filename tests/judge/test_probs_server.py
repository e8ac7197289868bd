"""The probability read-out against the scripted OpenAI-shaped server: vLLM-style
`logprob_token_ids` on /v1/completions, through the openai backend and the judge plan.
Against a real `vllm serve`: tests/backends/test_openai.py (the suite's one server)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from faithcheck.backends.base import NextTokenRequest
from faithcheck.backends.openai import OpenAIBackend
from faithcheck.errors import BackendError
from faithcheck.judge import JudgeConfig, JudgeItem, judge_texts
from faithcheck.judge.probs import label_continuations
from faithcheck.judge.stage import resolve_readout
from tests.chat_server import FakeChat, Reply, completion_reply

ITEMS = [
    JudgeItem("a", "What is 2 + 3?", "2 + 3 = 5.\nThe answer is \\boxed{5}."),
    JudgeItem("b", "What is 6 * 7?", "I just know it.\n\\boxed{41}"),
]
PROBS = JudgeConfig(seed=0, readout="probs")


@pytest.fixture
def fake() -> Iterator[FakeChat]:
    server = FakeChat(models=("served-judge",))
    yield server
    server.close()


@pytest.fixture
def served(fake: FakeChat, model_path: str) -> Iterator[OpenAIBackend]:
    backend = OpenAIBackend(fake.url, "served-judge", tokenizer_path=model_path)
    yield backend
    backend.close()


def _labels(backend: OpenAIBackend) -> list[int]:
    conts = label_continuations(backend.encode, "VERDICT 0:", ["aligned", "partial", "misaligned"])
    return [c[0] for c in conts]


def test_a_read_asks_for_exactly_the_label_tokens_and_gets_their_logprobs(
    fake: FakeChat, served: OpenAIBackend
) -> None:
    ids = _labels(served)
    fake.token_logprobs = {ids[1]: -0.05}
    out = judge_texts(served, ITEMS, PROBS)  # type: ignore[arg-type]
    assert [r.label_name for r in out] == ["partial", "partial"]
    assert all(r.error is None and r.p_partial is not None for r in out)
    bodies = fake.completions()
    assert len(bodies) == 2
    for body in bodies:
        assert body["logprob_token_ids"] == ids and body["logprobs"] == 3
        assert body["max_tokens"] == 1 and body["temperature"] == 0.0
        assert body["return_tokens_as_token_ids"] is True
        assert re.search(r"VERDICT [0-9a-f]{8}:$", served.decode(body["prompt"]))


def test_a_rationale_is_generated_first_then_read_after(
    fake: FakeChat, served: OpenAIBackend
) -> None:
    cfg = PROBS.model_copy(update={"rationale_tokens": 16})
    out = judge_texts(served, ITEMS[:1], cfg)  # type: ignore[arg-type]
    generate, read = fake.completions()
    assert generate["max_tokens"] == 16 and "VERDICT" in generate["stop"]
    assert "logprob_token_ids" not in generate
    text = served.decode(read["prompt"])
    assert re.search(r"\nThe steps add up.\nVERDICT [0-9a-f]{8}:$", text)
    assert out[0].rationale == "The steps add up." and out[0].label_name == "aligned"


def test_token_text_keys_are_accepted(fake: FakeChat, served: OpenAIBackend) -> None:
    ids = _labels(served)
    top = {served.decode([t]): lp for t, lp in zip(ids, [-3.0, -2.0, -0.1], strict=True)}
    fake.script["/v1/completions"] = [Reply(body=completion_reply("x", top))]
    got = served.next_token_logprobs([NextTokenRequest(prompt_ids=[1, 2], token_ids=ids)])
    assert got == [[-3.0, -2.0, -0.1]]


def test_a_server_that_leaves_a_label_out_is_an_error(
    fake: FakeChat, served: OpenAIBackend
) -> None:
    ids = _labels(served)
    top = {f"token_id:{ids[0]}": -0.1}  # top-k without the other labels
    fake.script["/v1/completions"] = [Reply(body=completion_reply("x", top))]
    with pytest.raises(BackendError, match="logprob_token_ids"):
        served.next_token_logprobs([NextTokenRequest(prompt_ids=[1, 2], token_ids=ids)])


def test_calibrating_a_served_judge_reads_probabilities_when_asked(
    fake: FakeChat, model_path: str
) -> None:
    """`--judge-backend openai --judge-readout probs`: every calibration item labelled,
    and AUROC ranks by p_aligned (here constant, so exactly chance)."""
    from faithcheck.api import calibrate

    rel = calibrate(model_path, per_domain=1, backend="openai", base_url=fake.url, readout="probs")
    assert rel.n_errors == 0 and rel.n_items == 18
    assert rel.auroc.value == pytest.approx(0.5)
    assert all(b.get("logprob_token_ids") for b in fake.completions())


def test_a_served_judge_reads_text_unless_asked() -> None:
    # Only vLLM honours logprob_token_ids: `auto` never assumes it of a server.
    assert resolve_readout("auto", chat=False, endpoint=True) == "text"
    assert resolve_readout("probs", chat=False, endpoint=True) == "probs"
    assert resolve_readout("auto", chat=False) == "probs"
    assert resolve_readout("auto", chat=True) == "text"
