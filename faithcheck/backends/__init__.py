"""Inference backends behind one contract (see `faithcheck.backends.base`).

Backends are imported lazily: `--help` stays instant and vLLM is only imported when
asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

from faithcheck.backends.base import Backend, DType
from faithcheck.errors import UsageError

EngineName = Literal["vllm", "hf", "openai"]
"""The engines a model runs on."""
BackendName = Literal["auto", EngineName]
"""What `--backend` takes: an engine, or auto (vllm when it imports, else hf)."""
BACKENDS: tuple[str, ...] = get_args(BackendName)


def vllm_importable() -> tuple[bool, str]:
    """Whether `import vllm` works here, and the reason when it does not."""
    from faithcheck.backends.vllm import configure_cpu_env, on_cpu

    if on_cpu():
        configure_cpu_env()
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # a broken install raises OSError/RuntimeError, not ImportError
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return True, ""


def choose_backend(name: BackendName, say: Callable[[str], None]) -> EngineName:
    """Resolve `auto` to vllm when it imports, else hf, and say which."""
    if name != "auto":
        return name
    ok, why = vllm_importable()
    if ok:
        say("backend: vllm (auto)")
        return "vllm"
    say(f"backend: hf (auto; vLLM unavailable: {why})")
    return "hf"


def parse_engine_args(items: list[str] | None) -> dict[str, Any]:
    """`--engine-arg key=value` strings as engine keyword arguments: dashes in the key
    become underscores; the value is read as JSON when it parses (numbers, true/false,
    null, lists, objects), else kept as text (`quantization=awq`).

    Raises:
        UsageError: an item without `=` or with an empty key.
    """
    import json

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--engine-arg {item!r}: expected key=value")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def make_backend(
    name: EngineName,
    model_path: str,
    *,
    dtype: DType,
    seed: int,
    max_model_len: int,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    trust_remote_code: bool = False,
    base_url: str | None = None,
    api_key_env: str | None = None,
    max_concurrency: int = 8,
    engine_args: dict[str, Any] | None = None,
) -> Backend:
    """Construct a backend; heavy imports happen here, not at module import.

    For `openai`, `model_path` is either a local checkpoint folder (its tokenizer is
    used locally, and the served model is the first one the server lists) or the
    served model name (tokenization then goes through the server).
    """
    if name == "vllm":
        from faithcheck.backends.vllm import VLLMBackend

        return VLLMBackend(
            model_path,
            dtype=dtype,
            max_model_len=max_model_len,
            seed=seed,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            trust_remote_code=trust_remote_code,
            engine_kwargs=engine_args,
        )
    if name == "hf":
        from faithcheck.backends.hf import HFBackend

        return HFBackend(
            model_path, dtype=dtype, trust_remote_code=trust_remote_code, model_kwargs=engine_args
        )
    if name == "openai":
        import os

        from faithcheck.backends.openai import OpenAIBackend

        if not base_url:
            raise UsageError("--backend openai needs --base-url")
        local = os.path.isdir(model_path)
        return OpenAIBackend(
            base_url,
            None if local else model_path,
            api_key_env=api_key_env,
            tokenizer_path=model_path if local else None,
            max_concurrency=max_concurrency,
            trust_remote_code=trust_remote_code,
        )
    raise UsageError(f"unknown backend {name!r}")


__all__: list[Any] = [
    "BACKENDS",
    "Backend",
    "BackendName",
    "EngineName",
    "choose_backend",
    "make_backend",
]
