"""Which config changes invalidate which records (`faithcheck.store.confighash`)."""

from __future__ import annotations

from typing import Any

import pytest

from faithcheck.pipeline.runners import LAYOUT
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


LLM_MISTAKES = BASE | {"probes": {"probes": ["mistakes"], "mistakes": "llm"}}
"""LLM-written mistakes: the judge writes the probes' corrupted steps."""
LLM_MISTAKES_OFF = BASE | {"probes": {"probes": ["truncation"], "mistakes": "llm"}}
"""LLM-written mistakes asked for, but the mistakes probe does not run."""


@pytest.mark.parametrize(
    ("base", "change", "changed"),
    [
        (BASE, {"sampling": {"samples": 8, "temperature": 1.0}}, {"samples", "probes", "judge"}),
        (BASE, {"model_sha256": "m2"}, {"samples", "probes", "judge"}),
        (BASE, {"backend": "hf"}, {"samples", "probes", "judge"}),
        (BASE, {"merged_shards": {"count": 4, "indices": [0]}}, {"samples", "probes", "judge"}),
        (BASE, {"probes": {"probes": ["truncation"], "mistakes": "rule"}}, {"probes"}),
        (BASE, {"judge": {"model": "j2", "samples": 4}}, {"judge"}),
        (BASE, {"judge": None}, {"judge"}),
        (BASE, {"diversity": [False, False]}, set()),
        (BASE, {"options": {"out": "elsewhere"}}, set()),
        # LLM-written mistakes tie the probes to the judge, but only when the probe runs.
        (LLM_MISTAKES, {"judge": {"model": "j2", "samples": 4}}, {"probes", "judge"}),
        (LLM_MISTAKES_OFF, {"judge": None}, {"judge"}),
    ],
)
def test_each_stage_hash_follows_what_its_records_depend_on(
    base: dict[str, Any], change: dict[str, Any], changed: set[str]
) -> None:
    before, after = stage_hashes(base, LAYOUT), stage_hashes(base | change, LAYOUT)
    assert {s for s in before if before[s] != after[s]} == changed
    assert (config_hash(base) != config_hash(base | change)) == ("options" not in change)


def test_config_hash_ignores_key_order_and_unhashed_keys() -> None:
    shuffled = dict(reversed(list(BASE.items())))
    assert config_hash(shuffled) == config_hash(BASE)
    assert config_hash(BASE | {"merged_from": ["a", "b"]}) == config_hash(BASE)


# Run directories written by earlier versions keep resuming only while these digests stay
# equal. The config is a copy of BASE, kept apart so that editing BASE never moves them.
PINNED_CONFIG: dict[str, Any] = {
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
PINNED: list[tuple[dict[str, Any], str, tuple[str, str, str]]] = [
    (
        {},
        "5213b38d7ccd723696f1b6d7d6bb2350c895de8976ff2cf385db6fc37b5c31b5",
        (
            "cee217af5542578c1289ab688843a3c26630813b3b2981a5e1934f478f40be54",
            "324b590574f0e77092177690d2dfc44e68e857bbdf2f58901bfd83b14d8aff0d",
            "9f99c7bceda23d6ac866521e5af6ef7faf08b84133195707502e55ae67514bb7",
        ),
    ),
    (
        {"probes": {"probes": ["mistakes"], "mistakes": "llm"}},
        "1cd9020f92999779d915015a3384b486f0eb0f089a876b13c216041613f2ef61",
        (
            "cee217af5542578c1289ab688843a3c26630813b3b2981a5e1934f478f40be54",
            "d87c605d5cccdae4a8368cee363a5faa3867a814f39e521c327bc80cc6d085e7",
            "9f99c7bceda23d6ac866521e5af6ef7faf08b84133195707502e55ae67514bb7",
        ),
    ),
    (
        {
            "merged_shards": {"count": 4, "indices": [0, 2]},
            "engine_args": {"enforce_eager": True},
            "options": {"out": "x"},
            "merged_from": ["a"],
        },
        "db0007ef73785cf967638fa62ed95ec823e8284c7992eb423f54b6fbc805c639",
        (
            "76acad114f0cbcfb3285b71032102f25e6b66f52dec8d5b5bfd7166dcbe5f7d7",
            "c4412ddee825ff65bfbe14d54ad3e4fdc1e5b4429962e6b9882fdf522fa4503f",
            "4435c6fbad5f9ad59ca64380a6b00fd91fe7317fffc9f1a93ec3c525354e1a3f",
        ),
    ),
    (
        {"judge": None},
        "e9e2b877bd16008be3aff2ce02e70dc58d61cc96d2cc397f29b5cd1145e9601a",
        (
            "cee217af5542578c1289ab688843a3c26630813b3b2981a5e1934f478f40be54",
            "324b590574f0e77092177690d2dfc44e68e857bbdf2f58901bfd83b14d8aff0d",
            "77252d28624beaac5d885f56c9074a56c8d6b7bb1eed1b19a0f532b5215f2da9",
        ),
    ),
]


@pytest.mark.parametrize(("change", "digest", "stages"), PINNED)
def test_hashes_of_a_fixed_config_never_change(
    change: dict[str, Any], digest: str, stages: tuple[str, str, str]
) -> None:
    config = PINNED_CONFIG | change
    assert config_hash(config) == digest
    names = ("samples", "probes", "judge")
    assert stage_hashes(config, LAYOUT) == dict(zip(names, stages, strict=True))
