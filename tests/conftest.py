"""Shared fixtures: the real default model, converted once per machine, and backends.

Backends are session-scoped: loading one costs seconds, and several tests share it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# vLLM on CPU: in-process engine, logs to stderr, quiet.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# find_spec, not import: collecting tests must not pay for importing vLLM. A vLLM that is
# installed but broken fails loudly in the fixture instead of being skipped silently.
skip_if_no_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"
)


@pytest.fixture(autouse=True)
def _own_judge_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own judge response cache (subprocesses inherit it): a reply cached
    by one test never answers another's question."""
    monkeypatch.setenv("FAITHCHECK_JUDGE_CACHE", str(tmp_path / "judge-cache"))


@pytest.fixture(scope="session")
def model_path() -> str:
    """Checkpoint folder of the embedded default model (converted from GGUF on first use)."""
    from faithcheck.models import DEFAULT_MODEL, resolve_model

    return resolve_model(DEFAULT_MODEL).path


@pytest.fixture(scope="session")
def hf_fp32(model_path: str) -> Iterator[object]:
    """transformers backend in fp32 (the precision where backends must agree)."""
    from faithcheck.backends.hf import HFBackend

    backend = HFBackend(model_path, dtype="float32")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def vllm_fp32(model_path: str) -> Iterator[object]:
    """vLLM backend in fp32."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed")
    from faithcheck.backends.vllm import VLLMBackend

    backend = VLLMBackend(model_path, dtype="float32", max_model_len=1024)
    yield backend
    backend.close()


@pytest.fixture
def repo_root() -> Path:
    """The repository checkout (for bundled data)."""
    return Path(__file__).resolve().parent.parent


def assert_valid_report(doc: dict[str, object]) -> None:
    """Every report.json a test writes must validate against `faithcheck schema`."""
    import jsonschema

    from faithcheck.report import report_json_schema

    jsonschema.validate(doc, report_json_schema())


@pytest.fixture
def wandb_offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No key, no netrc, every wandb folder under tmp_path: wandb must go offline."""
    pytest.importorskip("wandb")
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path


def find_chromium() -> str | None:
    """The browser scripts/screenshot_report.py would run (one rule for both), or None."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "screenshot_report.py"
    spec = importlib.util.spec_from_file_location("screenshot_report", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: str | None = module.find_browser()
    return found


def require_chromium() -> str:
    """The Chromium-family browser to run, else skip, or fail under CI (`CI` set), where
    `.ci/run` installs Chromium and a browser test must never pass by skipping."""
    found = find_chromium()
    if found is not None:
        return found
    why = "no chromium installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {why}; .ci/run installs it")
    pytest.skip(why)
