"""Logic of the benchmark scripts that their numbers rest on (the scripts' runs themselves are
measurements, not tests)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def rl_toy() -> Any:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import rl_toy

        yield rl_toy
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_rl_toy_logprobs_match_one_unpadded_forward_per_sequence(rl_toy: Any, hf_fp32: Any) -> None:
    """The policy gradient's left-padded batch with `logits_to_keep` gives each completion the
    same mean log-probability as scoring it alone: padding, positions and the kept window
    change nothing. Completions and prompts of different lengths, in fp32."""
    import torch

    model = hf_fp32.model
    tok = hf_fp32._renderer.tokenizer
    texts = [
        ("Q: 2 + 3?", " 2 + 3 = 5. The answer is 5."),
        ("Q: a much longer question about seven apples and four more apples?", " 11"),
        ("Q: 9 - 4?", " Nine minus four is five, so the answer is 5."),
    ]
    batch = [
        (
            tok(p, add_special_tokens=False)["input_ids"],
            tok(c, add_special_tokens=False)["input_ids"],
        )
        for p, c in texts
    ]
    with torch.no_grad():
        got = rl_toy.sequence_logprobs(model, tok.eos_token_id, batch)
        for row, (p, c) in enumerate(batch):
            ids = torch.tensor([p + c])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            want = logp[len(p) - 1 :, :].gather(-1, ids[0, len(p) :, None]).mean()
            assert got[row].item() == pytest.approx(want.item(), abs=1e-4)
    assert len({round(x, 3) for x in got.tolist()}) == 3  # three different completions


def test_rl_toy_reward_reads_the_final_answer(rl_toy: Any) -> None:
    assert rl_toy._correct("3 + 4 = 7. 7 * 2 = 14. The answer is 14.", 14)
    assert rl_toy._correct("3 + 4 = 7, so 7 * 2 = \\boxed{14}", 14)
    assert not rl_toy._correct("3 + 4 = 7. 7 * 2 = 14. The answer is 15.", 14)
    assert not rl_toy._correct("I cannot tell.", 14)
