"""Which config changes invalidate which records (`faithcheck.store.confighash`)."""

from __future__ import annotations

from typing import Any

import pytest

from faithcheck.store.confighash import config_hash, stage_hashes

BASE: dict[str, Any] = {
    "model_sha256": "m",
    "backend": "vllm",
    "dtype": "bfloat16",
    "max_model_len": 2048,
    "dataset_sha256": "d",
    "from_samples": None,
    "limit": None,
    "shard": None,
    "sampling": {"samples": 16, "temperature": 1.0},
    "probes": {"probes": ["truncation", "mistakes"], "mistakes": "rule"},
    "judge": {"model": "j", "samples": 4},
    "diversity": [True, True],
}


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        ({"sampling": {"samples": 8, "temperature": 1.0}}, {"samples", "probes", "judge"}),
        ({"model_sha256": "m2"}, {"samples", "probes", "judge"}),
        ({"backend": "hf"}, {"samples", "probes", "judge"}),
        ({"merged_shards": {"count": 4, "indices": [0]}}, {"samples", "probes", "judge"}),
        ({"probes": {"probes": ["truncation"], "mistakes": "rule"}}, {"probes"}),
        ({"judge": {"model": "j2", "samples": 4}}, {"judge"}),
        ({"judge": None}, {"judge"}),
        ({"diversity": [False, False]}, set()),
        ({"options": {"out": "elsewhere"}}, set()),
    ],
)
def test_each_stage_hash_follows_what_its_records_depend_on(
    change: dict[str, Any], changed: set[str]
) -> None:
    before, after = stage_hashes(BASE), stage_hashes(BASE | change)
    assert {s for s in before if before[s] != after[s]} == changed
    assert (config_hash(BASE) != config_hash(BASE | change)) == ("options" not in change)


def test_llm_written_mistakes_tie_the_probes_to_the_judge() -> None:
    llm = BASE | {"probes": {"probes": ["mistakes"], "mistakes": "llm"}}
    other_judge = llm | {"judge": {"model": "j2", "samples": 4}}
    assert stage_hashes(llm)["probes"] != stage_hashes(other_judge)["probes"]
    # ... but not when the mistakes probe does not run.
    off = BASE | {"probes": {"probes": ["truncation"], "mistakes": "llm"}}
    assert stage_hashes(off)["probes"] == stage_hashes(off | {"judge": None})["probes"]


def test_config_hash_ignores_key_order_and_unhashed_keys() -> None:
    shuffled = dict(reversed(list(BASE.items())))
    assert config_hash(shuffled) == config_hash(BASE)
    assert config_hash(BASE | {"merged_from": ["a", "b"]}) == config_hash(BASE)
