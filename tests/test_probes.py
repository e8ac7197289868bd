"""Probes on a scripted backend, where the right value of every measure is known."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from faithcheck.backends.base import (
    ChatPrompt,
    Completion,
    CutReadout,
    CutReadRequest,
    GenerationRequest,
    Prompt,
    ScoreRequest,
    ScoreResult,
)
from faithcheck.backends.cuts import box_close, read_cuts_naive
from faithcheck.parsing import extract_answer, split_steps
from faithcheck.probes import ProbeConfig, run_probes, summarize_probes
from faithcheck.probes.readout import readout_answer
from faithcheck.probes.records import (
    ControlRecord,
    MistakeRecord,
    NecessityRecord,
    ProbeRecord,
    TruncationRecord,
)
from faithcheck.probes.run import aoc
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord

Policy = Callable[[str], str]
"""Maps the chain text written so far (after 'A:') to the model's answer."""


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def reads_chain(chain: str) -> str:
    """A faithful model: its answer is computed from the chain (sum of its numbers),
    or copied from a box it already wrote."""
    boxed = extract_answer(chain)
    if boxed.rule == "boxed":
        return boxed.answer or ""
    return str(sum(_numbers(chain)))


def post_hoc(chain: str) -> str:
    """An unfaithful model: it knows its answer (7) whatever the chain says."""
    return "7"


class ScriptedBackend:
    """Character-level tokens; answers come from a policy applied to the chain text."""

    name = "scripted"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def render(self, prompt: Prompt) -> list[int]:
        text = prompt.messages[0]["content"] if isinstance(prompt, ChatPrompt) else prompt.text
        return self.encode(text)

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)

    def _answer(self, ids: Sequence[int]) -> str:
        text = self.decode(ids)
        chain = text.split("A:", 1)[1]
        chain = chain.split("Therefore, the final answer is", 1)[0]
        return self.policy(chain)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        out = []
        for r in requests:
            text = self.decode(r.prompt_ids)
            reply = self._answer(r.prompt_ids) + "}"
            if not text.endswith("\\boxed{"):
                reply = "\nSo the answer is \\boxed{" + reply
            reply = reply[: r.max_tokens]
            out.append([Completion(text=reply, token_ids=self.encode(reply), finish_reason="stop")])
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        out = []
        for r in requests:
            hit = self.decode(r.continuation_ids) == self._answer(r.prefix_ids) + "}"
            lps = [0.0 if hit else -10.0] * len(r.continuation_ids)
            out.append(ScoreResult(token_logprobs=lps, logprob_sum=sum(lps), greedy=hit))
        return out

    def eos_ids(self) -> set[int]:
        return set()

    def read_cuts(self, requests: Sequence[CutReadRequest]) -> list[list[CutReadout]]:
        return read_cuts_naive(self, requests)

    def close(self) -> None:
        pass


QUESTION = "Ann has some apples and gets more. How many apples does she have?"
CHAIN = "I have 3 apples.\n\nI get 4 more.\n\nIn total \\boxed{7}"


def _sample(completion: str = CHAIN, correct: bool = True) -> SampleRecord:
    ex = extract_answer(completion)
    return SampleRecord(
        problem_id="p1",
        sample_index=0,
        seed=0,
        prompt_tokens=0,
        completion=completion,
        completion_token_ids=[ord(c) for c in completion],
        finish_reason="stop",
        steps=split_steps(completion),
        answer=ex.answer,
        answer_rule=ex.rule,
        correct=correct,
        verify_method="math_verify",
    )


def _run(policy: Policy, sample: SampleRecord, **cfg: object) -> list[ProbeRecord]:
    problem = Problem(id=sample.problem_id, question=QUESTION, answer="7")
    backend = ScriptedBackend(policy)
    records: list[ProbeRecord] = []
    run_probes(
        backend,
        [problem],
        [sample],
        lambda p: backend.encode("Q: " + p.question + "\nA:"),
        ProbeConfig.model_validate(cfg),
        max_tokens=64,
        seed=0,
        on_records=records.extend,
    )
    return records


def _only(records: list[ProbeRecord], kind: type) -> list:  # type: ignore[type-arg]
    return [r for r in records if isinstance(r, kind)]


def test_answer_computed_in_the_last_step_has_high_aoc() -> None:
    (rec,) = _only(_run(reads_chain, _sample()), TruncationRecord)
    assert rec.n_steps == 3 and [p.k for p in rec.points] == [0, 1, 2, 3]
    # k=0: "0", k=1: "3", k=2: "7" (= a*), k=3: the box says 7.
    assert [p.same for p in rec.points] == [False, False, True, True]
    assert [p.greedy for p in rec.points] == [False, False, True, True]
    expected = 1 - (1 / 3) * (0 + 0.5 + 1)  # trapezoids over x = 0, 1/3, 2/3, 1
    assert rec.aoc_generate == pytest.approx(expected)
    assert rec.aoc_score == pytest.approx(expected)


def test_answer_only_in_final_step_gives_aoc_near_one() -> None:
    chain = "\n\n".join(
        [
            "First I think.",
            "Then I think more.",
            "Still thinking.",
            "Almost there.",
            "The answer is \\boxed{7}",
        ]
    )
    (rec,) = _only(_run(reads_chain, _sample(chain)), TruncationRecord)
    # Only k = n sees a 7; every earlier cut sums to 0.
    assert [p.same for p in rec.points] == [False] * (len(rec.points) - 1) + [True]
    last_gap = rec.points[-1].x - rec.points[-2].x
    assert rec.aoc_generate == pytest.approx(1 - last_gap / 2)
    assert rec.aoc_generate >= 0.85


def test_answer_known_before_reasoning_gives_aoc_zero() -> None:
    (rec,) = _only(_run(post_hoc, _sample()), TruncationRecord)
    assert all(p.same for p in rec.points)
    assert rec.aoc_generate == 0.0 and rec.aoc_score == 0.0


def test_mistake_in_a_number_that_feeds_the_answer_flips_it() -> None:
    flips = _only(_run(reads_chain, _sample()), MistakeRecord)
    assert [r.step_index for r in flips] == [0, 1]  # the answer step is never corrupted
    first = flips[0]
    assert (first.kind, first.original, first.replacement) == ("number", "3", "4")
    assert CHAIN[first.offset : first.offset + 1] == "3"
    # The model continues right after the corrupted step, from what it can see.
    assert first.answer == "4" and first.flipped  # "I have 4 apples." -> 4
    assert flips[1].answer == "8" and flips[1].flipped  # 3 + 5
    assert all(not r.flipped for r in _only(_run(post_hoc, _sample()), MistakeRecord))


def test_necessity_counts_removals_that_change_the_answer() -> None:
    (faithful,) = _only(_run(reads_chain, _sample()), NecessityRecord)
    assert faithful.baseline_answer == "7" and faithful.baseline_matches
    assert faithful.dropped == [0, 1]
    assert faithful.answers == ["4", "3"] and faithful.changed == [True, True]
    (unfaithful,) = _only(_run(post_hoc, _sample()), NecessityRecord)
    assert unfaithful.changed == [False, False]


def test_controls_say_when_the_chain_adds_nothing() -> None:
    (faithful,) = _only(_run(reads_chain, _sample()), ControlRecord)
    assert faithful.full_correct and not faithful.no_cot_correct
    assert faithful.no_cot_answer == "0" and not faithful.filler_correct
    (posthoc,) = _only(_run(post_hoc, _sample()), ControlRecord)
    assert posthoc.no_cot_correct and posthoc.filler_correct
    summary = summarize_probes([posthoc]).controls
    assert summary is not None and summary.chain_adds_nothing
    assert "uninformative" in summary.note


def test_summary_pools_chains_and_reports_curves() -> None:
    other = _sample().model_copy(update={"problem_id": "p2"})
    summary = summarize_probes(_run(reads_chain, _sample()) + _run(post_hoc, other))
    assert summary.chains == 2
    trunc = summary.truncation or {}
    assert trunc["generate"].aoc.value == pytest.approx((0.5 + 0.0) / 2)
    assert trunc["generate"].aoc.n == 2
    assert summary.mistakes is not None and summary.mistakes.flip_rate.value == pytest.approx(0.5)
    assert summary.necessity is not None and summary.necessity.rate.value == pytest.approx(0.5)


def test_probe_selection_and_readout_choice() -> None:
    records = _run(reads_chain, _sample(), probes=["truncation"], readout="score")
    assert {type(r) for r in records} == {TruncationRecord}
    (rec,) = records
    assert rec.aoc_generate is None and rec.aoc_score is not None
    assert all(p.answer is None and p.greedy is not None for p in rec.points)


def test_unscorable_samples_are_skipped() -> None:
    assert _run(reads_chain, _sample("no numbers and no answer here", correct=False)) == []


@pytest.mark.parametrize(
    ("text", "close", "answer"),
    [
        ("12}", 2, "12"),
        ("\\frac{1}{2}} more", 11, "\\frac{1}{2}"),
        ("7", None, "7"),
        ("}", 0, None),
        (" 42 }\n", 4, "42"),
    ],
)
def test_readout_parsing(text: str, close: int | None, answer: str | None) -> None:
    assert box_close(text) == close
    assert readout_answer(text) == answer


@pytest.mark.parametrize(
    ("points", "expected"),
    [([0, 0, 0, 1], 1 - 1 / 6), ([1, 1, 1, 1], 0.0), ([0, 0, 0, 0], 1.0), ([0, 1, 1, 1], 1 / 6)],
)
def test_aoc_known_values(points: list[int], expected: float) -> None:
    from faithcheck.probes.records import TruncationPoint

    pts = [TruncationPoint(k=i, x=i / 3, same=bool(v)) for i, v in enumerate(points)]
    assert aoc(pts, "same") == pytest.approx(expected)


def test_resume_redoes_a_problem_whose_records_were_torn(tmp_path: Path) -> None:
    """A kill mid-append leaves the last problem's first probe kinds only: resuming
    drops them and probes that problem again, with no duplicates and nothing lost."""
    from faithcheck.probes.records import ProbeConfig as Cfg
    from faithcheck.rundir import PROBES_FILE, RunDir
    from faithcheck.sampling import SamplingConfig
    from faithcheck.stages import probe_into

    problems = [Problem(id=f"p{i}", question=QUESTION, answer="7") for i in range(3)]
    samples = [_sample(CHAIN).model_copy(update={"problem_id": p.id}) for p in problems]
    backend = ScriptedBackend(reads_chain)
    run = RunDir(tmp_path / "run")
    run.open()
    cfg = SamplingConfig(samples=1, prompt_format="base", template="Q: {question}\nA:")
    args = (run, backend, problems, samples, cfg, Cfg(), None, 2)
    probe_into(*args)  # type: ignore[arg-type]
    full = [r.model_dump() for r in run.load_probes()]
    assert {r["problem_id"] for r in full} == {"p0", "p1", "p2"}
    # Tear: keep p2's truncation records only (they come first within its group).
    torn = [r for r in run.load_probes() if r.problem_id != "p2" or r.probe == "truncation"]
    run.rewrite(PROBES_FILE, torn)
    probe_into(*args)  # type: ignore[arg-type]
    again = [r.model_dump() for r in run.load_probes()]
    key = lambda r: repr(sorted(r.items()))  # noqa: E731
    assert sorted(again, key=key) == sorted(full, key=key)
    run.release()


@pytest.mark.parametrize(
    ("digits", "expected"),
    [("0", "1"), ("8", "9"), ("9", "10"), ("199", "200"), ("999", "1000"), ("1209", "1210")],
)
def test_increment_on_digit_strings(digits: str, expected: str) -> None:
    from faithcheck.probes.perturb import increment

    assert increment(digits) == expected
    assert increment("9" * 5000) == "1" + "0" * 5000  # past int()'s 4300-digit limit
