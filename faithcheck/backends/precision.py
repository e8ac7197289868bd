"""Which floating-point format a model runs in: `--dtype auto` resolved from the device.

The checkpoint's own dtype says how the weights were stored, not what this machine
computes fast. On a CPU without native bf16 (AVX2-only x86, most laptops and many CI
runners) bfloat16 matmuls are emulated and 4-75x slower than float32, so `auto` reads
the device instead:

    device                                   auto resolves to
    CPU with avx512_bf16 or amx_bf16 (x86)   bfloat16
      that torch runs at AVX512, or the
      bf16 feature (aarch64)
    any other CPU                            float32   (never float16 on a CPU)
    CUDA, compute capability >= 8.0          bfloat16
    CUDA, compute capability <  8.0          float16

An explicit `--dtype` always wins; `precision_warning` says when it is the slow kind.
The resolution is a pure function of `DeviceCaps`, which `probe_device` reads from the
machine (tests pass made-up capabilities).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from faithcheck.backends.base import DType
from faithcheck.records import Record

ConcreteDType = Literal["bfloat16", "float16", "float32"]

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
"""/proc/cpuinfo flags (x86 `flags`, aarch64 `Features`) of a CPU that computes bf16
natively; the first one present is named in the reason."""

X86_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""The x86 flags among them: torch uses these only from its AVX512 kernels, so they count
only while torch runs at capability AVX512 (`ATEN_CPU_CAPABILITY=avx2` on such a CPU
computes as an AVX2-only one does, and `auto` follows it)."""


@dataclass(frozen=True)
class DeviceCaps:
    """What the precision choice depends on, read off the device a model will run on."""

    device: Literal["cpu", "cuda"]
    """Where the model runs."""
    cpu_capability: str = "unknown"
    """torch's CPU capability (`AVX2`, `AVX512`, ...)."""
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    """CPU feature flags that bear on bf16 (a subset of /proc/cpuinfo's)."""
    cuda_capability: tuple[int, int] | None = None
    """Compute capability of CUDA device 0."""
    cuda_name: str | None = None
    """Name of CUDA device 0."""

    def describe(self) -> str:
        """The device in a few words, e.g. `cpu AVX2` or `cuda NVIDIA H200 (sm_90)`."""
        if self.device == "cuda":
            cc = self.cuda_capability or (0, 0)
            return f"cuda {self.cuda_name or 'device'} (sm_{cc[0]}{cc[1]})"
        native = native_bf16_flag(self)
        return f"cpu {self.cpu_capability}" + (f" +{native}" if native else "")


class Precision(Record):
    """The dtype a run's models load in, and why (run.json and the report)."""

    requested: DType
    """What --dtype asked for."""
    dtype: ConcreteDType | None
    """What the models load in; None when a server decides (--backend openai)."""
    reason: str
    """Why, e.g. `cpu without native bf16 (AVX2) -> float32`."""
    device: str
    """The device it was resolved for (`DeviceCaps.describe`)."""
    threads: int | None = None
    """CPU threads inference uses (None on GPU or behind a server)."""


CONCRETE_DTYPES: tuple[ConcreteDType, ...] = get_args(ConcreteDType)
"""The dtypes a model can load in (what `auto` resolves to, or an explicit --dtype)."""


def torch_dtype(dtype: ConcreteDType) -> Any:
    """The torch dtype of a resolved dtype name."""
    import torch

    return getattr(torch, dtype)


def native_bf16_flag(caps: DeviceCaps) -> str | None:
    """The CPU flag that shows native bf16 torch will use, or None."""
    x86_kernels = caps.cpu_capability.upper().startswith("AVX512")
    return next(
        (
            f
            for f in NATIVE_BF16_FLAGS
            if f in caps.cpu_flags and (x86_kernels or f not in X86_BF16_FLAGS)
        ),
        None,
    )


def resolve_dtype(requested: DType, caps: DeviceCaps) -> tuple[ConcreteDType, str]:
    """The dtype to load a model in on this device, and the reason in a few words.

    Args:
        requested: `--dtype`; anything but `auto` is returned as asked.
        caps: the device (`probe_device()`).

    Returns:
        (dtype, reason), e.g. `("float32", "cpu without native bf16 (AVX2) -> float32")`.
    """
    if requested != "auto":
        return requested, f"--dtype {requested} (asked for)"
    if caps.device == "cuda":
        cc = caps.cuda_capability or (0, 0)
        if cc >= (8, 0):
            return "bfloat16", f"cuda sm_{cc[0]}{cc[1]} computes bf16 -> bfloat16"
        return "float16", f"cuda sm_{cc[0]}{cc[1]} has no bf16 -> float16"
    flag = native_bf16_flag(caps)
    if flag:
        return "bfloat16", f"cpu with native bf16 ({flag}) -> bfloat16"
    return "float32", f"cpu without native bf16 ({caps.cpu_capability}) -> float32"


def precision_warning(dtype: ConcreteDType, caps: DeviceCaps) -> str | None:
    """A one-line warning when an explicit dtype is one the device computes slowly."""
    if caps.device != "cpu":
        return None
    if dtype == "bfloat16" and not native_bf16_flag(caps):
        return (
            f"--dtype bfloat16 on a CPU without native bf16 ({caps.cpu_capability}) is "
            "emulated and several times slower; --dtype auto picks float32 here"
        )
    if dtype == "float16":
        return "--dtype float16 on a CPU is emulated and slow; --dtype auto picks float32"
    return None


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The bf16-related flags of the first CPU listed in /proc/cpuinfo (empty elsewhere)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in {"flags", "features"}:
            return frozenset(value.split()) & frozenset(NATIVE_BF16_FLAGS)
    return frozenset()


def _torch_cpu_flags() -> frozenset[str]:
    """Where /proc/cpuinfo is missing (macOS, some containers): torch's own CPU probes."""
    import torch

    flags = set()
    probes = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_bf16": "_is_amx_tile_supported"}
    for flag, name in probes.items():
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                flags.add(flag)
        except RuntimeError:
            pass
    return frozenset(flags)


_PROBED: dict[bool, DeviceCaps] = {}


def probe_device(*, cpu: bool | None = None) -> DeviceCaps:
    """Read the capabilities of the device models load on (cached per process).

    Args:
        cpu: force the CPU reading even where CUDA is present (the sentence embedder
            always runs on the CPU); None: CUDA when available.
    """
    import torch

    on_cpu = not torch.cuda.is_available() if cpu is None else cpu
    if on_cpu in _PROBED:
        return _PROBED[on_cpu]
    if on_cpu:
        flags = _cpu_flags()
        if not flags and platform.system() != "Linux":
            flags = _torch_cpu_flags()
        caps = DeviceCaps(
            device="cpu",
            cpu_capability=str(torch.backends.cpu.get_cpu_capability()),
            cpu_flags=flags,
        )
    else:
        caps = DeviceCaps(
            device="cuda",
            cuda_capability=tuple(torch.cuda.get_device_capability(0)),  # type: ignore[arg-type]
            cuda_name=torch.cuda.get_device_name(0),
        )
    _PROBED[on_cpu] = caps
    return caps


def resolve(requested: DType, caps: DeviceCaps | None = None) -> ConcreteDType:
    """`resolve_dtype` on this machine's device, dtype only (for code that loads models)."""
    return resolve_dtype(requested, caps or probe_device())[0]


def precision_for(requested: DType, backend: str, caps: DeviceCaps | None = None) -> Precision:
    """The `Precision` record of a run on `backend` (a server decides its own)."""
    if backend == "openai":
        return Precision(
            requested=requested,
            dtype=None,
            reason="the server chooses its own precision",
            device="server",
        )
    caps = caps or probe_device()
    dtype, reason = resolve_dtype(requested, caps)
    return Precision(requested=requested, dtype=dtype, reason=reason, device=caps.describe())


def describe_machine() -> str:
    """The machine in one line with its CPU capability (benchmarks print it: a timing
    without the CPU it ran on says little)."""
    import torch

    from faithcheck.backends.base import cpu_thread_count

    cpu = probe_device(cpu=True).describe()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.machine()} {cpu}, {cpu_thread_count()} threads, {gpu}, "
        f"python {platform.python_version()}, torch {torch.__version__}"
    )
