"""The config hash of a run, and the hashes of its stages.

A run directory resumes only under the same config hash. The stage hashes say which
records a changed config leaves valid: samples depend on the model, data and sampling
settings; probe records on those plus the probe settings (and the judge's, when it
writes the mistakes); judge records (labels, calibration, strategy clusters) on the
samples plus the judge settings. What each stage covers is its declaration in the run's
`faithcheck.store.layout.Layout` (`faithcheck.pipeline.runners.LAYOUT`). `faithcheck
score --force` on a run whose samples still match keeps them and redoes only the stages
whose hash changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from faithcheck.store.layout import Layout, Stage

UNHASHED_KEYS = ("options", "merged_from")
"""Keys of run.json `config` that are not part of the config hash: the raw options (which
hold paths such as --out) and the shard directories a merged run came from."""


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of a run's config (run.json `config` minus `UNHASHED_KEYS`)."""
    return _digest({k: v for k, v in config.items() if k not in UNHASHED_KEYS})


def stage_hashes(config: Mapping[str, Any], layout: Layout) -> dict[str, str]:
    """Hash of what each stage's records depend on, for every stage of `layout` with a
    hash of its own (`layout.hashed`: `samples`, `probes`, `judge` in a score run)."""
    return {s.name: _digest(_inputs(s, config, layout)) for s in layout.hashed}


def _inputs(stage: Stage, config: Mapping[str, Any], layout: Layout) -> Any:
    """What a stage's records depend on: the first stage's covered keys as a mapping;
    a later stage's, the inputs of the stage it comes after followed by its own keys
    (a conditional key as None while its condition does not hold)."""
    own = {
        k: config.get(k) if stage.covers_when.get(k, _always)(config) else None
        for k in stage.covers
    }
    if stage.after is None:
        return own
    return [_inputs(layout.by_name[stage.after], config, layout), *own.values()]


def _always(config: Mapping[str, Any]) -> bool:
    return True
