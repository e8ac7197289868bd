"""Whatever a model writes — nothing, no answer, a cut-off step, LaTeX or unicode junk —
is a recorded outcome, never an exception.

Function level: each response goes through parsing, verification, the derivation
check, probe preparation and perturbation. CLI level: the same responses come back
from a scripted server (sampling, with every probe on) and from a rollout file
(`--from-samples`), and every one of them is on disk, parsed, afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faithcheck.backends.base import Completion, GenerationRequest
from faithcheck.checks.derivation import STATUSES, analyze
from faithcheck.probes.perturb import apply, corrupt
from faithcheck.probes.readout import readout_answer
from faithcheck.probes.run import prepare
from faithcheck.problems.parsing import extract_answer, normalize_answer, split_steps
from faithcheck.records import Problem
from faithcheck.sampling import to_record
from tests.judge.test_run import ScriptedJudge
from tests.reliability.conftest import (
    QUIET,
    ScriptedServer,
    openai_args,
    read_records,
    run_cli,
    sample_keys,
    write_jsonl,
)

JUNK: dict[str, str] = {
    "empty": "",
    "whitespace": "  \n\n\t \n ",
    "no_answer": "Let me think about this.\n\nHmm, I am not sure how to proceed here.",
    "cut_mid_step": "First, 12 × 4 = 48.\n\nThen 48 + 7 =",
    "cut_mid_word": "First, 12 × 4 = 48.\n\nThen we multi",
    "cut_inside_box": "12 × 4 = 48, plus 7.\n\nSo the answer is \\boxed{\\frac{55",
    "empty_box": "The answer is \\boxed{} and also \\boxed{   }.",
    "latex_junk": (
        "$$\\frac{1}{2$$ \\left( \\right. }}}{{{ \\begin{matrix} \\end{pmatrix}\n\n"
        "\\sqrt[3]{\\frac{\\frac{}{}}{}} = \\text{\\textbf{?}} \\\\ \\\\ & &= \\cdot\\cdot"
    ),
    "nested_boxes": "\\boxed{\\boxed{\\boxed{7}}} and \\fbox{\\boxed{8}",
    "escaped_braces": "\\boxed{\\{1, 2\\}} then \\boxed{\\}} \\{ \\",
    "unicode_junk": (
        "１２＋３＝１５\u202e reversed \u202c 🤖🔥 \u200b\u200d\ufeff \x00 \x1b[31mred\x1b[0m "
        "e\u0301\u0301\u0301 ٣ + ٤ = ٧ ﷽ −5 − 3 = −8 𝟕"
    ),
    "only_symbols": "= = = + - × ÷ ( ) [ ] { } % $ \\ ^ ** ²³",
    "deep_parens": "(" * 3000 + "1" + ")" * 3000 + " = 1",
    "deep_braces": "{" * 5000 + "\\boxed{" + "}" * 5000,
    "long_sum": "1 + " * 20000 + "1 = 20001",
    "many_equals": "= " * 50000,
    "long_number": "9" * 100_000,
    "many_steps": "\n\n".join(f"Step {i}: {i} + 1 = {i + 1}." for i in range(2000)),
}

PROBLEM = Problem(id="junk", question="What is 12 × 4 + 7?", answer="55", domain="math")


def _request(max_tokens: int = 8) -> GenerationRequest:
    return GenerationRequest(
        prompt_ids=[1], n=1, seed=0, temperature=1.0, top_p=1.0, max_tokens=max_tokens
    )


def _completion(text: str, finish: str = "stop") -> Completion:
    return Completion(text=text, token_ids=[ord(c) for c in text], finish_reason=finish)  # type: ignore[arg-type]


@pytest.mark.parametrize("finish", ["stop", "length"])
@pytest.mark.parametrize("name", list(JUNK))
def test_junk_response_is_a_recorded_outcome(name: str, finish: str) -> None:
    text = JUNK[name]
    req = _request(len(text) + 1)
    rec = to_record(PROBLEM, 0, req, _completion(text, finish))
    assert rec.finish_reason == finish and rec.completion == text
    for step in rec.steps:
        assert text[step.start : step.end] == step.text and step.text.strip() == step.text
    if rec.answer is None:
        assert rec.answer_rule == "none" and not rec.correct and rec.verify_method == "none"
    else:
        found = extract_answer(text)
        assert found.start is not None and found.end is not None
        assert text[found.start : found.end] == rec.answer
        normalize_answer(rec.answer)
    finding = analyze(rec.problem_id, 0, text, rec.steps, rec.answer)
    assert finding.status in STATUSES
    readout_answer(text[:2000])
    # A record survives the round trip through samples.jsonl.
    assert type(rec).model_validate_json(rec.model_dump_json()) == rec


@pytest.mark.parametrize(
    "name",
    JUNK,
)
def test_junk_step_can_be_corrupted_or_left_alone(name: str) -> None:
    """The mistakes probe changes one number or operator of a step, or reports that
    there is nothing to change."""
    for step in split_steps(JUNK[name])[:50]:
        c = corrupt(step.text, ("junk", step.index))
        if c is not None:
            assert apply(step.text, c) != step.text


@pytest.mark.parametrize("name", [n for n in JUNK if len(JUNK[n]) < 5000])
def test_junk_chain_is_probed_or_skipped(name: str) -> None:
    """Chains without an answer or steps are not probed (None), never an error."""
    text = JUNK[name]
    req = _request()
    rec = to_record(PROBLEM, 0, req, _completion(text))
    backend = ScriptedJudge(lambda prompt, r: "")  # character-level tokens
    chain = prepare(backend, PROBLEM, rec, [1])  # type: ignore[arg-type]
    if rec.answer is None or not rec.steps:
        assert chain is None
    else:
        assert chain is not None and chain.cuts[0] == 0 and chain.cuts[-1] <= len(chain.ids)


@pytest.mark.parametrize("name", ["empty", "whitespace", "no_answer"])
def test_no_answer_is_recorded_as_none(name: str) -> None:
    req = _request()
    rec = to_record(PROBLEM, 0, req, _completion(JUNK[name]))
    assert (rec.answer, rec.answer_rule, rec.correct) == (None, "none", False)
    assert analyze("junk", 0, rec.completion, rec.steps, None).status == "not-applicable"


# Responses for the CLI runs: the junk above, minus the ones whose size only tests speed.
CLI_JUNK = [n for n in JUNK if len(JUNK[n]) < 5000]


def test_junk_from_a_server_through_sampling_and_every_probe(
    tmp_path: Path, model_path: str, server: ScriptedServer
) -> None:
    """Each problem's one sample is one junk response; the cut ones come back with
    finish_reason "length" (max tokens reached mid-step). Every probe runs on them."""
    server.replies = [(JUNK[n], "length" if n.startswith("cut") else "stop") for n in CLI_JUNK]
    rows = [{"id": n, "question": "What is 12 × 4 + 7?", "answer": "55"} for n in CLI_JUNK]
    write_jsonl(tmp_path / "junk.jsonl", rows)
    args = [*openai_args(server.url, model_path), "--dataset", "junk.jsonl", "--samples", "1"]
    args += ["--probes", "truncation,mistakes,necessity,controls", "--no-judge"]
    result = run_cli([*args, "--no-diversity", "--out", "run", "--json"], tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 4, result.stderr  # INCONCLUSIVE: far too few responses
    records = read_records(tmp_path / "run")
    assert sorted(sample_keys(records)) == sorted((n, 0) for n in CLI_JUNK)
    by_id = {r["problem_id"]: r for r in records["samples.jsonl"]}
    for name in CLI_JUNK:
        rec = by_id[name]
        assert rec["completion"] == JUNK[name]
        assert rec["answer"] == extract_answer(JUNK[name]).answer
        assert rec["finish_reason"] == ("length" if name.startswith("cut") else "stop")
    probed = {r["problem_id"] for r in records["probes.jsonl"]}
    assert "empty" not in probed and "no_answer" not in probed
    assert "cut_mid_step" in probed  # it has steps and a (last-number) answer
    report = json.loads(result.stdout)
    cut = sum(n.startswith("cut") for n in CLI_JUNK)
    assert report["sampling"]["truncated_rate"] == pytest.approx(cut / len(CLI_JUNK))


def test_junk_rollouts_through_from_samples(
    tmp_path: Path, model_path: str, server: ScriptedServer
) -> None:
    """Saved rollouts with junk responses (several per problem) are all re-scored."""
    rows = [
        {
            "id": f"q{i % 3}",
            "question": f"What is {i % 3} + 1?",
            "answer": str(i % 3 + 1),
            "response": JUNK[name],
        }
        for i, name in enumerate(CLI_JUNK)
    ]
    write_jsonl(tmp_path / "rollouts.jsonl", rows)
    args = [*openai_args(server.url, model_path), "--from-samples", "rollouts.jsonl", *QUIET]
    result = run_cli([*args, "--out", "run"], tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 4, result.stderr
    records = read_records(tmp_path / "run")
    assert len(sample_keys(records)) == len(CLI_JUNK)
    assert {r["completion"] for r in records["samples.jsonl"]} == {JUNK[n] for n in CLI_JUNK}
    assert server.count("/v1/completions") == 0  # replayed, never generated
