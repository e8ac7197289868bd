"""The probability read-out on scripted backends: label tokens, normalization, records,
the fallback to whole-label scoring, and the session's cache and ledger."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faithcheck.backends.base import (
    ChatPrompt,
    Completion,
    GenerationRequest,
    NextTokenRequest,
    Prompt,
    ScoreRequest,
    ScoreResult,
)
from faithcheck.errors import BackendError
from faithcheck.judge import JudgeConfig, JudgeItem, JudgeResult, judge_texts
from faithcheck.judge.cache import ResponseCache
from faithcheck.judge.client import JudgeCall, JudgeSession, as_client
from faithcheck.judge.probs import (
    LabelAsk,
    first_tokens_distinct,
    label_continuations,
    normalize,
    read_labels,
)

PIECE = re.compile(r"\s*\S+|\s+")
Policy = Callable[[str], dict[str, float]]
"""Maps the text before the label to each label word's log-prob."""


class WordJudge:
    """Word-level tokens (a space joins the word after it, as in byte-level BPE); the
    next-token log-probs of label words come from a policy over the text so far."""

    name = "word-judge"

    def __init__(self, policy: Policy, rationale: str = "It adds up.") -> None:
        self.policy = policy
        self.rationale = rationale
        self.vocab: dict[str, int] = {}
        self.reads: list[NextTokenRequest] = []
        self.generated: list[GenerationRequest] = []
        self.scored: list[ScoreRequest] = []

    def encode(self, text: str) -> list[int]:
        return [self.vocab.setdefault(p, len(self.vocab)) for p in PIECE.findall(text)]

    def decode(self, ids: Sequence[int]) -> str:
        words = {v: k for k, v in self.vocab.items()}
        return "".join(words[i] for i in ids)

    def render(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, ChatPrompt):
            return self.encode("\n".join(m["content"] for m in prompt.messages) + "\n")
        return self.encode(prompt.text)

    def _logprobs(self, prompt_ids: Sequence[int], token_ids: Sequence[int]) -> list[float]:
        table = self.policy(self.decode(prompt_ids))
        return [table.get(self.decode([t]).strip(), -30.0) for t in token_ids]

    def next_token_logprobs(self, requests: Sequence[NextTokenRequest]) -> list[list[float]]:
        self.reads.extend(requests)
        return [self._logprobs(r.prompt_ids, r.token_ids) for r in requests]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        self.generated.extend(requests)
        ids = self.encode(self.rationale)
        return [
            [Completion(text=self.rationale, token_ids=ids, finish_reason="stop")] for _ in requests
        ]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        self.scored.extend(requests)
        out = []
        for r in requests:
            lp = self._logprobs(r.prefix_ids, r.continuation_ids[:1])[0]
            out.append(ScoreResult(token_logprobs=[lp], logprob_sum=lp, greedy=False))
        return out

    def eos_ids(self) -> set[int]:
        return set()

    def close(self) -> None:
        pass


class ScoreOnly(WordJudge):
    """The same judge without the one-pass verb: read through `score`."""

    next_token_logprobs = None  # type: ignore[assignment]


def by_answer(text: str) -> dict[str, float]:
    """Aligned for a boxed 5, misaligned for a guess, partial otherwise."""
    if "I guess" in text:
        return {"aligned": -4.0, "partial": -3.0, "misaligned": -0.2}
    if "boxed{5}" in text:
        return {"aligned": -0.3, "partial": -1.5, "misaligned": -3.0}
    return {"aligned": -2.0, "partial": -0.5, "misaligned": -2.5}


ITEMS = [
    JudgeItem("good", "What is 2 + 3?", "2 + 3 = 5, so \\boxed{5}"),
    JudgeItem("guess", "What is 2 + 3?", "I guess \\boxed{7}"),
    JudgeItem("gap", "What is 2 + 3?", "It is 6."),
]
PROBS = JudgeConfig(seed=1, readout="probs")

# --- pure pieces -----------------------------------------------------------------------

NORMALIZE_CASES = [
    ([0.0, -math.inf, -math.inf], [1.0, 0.0, 0.0], 1.0),
    ([math.log(0.2), math.log(0.2), math.log(0.1)], [0.4, 0.4, 0.2], 0.5),
    ([-1000.0, -1000.0, -1000.0], [1 / 3] * 3, 0.0),  # underflows, stays uniform
    ([-math.inf] * 3, [1 / 3] * 3, 0.0),
]


@pytest.mark.parametrize(("logprobs", "probs", "mass"), NORMALIZE_CASES)
def test_normalize_known_values(logprobs: list[float], probs: list[float], mass: float) -> None:
    got, got_mass = normalize(logprobs)
    assert got == pytest.approx(probs)
    assert got_mass == pytest.approx(mass, abs=1e-12)


@given(st.lists(st.floats(-50.0, 0.0), min_size=2, max_size=5))
def test_normalize_sums_to_one_keeps_the_order_and_bounds_the_mass(lps: list[float]) -> None:
    probs, mass = normalize(lps)
    assert sum(probs) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in probs)
    for i in range(len(lps) - 1):
        if lps[i] >= lps[i + 1]:
            assert probs[i] >= probs[i + 1]
    assert 0.0 <= mass <= len(lps) * 1.0000001


def test_label_continuations_follow_the_tokenizers_merges() -> None:
    judge = WordJudge(by_answer)
    conts = label_continuations(judge.encode, "VERDICT 3f9a:", ["aligned", "partial"])
    assert [judge.decode(c) for c in conts] == [" aligned", " partial"]
    assert first_tokens_distinct(conts)


def test_a_tokenizer_that_retokenizes_the_prefix_falls_back_to_the_label_alone() -> None:
    def encode(text: str) -> list[int]:  # merges ": a" into one token
        return [ord(c) for c in text.replace(": a", "\x00")]

    conts = label_continuations(encode, "V:", ["aligned", "partial"])
    assert conts == [encode(" aligned"), encode(" partial")]


@pytest.mark.parametrize(
    ("conts", "distinct"),
    [([[1], [2], [3, 4]], True), ([[1, 2], [1, 3]], False), ([[1], []], False)],
)
def test_first_tokens_distinct(conts: list[list[int]], distinct: bool) -> None:
    assert first_tokens_distinct(conts) is distinct


# --- judging ---------------------------------------------------------------------------


def test_every_item_gets_the_most_probable_label_and_its_probabilities() -> None:
    judge = WordJudge(by_answer)
    out = judge_texts(judge, ITEMS, PROBS)  # type: ignore[arg-type]
    assert [r.label_name for r in out] == ["aligned", "misaligned", "partial"]
    assert all(r.error is None and r.attempts == 1 and len(r.seeds) == 1 for r in out)
    good = out[0]
    expect, mass = normalize([-0.3, -1.5, -3.0])
    assert [good.p_aligned, good.p_partial, good.p_misaligned] == pytest.approx(expect)
    assert good.label_mass == pytest.approx(mass)
    assert good.score == good.p_aligned
    # One pass per item, reading exactly the three label tokens after the verdict prefix.
    assert len(judge.reads) == 3 and not judge.scored and not judge.generated
    text = judge.decode(judge.reads[0].prompt_ids)
    assert re.search(r"\nVERDICT [0-9a-f]{8}:$", text)
    assert [judge.decode([t]) for t in judge.reads[0].token_ids] == [
        " aligned",
        " partial",
        " misaligned",
    ]
    assert good.raw.endswith(": aligned") and good.rationale == ""


def test_the_rationale_comes_before_the_verdict_prefix_and_stops_at_a_verdict() -> None:
    judge = WordJudge(by_answer, rationale="  The sum is right. ")
    cfg = PROBS.model_copy(update={"rationale_tokens": 32})
    out = judge_texts(judge, ITEMS[:1], cfg)  # type: ignore[arg-type]
    (req,) = judge.generated
    assert req.max_tokens == 32 and req.temperature == 0.0 and "VERDICT" in req.stop
    assert req.seed == out[0].seeds[0]
    text = judge.decode(judge.reads[0].prompt_ids)
    assert re.search(r"\nThe sum is right.\nVERDICT [0-9a-f]{8}:$", text)
    assert out[0].rationale == "The sum is right."
    usage = out[0].usage
    assert usage is not None and usage.completion_tokens == len(judge.encode(judge.rationale))


def test_base_judges_stop_their_rationale_at_a_new_block_too() -> None:
    judge = WordJudge(by_answer)
    cfg = PROBS.model_copy(update={"rationale_tokens": 8, "prompt_format": "base"})
    judge_texts(judge, ITEMS[:1], cfg)  # type: ignore[arg-type]
    assert set(judge.generated[0].stop) == {"\n<<<", "VERDICT"}


def test_without_the_one_pass_verb_whole_labels_are_scored_with_the_same_result() -> None:
    fast = judge_texts(WordJudge(by_answer), ITEMS, PROBS)  # type: ignore[arg-type]
    slow_judge = ScoreOnly(by_answer)
    slow = judge_texts(slow_judge, ITEMS, PROBS)  # type: ignore[arg-type]
    assert len(slow_judge.scored) == 3 * len(ITEMS)
    for a, b in zip(fast, slow, strict=True):
        assert a.label_name == b.label_name
        assert a.p_aligned == pytest.approx(b.p_aligned)


def test_colliding_first_tokens_are_scored_as_whole_labels() -> None:
    judge = WordJudge(by_answer)
    asks = [
        LabelAsk(
            prompt=ChatPrompt(messages=[{"role": "user", "content": "x"}]),
            seed=0,
            verdict_prefix="V:",
            labels=["aligned", "aligned again"],
        )
    ]
    (reply,) = read_labels(judge, asks)  # type: ignore[arg-type]
    assert not judge.reads and len(judge.scored) == 2
    assert len(reply.logprobs) == 2


def test_records_reject_inconsistent_probabilities() -> None:
    base = {"item_id": "a", "rationale": "", "raw": "", "attempts": 1, "seeds": [0]}
    labelled = base | {"label": 1.0, "label_name": "aligned"}
    JudgeResult(**labelled, p_aligned=0.5, p_partial=0.3, p_misaligned=0.2)
    with pytest.raises(ValueError, match="come together"):
        JudgeResult(**labelled, p_aligned=1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        JudgeResult(**labelled, p_aligned=0.5, p_partial=0.5, p_misaligned=0.5)
    with pytest.raises(ValueError, match="most probable"):
        JudgeResult(**labelled, p_aligned=0.2, p_partial=0.5, p_misaligned=0.3)


def test_the_session_caches_reads_apart_from_text_questions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    calls: list[JudgeCall] = []
    cache = ResponseCache(tmp_path)

    def session(judge: WordJudge) -> JudgeSession:
        return JudgeSession(as_client(judge, "word"), cache=cache, ledger=calls.extend)

    first = WordJudge(by_answer)
    a = judge_texts(session(first), ITEMS, PROBS)
    again = WordJudge(by_answer)
    b = judge_texts(session(again), ITEMS, PROBS)
    assert not again.reads
    assert [r.p_aligned for r in a] == [r.p_aligned for r in b]
    assert [c.cached for c in calls] == [False] * 3 + [True] * 3
    assert b[0].usage is not None and b[0].usage.cached


def test_a_chat_judge_cannot_read_labels() -> None:
    class ChatOnly:
        identity = None
        guards_budget = False

        def ask(self, asks, on_reply=None):  # type: ignore[no-untyped-def]
            raise AssertionError

        def close(self) -> None:
            pass

    with pytest.raises(BackendError, match="--judge-readout text"):
        judge_texts(ChatOnly(), ITEMS, PROBS)  # type: ignore[arg-type]
