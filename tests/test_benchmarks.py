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


@pytest.fixture(scope="module")
def operating() -> Any:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import operating

        yield operating
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_operating_quick_run_through_the_real_verdict(operating: Any, tmp_path: Path) -> None:
    """The smoke run of the operating-characteristic benchmark (capable model, arithmetic
    problems, n = 100, 3 replicates): its table and JSON have every cell and target, and
    the verdict separates the extremes: an all-post-hoc population is never GO (and its
    NO_GO rests on failed checks), an all-faithful one never NO_GO. The simulated report
    carries a support section that the verdict's default support check evaluates: it
    passes every all-faithful run and fails every all-post-hoc one."""
    out = tmp_path / "operating.json"
    result = operating.main(["--quick", "--jobs", "1", "--out", str(out)])
    assert out.exists()
    cells = {c["share"]: c for c in result["cells"]}
    assert set(cells) == {0.0, 1.0}
    for c in cells.values():
        assert c["reps"] == 3
        assert c["GO"] + c["NO_GO"] + c["INCONCLUSIVE"] == pytest.approx(1.0)
    assert len(result["targets"]) == 3
    assert all(isinstance(t["holds"], bool) for t in result["targets"])
    assert len(result["runs"]) == 6
    assert cells[0.0]["NO_GO"] == 0.0
    assert cells[1.0]["GO"] == 0.0
    posthoc = [r for r in result["runs"] if r["share"] == 1.0]
    assert all(r["drivers"] for r in posthoc)
    assert all(
        d.endswith(":fail") for r in posthoc if r["decision"] == "NO_GO" for d in r["drivers"]
    )
    outcomes = {s: {r["support_outcome"] for r in result["runs"] if r["share"] == s} for s in cells}
    assert outcomes == {0.0: {"pass"}, 1.0: {"fail"}}
    assert all(r["unsupported"] is not None for r in result["runs"])


def test_operating_support_templates_read_as_their_status(operating: Any) -> None:
    """Each support template the population relabels is read by the real check as the
    status it stands for (the population raises otherwise), on numeric and option answers."""
    from operating_population import support_template

    for numeric in (True, False):
        for status in ("supported", "contradicted", "asserted", "answer-first"):
            assert support_template(status, numeric).status == status
            assert support_template(status, numeric).numeric is numeric
    assert support_template("not-applicable", True).status == "not-applicable"


@pytest.fixture(scope="module")
def judge_readout() -> Any:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import judge_readout

        yield judge_readout
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.mark.parametrize(
    ("spec", "readout", "rationale"),
    [("text", "text", 0), ("probs", "probs", 0), ("probs:32", "probs", 32)],
)
def test_judge_readout_specs_set_the_judge_as_score_does(
    judge_readout: Any, spec: str, readout: str, rationale: int
) -> None:
    cfg = judge_readout.config(spec, "chat")
    assert (cfg.readout, cfg.rationale_tokens, cfg.batch_size) == (readout, rationale, 32)
    if readout == "text":
        assert (cfg.max_tokens, cfg.max_retries) == (256, 1)
    with pytest.raises(SystemExit):
        judge_readout.config("logits", "chat")
