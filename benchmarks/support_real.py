"""False alarms of the judge-free support check on real models' correct chains.

The constructed sets (`benchmarks/support.py`) measure the support rules on responses
whose faithfulness is known by construction. This benchmark asks what the rules cost on
what real models write: it reads scored runs (`faithcheck score` on the bundled math
problems, any model, any backend), takes every response whose final answer is correct,
runs the support check on it as `score` does (the current rules), and counts how it
classifies them:

- the share of correct chains per support status (`support.correct_but_unsupported` is
  one minus the `supported` share);
- the share flagged by each of the three rules added for compensating steps and stated
  answers: `compensated` (an uncorrected wrong equation on the answer's path), `bare
  constant` (`invented-operand` whose only untraced operands are documented constants
  the question does not imply), `conclusions` (`contradicted` or `answer-first` judged by
  the concluding step, on a non-numeric answer);
- a sample of the flagged chains, printed whole with the problem, for checking by hand.

A flag on a correct chain is not necessarily a false alarm: a small model's right answer
after a wrong step is exactly what `compensated` is for. The hand check says which flags
are real. Notes from checking are kept in `benchmarks/support_real_notes.json`, keyed by
a hash of the problem id and the completion, and printed beside the chain they describe;
a chain that no note matches (another CPU's sampling, another seed) prints "not checked".

    faithcheck score --model qwen2.5-0.5b --dataset math --samples 8 --max-tokens 512 \\
        --probes none --no-judge --no-diversity --out runs/sr-qwen
    python benchmarks/support_real.py runs/sr-qwen [runs/sr-135m ...] [--show 12]

Pure Python over the runs' files: seconds.

Measured (2026-12-07, every flag checked by hand, notes in the JSON): Qwen2.5-0.5B on the
bundled math problems 1 of 70 correct chains flagged, on held-out organism problems 1 of 22,
SmolLM2-135M 1 of 1, all three real (before names were followed across lines: 12 of 93, 9
of them false alarms). docs/checks.md has the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from faithcheck.checks.support import (
    CONSTANTS,
    SUPPORT_STATUSES,
    SupportFinding,
    check_response,
)
from faithcheck.problems.load import load_problems
from faithcheck.sampling import SampleRecord
from faithcheck.store.jsonio import read_jsonl

NOTES = Path(__file__).with_name("support_real_notes.json")
CONSTANT_VALUES = {float(v) for v in CONSTANTS}


@dataclass(frozen=True)
class Chain:
    """One correct response and its support finding."""

    model: str
    problem_id: str
    sample_index: int
    question: str
    completion: str
    finding: SupportFinding

    @property
    def key(self) -> str:
        """Stable id for hand-check notes: the problem and the exact completion."""
        digest = hashlib.sha256(f"{self.problem_id}\n{self.completion}".encode()).hexdigest()
        return digest[:16]


def new_rule(f: SupportFinding) -> str | None:
    """Which of the three new rules flags the finding (None: supported or an older rule)."""
    if f.status == "compensated":
        return "compensated"
    if f.status == "invented-operand" and all(v in CONSTANT_VALUES for v in f.untraced_values):
        return "bare constant"
    if f.status in ("contradicted", "answer-first") and not f.numeric:
        return "conclusions"
    return None


def load_run(run: Path) -> tuple[list[Chain], int]:
    """The correct responses of a scored run with their support findings, recomputed by
    the current rules (the run's own support.jsonl holds the rules of its day), and the
    run's response count."""
    meta = json.loads((run / "run.json").read_text())
    model = meta["model"]["spec"]
    questions = {p.id: p.question for p in load_problems(meta["dataset"]["spec"])}
    out = []
    responses = 0
    for row in read_jsonl(run / "samples.jsonl"):
        responses += 1
        r = SampleRecord.model_validate(row)
        if not r.correct:
            continue
        q = questions.get(r.problem_id, "")
        finding = check_response(r, q)
        out.append(Chain(model, r.problem_id, r.sample_index, q, r.completion, finding))
    return out, responses


def report(chains: list[Chain], responses: int, show: int, notes: dict[str, str]) -> None:
    n = len(chains)
    problems = len({c.problem_id for c in chains})
    print(
        f"\n## {chains[0].model}: {n} correct chains of {responses} responses, {problems} problems"
    )
    status = Counter(c.finding.status for c in chains)
    for s in SUPPORT_STATUSES:
        if status[s]:
            print(f"  {s:18s} {status[s]:4d}  {status[s] / n:6.1%}")
    unsupported = n - status["supported"]
    print(f"  correct_but_unsupported (pooled) {unsupported / n:.1%}")
    rules = Counter(new_rule(c.finding) for c in chains)
    flagged = [c for c in chains if new_rule(c.finding)]
    for rule in ("compensated", "bare constant", "conclusions"):
        print(f"  new rule {rule:14s} flags {rules[rule]:3d}  {rules[rule] / n:6.1%}")
    print(f"  new rules together flag {len(flagged)} ({len(flagged) / n:.1%})")
    others = [c for c in chains if c.finding.status != "supported" and not new_rule(c.finding)]
    rng = random.Random(0)
    for title, group in (
        ("flagged by a new rule", flagged),
        ("unsupported by older rules", others),
    ):
        pick = sorted(rng.sample(group, min(show, len(group))), key=lambda c: c.key)
        if pick:
            print(f"\n### {title}: {len(pick)} of {len(group)}")
        for c in pick:
            f = c.finding
            print(
                f"\n- [{c.key}] {c.problem_id}#{c.sample_index} status {f.status}"
                f" (path errors {f.path_errors}, untraced {f.untraced_values})"
            )
            print(f"  note: {notes.get(c.key, 'not checked')}")
            print(textwrap.indent(textwrap.fill(c.question, 100), "  Q: "))
            body = c.completion.strip()
            print(textwrap.indent(body if len(body) < 1500 else body[:1500] + " …", "  | "))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", help="scored run directories")
    ap.add_argument("--show", type=int, default=12, help="flagged chains to print per group")
    args = ap.parse_args()
    notes = json.loads(NOTES.read_text()) if NOTES.exists() else {}
    for run in args.runs:
        if not (run / "samples.jsonl").exists():
            sys.exit(f"{run}: no samples.jsonl (not a run directory)")
        chains, responses = load_run(run)
        if not chains:
            print(f"\n## {run}: no correct chain among {responses} responses")
            continue
        report(chains, responses, args.show, notes)


if __name__ == "__main__":
    main()
