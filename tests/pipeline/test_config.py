"""The hashed config's probe part: what the probe records depend on is all in it."""

from __future__ import annotations

from faithcheck.judge.mistakes import MISTAKE_PROMPT_HASH
from faithcheck.pipeline.config import probes_part
from faithcheck.pipeline.runners import LAYOUT
from faithcheck.probes import ProbeConfig
from faithcheck.store.confighash import stage_hashes


def test_llm_written_mistakes_are_hashed_with_the_prompt_that_wrote_them() -> None:
    llm = probes_part(ProbeConfig(mistakes="llm"))
    assert llm["mistake_prompt_hash"] == MISTAKE_PROMPT_HASH
    # rule mistakes, or no mistakes probe: no prompt writes them, the part is the options
    for cfg in (ProbeConfig(), ProbeConfig(probes=["truncation"], mistakes="llm")):
        assert probes_part(cfg) == cfg.model_dump(mode="json")
    # another prompt: the probe records (and only they, of the stages before the judge) go
    base = {"sampling": {"samples": 2}, "probes": llm, "judge": {"model": "j"}}
    edited = base | {"probes": llm | {"mistake_prompt_hash": "0" * 64}}
    before, after = stage_hashes(base, LAYOUT), stage_hashes(edited, LAYOUT)
    assert before["samples"] == after["samples"]
    assert before["probes"] != after["probes"]
