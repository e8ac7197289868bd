"""One-line summaries of engine failures (`faithcheck.backends.vllm.error_summary`)."""

from __future__ import annotations

from faithcheck.backends.vllm import error_summary


def _chained() -> RuntimeError:
    try:
        try:
            raise ValueError("No available memory for the cache blocks.\nTry raising it.")
        except ValueError as inner:
            raise RuntimeError("Engine core initialization failed.") from inner
    except RuntimeError as outer:
        try:
            raise RuntimeError(
                "Engine core initialization failed. See root cause above.\nFailed core proc(s): {}"
            ) from outer
        except RuntimeError as top:
            return top


def test_a_wrapped_failure_names_its_root_cause_on_one_line() -> None:
    summary = error_summary(_chained())
    assert summary == (
        "Engine core initialization failed. See root cause above. (cause: ValueError: No "
        "available memory for the cache blocks. Try raising it.)"
    )
    assert "\n" not in summary


def test_a_plain_failure_keeps_its_first_line() -> None:
    assert error_summary(OSError("disk on fire\nmore detail")) == "disk on fire"
    assert error_summary(KeyError()) == "KeyError"


def test_a_cycle_in_the_cause_chain_ends() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert error_summary(a) == "a (cause: RuntimeError: b)"


def test_long_causes_are_cut() -> None:
    top = RuntimeError("failed")
    top.__cause__ = ValueError("x" * 1000)
    assert len(error_summary(top)) <= 300
