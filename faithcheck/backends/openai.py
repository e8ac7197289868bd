"""OpenAI-compatible server backend: `vllm serve` (or a fleet of them behind one URL).

The server speaks text, the probes need token ids (cuts at exact token boundaries,
teacher forcing), so every request carries token ids and asks for token ids back.
What this uses from vLLM's OpenAI server (0.32), beyond the OpenAI API:

- `POST /v1/completions` with `prompt` as a list of token ids, explicit sampling
  settings (`n`, `seed`, `temperature`, `top_p`, `top_k: 0`, `min_p: 0`,
  `repetition_penalty: 1`, `presence_penalty: 0`, `frequency_penalty: 0`, `max_tokens`,
  `stop`: otherwise the server fills unset ones from the checkpoint's
  generation_config.json), `skip_special_tokens: true`, `return_token_ids: true` (the
  exact generated ids, stopping EOS included), `logprobs: 0` (the sampled token's
  log-prob) with `return_tokens_as_token_ids: true`, and `cache_salt`.
- Teacher forcing: the same endpoint with `prompt_logprobs: 0`, `max_tokens: 1`; each
  prompt position then carries `{"<id>": {"logprob", "rank"}}` with the top-1 token too
  (`prompt_logprobs=1`), so greedy is the token being alone there (`top_is`).
- Label reads (`next_token_logprobs`): the same endpoint with `max_tokens: 1`,
  `logprob_token_ids` (the candidate ids), `logprobs` set to their count and
  `return_tokens_as_token_ids: true`; `top_logprobs[0]` then maps `token_id:<id>` to
  each candidate's full-vocabulary log-prob. Keys spelled as token text are accepted
  too (servers without token-id keys).
- `POST /tokenize` (`prompt`, or `messages` + `add_generation_prompt`) and
  `POST /detokenize`: the server's own tokenizer, used when no local one is given.

Tokenizer. With `tokenizer_path` (a local checkpoint folder) rendering, encoding,
decoding and EOS ids are the local tokenizer's: exact and fast. Without it the
server's `/tokenize` and `/detokenize` serve instead, with two limits: `/detokenize`
keeps special tokens, so `decode` drops only the EOS ids it knows; and EOS ids are
learned from generations that stopped at one (`eos_ids` is empty before the first).
Neither affects `generate`'s text, which the server decodes itself. A server with
neither endpoint nor a local tokenizer is refused at construction.

Other OpenAI-compatible servers (SGLang, TGI, llama.cpp) work as far as they accept
the request: generated ids fall back to `token_id:N` log-prob tokens, then to
re-encoding the text (approximate); `score` needs `prompt_logprobs` and otherwise
fails with `SCORE_UNSUPPORTED`, the documented fallback being the generated read-out.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from faithcheck.backends.base import (
    ChatPrompt,
    Completion,
    CutReadout,
    CutReadRequest,
    GenerationRequest,
    NextTokenRequest,
    Prompt,
    ScoreRequest,
    ScoreResult,
    TokenizerRenderer,
    top_is,
)
from faithcheck.backends.http import HTTPStatusError, JSONClient, redact_url
from faithcheck.errors import BackendError, UsageError

LABEL = "openai backend"
SCORE_UNSUPPORTED = (
    "teacher-forced scoring needs a vLLM-compatible server with prompt_logprobs; "
    "use --readout generate"
)
# The settings vLLM would otherwise take from generation_config.json (see module doc).
NEUTRAL_SAMPLING: dict[str, Any] = {
    "top_k": 0,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}


def server_root(base_url: str) -> str:
    """The server's root URL: `http://h:p/v1` and `http://h:p/` both give `http://h:p`.

    vLLM serves `/v1/completions` and `/v1/models` under `/v1`, but `/tokenize`,
    `/detokenize` and `/health` at the root.
    """
    url = base_url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class OpenAIBackend:
    """Inference through an OpenAI-compatible HTTP server (vLLM's, for every feature)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key_env: str | None = None,
        tokenizer_path: str | None = None,
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        trust_remote_code: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """Connect (lazily), pick the served model and a tokenizer.

        Args:
            base_url: server URL, with or without the trailing `/v1`.
            model: served model name; None: the first id the server lists.
            api_key_env: name of the environment variable holding the API key, sent as
                `Authorization: Bearer`; None: no auth header. The key is never stored on
                this object or written anywhere.
            tokenizer_path: local checkpoint folder whose tokenizer to use (exact, fast);
                None: the server's /tokenize and /detokenize.
            max_concurrency: requests in flight at once.
            timeout_s: per-request timeout (a generation is one request).
            max_retries: retries after the first attempt (429, 5xx, timeouts, refused).
            trust_remote_code: passed to the local tokenizer.
            sleep: how to wait between retries (tests pass a recorder).
            rng: jitter source for retry delays.

        Raises:
            UsageError: `api_key_env` names an unset or empty variable.
            BackendError: the server cannot be reached, lists no model, or offers no
                tokenizer endpoints while no local tokenizer is given.
            ModelLoadError: the local tokenizer cannot be loaded.
        """
        self.base_url = server_root(base_url)
        self.api_key_env = api_key_env
        self.tokenizer_path = tokenizer_path
        self._shown_url = redact_url(self.base_url)
        self._http = JSONClient(
            self.base_url,
            headers=_auth_headers(api_key_env),
            timeout_s=timeout_s,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            sleep=sleep,
            rng=rng,
            label=LABEL,
        )
        self._seen_eos: set[int] = set()
        self._lock = threading.Lock()
        self._detokenize = functools.lru_cache(maxsize=8192)(self._detokenize_uncached)
        try:
            self._renderer = (
                TokenizerRenderer(tokenizer_path, trust_remote_code=trust_remote_code)
                if tokenizer_path
                else None
            )
            self.model = model or self._first_model()
            if self._renderer is None:
                self._check_server_tokenizer()
        except BaseException:
            self._http.close()
            raise

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(base_url={self._shown_url!r}, model={self.model!r}, "
            f"api_key_env={self.api_key_env!r})"
        )

    def describe(self) -> dict[str, Any]:
        """Run metadata: where the model was served, never the key itself."""
        return {
            "backend": self.name,
            "base_url": self._shown_url,
            "model": self.model,
            "api_key_env": self.api_key_env,
            "tokenizer": self.tokenizer_path or "server",
            "max_concurrency": self._http.max_concurrency,
        }

    # -- setup --------------------------------------------------------------------------

    def _first_model(self) -> str:
        body = self._http.get("/v1/models")
        data = body.get("data") if isinstance(body, dict) else None
        ids = [m.get("id") for m in data or [] if isinstance(m, dict)]
        if not ids or not isinstance(ids[0], str):
            raise BackendError(f"{LABEL}: {self._shown_url}/v1/models lists no model")
        return ids[0]

    def _check_server_tokenizer(self) -> None:
        try:
            self._tokenize({"prompt": "a", "add_special_tokens": False})
        except HTTPStatusError as exc:
            if exc.status in (404, 405) and exc.detail in ("Not Found", "Method Not Allowed"):
                raise BackendError(
                    f"{LABEL}: {self._shown_url} has no /tokenize endpoint (not a vLLM "
                    "server?); give a local tokenizer (the checkpoint folder) instead"
                ) from None
            raise

    # -- tokenizer ----------------------------------------------------------------------

    def _tokenize(self, body: dict[str, Any]) -> list[int]:
        out = self._http.post("/tokenize", {"model": self.model} | body)
        tokens = out.get("tokens") if isinstance(out, dict) else None
        if not isinstance(tokens, list):
            raise BackendError(f"{LABEL}: {self._shown_url}/tokenize answered without tokens")
        return [int(t) for t in tokens]

    def _detokenize_uncached(self, ids: tuple[int, ...]) -> str:
        out = self._http.post("/detokenize", {"model": self.model, "tokens": list(ids)})
        text = out.get("prompt") if isinstance(out, dict) else None
        if not isinstance(text, str):
            raise BackendError(f"{LABEL}: {self._shown_url}/detokenize answered without text")
        return text

    def render(self, prompt: Prompt) -> list[int]:
        """See `Backend.render`: the local chat template, else the server's /tokenize."""
        if self._renderer is not None:
            return self._renderer.render(prompt)
        if isinstance(prompt, ChatPrompt):
            # Same as apply_chat_template(tokenize=True): the template adds BOS itself.
            return self._tokenize(
                {
                    "messages": prompt.messages,
                    "add_generation_prompt": True,
                    "add_special_tokens": False,
                }
            )
        return self._tokenize({"prompt": prompt.text, "add_special_tokens": True})

    def encode(self, text: str) -> list[int]:
        """See `Backend.encode`."""
        if self._renderer is not None:
            return self._renderer.encode(text)
        return self._tokenize({"prompt": text, "add_special_tokens": False}) if text else []

    def decode(self, ids: Sequence[int]) -> str:
        """See `Backend.decode`. Server tokenizer: only known EOS ids are dropped."""
        if self._renderer is not None:
            return self._renderer.decode(ids)
        eos = self.eos_ids()
        kept = tuple(int(i) for i in ids if i not in eos)
        return self._detokenize(kept) if kept else ""

    def eos_ids(self) -> set[int]:
        """See `Backend.eos_ids`. Server tokenizer: the EOS ids generations stopped at."""
        if self._renderer is not None:
            return self._renderer.eos_ids()
        with self._lock:
            return set(self._seen_eos)

    # -- generation ---------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """See `Backend.generate`: one HTTP request per request, in parallel, in order."""
        return self._http.map(self._generate_one, list(requests))

    def _generate_one(self, r: GenerationRequest) -> list[Completion]:
        # Servers (vLLM among them) refuse n > 1 when greedy: ask once, repeat.
        n = r.n if r.temperature > 0 else 1
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": r.prompt_ids,
            "n": n,
            "seed": r.seed,
            "temperature": r.temperature,
            "top_p": r.top_p if r.temperature > 0 else 1.0,
            "max_tokens": r.max_tokens,
            "skip_special_tokens": True,
            "return_token_ids": True,
            **NEUTRAL_SAMPLING,
        }
        if r.stop:
            body["stop"] = r.stop
        if r.logprobs:
            body |= {"logprobs": 0, "return_tokens_as_token_ids": True}
        if r.cache_salt:
            body["cache_salt"] = r.cache_salt
        out = self._http.post("/v1/completions", body)
        choices = out.get("choices") if isinstance(out, dict) else None
        if not isinstance(choices, list) or len(choices) != n:
            got = len(choices) if isinstance(choices, list) else 0
            raise BackendError(f"{LABEL}: asked for {n} completions, the server returned {got}")
        ordered = sorted(choices, key=lambda c: int(c.get("index", 0)))
        return [self._completion(c, r.logprobs) for c in ordered] * (r.n // n)

    def _completion(self, choice: dict[str, Any], want_logprobs: bool) -> Completion:
        text = str(choice.get("text") or "")
        lp = choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else None
        ids = _token_ids(choice, lp)
        if ids is None:  # a server without return_token_ids: re-encode (approximate)
            ids = self.encode(text)
        finish = choice.get("finish_reason")
        if self._renderer is None and finish == "stop" and ids and "stop_reason" in choice:
            self._learn_eos(choice["stop_reason"], ids[-1])
        logps = None
        if want_logprobs:
            values = lp.get("token_logprobs") if lp else None
            if not isinstance(values, list) or len(values) != len(ids):
                raise BackendError(f"{LABEL}: the server returned no per-token logprobs")
            logps = [float(v) if v is not None else float("-inf") for v in values]
        return Completion(
            text=text,
            token_ids=ids,
            finish_reason="length" if finish == "length" else "stop",
            logprobs=logps,
        )

    def _learn_eos(self, stop_reason: Any, last_id: int) -> None:
        # vLLM: stop_reason None = stopped at EOS; an int = at a stop token id; a string
        # = at a stop string (whose last token is no EOS).
        if stop_reason is None or isinstance(stop_reason, int):
            with self._lock:
                self._seen_eos.add(int(stop_reason if stop_reason is not None else last_id))

    # -- scoring ------------------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """See `Backend.score`, through vLLM's `prompt_logprobs` (`top_is`: greedy).

        Raises:
            BackendError: `SCORE_UNSUPPORTED` when the server returns no prompt log-probs.
        """
        if any(not r.prefix_ids for r in requests):
            raise BackendError("score needs a non-empty prefix")
        return self._http.map(self._score_one, list(requests))

    def _score_one(self, r: ScoreRequest) -> ScoreResult:
        if not r.continuation_ids:
            return ScoreResult(token_logprobs=[], logprob_sum=0.0, greedy=True)
        prompt = r.prefix_ids + r.continuation_ids
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0.0,
            "prompt_logprobs": 1,
        }
        try:
            out = self._http.post("/v1/completions", body)
        except HTTPStatusError as exc:
            if "prompt_logprobs" in exc.detail:
                raise BackendError(f"{LABEL}: {SCORE_UNSUPPORTED} ({exc.detail})") from None
            raise
        choices = out.get("choices") if isinstance(out, dict) else None
        plp = choices[0].get("prompt_logprobs") if choices else None
        if not isinstance(plp, list) or len(plp) < len(prompt):
            raise BackendError(f"{LABEL}: {SCORE_UNSUPPORTED}")
        lps, greedy = [], True
        for pos, tok in enumerate(r.continuation_ids, start=len(r.prefix_ids)):
            entries = plp[pos] or {}
            entry = entries.get(str(tok))
            if not isinstance(entry, dict) or "logprob" not in entry:
                raise BackendError(f"{LABEL}: no prompt logprob for token {tok} at {pos}")
            lps.append(float(entry["logprob"]))
            greedy = greedy and top_is(entries, str(tok))
        return ScoreResult(token_logprobs=lps, logprob_sum=sum(lps), greedy=greedy)

    def next_token_logprobs(self, requests: Sequence[NextTokenRequest]) -> list[list[float]]:
        """See `NextTokenReader`: one request per prompt (see the module doc).

        Raises:
            BackendError: the server left a candidate out of the returned log-probs (it
                does not honour `logprob_token_ids`).
        """
        return self._http.map(self._next_one, list(requests))

    def _next_one(self, r: NextTokenRequest) -> list[float]:
        body = {
            "model": self.model,
            "prompt": r.prompt_ids,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": len(r.token_ids),
            "logprob_token_ids": r.token_ids,
            "return_tokens_as_token_ids": True,
            **NEUTRAL_SAMPLING,
        }
        out = self._http.post("/v1/completions", body)
        choices = out.get("choices") if isinstance(out, dict) else None
        lp = choices[0].get("logprobs") if choices and isinstance(choices[0], dict) else None
        top = lp.get("top_logprobs") if isinstance(lp, dict) else None
        first = top[0] if isinstance(top, list) and top and isinstance(top[0], dict) else {}
        values = []
        for tok in r.token_ids:
            value = first.get(f"token_id:{tok}", first.get(self.decode([tok])))
            if not isinstance(value, (int, float)):
                raise BackendError(
                    f"{LABEL}: the server returned no log-prob for candidate token {tok} "
                    "(a label read needs vLLM's logprob_token_ids)"
                )
            values.append(float(value))
        return values

    def read_cuts(self, requests: Sequence[CutReadRequest]) -> list[list[CutReadout]]:
        """One generation and one scoring request per cut; the server's prefix cache
        shares the prefill of generated read-outs (prompt log-probs bypass it)."""
        from faithcheck.backends.cuts import read_cuts_naive

        return read_cuts_naive(self, requests, isolate=False)

    def close(self) -> None:
        """Close the connection pool (the server keeps running)."""
        self._http.close()


def _auth_headers(api_key_env: str | None) -> dict[str, str]:
    if api_key_env is None:
        return {}
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise UsageError(
            f"{LABEL}: environment variable {api_key_env} (named by --api-key-env) is unset "
            "or empty"
        )
    return {"Authorization": f"Bearer {key}"}


def _token_ids(choice: dict[str, Any], lp: dict[str, Any] | None) -> list[int] | None:
    """Generated ids: vLLM's `token_ids`, else `token_id:N` log-prob tokens, else None."""
    ids = choice.get("token_ids")
    if isinstance(ids, list):
        return [int(i) for i in ids]
    tokens = lp.get("tokens") if lp else None
    if isinstance(tokens, list) and all(
        isinstance(t, str) and t.startswith("token_id:") for t in tokens
    ):
        return [int(t.removeprefix("token_id:")) for t in tokens]
    return None
