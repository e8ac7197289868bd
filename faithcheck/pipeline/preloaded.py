"""A model the caller already holds (`faithcheck.score(model=...)`), wrapped for the run:
a transformers model with its tokenizer, a `vllm.LLM`, or any `Backend`; scored where it
is, in its dtype, never reloaded."""

from __future__ import annotations

from typing import Any

from faithcheck.errors import UsageError
from faithcheck.pipeline.core import Preloaded


def preload(model: Any, tokenizer: Any) -> Preloaded:
    """The run's view of a model object (`score(model=..., tokenizer=...)`).

    Raises:
        UsageError: not a model faithcheck can score in place, or a transformers model
            without its tokenizer.
    """
    from faithcheck.backends.base import Backend
    from faithcheck.backends.precision import Precision, probe_device
    from faithcheck.models import ModelIdentity, in_memory_identity

    if isinstance(model, Backend):
        name = type(model).__name__
        identity = ModelIdentity(
            spec=name, kind="in-memory", path=name, sha256=f"backend:{name}:{id(model)}",
            has_chat_template=True,
        )  # fmt: skip
        precision = Precision(
            requested="auto", dtype=None, reason="a backend object passed in", device="caller"
        )
        return Preloaded(model, identity, precision)
    if _is_vllm_llm(model):
        return _preloaded_vllm(model)
    if not hasattr(model, "state_dict") or not hasattr(model, "generate"):
        raise UsageError(
            "model= takes a name, a checkpoint folder, a transformers model (with "
            "tokenizer=), a vllm.LLM or a faithcheck Backend"
        )
    if tokenizer is None:
        raise UsageError("a transformers model object needs its tokenizer= too")
    from faithcheck.backends.hf import HFBackend

    backend = HFBackend.from_objects(model, tokenizer)
    caps = probe_device(cpu=backend.device == "cpu")
    precision = Precision(
        requested=backend.dtype,
        dtype=backend.dtype,
        reason="the model object's own dtype",
        device=caps.describe() if backend.device == "cpu" else backend.device,
    )
    return Preloaded(backend, in_memory_identity(model, tokenizer), precision)


def _is_vllm_llm(model: Any) -> bool:
    kind = type(model)
    return kind.__name__ == "LLM" and kind.__module__.split(".")[0] == "vllm"


def _preloaded_vllm(llm: Any) -> Preloaded:
    """A `vllm.LLM` the caller holds: used as it is, identified by the checkpoint it
    loaded (the files' hash, as `--model` would), never shut down by faithcheck."""
    from faithcheck.backends.precision import Precision
    from faithcheck.backends.vllm import VLLMBackend
    from faithcheck.models import resolve_model

    backend = VLLMBackend.from_llm(llm)
    identity = resolve_model(backend.model_path)
    precision = Precision(
        requested=backend.dtype,
        dtype=backend.dtype,
        reason="the vllm.LLM's own dtype",
        device="vllm engine (caller's)",
    )
    return Preloaded(backend, identity, precision)
