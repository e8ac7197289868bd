"""report.json of a whole `score` run on a bundled dataset, byte for byte against a golden
copy: the pipeline may be reshaped (how its stages are sequenced, which code runs which),
never what it reports.

The run is real from the options to report.json (every stage: sampling, every probe, the
judge with its strategy clusters and calibration, the checks, diversity without the
embedder) on a scripted backend: character tokens, replies decided by hashes of the prompt
and the request seed, so it loads nothing and takes seconds. Only the fields that differ
between two equal runs are set aside (`VOLATILE`): the run's name and directory (its
path), the timings, and the tokens per second (the sampling phase's time).

Regenerate the golden file (only for a change that is meant to change the report) with
`FAITHCHECK_WRITE_GOLDEN=1 pytest tests/pipeline/test_golden.py`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import orjson
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
from faithcheck.backends.cuts import read_cuts_naive
from faithcheck.backends.precision import Precision
from faithcheck.models import ModelIdentity
from faithcheck.pipeline.core import Preloaded, run_score
from faithcheck.pipeline.options import score_options

GOLDEN = Path(__file__).parent / "golden"
DATASET = Path(__file__).parents[2] / "data" / "samples" / "math.jsonl"
VOLATILE = ("run_id", "run_dir", "timings", "tokens_per_s")
ASSISTANT = "\n[assistant]\n"
IDENTITY = ModelIdentity(
    spec="scripted", kind="in-memory", path="scripted", sha256="5" * 64, has_chat_template=True
)


def _bits(*parts: object) -> int:
    """A deterministic number from `parts` (0-255)."""
    return hashlib.sha256(repr(parts).encode()).digest()[0]


def _completion(text: str) -> Completion:
    return Completion(text=text, token_ids=[ord(c) for c in text], finish_reason="stop")


class ScriptedModel:
    """Character tokens; a chain of three steps ending in a boxed answer (the gold one or
    one off, by the request seed); a read-out after a cut that depends on how much of the
    chain is kept; and, as the judge, a verdict by hash of the response."""

    name = "scripted"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        """Question -> gold answer of the problems it is asked."""

    def render(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, ChatPrompt):
            text = "".join(f"[{m['role']}]\n{m['content']}" for m in prompt.messages)
            return self.encode(text + ASSISTANT)
        return self.encode(prompt.text)

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)

    def eos_ids(self) -> set[int]:
        return set()

    def close(self) -> None:
        pass

    def read_cuts(self, requests: Sequence[CutReadRequest]) -> list[list[CutReadout]]:
        return read_cuts_naive(self, requests)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        out = []
        for r in requests:
            text = self.decode(r.prompt_ids)
            replies = [self._reply(text, r.seed, i)[: r.max_tokens] for i in range(r.n)]
            out.append([_completion(t) for t in replies])
        return out

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        out = []
        for r in requests:
            hit = self.decode(r.continuation_ids) == self._readout(self.decode(r.prefix_ids))
            lps = [-0.1 if hit else -3.0] * len(r.continuation_ids)
            out.append(ScoreResult(token_logprobs=lps, logprob_sum=sum(lps), greedy=hit))
        return out

    def _reply(self, text: str, seed: int, i: int) -> str:
        mistake = re.search(r"Item nonce: ([0-9a-f]+)", text)
        if mistake is not None and "MISTAKE" in text:
            step = text.split("NEXT STEP", 1)[1].splitlines()[1]
            return f"One number off.\nMISTAKE {mistake.group(1)}: {step} Then 3 + 4 = 8."
        judged = re.search(r"<<<RESPONSE ([0-9a-f]+)>>>", text)
        if judged is not None:
            label = ("aligned", "partial", "misaligned")[_bits(text) % 3]
            return f"It adds up.\nVERDICT {judged.group(1)}: {label}"
        pair = re.search(r"<<<RESPONSE A ([0-9a-f]+)>>>", text)
        if pair is not None:
            return f"Compared.\nVERDICT {pair.group(1)}: {('SAME', 'DIFFERENT')[_bits(text) % 2]}"
        if text.endswith("\\boxed{"):
            return self._readout(text)
        chain = text.split(ASSISTANT, 1)[-1]
        if chain:  # a continuation after a cut or a corrupted step
            return "\n\nSo the answer is \\boxed{" + self._readout(text + "\\boxed{")
        return self._chain(text, seed, i)

    def _chain(self, text: str, seed: int, i: int) -> str:
        """The gold answer two times in three, else one more; a derivation of it most of
        the time, else a bare assertion."""
        gold = next(int(a) for q, a in self.answers.items() if q in text)
        total = gold + (_bits(seed, i) % 3 == 0)
        a = int(re.findall(r"\d+", text)[0]) % max(gold, 1)
        if _bits(seed, i, "asserted") % 4 == 0:
            return f"It is clear.\n\nThe answer is \\boxed{{{total}}}."
        return (
            f"We start from {a}.\n\nThen {a} + {total - a} = {total}.\n\n"
            f"The answer is \\boxed{{{total}}}."
        )

    def _readout(self, text: str) -> str:
        chain = text.split(ASSISTANT, 1)[-1]
        numbers = re.findall(r"\d+", chain)
        kept = len(chain) // 40
        return (numbers[-1] if numbers and kept % 2 else str(_bits(chain) % 7)) + "}"


CASES = {
    "everything": {},
    "llm-mistakes": {"mistakes": "llm", "probes": "mistakes", "strategy": False},
    "no-judge": {"judge": False, "limit": 4, "diversity": False},
}
"""Each case's options beyond the common ones of `_score`: every stage; the judge loaded
during the probes to write their mistakes; a run without the judge or diversity."""


def _score(out: Path, monkeypatch: pytest.MonkeyPatch, **options: object) -> bytes:
    """report.json of a scripted run into `out`, its volatile fields set aside."""
    import faithcheck.judge.plan as plan

    monkeypatch.setattr(plan, "resolve_model", lambda *a, **k: IDENTITY)  # judge: the model
    # The dataset by a path relative to the checkout: the report (and the config hash) hold
    # it as given, so the golden copies do not depend on where the repository is cloned.
    monkeypatch.chdir(DATASET.parents[2])
    common: dict[str, object] = {
        "dataset": str(DATASET.relative_to(DATASET.parents[2])),
        # A fixed dtype: `auto` resolves from the CPU, and the judge's dtype is in the hash.
        "dtype": "float32",
        "limit": 6,
        "samples": 3,
        "max_tokens": 200,
        "probes": "truncation,mistakes,necessity,controls",
        "judge_readout": "text",
        "calibration_size": 1,
        "embed": False,
        "out": str(out),
    }
    opts = score_options("scripted", **(common | options))
    problems = [orjson.loads(line) for line in DATASET.read_bytes().splitlines()]
    model = ScriptedModel({p["question"]: p["answer"] for p in problems})
    precision = Precision(requested="auto", dtype=None, reason="scripted", device="test")
    run_score(opts, say=lambda _: None, preloaded=Preloaded(model, IDENTITY, precision))
    report = orjson.loads((out / "report.json").read_bytes())
    for key in VOLATILE:
        report.pop(key, None)
        report.get("throughput", {}).pop(key, None)
    return orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_of_a_scripted_run_is_the_golden_one(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = _score(tmp_path / "run", monkeypatch, **CASES[case])
    golden = GOLDEN / f"{case}.json"
    if os.environ.get("FAITHCHECK_WRITE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(got)
    assert got == golden.read_bytes()


LIFETIMES = {
    "judge-reuses-the-model": (
        {"judge_model": ["scripted"]},
        ["load scripted", "close scripted"],
    ),
    "separate-judge": (
        {"judge_model": ["judge-a"]},
        ["load scripted", "close scripted", "load judge-a", "close scripted", "close judge-a"],
    ),
    "llm-mistakes-loads-the-judge-with-the-model": (
        {"judge_model": ["judge-a"], "mistakes": "llm", "probes": "mistakes"},
        ["load scripted", "load judge-a", "close scripted", "close judge-a"],
    ),
    "jury-one-engine-at-a-time": (
        {"judge_model": ["judge-a", "judge-b"]},
        [
            *("load scripted", "close scripted", "load judge-a", "close scripted"),
            *("close judge-a", "load judge-b", "close judge-b", "close scripted"),
        ],
    ),
    "jury-reusing-the-model": (
        {"judge_model": ["scripted", "judge-b"]},
        ["load scripted", "close scripted", "load judge-b", "close judge-b", "close scripted"],
    ),
    "no-judge": ({"judge": False}, ["load scripted", "close scripted"]),
    "preloaded-model-never-closed": (
        {"preloaded": True, "judge_model": ["judge-a"]},
        ["load scripted", "load judge-a", "close judge-a"],
    ),
    "preloaded-model-judging-in-a-jury": (
        {"preloaded": True, "judge_model": ["scripted", "judge-b"]},
        ["load scripted", "load judge-b", "close judge-b"],
    ),
}
"""Each case's options and the engines it loads and closes, in order (the scored model's
`close` is called again where the run closes every engine: a closed engine's `close` is a
no-op). `preloaded`: the caller's model (`score(model=...)`), made before the run."""


@pytest.mark.parametrize("case", sorted(LIFETIMES))
def test_engines_load_and_close_as_they_always_have(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scored model loads once; a judge reuses its engine when it is the same model,
    else loads once the model is closed (with `--mistakes llm`, next to it, during the
    probes); a jury's other judges load one at a time; everything is closed, but the
    caller's model."""
    import faithcheck.judge.plan as plan
    import faithcheck.pipeline.core as core

    events: list[str] = []
    problems = [orjson.loads(line) for line in DATASET.read_bytes().splitlines()]
    answers = {p["question"]: p["answer"] for p in problems}

    class Recorded(ScriptedModel):
        def __init__(self, path: str) -> None:
            super().__init__(answers)
            self.path = path
            events.append(f"load {path}")

        def close(self) -> None:
            events.append(f"close {self.path}")

    def identity(spec: str, *args: object, **kwargs: object) -> ModelIdentity:
        digest = hashlib.sha256(spec.encode()).hexdigest()
        return IDENTITY.model_copy(update={"spec": spec, "path": spec, "sha256": digest})

    monkeypatch.setattr(plan, "resolve_model", identity)
    monkeypatch.setattr(core, "resolve_model", identity)
    monkeypatch.setattr(core, "choose_backend", lambda *a, **k: "hf")
    monkeypatch.setattr(core, "make_backend", lambda name, path, **k: Recorded(path))
    options, expected = LIFETIMES[case]
    preloaded = None
    if options.get("preloaded"):
        precision = Precision(requested="auto", dtype=None, reason="scripted", device="test")
        preloaded = Preloaded(Recorded("scripted"), identity("scripted"), precision)
        options = {k: v for k, v in options.items() if k != "preloaded"}
    opts = score_options(
        "scripted",
        **{
            "dataset": str(DATASET),
            "backend": "hf",
            "limit": 2,
            "samples": 2,
            "probes": "truncation",
            "judge_readout": "text",
            "calibration_size": 1,
            "embed": False,
            "out": str(tmp_path / "run"),
        }
        | options,
    )
    run_score(opts, say=lambda _: None, preloaded=preloaded)
    assert events == expected
