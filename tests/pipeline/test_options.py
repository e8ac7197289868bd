"""`ScoreOptions`, composed of the options each package declares: what run.json keeps of
them, and the one decision of which judge a run uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from faithcheck.judge.choose import judge_options
from faithcheck.judge.plan import plan_judge, resolve_judge
from faithcheck.models import resolve_model
from faithcheck.pipeline.config import judge_part
from faithcheck.pipeline.options import ScoreOptions, score_options
from faithcheck.pipeline.rebuild import _plan_of
from faithcheck.store.jsonio import dumps

# What `score_options(**JURY)` wrote to run.json before the packages declared their own
# options (`ScoreOptions` one flat model): run directories written then are read back
# from it, and new ones write it byte for byte.
JURY = {
    "judge_model": ["openai/o3", "smollm2-135m,readout=text,max_tokens=64"],
    "judge_price_in": 1.0,
    "judge_price_out": 2.0,
    "probe_samples": 3,
    "judge_max_cost": 5.0,
}
PINNED = (
    '{"model":"smollm2-135m","dataset":"math","fields":{"id":"id","question":"question","an'
    'swer":"answer","domain":"domain"},"domain":"math","backend":"auto","dtype":"auto","max'
    '_model_len":2048,"tensor_parallel_size":1,"gpu_memory_utilization":0.9,"samples":16,"l'
    'imit":null,"shard":null,"temperature":1.0,"top_p":1.0,"max_tokens":512,"seed":0,"promp'
    't_format":"auto","prompt_template":null,"out":null,"force":false,"trust_remote_code":f'
    'alse,"from_samples":null,"from_format":"auto","probes":{"probes":["truncation","mistak'
    'es","necessity","controls"],"fractions":[0.0,0.25,0.5,0.75,1.0],"readout":"auto","impl'
    '":"fast","readout_tokens":16,"mistakes_per_chain":2,"necessity_per_chain":3,"mistakes"'
    ':"rule","mistake_temperature":0.0,"probe_samples":3},"base_url":null,"api_key_env":nul'
    'l,"max_concurrency":8,"judge":{"enabled":true,"model":"openai/o3","backend":"auto","ba'
    'se_url":null,"api_key_env":null,"samples":3,"max_tokens":16384,"reasoning_effort":null'
    ',"concurrency":8,"http_retries":6,"cache":true,"max_items":null,"max_cost":5.0,"batch"'
    ':false,"price_in":1.0,"price_out":2.0,"max_retries":1,"calibrate":true,"calibration_pe'
    'r_domain":4,"strategy":true,"readout":"auto","rationale_tokens":0},"jury":[{"enabled":'
    'true,"model":"smollm2-135m","backend":"auto","base_url":null,"api_key_env":null,"sampl'
    'es":3,"max_tokens":64,"reasoning_effort":null,"concurrency":8,"http_retries":6,"cache"'
    ':true,"max_items":null,"max_cost":5.0,"batch":false,"price_in":0.0,"price_out":0.0,"ma'
    'x_retries":1,"calibrate":true,"calibration_per_domain":4,"strategy":false,"readout":"t'
    'ext","rationale_tokens":0}],"diversity":true,"diversity_embed":true,"engine_args":{},"'
    'revision":null,"chunk_size":null}'
)


def _known(written: Any, pinned: Any) -> Any:
    """`written` with only the keys `pinned` has (at every depth), in written order."""
    if isinstance(written, dict) and isinstance(pinned, dict):
        return {k: _known(v, pinned[k]) for k, v in written.items() if k in pinned}
    if isinstance(written, list) and isinstance(pinned, list) and len(written) == len(pinned):
        return [_known(w, p) for w, p in zip(written, pinned, strict=True)]
    return written


def test_run_json_keeps_the_flat_options_it_had() -> None:
    """Every key it had, with its value, in its order (an option added since is a new key,
    written after them, and absent from an old run.json reads as its default)."""
    opts = score_options(**JURY)
    assert dumps(_known(opts.model_dump(mode="json"), orjson.loads(PINNED))).decode() == PINNED
    assert ScoreOptions.model_validate_json(PINNED) == opts


def test_flat_keywords_and_groups_build_the_same_options() -> None:
    flat = ScoreOptions(model="m", samples=4, dtype="float32", diversity=False, limit=2)
    assert (flat.sampling.samples, flat.engine.dtype, flat.problems.limit) == (4, "float32", 2)
    assert not flat.diversity.enabled and flat.diversity.embed
    assert ScoreOptions.model_validate(flat.model_dump(mode="json")) == flat


def _say(line: str) -> None:
    pass


def test_a_served_judge_is_one_judge_to_score_calibrate_and_rebuild() -> None:
    """`plan_judge` (score), `resolve_judge` (calibrate's `load_judge`) and rebuild (from
    run.json) name a served judge the same, and never with the URL's credentials."""
    j = judge_options(model="served", backend="openai", base_url="http://me:s3cret@h:8/v1")
    scored = plan_judge(j, 0, resolve_model("smollm2-135m"), "hf", _say)
    calibrated = resolve_judge(j, 0, "auto", _say)
    assert scored is not None
    rebuilt = _plan_of(j, judge_part(j, scored), "hf", 0)
    assert scored.identity == calibrated.identity == rebuilt.identity == "http://h:8/v1#served"
    assert scored.backend_name == calibrated.backend_name == rebuilt.backend_name == "openai"
    assert scored.cfg == calibrated.cfg and scored.cfg.readout == rebuilt.cfg.readout
    assert "s3cret" not in scored.cache_identity + calibrated.cache_identity


def test_a_local_judge_is_one_judge_to_score_calibrate_and_rebuild(model_path: str) -> None:
    j = judge_options(model=model_path, backend="hf")
    scored = plan_judge(j, 0, resolve_model(model_path), "hf", _say, dtype="float32")
    calibrated = resolve_judge(j, 0, "float32", _say)
    assert scored is not None and scored.reuse and not calibrated.reuse
    rebuilt = _plan_of(j, judge_part(j, scored), "hf", 0)
    assert scored.identity == calibrated.identity == rebuilt.identity
    assert scored.backend_name == calibrated.backend_name == rebuilt.backend_name == "hf"
    assert scored.dtype == calibrated.dtype == "float32"
    assert scored.cache_identity == calibrated.cache_identity
    assert scored.cfg == calibrated.cfg and scored.cfg.readout == rebuilt.cfg.readout


@pytest.mark.parametrize("path", [Path("runs/x"), "runs/x"])
def test_path_options_are_kept_as_text(path: str | Path) -> None:
    assert score_options(out=path, prompt_template=path).out == "runs/x"
