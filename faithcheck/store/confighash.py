"""The config hash of a run, and the hashes of its stages.

A run directory resumes only under the same config hash. The stage hashes say which
records a changed config leaves valid: samples depend on the model, data and sampling
settings; probe records on those plus the probe settings (and the judge's, when it
writes the mistakes); judge records (labels, calibration, strategy clusters) on the
samples plus the judge settings. `faithcheck score --force` on a run whose samples still
match keeps them and redoes only the stages whose hash changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

UNHASHED_KEYS = ("options", "merged_from")
"""Keys of run.json `config` that are not part of the config hash: the raw options (which
hold paths such as --out) and the shard directories a merged run came from."""

SAMPLE_KEYS = (
    "model_sha256",
    "backend",
    "dtype",
    "max_model_len",
    "dataset_sha256",
    "from_samples",
    "limit",
    "shard",
    "sampling",
    "merged_shards",
)
"""Config keys the samples depend on (`merged_shards`: a merge of only some shards)."""


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of a run's config (run.json `config` minus `UNHASHED_KEYS`)."""
    return _digest({k: v for k, v in config.items() if k not in UNHASHED_KEYS})


def stage_hashes(config: Mapping[str, Any]) -> dict[str, str]:
    """Hash of what each stage's records depend on: `samples`, `probes`, `judge`."""
    samples = {k: config.get(k) for k in SAMPLE_KEYS}
    probes = config.get("probes") or {}
    llm_mistakes = probes.get("mistakes") == "llm" and "mistakes" in probes.get("probes", [])
    return {
        "samples": _digest(samples),
        "probes": _digest([samples, probes, config.get("judge") if llm_mistakes else None]),
        "judge": _digest([samples, config.get("judge")]),
    }
