"""Typed records that flow between stages and land in the run directory.

Every record is a pydantic v2 model; the report schema *is* these models, and
`faithcheck schema` prints their JSON Schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    """Base for all records: strict about unknown fields, frozen once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Problem(Record):
    """One problem to sample responses for."""

    id: str
    """Stable identifier, unique within the dataset."""
    question: str
    """The question shown to the model."""
    answer: str
    """The gold answer, as text (math answers may be LaTeX)."""
    domain: str = "math"
    """Domain, which selects the verifier: math and science use math-verify, others exact match."""
    source: Literal["file", "hf", "rg"] = "file"
    """Where the problem came from; `rg` problems are scored by reasoning-gym's own scorer."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Extra data; for `rg` problems: generator (`rg_dataset`) and original entry (`rg_entry`)."""
