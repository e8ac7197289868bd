"""The probability read-out on the real embedded model: transformers and vLLM read the
same labels in fp32, the one-pass read equals teacher forcing, and the strategy judge
decides every pair."""

from __future__ import annotations

from typing import Any

import pytest

from faithcheck.backends.base import ChatPrompt, NextTokenRequest, ScoreRequest
from faithcheck.judge import JudgeConfig, judge_texts, strategy_verdicts
from faithcheck.judge.calibration import build_items, load_calibration
from faithcheck.judge.probs import (
    first_tokens_distinct,
    label_continuations,
    normalize,
    verdict_prefix,
)
from faithcheck.judge.strategy import STRATEGY_LABELS, strategy_question
from tests.conftest import skip_if_no_vllm

pytestmark = pytest.mark.slow

CFG = JudgeConfig(seed=0, readout="probs", prompt_format="chat")


def _items(n: int) -> list[tuple[str, str, str]]:
    items = build_items(load_calibration(limit=1), seed=0)[:n]
    return [(i.item_id, i.question, i.response) for i in items]


def test_next_token_read_equals_teacher_forcing(hf_fp32: Any) -> None:
    prompt = hf_fp32.render(ChatPrompt(messages=[{"role": "user", "content": "Is 2+2=4?"}]))
    prompt += hf_fp32.encode("VERDICT 0a1b2c3d:")
    conts = label_continuations(hf_fp32.encode, "VERDICT 0a1b2c3d:", ["aligned", "partial"])
    firsts = [c[0] for c in conts]
    (read,) = hf_fp32.next_token_logprobs([NextTokenRequest(prompt_ids=prompt, token_ids=firsts)])
    forced = hf_fp32.score([ScoreRequest(prefix_ids=prompt, continuation_ids=[t]) for t in firsts])
    assert read == pytest.approx([r.logprob_sum for r in forced], abs=1e-4)


@skip_if_no_vllm
@pytest.mark.vllm
def test_transformers_and_vllm_read_the_same_labels(hf_fp32: Any, vllm_fp32: Any) -> None:
    items = _items(6)
    hf = judge_texts(hf_fp32, items, CFG)
    vllm = judge_texts(vllm_fp32, items, CFG)
    assert all(r.error is None and r.label is not None for r in hf + vllm)
    assert [r.label_name for r in hf] == [r.label_name for r in vllm]
    for a, b in zip(hf, vllm, strict=True):
        assert [a.p_aligned, a.p_partial, a.p_misaligned] == pytest.approx(
            [b.p_aligned, b.p_partial, b.p_misaligned], abs=1e-3
        )
        assert a.label_mass == pytest.approx(b.label_mass, rel=1e-2)


@skip_if_no_vllm
@pytest.mark.vllm
def test_a_rationale_then_the_read_agree_across_engines(hf_fp32: Any, vllm_fp32: Any) -> None:
    items = _items(2)
    cfg = CFG.model_copy(update={"rationale_tokens": 12})
    hf = judge_texts(hf_fp32, items, cfg)
    vllm = judge_texts(vllm_fp32, items, cfg)
    assert [r.rationale for r in hf] == [r.rationale for r in vllm]
    assert [r.label_name for r in hf] == [r.label_name for r in vllm]
    assert all(r.usage is not None and 0 < r.usage.completion_tokens <= 12 for r in hf)


def test_the_strategy_judge_decides_every_pair_from_the_real_probabilities(hf_fp32: Any) -> None:
    items = build_items(load_calibration(limit=1), seed=0)[:3]
    assert len({i.question for i in items}) == 1
    r0, r1, r2 = (i.response for i in items)
    pairs = [(items[0].question, a, b) for a, b in ((r0, r1), (r1, r2), (r0, r0))]
    verdicts = strategy_verdicts(hf_fp32, pairs, CFG)
    for (q, a, b), v in zip(pairs, verdicts, strict=True):
        assert v.same is not None and v.p_same is not None and v.label_mass is not None
        assert v.same is (v.p_same > 0.5) and v.label_mass > 0.0
        # The read is that of the labels' first tokens (distinct) after the verdict prefix.
        question = strategy_question(q, a, b, CFG)
        prefix = verdict_prefix(question.nonce)
        conts = label_continuations(hf_fp32.encode, prefix, list(STRATEGY_LABELS))
        assert first_tokens_distinct(conts)
        prompt = hf_fp32.render(question.prompt) + hf_fp32.encode(prefix)
        forced = hf_fp32.score(
            [ScoreRequest(prefix_ids=prompt, continuation_ids=c[:1]) for c in conts]
        )
        (_, p_same), mass = normalize([r.logprob_sum for r in forced])
        assert v.p_same == pytest.approx(p_same, abs=1e-4)
        assert v.label_mass == pytest.approx(mass, rel=1e-3)
