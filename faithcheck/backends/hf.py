"""transformers backend: `AutoModelForCausalLM` in process.

Slower than vLLM for sampling, but exact and simple for teacher-forced scoring, and the
reference the vLLM backend is checked against (fp32 log-probabilities agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
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
)
from faithcheck.backends.hf_prefix import PrefixCache
from faithcheck.backends.precision import ConcreteDType, probe_device, resolve, torch_dtype
from faithcheck.errors import BackendError, ModelLoadError

PACK_TOKENS = 2048
"""Chain tokens packed into one cache by `read_cuts`: fewer, larger forward calls for the
segments and the decode steps, while their masked attention (rows x cached tokens)
stays small."""


class HFBackend:
    """Inference through transformers.

    Each request is sampled on its own, seeded with its own seed, with all `n`
    completions in one batch: results do not depend on the other requests.
    """

    name = "hf"
    _borrowed = False
    """The model belongs to the caller (`from_objects`): `close` frees nothing."""
    _was_training = False

    def __init__(
        self,
        model_path: str,
        *,
        dtype: DType = "auto",
        device: str | None = None,
        trust_remote_code: bool = False,
        prefix_reuse: bool = True,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            # Every core this process may use (os.sched_getaffinity), not torch's guess.
            torch.set_num_threads(cpu_thread_count())
        self._renderer = TokenizerRenderer(model_path, trust_remote_code=trust_remote_code)
        # `auto` is resolved from the device, not the checkpoint (see backends.precision).
        self.dtype: ConcreteDType = resolve(dtype, probe_device(cpu=self.device == "cpu"))
        try:
            model: Any = AutoModelForCausalLM.from_pretrained(
                model_path,
                dtype=torch_dtype(self.dtype),
                trust_remote_code=trust_remote_code,
                **(model_kwargs or {}),
            )
            self.model: Any = model.to(self.device)
        except Exception as exc:  # corrupt weights, unknown architecture, out of memory
            raise ModelLoadError(f"cannot load model from {model_path}: {exc}") from None
        self.model.eval()
        self.eos_ids_list = self._eos_ids()
        self.prefix = PrefixCache(self.model, self.device, enabled=prefix_reuse)
        """Shared prompt prefixes and n-copy prompts prefilled once (`hf_prefix`)."""

    @classmethod
    def from_objects(cls, model: Any, tokenizer: Any, *, prefix_reuse: bool = True) -> HFBackend:
        """Score a model the caller already holds (a training loop's own weights), on its
        device and in its dtype, without reloading anything.

        The model is put in eval mode while faithcheck uses it; `close` puts it back in
        the mode it was in and leaves it to the caller (nothing is freed).

        Raises:
            ModelLoadError: the model's dtype is not one faithcheck runs in.
        """
        self = cls.__new__(cls)
        first = next(iter(model.parameters()), None)
        self.device = str(first.device) if first is not None else "cpu"
        dtype = str(first.dtype).removeprefix("torch.") if first is not None else "float32"
        if dtype not in ("float32", "bfloat16", "float16"):
            raise ModelLoadError(f"the model's dtype {dtype} is not float32, bfloat16 or float16")
        self.dtype = dtype  # type: ignore[assignment]
        name = getattr(model, "name_or_path", None) or getattr(
            getattr(model, "config", None), "_name_or_path", None
        )
        self._renderer = TokenizerRenderer.from_tokenizer(tokenizer, name or None)
        self._was_training = bool(getattr(model, "training", False))
        self._borrowed = True
        self.model = model
        self.model.eval()
        self.eos_ids_list = self._eos_ids()
        self.prefix = PrefixCache(self.model, self.device, enabled=prefix_reuse)
        return self

    @property
    def prefill(self) -> PrefillCount:
        """Prompt tokens served vs computed (as `VLLMBackend.prefill`)."""
        return self.prefix.count

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self._renderer.tokenizer.eos_token_id
        ids = eos if isinstance(eos, list) else [eos]
        return [int(i) for i in ids if i is not None]

    def render(self, prompt: Prompt) -> list[int]:
        """See `Backend.render`."""
        return self._renderer.render(prompt)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """See `Backend.generate`."""
        try:
            self.prefix.plan([r.prompt_ids for r in requests])
            return [self._generate_one(r) for r in requests]
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"hf generation failed: {exc}") from None

    def _generate_one(self, req: GenerationRequest) -> list[Completion]:
        import torch
        from transformers import GenerationConfig

        self._check_context(len(req.prompt_ids), req.max_tokens)
        greedy = req.temperature == 0.0
        # Every setting explicit: the checkpoint's generation_config.json must not leak
        # in (transformers would otherwise apply its top_k=50, repetition penalty, ...).
        config = GenerationConfig(
            do_sample=not greedy,
            temperature=None if greedy else req.temperature,
            top_p=None if greedy else req.top_p,
            top_k=None,
            max_new_tokens=req.max_tokens,
            # Greedy decoding gives the same sequence n times (transformers refuses n > 1).
            num_return_sequences=1 if greedy else req.n,
            eos_token_id=self.eos_ids_list,
            pad_token_id=self.eos_ids_list[0],
            stop_strings=req.stop or None,
            return_dict_in_generate=True,
            output_logits=req.logprobs,
        )
        copies = config.num_return_sequences
        cache = self.prefix.cache_for(req.prompt_ids, copies)
        rows = copies if cache is not None else 1
        prompt = torch.tensor([req.prompt_ids] * rows, device=self.device)
        if cache is not None:  # rows already expanded to match the cache
            config.num_return_sequences = 1
        torch.manual_seed(req.seed)
        with torch.inference_mode():
            out = self.model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                generation_config=config,
                tokenizer=self._renderer.tokenizer if req.stop else None,
                past_key_values=cache,
            )
        new = out.sequences[:, prompt.shape[1] :].tolist()
        logps = self._sampled_logprobs(out, new) if req.logprobs else None
        if greedy and req.n > 1:
            new = new * req.n
            logps = logps * req.n if logps else None
        return [
            self._completion(ids, logps[i] if logps else None, req) for i, ids in enumerate(new)
        ]

    def _check_context(self, prompt_tokens: int, max_tokens: int) -> None:
        """Refuse what the model cannot hold: past its context, positions are garbage."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and prompt_tokens + max_tokens > limit:
            raise BackendError(
                f"prompt ({prompt_tokens} tokens) + --max-tokens ({max_tokens}) exceeds the "
                f"model's context of {limit} tokens; shorten the question or --max-tokens"
            )

    @staticmethod
    def _sampled_logprobs(out: Any, new: list[list[int]]) -> list[list[float]]:
        import torch

        steps = torch.stack(out.logits, dim=1).float().log_softmax(-1)  # [n, T, V]
        ids = torch.tensor(new, device=steps.device)[:, : steps.shape[1]]
        return steps.gather(-1, ids.unsqueeze(-1)).squeeze(-1).tolist()  # type: ignore[no-any-return]

    def _completion(
        self, ids: list[int], logps: list[float] | None, req: GenerationRequest
    ) -> Completion:
        cut = len(ids)
        for j, tok in enumerate(ids):
            if tok in self.eos_ids_list:
                cut = j + 1
                break
        ids = ids[:cut]
        text = self._renderer.decode(ids)
        stopped = bool(ids) and ids[-1] in self.eos_ids_list
        if req.stop and not stopped:
            hit = [text.find(s) for s in req.stop if s in text]
            stopped = bool(hit)
            if hit:  # vLLM drops the stop string from the text; match it
                text = text[: min(hit)]
        return Completion(
            text=text,
            token_ids=ids,
            finish_reason="stop" if stopped or len(ids) < req.max_tokens else "length",
            logprobs=logps[:cut] if logps is not None else None,
        )

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """See `Backend.score`. One forward pass per request."""
        import torch

        results = []
        for req in requests:
            if not req.prefix_ids:
                raise BackendError("score needs a non-empty prefix")
            ids = torch.tensor([req.prefix_ids + req.continuation_ids], device=self.device)
            keep = len(req.continuation_ids) + 1  # logits for the continuation only
            with torch.inference_mode():
                logits = self.model(ids, logits_to_keep=keep).logits[0].float()
            pred = logits[: len(req.continuation_ids)].log_softmax(-1)
            cont = torch.tensor(req.continuation_ids, device=self.device)
            lps = pred.gather(-1, cont.unsqueeze(-1)).squeeze(-1)
            results.append(
                ScoreResult(
                    token_logprobs=lps.tolist(),
                    logprob_sum=float(lps.sum()),
                    greedy=bool((pred.argmax(-1) == cont).all()),
                )
            )
        return results

    def next_token_logprobs(self, requests: Sequence[NextTokenRequest]) -> list[list[float]]:
        """See `NextTokenReader`: one forward pass per prompt, the prefix the prompts
        share (a judge's rubric) computed once."""
        try:
            self.prefix.plan([r.prompt_ids for r in requests])
            out = []
            for r in requests:
                logps = self.prefix.last_logits(r.prompt_ids).log_softmax(-1)
                out.append([float(logps[t]) for t in r.token_ids])
            return out
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"hf next-token read failed: {exc}") from None

    def eos_ids(self) -> set[int]:
        """See `Backend.eos_ids`."""
        return set(self.eos_ids_list)

    def encode(self, text: str) -> list[int]:
        """See `Backend.encode`."""
        return self._renderer.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        """See `Backend.decode`."""
        return self._renderer.decode(ids)

    def read_cuts(self, requests: Sequence[CutReadRequest]) -> list[list[CutReadout]]:
        """Fast path: chains packed into one sequence and encoded once, all their cuts
        read in shared forward passes under a 4D attention mask
        (see `faithcheck.backends.hf_cuts`)."""
        import torch

        from faithcheck.backends.cuts import box_close, trim_readout
        from faithcheck.backends.hf_cuts import pack_sizes, read_pack

        def done(generated: list[int], limit: int) -> bool:
            return (
                generated[-1] in self.eos_ids_list
                or len(generated) >= limit
                or box_close(self.decode(generated)) is not None
            )

        results = []
        start = 0
        for size in pack_sizes(requests, PACK_TOKENS):
            pack = requests[start : start + size]
            start += size
            with torch.inference_mode():
                raw = read_pack(
                    self.model,
                    pack,
                    device=self.device,
                    done=[partial(done, limit=req.max_new_tokens) for req in pack],
                )
            for chain in raw:
                row = []
                for r in chain:
                    ids, text = trim_readout(r.generated_ids, self) if r.generated_ids else ([], "")
                    row.append(r.model_copy(update={"generated_ids": ids, "text": text}))
                results.append(row)
        return results

    def close(self) -> None:
        """Drop the model so its memory can be reclaimed (a borrowed one goes back to its
        owner in the mode it came in)."""
        self.prefix.clear()
        if getattr(self, "_borrowed", False) and self.model is not None:
            self.model.train(self._was_training)
        self.model = None
