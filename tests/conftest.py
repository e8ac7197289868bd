"""Shared fixtures: the real default model, converted once per machine, and backends.

Backends are session-scoped: loading one costs seconds, and several tests share it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# vLLM on CPU: in-process engine, logs to stderr, quiet.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Each vLLM engine (in-process, a CLI subprocess or `vllm serve`) reserves its KV cache up
# front: 4 GiB by default (faithcheck.backends.vllm). The tests' 135M model at 2,048
# tokens needs a few MiB of it; 1 GiB keeps several engines at once (xdist workers, each
# with its session engines and CLI subprocesses) inside a small CI machine's memory.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

# Under pytest-xdist (`-n N`) the cores are shared out: each worker's engines, and the CLI
# processes it starts, get cores / N threads (`cpu_thread_count` reads OMP_NUM_THREADS),
# so N workers never ask for more threads than there are cores.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // _WORKERS)))

# The longest test files (each a few minutes, measured by --durations on a 2-core CPU) run
# first: pytest-xdist hands whole files (--dist loadfile) to the worker that is free, in
# collection order under --no-loadscope-reorder (as `make test` runs it; by default it
# sends the files with the most tests first, which leaves the few-but-long files of real
# engine runs for last), so that no long file keeps one worker busy at the end while the
# other sits idle. Order only; serially it changes nothing but the order.
LONG_FILES = (
    "backends/test_openai.py",
    "test_e2e.py",
    "pipeline/test_resume.py",
    "test_api.py",
    "problems/test_from_samples.py",
    "cli/test_calibrate.py",
    "pipeline/test_merge.py",
    "judge/test_jury.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files of `LONG_FILES` first, in that order; every file's tests stay together and
    in their own order."""
    here = Path(__file__).parent
    rank = {here / name: i for i, name in enumerate(LONG_FILES)}
    if missing := [str(p) for p in rank if not p.is_file()]:
        raise pytest.UsageError(f"tests/conftest.py LONG_FILES names no file: {missing}")
    items.sort(key=lambda item: rank.get(item.path, len(rank)))


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


# One small greedy fp32 `faithcheck score` run: 2 problems x 2 samples of at most 48 tokens,
# every probe on the first sample of each problem (greedy: the second is the same chain),
# no judge, no diversity. Greedy in fp32, every backend writes the same samples.
GREEDY_FP32_ARGS = (
    "--limit", "2", "--samples", "2", "--max-tokens", "48", "--temperature", "0",
    "--dtype", "float32", "--no-judge", "--no-diversity", "--probe-samples", "1",
)  # fmt: skip


def greedy_fp32_cmd(model_path: str, backend: str, out: Path) -> list[str]:
    """The command line of `greedy_fp32_run(backend)` (a resumed run repeats it)."""
    cmd = [sys.executable, "-m", "faithcheck", "score", "--model", model_path]
    return [*cmd, "--backend", backend, *GREEDY_FP32_ARGS, "--out", str(out), "--json"]


@pytest.fixture(scope="session")
def greedy_fp32_run(
    tmp_path_factory: pytest.TempPathFactory, model_path: str
) -> Callable[[str], Path]:
    """`greedy_fp32_run(backend)`: the run directory of `greedy_fp32_cmd` through the real
    CLI (exit 4, two problems being too few to decide on; a valid report, on stdout and on
    disk), made on first use and shared by the session: each run costs a process, a model
    load and probes. Read-only: a test that changes a run copies it into its tmp_path."""
    runs: dict[str, Path] = {}

    def get(backend: str) -> Path:
        if backend not in runs:
            if backend == "vllm" and importlib.util.find_spec("vllm") is None:
                pytest.skip("vLLM is not installed")
            out = tmp_path_factory.mktemp(f"greedy-fp32-{backend}") / "run"
            cmd = greedy_fp32_cmd(model_path, backend, out)
            env = os.environ | {"VLLM_LOGGING_LEVEL": "INFO"}  # noisy engines, a clean stdout
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=600, env=env, check=False
            )
            if proc.returncode != 4:
                pytest.fail(f"greedy {backend} run exited {proc.returncode}: {proc.stderr[-2000:]}")
            report = json.loads(proc.stdout)  # stdout is the report and nothing else
            assert_valid_report(report)
            assert report == json.loads((out / "report.json").read_text())
            runs[backend] = out
        return runs[backend]

    return get


def await_wandb_flush(folder: Path, timeout_s: float = 20.0) -> None:
    """Wait until wandb's writer (a separate service process) has stopped growing the
    run's .wandb file: `finish()` can return before its last block reaches the disk, and a
    read then finds no rows (seen once in a CI run under load). Waits for the size to hold
    for half a second; the tests' assertions then judge what was written."""
    last, stable, deadline = -1, 0, time.monotonic() + timeout_s
    while time.monotonic() < deadline and stable < 5:
        logs = list(folder.glob("*.wandb"))
        size = logs[0].stat().st_size if len(logs) == 1 else -1
        stable = stable + 1 if size == last and size > 0 else 0
        last = size
        time.sleep(0.1)


def completions_by_key(run: Path) -> dict[tuple[str, int], str]:
    """(problem id, sample index) -> completion text, from a run's samples.jsonl."""
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    return {(r["problem_id"], r["sample_index"]): r["completion"] for r in rows}


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
