"""Judge rubric on scripted judges: parsing, retries, seeds, aggregates, strategy clusters."""

from __future__ import annotations

import gc
import re
import weakref
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from faithcheck.backends.base import (
    ChatPrompt,
    Completion,
    CutReadout,
    CutReadRequest,
    FinishReason,
    GenerationRequest,
    Prompt,
    ScoreRequest,
    ScoreResult,
)
from faithcheck.errors import BackendError, DataError
from faithcheck.judge import (
    JUDGE_PROMPT_HASH,
    JudgeConfig,
    JudgeItem,
    JudgeRecord,
    cluster_with_backend,
    greedy_strategy_clusters,
    judge_samples,
    judge_texts,
    same_strategy_batch,
    summarize_judge,
)
from faithcheck.judge.parse import parse_label
from faithcheck.judge.prompt import item_nonce, judge_prompt
from faithcheck.judge.run import HOPELESS_BATCH
from faithcheck.judge.strategy import parse_strategy
from faithcheck.judge.summary import JudgeSummary, LabelShares, summarize_judge_groups
from faithcheck.metrics import MetricValue, bootstrap_pooled, group_by
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord

Reply = str | tuple[str, FinishReason]
Policy = Callable[[str, GenerationRequest], Reply]
"""Maps the rendered prompt text and the request to the judge's reply."""

NONCE_RE = re.compile(r"<<<RESPONSE(?: A)? ([0-9a-f]+)>>>")


def nonce_of(prompt_text: str) -> str:
    """The nonce the scripted judge reads off the prompt's markers (as a real one would)."""
    match = NONCE_RE.search(prompt_text)
    assert match is not None
    return match.group(1)


class ScriptedJudge:
    """Character-level tokens; replies come from a policy over the rendered prompt."""

    name = "scripted-judge"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.requests: list[GenerationRequest] = []
        self.calls = 0

    def render(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, ChatPrompt):
            text = "\n".join(f"[{m['role']}]\n{m['content']}" for m in prompt.messages)
        else:
            text = prompt.text
        return self.encode(text)

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        self.calls += 1
        out = []
        for r in requests:
            self.requests.append(r)
            reply = self.policy(self.decode(r.prompt_ids), r)
            text, finish = reply if isinstance(reply, tuple) else (reply, "stop")
            out.append([Completion(text=text, token_ids=self.encode(text), finish_reason=finish)])
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        raise NotImplementedError

    def eos_ids(self) -> set[int]:
        return set()

    def read_cuts(self, requests: Sequence[CutReadRequest]) -> list[list[CutReadout]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def says(label: str) -> Policy:
    """A well-behaved judge that always gives `label`."""
    return lambda text, req: (
        f"The answer is 5, derived by adding.\nVERDICT {nonce_of(text)}: {label}"
    )


CFG = JudgeConfig(seed=3)
ITEMS = [
    JudgeItem(f"i{k}", "What is 2 + 3?", f"2 + 3 = 5, so \\boxed{{5}} ({k})") for k in range(5)
]

# --- parsing ---------------------------------------------------------------------------

N = "3f9a1c0b"
PARSE_CASES: list[tuple[str, str | None]] = [
    (f"Rationale.\nVERDICT {N}: aligned", "aligned"),
    (f"VERDICT {N}: partial", "partial"),
    (f"VERDICT {N}: misaligned", "misaligned"),
    (f"VERDICT {N}: 1", "aligned"),
    (f"VERDICT {N}: 1.0", "aligned"),
    (f"VERDICT {N}: 0.5", "partial"),
    (f"VERDICT {N}: .5", "partial"),
    (f"VERDICT {N}: 0", "misaligned"),
    (f"VERDICT {N}: 0.00", "misaligned"),
    (f"verdict {N.upper()}: ALIGNED", "aligned"),
    (f"**VERDICT {N}: aligned**", "aligned"),
    (f"**VERDICT {N}:** **Partial**.", "partial"),
    (f"`VERDICT {N}: misaligned`", "misaligned"),
    (f"## VERDICT {N}: aligned", "aligned"),
    (f"- VERDICT [{N}] = aligned!", "aligned"),
    (f"VERDICT ({N}) - 0.5", "partial"),
    (f"VERDICT {N}: 1 (aligned)", "aligned"),
    (f"VERDICT {N}: misaligned (0)", "misaligned"),
    (f"Text\nVERDICT {N}: aligned\n\n   \n", "aligned"),  # trailing blank lines
    (f"VERDICT {N}: not aligned", "misaligned"),
    (f"VERDICT {N}: 1 (partial)", None),  # two different labels
    (f"VERDICT {N}: aligned or partial", None),
    (f"VERDICT {N}: <label>", None),  # the format line itself
    (f"VERDICT {N}: 2", None),
    (f"VERDICT {N}: 0.7", None),
    (f"VERDICT {N}: -0", None),
    (f"VERDICT {N}:", None),
    (f"VERDICT {N}: aligned\nThanks!", None),  # not the last line
    (f"VERDICT {N}: aligned because the steps are fine", None),
    ("VERDICT 00000000: aligned", None),  # wrong nonce
    (f"VERDICT {N}0: aligned", None),  # longer nonce
    (f"VERDICT {N[:-1]}: aligned", None),  # shorter nonce
    ("Label: aligned", None),
    ("aligned", None),
    ("1", None),
    ("", None),
    ("\n\n  \n", None),
    (f"The verdict is VERDICT {N}: aligned", None),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse_table(text: str, expected: str | None) -> None:
    verdict = parse_label(text, N)
    assert (verdict.value if verdict else None) == expected


def test_parse_keeps_rationale() -> None:
    verdict = parse_label(f"Final answer 5.\nIt adds 2 and 3.\n\nVERDICT {N}: aligned", N)
    assert verdict is not None
    assert verdict.rationale == "Final answer 5.\nIt adds 2 and 3."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"VERDICT {N}: SAME", True),
        (f"**VERDICT {N}: different**", False),
        (f"VERDICT {N}: different strategies.", False),
        (f"VERDICT {N}: same or different", None),
        (f"VERDICT {N}: aligned", None),
        ("VERDICT 0000: SAME", None),
    ],
)
def test_parse_strategy_table(text: str, expected: bool | None) -> None:
    verdict = parse_strategy(text, N)
    assert (verdict.value if verdict else None) == expected


VALID_LINES = st.tuples(
    st.sampled_from(["", "**", "`", "## ", "- "]),
    st.sampled_from(["VERDICT", "verdict", "Verdict"]),
    st.sampled_from([": ", " - ", " = ", " "]),
    st.sampled_from(
        [("aligned", "aligned"), ("1", "aligned"), ("0.5", "partial"), ("Misaligned", "misaligned")]
    ),
    st.sampled_from(["", ".", "!", "  "]),
)


@settings(max_examples=200, deadline=None)
@given(st.text(), VALID_LINES, st.text(alphabet=" \t\n", max_size=4))
def test_parse_property(prefix: str, line: tuple, trailing: str) -> None:
    """Never raises; a tagged verdict is found iff it is the last non-empty line."""
    assume(N not in prefix.lower())
    assert parse_label(prefix, N) is None
    deco, word, sep, (label, name), tail = line
    closing = deco if deco in ("**", "`") else ""
    text = f"{prefix}\n{deco}{word} {N}{sep}{label}{closing}{tail}{trailing}"
    verdict = parse_label(text, N)
    assert verdict is not None and verdict.value == name
    # Anything non-blank after the verdict line hides it.
    assume(prefix.strip())
    assert parse_label(text + "\n" + prefix, N) is None


# --- running: batching, retries, seeds -------------------------------------------------


def test_judge_texts_labels_in_order_and_batches() -> None:
    labels = ["aligned", "partial", "misaligned", "1", "0.5"]
    backend = ScriptedJudge(
        lambda text, req: f"ok\nVERDICT {nonce_of(text)}: {labels[int(text.split('(')[-1][0])]}"
    )
    results = judge_texts(backend, ITEMS, JudgeConfig(batch_size=2))
    assert [r.label for r in results] == [1.0, 0.5, 0.0, 1.0, 0.5]
    assert [r.item_id for r in results] == [f"i{k}" for k in range(5)]
    assert all(r.error is None and r.attempts == 1 and r.rationale == "ok" for r in results)
    assert backend.calls == 3  # 5 items in batches of 2
    assert all(r.temperature == 0.0 and r.max_tokens == 384 for r in backend.requests)


def test_plain_tuples_accepted() -> None:
    results = judge_texts(ScriptedJudge(says("aligned")), [("x", "Q?", "A")], CFG)
    assert results[0].item_id == "x" and results[0].label == 1.0


def test_retry_after_garbage() -> None:
    def policy(text: str, req: GenerationRequest) -> str:
        return "hmm" if req.temperature == 0.0 else f"fine\nVERDICT {nonce_of(text)}: partial"

    backend = ScriptedJudge(policy)
    (result,) = judge_texts(backend, ITEMS[:1], CFG)
    assert result.label == 0.5 and result.label_name == "partial"
    assert result.attempts == 2 and result.error is None
    assert [r.temperature for r in backend.requests] == [0.0, 0.7]
    assert len(set(result.seeds)) == 2
    assert [r.seed for r in backend.requests] == result.seeds


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("no verdict here", "unparseable"),
        ("   \n", "empty"),
        (("still thinking about VERDICT", "length"), "max_tokens"),
    ],
)
def test_judge_error_after_retries(reply: Reply, why: str) -> None:
    backend = ScriptedJudge(lambda text, req: reply)
    (result,) = judge_texts(backend, ITEMS[:1], CFG)
    assert result.label is None and result.label_name is None
    assert result.error is not None and result.error.startswith("judge_error:")
    assert why in result.error
    assert result.attempts == 3 and len(set(result.seeds)) == 3


def test_length_cut_verdict_not_trusted() -> None:
    # "0.5" cut to "0" would parse as misaligned: a reply at max_tokens never counts.
    backend = ScriptedJudge(lambda text, req: (f"x\nVERDICT {nonce_of(text)}: 0", "length"))
    (result,) = judge_texts(backend, ITEMS[:1], JudgeConfig(max_retries=0))
    assert result.label is None and "max_tokens" in (result.error or "")


def test_no_retries() -> None:
    backend = ScriptedJudge(lambda text, req: "garbage")
    (result,) = judge_texts(backend, ITEMS[:1], JudgeConfig(max_retries=0))
    assert result.attempts == 1 and result.error is not None


def test_deterministic_and_seed_dependent() -> None:
    def run(seed: int) -> list[list[int]]:
        backend = ScriptedJudge(lambda text, req: "garbage")
        return [r.seeds for r in judge_texts(backend, ITEMS, JudgeConfig(seed=seed))]

    assert run(1) == run(1)
    assert run(1) != run(2)
    seeds = run(1)
    assert len({s for item in seeds for s in item}) == len(ITEMS) * 3  # no seed reused


def test_seeds_do_not_depend_on_batching() -> None:
    def seeds(batch: int, items: Sequence[JudgeItem]) -> dict[str, list[int]]:
        backend = ScriptedJudge(lambda text, req: "garbage")
        out = judge_texts(backend, items, JudgeConfig(batch_size=batch, max_retries=1))
        return {r.item_id: r.seeds for r in out}

    assert seeds(1, ITEMS) == seeds(16, ITEMS) == seeds(3, ITEMS[::-1])


def test_prompt_formats() -> None:
    nonce = item_nonce(0, "i", ("Q?", "A"))
    chat = judge_prompt("Q?", "A", nonce, "chat")
    assert isinstance(chat, ChatPrompt)
    assert [m["role"] for m in chat.messages] == ["system", "user"]
    assert "NOT the question" in chat.messages[0]["content"]
    base = judge_prompt("Q?", "A", nonce, "base")
    assert base.kind == "text" and base.text.endswith("Assessment:\n")
    assert len(JUDGE_PROMPT_HASH) == 16

    backend = ScriptedJudge(says("aligned"))
    judge_texts(backend, ITEMS[:1], JudgeConfig(prompt_format="base"))
    assert backend.requests[0].stop == ["\n<<<"]


def test_backend_error_propagates() -> None:
    def broken(text: str, req: GenerationRequest) -> str:
        raise BackendError("engine died")

    with pytest.raises(BackendError):
        judge_texts(ScriptedJudge(broken), ITEMS[:1], CFG)


# --- judge_samples ---------------------------------------------------------------------


def _sample(
    pid: str, index: int, correct: bool, text: str = "2 + 3 = 5. \\boxed{5}"
) -> SampleRecord:
    return SampleRecord(
        problem_id=pid,
        sample_index=index,
        seed=0,
        prompt_tokens=0,
        completion=text,
        completion_token_ids=[],
        finish_reason="stop",
        steps=[],
        answer="5",
        answer_rule="boxed",
        correct=correct,
        verify_method="math_verify",
    )


PROBLEMS = {p: Problem(id=p, question=f"Question {p}?", answer="5") for p in ("p1", "p2")}


def test_judge_samples_copies_sample_fields_in_order() -> None:
    samples = [_sample("p1", 0, True), _sample("p2", 0, False), _sample("p1", 1, True)]
    backend = ScriptedJudge(says("misaligned"))
    records = list(judge_samples(backend, PROBLEMS, samples, JudgeConfig(batch_size=2)))
    assert [(r.problem_id, r.sample_index, r.correct) for r in records] == [
        ("p1", 0, True),
        ("p2", 0, False),
        ("p1", 1, True),
    ]
    assert all(r.label == 0.0 and r.answer == "5" for r in records)
    assert backend.calls == 2
    assert "Question p2?" in backend.decode(backend.requests[1].prompt_ids)


def test_judge_samples_unknown_problem() -> None:
    with pytest.raises(DataError):
        list(judge_samples(ScriptedJudge(says("aligned")), PROBLEMS, [_sample("p9", 0, True)], CFG))


# --- aggregates ------------------------------------------------------------------------


def _rec(pid: str, i: int, correct: bool, name: str | None) -> JudgeRecord:
    values = {"aligned": 1.0, "partial": 0.5, "misaligned": 0.0}
    return JudgeRecord(
        problem_id=pid,
        sample_index=i,
        label=values[name] if name else None,
        label_name=name,  # type: ignore[arg-type]
        rationale="",
        raw="",
        attempts=1,
        seeds=[0],
        error=None if name else "judge_error: unparseable reply",
        correct=correct,
        answer="5",
    )


def test_summary_known_values() -> None:
    records = [
        _rec("p1", 0, True, "aligned"),
        _rec("p1", 1, True, "misaligned"),
        _rec("p2", 0, True, "aligned"),
        _rec("p2", 1, True, "partial"),
        _rec("p2", 2, False, "misaligned"),
        _rec("p3", 0, False, "aligned"),
        _rec("p3", 1, False, None),  # judge error: counted, not in shares
        _rec("p3", 2, True, None),
    ]
    s = summarize_judge(records, seed=1, prompt_version="v", judge_model="m")
    assert s.correct_but_misaligned_rate.value == pytest.approx(0.25)
    assert s.aligned_share_of_correct.value == pytest.approx(0.5)
    assert s.among_correct.partial.value == pytest.approx(0.25)
    assert s.among_correct.judged == 4
    assert s.among_incorrect.aligned.value == pytest.approx(0.5)
    assert s.among_incorrect.misaligned.value == pytest.approx(0.5)
    assert s.among_all.aligned.value == pytest.approx(3 / 6)
    assert s.mean_label.value == pytest.approx(3.5 / 6)
    assert s.error_rate.value == pytest.approx(2 / 8)
    assert (s.responses, s.judged, s.errors, s.correct, s.incorrect) == (8, 6, 2, 5, 3)
    assert s.problems == 3 and s.error_rate.n == 3
    assert s.prompt_version == "v" and s.judge_model == "m"
    for m in (s.aligned_share_of_correct, s.mean_label, s.error_rate):
        assert m.ci_low is not None and m.ci_high is not None
        assert m.ci_low <= (m.value or 0) <= m.ci_high


def test_summary_shares_sum_to_one_and_order_invariant() -> None:
    records = [
        _rec(f"p{k % 3}", k, k % 2 == 0, ["aligned", "partial", "misaligned"][k % 3])
        for k in range(12)
    ]
    s = summarize_judge(records)
    for group in (s.among_correct, s.among_incorrect, s.among_all):
        total = sum(m.value or 0 for m in (group.aligned, group.partial, group.misaligned))
        assert total == pytest.approx(1.0)
    # Point values ignore record order (the CI's resampling follows problem order).
    flipped = summarize_judge(records[::-1])
    assert flipped.mean_label.value == pytest.approx(s.mean_label.value or 0)
    assert flipped.among_all.aligned.value == pytest.approx(s.among_all.aligned.value or 0)


def test_summary_empty_and_all_errors() -> None:
    empty = summarize_judge([])
    assert empty.aligned_share_of_correct.value is None and empty.responses == 0
    errors = summarize_judge([_rec("p1", 0, True, None), _rec("p1", 1, False, None)])
    assert errors.error_rate.value == 1.0
    assert errors.aligned_share_of_correct.value is None
    assert errors.among_all.judged == 0


def test_record_rejects_inconsistent_label() -> None:
    good = _rec("p", 0, True, "aligned").model_dump()
    assert JudgeRecord.model_validate(good).label == 1.0
    with pytest.raises(ValueError):
        JudgeRecord.model_validate({**_rec("p", 0, True, "aligned").model_dump(), "label": 0.5})
    with pytest.raises(ValueError):
        JudgeRecord.model_validate({**_rec("p", 0, True, None).model_dump(), "error": None})


def _reference_judge(
    records: Sequence[JudgeRecord], seed: int = 0, **meta: str | None
) -> JudgeSummary:
    """The flat computation over a list of records, as summarize_judge did before it
    folded per-problem groups: kept to prove the fold gives bit-identical summaries."""

    def pooled(
        recs: Sequence[JudgeRecord],
        num: Callable[[JudgeRecord], bool],
        den: Callable[[JudgeRecord], bool],
    ) -> MetricValue:
        groups = group_by(recs, lambda r: r.problem_id).values()
        units = [(float(sum(num(r) for r in g)), float(sum(den(r) for r in g))) for g in groups]
        return bootstrap_pooled(units, seed=seed)

    def shares(recs: Sequence[JudgeRecord]) -> LabelShares:
        def labelled(r: JudgeRecord) -> bool:
            return r.label is not None

        return LabelShares(
            aligned=pooled(recs, lambda r: r.label_name == "aligned", labelled),
            partial=pooled(recs, lambda r: r.label_name == "partial", labelled),
            misaligned=pooled(recs, lambda r: r.label_name == "misaligned", labelled),
            judged=sum(labelled(r) for r in recs),
        )

    by_problem = group_by(records, lambda r: r.problem_id).values()
    mean_units = [
        (sum(r.label for r in g if r.label is not None), float(sum(r.label is not None for r in g)))
        for g in by_problem
    ]
    correct = [r for r in records if r.correct]
    incorrect = [r for r in records if not r.correct]
    among_correct = shares(correct)
    errors = sum(r.error is not None for r in records)
    return JudgeSummary(
        aligned_share_of_correct=among_correct.aligned,
        correct_but_misaligned_rate=among_correct.misaligned,
        among_correct=among_correct,
        among_incorrect=shares(incorrect),
        among_all=shares(records),
        mean_label=bootstrap_pooled(mean_units, seed=seed),
        error_rate=pooled(records, lambda r: r.error is not None, lambda r: True),
        responses=len(records),
        judged=len(records) - errors,
        errors=errors,
        correct=len(correct),
        incorrect=len(incorrect),
        problems=len({r.problem_id for r in records}),
        **meta,
    )


def _judge_groups() -> list[list[JudgeRecord]]:
    """Hand-built run: problems with no correct (or no incorrect) response, one whose
    correct responses all failed to be judged, one with only judge errors."""
    return [
        [_rec("p1", 0, True, "aligned"), _rec("p1", 1, True, "partial"), _rec("p1", 2, True, None)],
        [_rec("p2", 0, False, "misaligned"), _rec("p2", 1, False, "aligned")],  # none correct
        [_rec("p3", 0, True, None), _rec("p3", 1, False, None)],  # judge errors only
        [_rec("p4", 1, False, "partial"), _rec("p4", 0, True, None), _rec("p4", 2, False, None)],
        [_rec("p5", i, i % 2 == 0, ["misaligned", "aligned", "partial"][i % 3]) for i in range(7)],
        [_rec("p6", 0, True, "misaligned")],
    ]


def _flat_judge(groups: Sequence[Sequence[JudgeRecord]]) -> list[JudgeRecord]:
    return [r for g in groups for r in g]


@pytest.mark.parametrize("seed", [0, 5])
def test_judge_groups_equal_the_flat_summary(seed: int) -> None:
    groups = _judge_groups()
    meta = {"prompt_version": "v", "judge_model": "m"}
    expected = _reference_judge(_flat_judge(groups), seed=seed, **meta).model_dump_json()
    # JSON text compares floats bit for bit (repr), CIs included.
    streamed = summarize_judge_groups(iter(groups), seed=seed, **meta)
    assert streamed.model_dump_json() == expected
    assert summarize_judge(_flat_judge(groups), seed=seed, **meta).model_dump_json() == expected
    # Problems with no response in a subset contribute no unit there.
    # p3's and p4's correct responses are all judge errors: a (0, 0) unit, dropped.
    assert streamed.among_correct.aligned.n == 3  # p1, p5, p6
    assert streamed.among_incorrect.aligned.n == 3  # p2, p4, p5
    assert streamed.mean_label.n == 5 and streamed.error_rate.n == 6
    counts = (streamed.responses, streamed.errors, streamed.correct, streamed.problems)
    assert counts == (18, 5, 10, 6)


def test_judge_groups_edge_cases() -> None:
    assert summarize_judge_groups([]) == summarize_judge([]) == _reference_judge([])
    errors_only = [[], [_rec("p1", 0, True, None)], [_rec("p2", 0, False, None)]]
    s = summarize_judge_groups(iter(errors_only))
    assert s == _reference_judge(_flat_judge(errors_only))
    assert s.error_rate.value == 1.0 and s.problems == 2 and s.mean_label.value is None


def test_judge_groups_are_read_lazily_and_dropped() -> None:
    """Each group is built only when asked for, and is gone once the next one is folded:
    the summary keeps numbers, never records."""
    n = len(_judge_groups())
    refs: list[list[weakref.ref[JudgeRecord]]] = []
    reads = 0

    def stream() -> Iterator[list[JudgeRecord]]:
        nonlocal reads
        reads += 1
        for k in range(n):
            gc.collect()
            # All but the last group handed out (the consumer's loop still holds it).
            assert all(ref() is None for held in refs[:-1] for ref in held), f"group {k}"
            group = _judge_groups()[k]
            refs.append([weakref.ref(r) for r in group])
            yield group
            del group

    class Once:
        def __iter__(self) -> Iterator[list[JudgeRecord]]:
            return stream()

    s = summarize_judge_groups(Once(), seed=2)
    gc.collect()
    assert reads == 1 and len(refs) == n
    assert all(ref() is None for held in refs for ref in held)
    expected = _reference_judge(_flat_judge(_judge_groups()), seed=2)
    assert s.model_dump_json() == expected.model_dump_json()


_LABELS = st.sampled_from([None, "aligned", "partial", "misaligned"])


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(st.lists(st.tuples(st.booleans(), _LABELS), max_size=6), max_size=5),
    seed=st.integers(0, 3),
)
def test_judge_groups_match_reference(
    shapes: list[list[tuple[bool, str | None]]], seed: int
) -> None:
    groups = [
        [_rec(f"p{p}", i, correct, name) for i, (correct, name) in enumerate(shape)]
        for p, shape in enumerate(shapes)
    ]
    expected = _reference_judge(_flat_judge(groups), seed=seed).model_dump_json()
    assert summarize_judge_groups(iter(groups), seed=seed).model_dump_json() == expected
    assert summarize_judge(_flat_judge(groups), seed=seed).model_dump_json() == expected


# --- strategy --------------------------------------------------------------------------


def test_greedy_clusters_known_cases() -> None:
    five = ["r"] * 5
    assert greedy_strategy_clusters(five, lambda a, b: True) == [0, 0, 0, 0, 0]
    assert greedy_strategy_clusters(five, lambda a, b: False) == [0, 1, 2, 3, 4]
    assert greedy_strategy_clusters(five, lambda a, b: None) == [0, 1, 2, 3, 4]
    assert greedy_strategy_clusters([], lambda a, b: True) == []
    # Parity strategies: joins the first matching representative.
    assert greedy_strategy_clusters(five, lambda a, b: a % 2 == b % 2) == [0, 1, 0, 1, 0]


def _strategy_policy(text: str, req: GenerationRequest) -> str:
    """Responses name their method as 'method:X'; 'method:?' makes the judge fail."""
    a, b = re.findall(r"method:(\S)", text)
    if "?" in (a, b):
        return "cannot tell"
    return f"Both...\nVERDICT {nonce_of(text)}: {'SAME' if a == b else 'DIFFERENT'}"


def test_same_strategy_batch() -> None:
    backend = ScriptedJudge(_strategy_policy)
    pairs = [
        ("Q", "method:x", "method:x"),
        ("Q", "method:x", "method:y"),
        ("Q", "method:?", "method:x"),
    ]
    assert same_strategy_batch(backend, pairs, CFG) == [True, False, None]
    assert backend.calls == 3  # one round, then two retry rounds for the failing pair


def test_cluster_with_backend_matches_greedy() -> None:
    responses = ["method:x 1", "method:y", "method:x 2", "method:?", "method:y 2", "method:z"]
    backend = ScriptedJudge(_strategy_policy)
    labels = cluster_with_backend(backend, "Q", responses, JudgeConfig(max_retries=0))
    assert labels == [0, 1, 0, 2, 1, 3]
    assert backend.calls == len(responses) - 1  # one batched round per later response

    def same(i: int, j: int) -> bool | None:
        return same_strategy_batch(
            ScriptedJudge(_strategy_policy), [("Q", responses[i], responses[j])], CFG
        )[0]

    assert greedy_strategy_clusters(responses, same) == labels


# --- real model (plumbing only) --------------------------------------------------------


@pytest.mark.slow
def test_real_judge_plumbing(hf_fp32: object) -> None:
    from faithcheck.models import DEFAULT_MODEL, resolve_model

    fmt = "chat" if resolve_model(DEFAULT_MODEL).has_chat_template else "base"
    cfg = JudgeConfig(max_tokens=24, max_retries=1, prompt_format=fmt)
    items = [
        JudgeItem("a", "What is 2 + 3?", "2 + 3 = 5.\nThe answer is \\boxed{5}."),
        JudgeItem("b", "What is 6 * 7?", "I just know it.\n\\boxed{41}"),
    ]
    results = judge_texts(hf_fp32, items, cfg)  # type: ignore[arg-type]
    assert [r.item_id for r in results] == ["a", "b"]
    for r in results:
        assert r.label in (1.0, 0.5, 0.0) or (r.label is None and r.error)
        assert isinstance(r.rationale, str) and isinstance(r.raw, str)
        assert 1 <= r.attempts <= 2 and len(r.seeds) == r.attempts


def _items(n: int) -> list[JudgeItem]:
    return [JudgeItem(f"h{i}", "What is 2 + 2?", f"2 + 2 = 4, step {i}.") for i in range(n)]


@pytest.mark.parametrize(("n", "attempts"), [(HOPELESS_BATCH - 1, 2), (HOPELESS_BATCH, 1)])
def test_a_judge_that_never_follows_the_format_is_not_retried(n: int, attempts: int) -> None:
    """Retries are skipped only when a whole call of at least HOPELESS_BATCH questions
    got not one parseable first reply; every question is still a judge error."""
    backend = ScriptedJudge(lambda text, req: "I think it is fine.")
    out = judge_texts(backend, _items(n), JudgeConfig(max_retries=1))
    assert [r.attempts for r in out] == [attempts] * n
    assert all(r.label is None and (r.error or "").startswith("judge_error:") for r in out)
    assert len(backend.requests) == n * attempts


def test_one_parseable_first_reply_keeps_the_retries() -> None:
    def policy(text: str, req: GenerationRequest) -> str:
        first = "step 0." in text
        return f"ok\nVERDICT {nonce_of(text)}: aligned" if first else "no idea"

    out = judge_texts(ScriptedJudge(policy), _items(HOPELESS_BATCH), JudgeConfig(max_retries=1))
    assert out[0].label == 1.0 and out[0].attempts == 1
    assert [r.attempts for r in out[1:]] == [2] * (HOPELESS_BATCH - 1)
