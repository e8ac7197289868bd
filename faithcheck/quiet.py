"""Keeping engine and library chatter off stdout, so `--json` output parses.

Two layers: vLLM's Python logger is pointed at stderr (VLLM_LOGGING_STREAM) before vLLM
is imported, and while a model runs, file descriptor 1 itself is routed to stderr, so
native libraries and the engine-core subprocess (which inherits the descriptor) cannot
write to stdout either. The command prints its JSON after the descriptor is restored.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator


def quiet_engines(verbose: bool) -> None:
    """Keep engine chatter off stdout and, unless --verbose, mostly off stderr."""
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    if not verbose:
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Route fd 1 to stderr so that native libraries cannot pollute --json output."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
