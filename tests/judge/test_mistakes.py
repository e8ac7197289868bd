"""`--mistakes llm`: the judge model writes the mistake (scripted writers and judges)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from faithcheck.backends.base import Completion, GenerationRequest
from faithcheck.errors import UsageError
from faithcheck.judge.mistakes import parse_mistake, write_mistakes
from faithcheck.judge.records import JudgeConfig
from faithcheck.probes import ProbeConfig, run_probes
from faithcheck.probes.records import MistakeRecord, ProbeRecord
from faithcheck.records import Problem
from tests.probes.test_run import CHAIN, QUESTION, ScriptedBackend, _sample, reads_chain

NONCE = "0a1b2c3d"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (f"Change 4 to 5.\nMISTAKE {NONCE}: I get 5 more.", "I get 5 more."),
        (f"**MISTAKE {NONCE}:** I get 9 more.", "I get 9 more."),
        (f"MISTAKE {NONCE}: I get 4 more.", None),  # unchanged step
        ("MISTAKE ffffffff: I get 5 more.", None),  # wrong nonce
        (f"MISTAKE {NONCE}: I get 5 more.\nmore text", None),  # not the last line
        (f"MISTAKE {NONCE}: <the rewritten step>", None),  # the placeholder
        ("", None),
    ],
)
def test_parse_mistake(reply: str, expected: str | None) -> None:
    parsed = parse_mistake(reply, NONCE, "I get 4 more.")
    assert (parsed.value if parsed else None) == expected


def _run_llm(writer: object) -> list[ProbeRecord]:
    problem = Problem(id="p1", question=QUESTION, answer="7")
    backend = ScriptedBackend(reads_chain)
    records: list[ProbeRecord] = []
    run_probes(
        backend,
        [problem],
        [_sample(CHAIN)],
        lambda p: backend.encode("Q: " + p.question + "\nA:"),
        ProbeConfig(probes=["mistakes"], mistakes="llm"),
        max_tokens=64,
        seed=0,
        on_records=records.extend,
        mistake_writer=writer,  # type: ignore[arg-type]
    )
    return records


def test_llm_mistake_that_feeds_the_answer_flips_it_and_is_recorded() -> None:
    asked: list[tuple[str, str, str, str]] = []

    def writer(items: list[tuple[str, str, str, str]]) -> list[str | None]:
        asked.extend(items)
        return [step.replace("4", "40") if "4" in step else None for *_, step in items]

    records = [r for r in _run_llm(writer) if isinstance(r, MistakeRecord)]
    # Two steps precede the answer step; the writer can corrupt only the second.
    assert [item[3] for item in asked] == ["I have 3 apples.", "I get 4 more."]
    assert asked[1][2] == "I have 3 apples."  # the earlier steps are shown
    (rec,) = records
    assert rec.kind == "llm" and rec.step_index == 1
    assert (rec.original, rec.replacement) == ("I get 4 more.", "I get 40 more.")
    assert rec.answer == "43" and rec.flipped  # the faithful model follows the mistake


def test_llm_mistakes_need_a_writer() -> None:
    with pytest.raises(UsageError, match="needs the judge"):
        _run_llm(None)


class _MistakeJudge:
    """Answers the mistake prompt like a cooperative judge would (attempt 2 only)."""

    name = "mistake-judge"

    def __init__(self) -> None:
        self.calls = 0

    def render(self, prompt: object) -> list[int]:
        text = "\n".join(m["content"] for m in prompt.messages)  # type: ignore[attr-defined]
        return [ord(c) for c in text]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        out = []
        for r in requests:
            self.calls += 1
            text = "".join(chr(i) for i in r.prompt_ids)
            nonce = text.split("<<<NEXT STEP ", 1)[1][:8]
            step = text.split(f"<<<NEXT STEP {nonce}>>>\n", 1)[1].split("\n<<<END", 1)[0]
            reply = "no idea" if r.temperature == 0 else f"MISTAKE {nonce}: {step} plus one"
            out.append([Completion(text=reply, token_ids=[1], finish_reason="stop")])
        return out


def test_write_mistakes_retries_then_reads_the_tagged_line() -> None:
    judge = _MistakeJudge()
    got = write_mistakes(judge, [("a", "Q?", "", "I get 4 more.")], JudgeConfig(max_retries=1))  # type: ignore[arg-type]
    assert got == ["I get 4 more. plus one"] and judge.calls == 2
    none = write_mistakes(judge, [("b", "Q?", "", "x")], JudgeConfig(max_retries=0))  # type: ignore[arg-type]
    assert none == [None]
