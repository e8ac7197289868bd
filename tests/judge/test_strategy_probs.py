"""The strategy judge's two read-outs on scripted backends: the probability read-out labels
every pair by its probabilities (recorded in strategy.jsonl) and shares the prompt prefix
and the response cache as the rubric's does; the text read-out is unchanged."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import pytest

from faithcheck.backends.base import ChatPrompt
from faithcheck.backends.hf_prefix import common_prefix_len
from faithcheck.judge import JudgeConfig, cluster_with_backend, strategy_verdicts
from faithcheck.judge.cache import ResponseCache
from faithcheck.judge.client import JudgeCall, JudgeSession, as_client
from faithcheck.judge.probs import normalize
from faithcheck.judge.stage import StrategyRecord, strategy_into, strategy_lookup
from faithcheck.judge.strategy import STRATEGY_SYSTEM
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord
from faithcheck.store.jsonio import dumps
from faithcheck.store.rundir import STRATEGY_FILE, RunDir
from tests.judge.test_probs import ScoreOnly, WordJudge
from tests.judge.test_run import ScriptedJudge, nonce_of

PROBS = JudgeConfig(seed=3, readout="probs")
TEXT = JudgeConfig(seed=3, max_retries=1)

PROBLEMS = {
    "p1": Problem(id="p1", question="Q1", answer="1"),
    "p2": Problem(id="p2", question="Q2", answer="2"),
}
# Responses name their method as `method:X`; `method:?` is a pair the text judge cannot
# decide (it never writes a verdict line for it).
RESPONSES = {
    "p1": ["method:x 1", "method:y", "method:x 2", "method:?"],
    "p2": ["method:z", "method:z again"],
}


def _methods(text: str) -> tuple[str, str]:
    a, b = re.findall(r"method:(\S)", text)
    return a, b


def by_method(text: str) -> dict[str, float]:
    """SAME for equal methods, DIFFERENT otherwise; a lean to DIFFERENT for `?`."""
    a, b = _methods(text)
    if "?" in (a, b):
        return {"SAME": -3.0, "DIFFERENT": -2.0}
    return {"SAME": -0.2, "DIFFERENT": -1.8} if a == b else {"SAME": -2.5, "DIFFERENT": -0.1}


def says_verdict(text: str, req: object) -> str:
    a, b = _methods(text)
    if "?" in (a, b):
        return "cannot tell"
    return f"Both...\nVERDICT {nonce_of(text)}: {'SAME' if a == b else 'DIFFERENT'}"


def _sample(pid: str, index: int, text: str) -> SampleRecord:
    return SampleRecord(
        problem_id=pid,
        sample_index=index,
        seed=0,
        prompt_tokens=1,
        completion=text,
        completion_token_ids=[],
        finish_reason="stop",
        steps=[],
        answer=None,
        answer_rule="none",
        correct=False,
        verify_method="none",
    )


SAMPLES = [_sample(pid, i, t) for pid, texts in RESPONSES.items() for i, t in enumerate(texts)]


def _cluster(path: Path, judge: object, cfg: JudgeConfig) -> tuple[bytes, list[StrategyRecord]]:
    run = RunDir(path)
    run.open()
    strategy_into(run, judge, PROBLEMS, SAMPLES, cfg)  # type: ignore[arg-type]
    data = (path / STRATEGY_FILE).read_bytes()
    records = run.load(STRATEGY_FILE, StrategyRecord)
    run.release()
    return data, records


# --- (a) every pair labelled ------------------------------------------------------------


def test_every_pair_gets_a_label_and_every_problem_its_clusters(tmp_path: Path) -> None:
    judge = WordJudge(by_method)
    _, records = _cluster(tmp_path / "run", judge, PROBS)
    p1, p2 = records
    assert p1.clusters == [0, 1, 0, 2] and p2.clusters == [0, 0]
    assert p1.undecided == 0 == p2.undecided
    # Every comparison made is recorded: p1 compares 1, 2, 2 pairs in its three rounds.
    assert p1.pairs is not None and p2.pairs is not None
    assert [(p.a, p.b) for p in p1.pairs] == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3)]
    assert [(p.a, p.b) for p in p2.pairs] == [(0, 1)]
    assert [p.p_same > 0.5 for p in p1.pairs] == [False, True, False, False, False]
    # The pair the text judge leaves undecided has its probability too.
    assert p1.pairs[-1].p_same == pytest.approx(normalize([-2.0, -3.0])[0][1])
    assert not judge.generated and not judge.scored  # one next-token read per pair
    run = RunDir(tmp_path / "run")
    assert strategy_lookup(run)("p1") == {0: 0, 1: 1, 2: 0, 3: 2}


def test_the_text_read_out_leaves_that_problem_out() -> None:
    """The contrast: with the text read-out the `?` pairs stay undecided."""
    pairs = [("Q", "method:?", "method:x"), ("Q", "method:x", "method:x")]
    assert [v.same for v in strategy_verdicts(ScriptedJudge(says_verdict), pairs, TEXT)] == [
        None,
        True,
    ]
    assert [v.same for v in strategy_verdicts(WordJudge(by_method), pairs, PROBS)] == [
        False,
        True,
    ]


def test_clustering_one_problem_reads_probabilities_too() -> None:
    responses = RESPONSES["p1"]
    assert cluster_with_backend(WordJudge(by_method), "Q", responses, PROBS) == [0, 1, 0, 2]


# --- (b) the label follows the probabilities -------------------------------------------

LABEL_CASES = [
    # (log P(SAME), log P(DIFFERENT)) -> same?
    ((-0.1, -2.5), True),
    ((-2.5, -0.1), False),
    ((-20.0, -19.9), False),
    ((-19.9, -20.0), True),
    ((math.log(0.3), math.log(0.3)), False),  # a tie never merges two strategies
    ((-math.inf, -math.inf), False),  # no mass on either label: uniform, a tie
]


@pytest.mark.parametrize(("logprobs", "same"), LABEL_CASES)
def test_the_label_is_the_more_probable_one(logprobs: tuple[float, float], same: bool) -> None:
    lp_same, lp_diff = logprobs
    judge = WordJudge(lambda text: {"SAME": lp_same, "DIFFERENT": lp_diff})
    (verdict,) = strategy_verdicts(judge, [("Q", "method:a", "method:b")], PROBS)
    (_, p_same), mass = normalize([lp_diff, lp_same])
    assert verdict.same is same
    assert verdict.p_same == pytest.approx(p_same)
    assert verdict.label_mass == pytest.approx(mass)


def test_without_the_one_pass_verb_whole_labels_give_the_same_verdicts() -> None:
    pairs = [("Q", a, b) for a in RESPONSES["p1"] for b in RESPONSES["p1"]]
    slow_judge = ScoreOnly(by_method)
    fast = strategy_verdicts(WordJudge(by_method), pairs, PROBS)
    slow = strategy_verdicts(slow_judge, pairs, PROBS)
    assert len(slow_judge.scored) == 2 * len(pairs)
    assert [v.same for v in slow] == [v.same for v in fast]
    assert [v.p_same for v in slow] == pytest.approx([v.p_same for v in fast])


# --- (c) the text read-out is unchanged -------------------------------------------------

TEXT_STRATEGY_JSONL = (
    b'{"problem_id":"p1","sample_indices":[0,1,2,3],"clusters":[0,1,0,2],"undecided":2}\n'
    b'{"problem_id":"p2","sample_indices":[0,1],"clusters":[0,0],"undecided":0}\n'
)
TEXT_REQUESTS_SHA256 = "9fdecfbd91ecda8f5357e5d6c547f7bd5227683daeab9999316e7ea1ae5ce95b"
"""sha256 of every generation request the text read-out sent for `SAMPLES`, captured
before the probability read-out existed."""


def test_the_text_read_out_asks_and_writes_byte_for_byte_as_before(tmp_path: Path) -> None:
    judge = ScriptedJudge(says_verdict)
    data, _ = _cluster(tmp_path / "run", judge, TEXT)
    assert data == TEXT_STRATEGY_JSONL
    assert len(judge.requests) == 8  # 6 comparisons, the 2 undecided retried once
    sent = hashlib.sha256(b"".join(dumps(r) for r in judge.requests)).hexdigest()
    assert sent == TEXT_REQUESTS_SHA256


# --- (d) a shared prefix, a shared cache -----------------------------------------------


def test_every_comparison_is_one_read_of_prompts_sharing_the_system_prefix(tmp_path: Path) -> None:
    judge = WordJudge(by_method)
    _cluster(tmp_path / "run", judge, PROBS)
    prompts = [r.prompt_ids for r in judge.reads]
    assert len(prompts) == 6  # every comparison, one forward pass each
    system = judge.render(ChatPrompt(messages=[{"role": "system", "content": STRATEGY_SYSTEM}]))
    # The whole system message (but the newline the word tokenizer joins to the next word).
    assert common_prefix_len(prompts) >= len(system) - 1
    for read in judge.reads:
        text = judge.decode(read.prompt_ids)
        nonce = nonce_of(text)
        assert text.endswith(f"\nVERDICT {nonce}:")
        assert [judge.decode([t]) for t in read.token_ids] == [" DIFFERENT", " SAME"]


def test_a_rationale_comes_before_the_verdict_prefix() -> None:
    judge = WordJudge(by_method, rationale="Both add.")
    cfg = PROBS.model_copy(update={"rationale_tokens": 16})
    strategy_verdicts(judge, [("Q", "method:a", "method:a")], cfg)
    (req,) = judge.generated
    assert req.max_tokens == 16 and "VERDICT" in req.stop
    assert re.search(r"\nBoth add.\nVERDICT [0-9a-f]+:$", judge.decode(judge.reads[0].prompt_ids))


def test_a_second_clustering_is_answered_from_the_response_cache(tmp_path: Path) -> None:
    calls: list[JudgeCall] = []
    cache = ResponseCache(tmp_path / "cache")

    def session(judge: WordJudge) -> JudgeSession:
        return JudgeSession(as_client(judge, "word"), cache=cache, ledger=calls.extend)

    first, again = WordJudge(by_method), WordJudge(by_method)
    data, _ = _cluster(tmp_path / "a", session(first), PROBS)
    assert _cluster(tmp_path / "b", session(again), PROBS)[0] == data
    assert len(first.reads) == 6 and not again.reads
    assert [c.cached for c in calls] == [False] * 6 + [True] * 6
    assert {c.purpose for c in calls} == {"strategy"}
