"""The engine's options: which backend runs the model, and how (`faithcheck score`'s
"Model and backend" panel, and `--engine-arg`, `--revision`)."""

from __future__ import annotations

from typing import Any

from faithcheck.backends import BackendName, parse_engine_args
from faithcheck.backends.base import DType
from faithcheck.records import PANEL_MODEL, Record, option

DTYPE_HELP = (
    "Model dtype. auto (default) reads the device: bfloat16 on a CPU with native bf16 "
    "(avx512_bf16 / AMX) or a CUDA GPU of compute capability 8.0+, float16 on older GPUs, "
    "float32 on every other CPU (where bf16 is emulated and several times slower)."
)


class EngineOptions(Record):
    """How the scored model is loaded and run."""

    backend: BackendName = option(
        "auto",
        help="Inference engine; auto = vllm when it imports, else hf.",
        panel=PANEL_MODEL,
    )
    """Requested backend (`choose_backend` resolves auto)."""
    dtype: DType = option("auto", "--dtype", help=DTYPE_HELP, panel=PANEL_MODEL)
    """Model dtype; `auto` is resolved from the device once per run (`backends.precision`)."""
    max_model_len: int = option(
        2048, help="vLLM context length (prompt + response).", panel=PANEL_MODEL
    )
    """Context length for vLLM."""
    tensor_parallel_size: int = option(
        1, "--tensor-parallel-size", help="vLLM tensor parallel GPUs.", panel=PANEL_MODEL
    )
    """vLLM tensor parallelism (GPU)."""
    gpu_memory_utilization: float = option(
        0.9, help="vLLM share of GPU memory to use.", panel=PANEL_MODEL
    )
    """vLLM GPU memory share."""
    trust_remote_code: bool = option(
        False,
        help="Allow code shipped with the checkpoint to run (off by default).",
        panel=PANEL_MODEL,
    )
    """Allow checkpoint code to run."""
    base_url: str | None = option(
        None,
        envvar="FAITHCHECK_BASE_URL",
        help="OpenAI-compatible server for --backend openai (e.g. `vllm serve` at "
        "http://127.0.0.1:8000/v1). Env: FAITHCHECK_BASE_URL.",
        panel=PANEL_MODEL,
    )
    """--base-url of an OpenAI-compatible server (--backend openai)."""
    api_key_env: str | None = option(
        None,
        help="Name of the environment variable holding the server's API key (the key itself "
        "is never written to run.json, logs or reports).",
        panel=PANEL_MODEL,
    )
    """Name of the environment variable with the server's API key (never the key)."""
    max_concurrency: int = option(
        8,
        help="Requests in flight at once against an OpenAI-compatible server.",
        panel=PANEL_MODEL,
        ge=1,
    )
    """Requests in flight at once against a server."""
    engine_args: dict[str, Any] = option(
        dict,
        "--engine-arg",
        param="engine_arg",
        cli_type=list[str] | None,
        cli_default=None,
        parse=parse_engine_args,
        help="key=value passed to the engine (repeatable): vLLM's LLM(...) (quantization, "
        "enable_prefix_caching, swap_space, ...) or transformers' from_pretrained(...). "
        "Values are read as JSON when they parse.",
    )
    """--engine-arg key=value: passed to vLLM's `LLM` or transformers' `from_pretrained`."""
    revision: str | None = option(
        None, help="Branch, tag or commit of a hub model (--model org/name)."
    )
    """--revision of a hub model (branch, tag or commit)."""
