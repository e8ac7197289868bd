"""Probes on the real default model: plumbing on both backends, and the fast paths
agreeing with the naive baseline (fp32)."""

from __future__ import annotations

from typing import Any

import pytest

from faithcheck.backends.base import ChatPrompt
from faithcheck.probes import ProbeConfig, run_probes
from faithcheck.probes.records import (
    ControlRecord,
    MistakeRecord,
    NecessityRecord,
    ProbeRecord,
    TruncationRecord,
)
from faithcheck.problems.parsing import extract_answer, split_steps
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord

pytestmark = pytest.mark.slow

PROBLEM = Problem(
    id="apples", question="Tom has 3 apples and buys 4 more. How many now?", answer="7"
)
CHAINS = [
    "Tom starts with 3 apples.\nHe buys 4 more apples.\n3 + 4 = 7.\nThe answer is \\boxed{7}.",
    "We add the apples.\n3 + 4 = 8.\nSo Tom has \\boxed{8} apples.",
]


def _samples(backend: Any) -> list[SampleRecord]:
    out = []
    for i, text in enumerate(CHAINS):
        ex = extract_answer(text)
        out.append(
            SampleRecord(
                problem_id=PROBLEM.id,
                sample_index=i,
                seed=0,
                prompt_tokens=0,
                completion=text,
                completion_token_ids=backend.encode(text),
                finish_reason="stop",
                steps=split_steps(text),
                answer=ex.answer,
                answer_rule=ex.rule,
                correct=i == 0,
                verify_method="math_verify",
            )
        )
    return out


def _probe(backend: Any, **cfg: object) -> list[ProbeRecord]:
    prompt = backend.render(ChatPrompt(messages=[{"role": "user", "content": PROBLEM.question}]))
    records: list[ProbeRecord] = []
    run_probes(
        backend,
        [PROBLEM],
        _samples(backend),
        lambda p: prompt,
        ProbeConfig.model_validate({"readout": "both", **cfg}),
        max_tokens=24,
        seed=0,
        on_records=records.extend,
    )
    return records


@pytest.fixture(params=["hf", "vllm"])
def backend(request: pytest.FixtureRequest) -> Any:
    """Each backend in turn (fp32)."""
    return request.getfixturevalue(f"{request.param}_fp32")


def test_all_probes_run_and_record(backend: Any) -> None:
    records = _probe(backend)
    kinds = {type(r) for r in records}
    assert kinds == {TruncationRecord, MistakeRecord, NecessityRecord, ControlRecord}
    for rec in (r for r in records if isinstance(r, TruncationRecord)):
        # The grid runs over the reasoning steps: every step but the answer statement.
        assert rec.reasoning_steps == rec.n_steps - 1
        assert rec.points[0].k == 0 and rec.points[-1].k == rec.reasoning_steps
        assert all(p.logprob is not None and p.logprob <= 0 for p in rec.points)
        assert 0.0 <= (rec.aoc_generate or 0) <= 1.0
        assert rec.no_chain_correct is not None and rec.full_chain_correct is not None
        # With the whole reasoning (whose last step computes a*) in context, a* is far
        # likelier than with no chain at all.
        assert rec.points[-1].logprob > rec.points[0].logprob  # type: ignore[operator]
    for rec in (r for r in records if isinstance(r, MistakeRecord)):
        assert CHAINS[rec.sample_index][rec.offset :].startswith(rec.original)
        assert rec.baseline_run  # every corruption has its uncorrupted twin
        if rec.answer is None:  # no stated answer: no evidence, never a flip
            assert not rec.flipped


def _truncation(records: list[ProbeRecord]) -> list[TruncationRecord]:
    return [r for r in records if isinstance(r, TruncationRecord)]


def test_fast_path_matches_naive(backend: Any) -> None:
    cfg = {"probes": ["truncation", "controls", "necessity"]}
    fast = _probe(backend, impl="fast", **cfg)
    naive = _probe(backend, impl="naive", **cfg)
    assert [type(r) for r in fast] == [type(r) for r in naive]
    for f, n in zip(_truncation(fast), _truncation(naive), strict=True):
        assert [p.answer for p in f.points] == [p.answer for p in n.points]
        assert [p.greedy for p in f.points] == [p.greedy for p in n.points]
        for pf, pn in zip(f.points, n.points, strict=True):
            assert pf.logprob == pytest.approx(pn.logprob, abs=1e-3)
    others = [r for r in fast if not isinstance(r, TruncationRecord)]
    assert others == [r for r in naive if not isinstance(r, TruncationRecord)]


def test_backends_agree_on_readouts(hf_fp32: Any, vllm_fp32: Any) -> None:
    cfg = {"probes": ["truncation"]}
    hf = _truncation(_probe(hf_fp32, **cfg))
    vl = _truncation(_probe(vllm_fp32, **cfg))
    for a, b in zip(hf, vl, strict=True):
        assert [p.answer for p in a.points] == [p.answer for p in b.points]
        for pa, pb in zip(a.points, b.points, strict=True):
            assert pa.logprob == pytest.approx(pb.logprob, abs=1e-2)


def test_auto_readout_is_the_generated_one_on_every_backend(backend: Any) -> None:
    # The read-out that separates post-hoc from faithful chains (PRIMARY_READOUT), on
    # transformers too, where scoring would be faster.
    (rec, *_) = _truncation(_probe(backend, probes=["truncation"], readout="auto"))
    assert rec.aoc_generate is not None and rec.aoc_score is None


def test_hf_chains_of_one_prompt_reuse_its_cache(hf_fp32: Any) -> None:
    """The second chain of a problem encodes only its own tokens (the prompt's keys and
    values come from the first chain's cache), and reads every cut exactly as it does
    when read on its own; the first chain's cache is not disturbed by the reuse."""
    from faithcheck.backends.base import CutReadRequest

    prompt = hf_fp32.render(ChatPrompt(messages=[{"role": "user", "content": PROBLEM.question}]))
    cue = hf_fp32.encode("\nThe answer is \\boxed{")
    requests = []
    for text in CHAINS:
        ids = prompt + hf_fp32.encode(text)
        cuts = [len(prompt), len(prompt) + 5, len(ids)]
        target = hf_fp32.encode("7}")
        requests.append(
            CutReadRequest(
                chain_ids=ids, cuts=cuts, cue_ids=cue, target_ids=target, max_new_tokens=6
            )
        )
    fed: list[int] = []
    model = hf_fp32.model
    forward = model.forward

    def counting(*args: Any, **kwargs: Any) -> Any:
        ids = kwargs.get("input_ids", args[0] if args else None)
        fed.append(int(ids.shape[-1]))
        return forward(*args, **kwargs)

    model.forward = counting
    try:
        together = hf_fp32.read_cuts(requests)
    finally:
        model.forward = forward
    shared = len(prompt)  # the chains differ from their first token on
    assert fed[:2] == [len(requests[0].chain_ids), len(requests[1].chain_ids) - shared]
    alone = [hf_fp32.read_cuts([r])[0] for r in requests]
    for got, want in zip(together, alone, strict=True):
        assert [r.generated_ids for r in got] == [r.generated_ids for r in want]
        assert [r.greedy for r in got] == [r.greedy for r in want]
        for g, w in zip(got, want, strict=True):
            assert g.logprob_sum == pytest.approx(w.logprob_sum, abs=1e-3)
