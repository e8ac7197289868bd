"""Where a chat judge lives: provider-prefixed model names, as inspect_ai users write them.

    --judge-model openai/o3                      https://api.openai.com/v1       OPENAI_API_KEY
    --judge-model anthropic/<model>              https://api.anthropic.com/v1/   ANTHROPIC_API_KEY
    --judge-model openrouter/<org>/<model>       https://openrouter.ai/api/v1    OPENROUTER_API_KEY
    --judge-model <name> --judge-base-url URL    that chat endpoint (no key unless named)

`--judge-base-url` overrides a provider's URL (for openai/, so does OPENAI_BASE_URL, as in
the SDK) and `--judge-api-key-env` its key variable.
Local servers (vllm, sglang, ollama, llamacpp) need no key. Azure OpenAI's v1 API is
`https://<resource>.openai.azure.com/openai/v1/`: give it with --judge-base-url or set
AZURE_OPENAI_ENDPOINT (the resource URL) and name the deployment as the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from faithcheck.errors import UsageError


@dataclass(frozen=True)
class Provider:
    """A chat API: its default endpoint and where its key is read from."""

    name: str
    """The model-name prefix (`openai` in `openai/o3`)."""
    base_url: str | None
    """Default endpoint; None: built from `url_env` (Azure) or given by the user."""
    key_envs: tuple[str, ...]
    """Environment variables holding the key, first set wins; () for local servers."""
    url_env: str | None = None
    """Environment variable holding the endpoint (a resource URL), when the URL varies."""
    url_suffix: str = ""
    """Appended to the `url_env` value."""
    override_env: str | None = None
    """Environment variable that, when set, replaces `base_url` (the SDK's own
    OPENAI_BASE_URL convention, e.g. for a proxy or gateway)."""


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "openai",
            "https://api.openai.com/v1",
            ("OPENAI_API_KEY",),
            override_env="OPENAI_BASE_URL",
        ),
        Provider("azure", None, ("AZURE_OPENAI_API_KEY",), "AZURE_OPENAI_ENDPOINT", "/openai/v1/"),
        Provider("anthropic", "https://api.anthropic.com/v1/", ("ANTHROPIC_API_KEY",)),
        # Google's OpenAI-compatible Gemini endpoint: the base URL does not end in /v1.
        Provider(
            "google",
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        ),
        Provider("openrouter", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",)),
        Provider("together", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",)),
        Provider("fireworks", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",)),
        Provider("groq", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",)),
        Provider("deepseek", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",)),
        Provider("mistral", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",)),
        Provider("vllm", "http://127.0.0.1:8000/v1", ()),
        Provider("sglang", "http://127.0.0.1:30000/v1", ()),
        Provider("ollama", "http://127.0.0.1:11434/v1", ()),
        Provider("llamacpp", "http://127.0.0.1:8080/v1", ()),
    )
}


@dataclass(frozen=True)
class ChatTarget:
    """A resolved chat judge: endpoint, model name(s) and key variable."""

    base_url: str
    """The endpoint (the SDK appends /chat/completions, /models)."""
    models: tuple[str, ...]
    """Model names to try, in order (the first the server lists is used)."""
    key_env: str | None
    """The environment variable holding the key; None: no key."""
    provider: str | None
    """The provider prefix used, if any."""

    @property
    def model(self) -> str:
        """The preferred model name."""
        return self.models[0]


def provider_of(model: str) -> Provider | None:
    """The provider a model name is prefixed with, or None."""
    head, sep, _ = model.partition("/")
    return PROVIDERS.get(head) if sep else None


def resolve_target(model: str, base_url: str | None, api_key_env: str | None) -> ChatTarget:
    """Endpoint, model and key variable of a chat judge.

    With `base_url`, the name is sent as given (a known provider prefix is also tried
    stripped, and the key variable comes from that provider unless named). Without it,
    the name must carry a provider prefix.

    Raises:
        UsageError: no endpoint can be found, or the key variable is unset or empty.
    """
    provider = provider_of(model)
    rest = model.split("/", 1)[1] if provider else model
    if not rest:
        raise UsageError(f"--judge-model {model!r} names a provider but no model")
    if base_url:
        url = base_url
        models = (model, rest) if provider else (model,)
    elif provider is None:
        known = ", ".join(sorted(PROVIDERS))
        raise UsageError(
            f"--judge-model {model!r} has no known provider prefix ({known}); write e.g. "
            "openai/o3, or give the endpoint with --judge-base-url"
        )
    else:
        url = _provider_url(provider)
        models = (rest,)
    key_env = api_key_env or _key_env(provider)
    if key_env is not None and not os.environ.get(key_env, "").strip():
        named = "named by --judge-api-key-env" if api_key_env else f"the {provider.name} key"  # type: ignore[union-attr]
        raise UsageError(
            f"the judge {model} needs an API key: environment variable {key_env} "
            f"({named}) is unset or empty"
        )
    return ChatTarget(url, models, key_env, provider.name if provider else None)


def _provider_url(provider: Provider) -> str:
    override = os.environ.get(provider.override_env or "", "").strip()
    if override:
        return override
    if provider.base_url is not None:
        return provider.base_url
    root = os.environ.get(provider.url_env or "", "").strip().rstrip("/")
    if not root:
        raise UsageError(
            f"the {provider.name} judge needs its endpoint: set {provider.url_env} or give "
            "--judge-base-url"
        )
    return root + provider.url_suffix


def _key_env(provider: Provider | None) -> str | None:
    if provider is None or not provider.key_envs:
        return None
    for name in provider.key_envs:
        if os.environ.get(name, "").strip():
            return name
    return provider.key_envs[0]
