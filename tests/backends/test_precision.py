"""`--dtype auto` resolved from the device: the rule as a table of made-up devices, the
cpuinfo reading, the warning for slow explicit choices, and on the real model that the
dtype the engines load is the one resolved (and the one the run records and hashes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faithcheck.backends import precision as P
from faithcheck.backends.precision import DeviceCaps, precision_warning, resolve_dtype
from tests.conftest import skip_if_no_vllm

AVX2 = DeviceCaps(device="cpu", cpu_capability="AVX2")
AVX512 = DeviceCaps(device="cpu", cpu_capability="AVX512")
AVX512_BF16 = DeviceCaps(
    device="cpu", cpu_capability="AVX512", cpu_flags=frozenset({"avx512_bf16"})
)
AMX = DeviceCaps(device="cpu", cpu_capability="AVX512", cpu_flags=frozenset({"amx_bf16"}))
ARM_BF16 = DeviceCaps(device="cpu", cpu_capability="SVE256", cpu_flags=frozenset({"bf16"}))
ARM_PLAIN = DeviceCaps(device="cpu", cpu_capability="DEFAULT")
# A bf16-capable CPU with torch held to its AVX2 kernels (ATEN_CPU_CAPABILITY=avx2): torch
# computes bf16 as an AVX2-only CPU does, emulated.
BF16_HELD_TO_AVX2 = DeviceCaps(
    device="cpu", cpu_capability="AVX2", cpu_flags=frozenset({"avx512_bf16", "amx_bf16"})
)


def cuda(major: int, minor: int) -> DeviceCaps:
    return DeviceCaps(device="cuda", cuda_capability=(major, minor), cuda_name="GPU")


@pytest.mark.parametrize(
    ("caps", "dtype", "reason_has"),
    [
        (AVX2, "float32", "without native bf16 (AVX2)"),
        # AVX-512 alone (Skylake, Zen 4 without the bf16 extension reported) is not enough.
        (AVX512, "float32", "without native bf16 (AVX512)"),
        (AVX512_BF16, "bfloat16", "native bf16 (avx512_bf16)"),
        (AMX, "bfloat16", "native bf16 (amx_bf16)"),
        (ARM_BF16, "bfloat16", "native bf16 (bf16)"),
        (ARM_PLAIN, "float32", "without native bf16"),
        (BF16_HELD_TO_AVX2, "float32", "without native bf16 (AVX2)"),
        (cuda(7, 0), "float16", "sm_70 has no bf16"),
        (cuda(7, 5), "float16", "sm_75 has no bf16"),
        (cuda(8, 0), "bfloat16", "sm_80"),
        (cuda(8, 9), "bfloat16", "sm_89"),
        (cuda(9, 0), "bfloat16", "sm_90"),
    ],
)
def test_auto_follows_the_device(caps: DeviceCaps, dtype: str, reason_has: str) -> None:
    got, reason = resolve_dtype("auto", caps)
    assert got == dtype
    assert reason_has in reason and reason.endswith(dtype)


@pytest.mark.parametrize("caps", [AVX2, AVX512_BF16, cuda(7, 5), cuda(9, 0)])
@pytest.mark.parametrize("explicit", ["bfloat16", "float16", "float32"])
def test_an_explicit_dtype_always_wins(caps: DeviceCaps, explicit: str) -> None:
    got, reason = resolve_dtype(explicit, caps)  # type: ignore[arg-type]
    assert got == explicit and "asked for" in reason


def test_auto_never_picks_float16_on_a_cpu() -> None:
    flags = [frozenset(), frozenset({"avx512_bf16"}), frozenset({"amx_bf16", "bf16"})]
    for cap in ("NO AVX", "AVX2", "AVX512", "SVE256", "DEFAULT"):
        for f in flags:
            got, _ = resolve_dtype("auto", DeviceCaps("cpu", cap, f))
            assert got in {"float32", "bfloat16"}
            # x86 bf16 flags count only under torch's AVX512 kernels; aarch64's always.
            native = "bf16" in f or (cap == "AVX512" and bool(f))
            assert (got == "bfloat16") == native


def test_warnings_name_the_slow_explicit_choices() -> None:
    assert "emulated" in (precision_warning("bfloat16", AVX2) or "")
    assert "float16" in (precision_warning("float16", AVX512_BF16) or "")
    assert precision_warning("bfloat16", AVX512_BF16) is None
    assert precision_warning("float32", AVX2) is None
    assert precision_warning("float16", cuda(7, 5)) is None


def test_cpuinfo_flags_are_read_from_the_flags_or_features_line(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC\n"
        "flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\n"
    )
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx avx2 fma\n")
    assert P._cpu_flags(x86) == {"avx512_bf16"}
    assert P._cpu_flags(arm) == {"bf16"}
    assert P._cpu_flags(plain) == frozenset()
    assert P._cpu_flags(tmp_path / "missing") == frozenset()


def test_describe_names_the_device() -> None:
    assert AVX2.describe() == "cpu AVX2"
    assert AMX.describe() == "cpu AVX512 +amx_bf16"
    assert cuda(9, 0).describe() == "cuda GPU (sm_90)"


def test_a_server_backend_has_no_local_dtype() -> None:
    p = P.precision_for("auto", "openai", AVX2)
    assert p.dtype is None and p.device == "server"
    assert P.precision_for("auto", "hf", AVX2).dtype == "float32"
    assert P.precision_for("bfloat16", "vllm", AVX2).dtype == "bfloat16"


def test_this_machine_resolves_consistently_with_its_cpuinfo() -> None:
    """The live probe agrees with /proc/cpuinfo, read independently here."""
    caps = P.probe_device()
    if caps.device != "cpu":
        pytest.skip("a GPU machine")
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    words = set(text.split())
    # x86's flags count while torch runs its AVX512 kernels (not under ATEN_CPU_CAPABILITY=avx2)
    x86 = bool(words & {"avx512_bf16", "amx_bf16"}) and caps.cpu_capability == "AVX512"
    native = x86 or "bf16" in words
    assert (P.resolve("auto") == "bfloat16") == native


@pytest.mark.slow
def test_hf_loads_the_resolved_dtype(model_path: str) -> None:
    import torch

    from faithcheck.backends.base import cpu_thread_count
    from faithcheck.backends.hf import HFBackend

    backend = HFBackend(model_path, dtype="auto")
    try:
        want = P.resolve("auto")
        assert backend.dtype == want
        assert {p.dtype for p in backend.model.parameters()} == {getattr(torch, want)}
        assert torch.get_num_threads() == cpu_thread_count()
    finally:
        backend.close()


# In a subprocess: a second in-process vLLM engine, closed, would tear down the parallel
# state that the session's shared engine (conftest `vllm_fp32`) still uses.
_VLLM_DTYPE = """
import sys, torch
from faithcheck.backends.vllm import VLLMBackend
b = VLLMBackend(sys.argv[1], dtype="auto", max_model_len=512)
print(b.dtype, str(b.llm.llm_engine.model_config.dtype).removeprefix("torch."))
"""


@pytest.mark.slow
@pytest.mark.vllm
@skip_if_no_vllm
def test_vllm_loads_the_resolved_dtype(model_path: str) -> None:
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _VLLM_DTYPE, model_path],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    want = P.resolve("auto")
    assert proc.stdout.split()[-2:] == [want, want]


@pytest.mark.slow
def test_score_records_and_hashes_the_resolved_dtype(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run.json and the report carry the resolution; the same command on a machine that
    resolves `auto` otherwise is refused (the hash takes the resolved dtype)."""
    import orjson

    from faithcheck.errors import FaithcheckError
    from faithcheck.pipeline.core import run_score
    from faithcheck.pipeline.options import ScoreOptions

    monkeypatch.setattr(P, "_PROBED", {True: AVX2, False: AVX2})
    opts = ScoreOptions(
        model="smollm2-135m",
        dataset="math",
        backend="hf",
        limit=1,
        samples=1,
        max_tokens=8,
        temperature=0.0,
        out=str(tmp_path / "run"),
        diversity=False,
        probes={"probes": []},  # type: ignore[arg-type]
        judge={"enabled": False},  # type: ignore[arg-type]
    )
    said: list[str] = []
    report = run_score(opts, say=said.append)
    assert report.precision is not None and report.precision.dtype == "float32"
    assert report.precision.requested == "auto" and "AVX2" in report.precision.reason
    info = orjson.loads((tmp_path / "run" / "run.json").read_bytes())
    assert info["precision"]["dtype"] == "float32"
    assert info["config"]["dtype"] == "float32"
    assert any(s.startswith("precision: float32") for s in said)

    # The same command again here resumes; on a bf16 machine it is refused.
    assert run_score(opts, say=said.append).config_hash == report.config_hash
    monkeypatch.setattr(P, "_PROBED", {True: AVX512_BF16, False: AVX512_BF16})
    with pytest.raises(FaithcheckError, match=r"made in float32.*--dtype float32 to continue"):
        run_score(opts, say=said.append)
