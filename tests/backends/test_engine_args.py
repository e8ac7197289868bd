"""`--engine-arg key=value` and `--revision`: passed through to the engines, recorded,
and only in the config hash when given (earlier runs keep theirs)."""

from __future__ import annotations

import pytest

from faithcheck.backends import parse_engine_args
from faithcheck.errors import UsageError
from faithcheck.pipeline.options import score_options


def test_values_are_json_when_they_parse() -> None:
    got = parse_engine_args(
        ["quantization=awq", "swap-space=4", "enable_prefix_caching=false", 'x={"a": [1]}']
    )
    assert got == {
        "quantization": "awq",
        "swap_space": 4,
        "enable_prefix_caching": False,
        "x": {"a": [1]},
    }
    assert parse_engine_args(None) == {}


@pytest.mark.parametrize("bad", ["noequals", "=value"])
def test_malformed_items_are_one_line_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError, match="expected key=value"):
        parse_engine_args([bad])


def test_options_record_them_and_the_hash_only_when_given() -> None:
    from faithcheck.pipeline.config import engine_config

    plain = score_options()
    tuned = score_options(engine_arg=["swap_space=4"], revision="main")
    assert tuned.engine.engine_args == {"swap_space": 4} and tuned.engine.revision == "main"
    assert engine_config(plain) == {}
    assert engine_config(tuned) == {"engine_args": {"swap_space": 4}}


@pytest.mark.slow
def test_engine_args_reach_transformers(model_path: str) -> None:
    from faithcheck.backends import make_backend

    backend = make_backend(
        "hf", model_path, dtype="float32", seed=0, max_model_len=512,
        engine_args={"attn_implementation": "eager"},
    )  # fmt: skip
    try:
        assert backend.model.config._attn_implementation == "eager"  # type: ignore[attr-defined]
    finally:
        backend.close()
