"""`faithcheck score --model A --model B`: several checkpoints, one comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faithcheck.comparison.multi import combined_decision, run_names
from faithcheck.report import Verdict


def test_run_names_are_safe_and_unique() -> None:
    assert run_names(["./ckpt/a", "/x/ckpt/a", "org/model b"]) == ["a", "a-2", "model-b"]


class _R:
    def __init__(self, decision: str | None) -> None:
        self.verdict = (
            None
            if decision is None
            else Verdict.model_validate({"decision": decision, "exit_code": 0})
        )


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        (["GO", "GO"], "GO"),
        (["GO", "INCONCLUSIVE"], "INCONCLUSIVE"),
        (["INCONCLUSIVE", "NO_GO", "GO"], "NO_GO"),
        ([None, None], None),
    ],
)
def test_combined_decision_is_the_worst(decisions: list[str | None], expected: str | None) -> None:
    assert combined_decision([_R(d) for d in decisions]) == expected  # type: ignore[misc]


@pytest.mark.slow
def test_same_weights_under_two_specs_compare_with_zero_deltas(
    tmp_path: Path, model_path: str
) -> None:
    """The alias and its converted folder are the same weights: paired deltas are exactly 0."""
    out = tmp_path / "cmp"
    cmd = [
        sys.executable, "-m", "faithcheck", "score",
        "--model", "smollm2-135m", "--model", model_path,
        "--backend", "hf", "--limit", "2", "--samples", "2", "--max-tokens", "48",
        "--temperature", "0", "--dtype", "float32", "--probes", "truncation",
        "--no-judge", "--no-diversity", "--out", str(out), "--json",
    ]  # fmt: skip
    # Chatty libraries (their logs on) must still leave stdout to the JSON alone.
    env = os.environ | {"TRANSFORMERS_VERBOSITY": "info", "VLLM_LOGGING_LEVEL": "INFO"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 4, proc.stderr[-2000:]  # 2 problems: inconclusive
    comparison = json.loads(proc.stdout)
    assert comparison == json.loads((out / "comparison.json").read_text())
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(names) == 2
    for name in names:
        assert (out / name / "report.json").is_file()
    deltas = comparison["deltas"]
    assert deltas
    values = [d["value"] for per_metric in deltas.values() for d in per_metric.values()]
    assert any(v is not None for v in values)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in values if v is not None)


def test_score_models_scores_each_model_into_its_folder_and_writes_the_comparison(
    tmp_path: Path,
) -> None:
    """The scripted backend stands in for both checkpoints; a repeated model is refused
    before anything is scored."""
    import faithcheck
    from faithcheck.comparison.multi import score_models
    from faithcheck.errors import UsageError
    from faithcheck.pipeline.options import score_options
    from tests.judge.test_jury import _rollouts
    from tests.probes.test_run import ScriptedBackend

    rollouts = str(_rollouts(tmp_path))
    scored: list[tuple[str, str]] = []

    def score_one(one: Any) -> Any:
        scored.append((one.model, one.out))
        backend = ScriptedBackend(lambda chain: "")
        kwargs = {"probes": "none", "diversity": False, "judge": False, "out": one.out}
        return faithcheck.score(backend, from_samples=rollouts, **kwargs)

    opts = score_options(model="a", out=str(tmp_path / "cmp"))
    with pytest.raises(UsageError, match="given twice"):
        score_models(opts, ["x/a", "y/a", "x/a"], score_one)
    assert scored == []
    root, reports, comparison = score_models(opts, ["x/a", "y/a"], score_one)
    assert root == tmp_path / "cmp"
    assert scored == [("x/a", str(root / "a")), ("y/a", str(root / "a-2"))]
    assert len(reports) == 2
    written = json.loads((root / "comparison.json").read_text())
    assert written == json.loads(comparison.model_dump_json())
