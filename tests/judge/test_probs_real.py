"""The probability read-out on the real embedded model: transformers and vLLM read the
same labels in fp32, and the one-pass read equals teacher forcing."""

from __future__ import annotations

from typing import Any

import pytest

from faithcheck.backends.base import ChatPrompt, NextTokenRequest, ScoreRequest
from faithcheck.judge import JudgeConfig, judge_texts
from faithcheck.judge.calibration import build_items, load_calibration
from faithcheck.judge.probs import label_continuations
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
