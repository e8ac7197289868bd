"""Whether `faithcheck score` computes the output-diversity contrast, and with which
metrics (`--diversity/--no-diversity`, `--embed/--no-embed`)."""

from __future__ import annotations

from faithcheck.records import PANEL_VERDICT, Record, option


class DiversityOptions(Record):
    """The diversity stage's options."""

    enabled: bool = option(
        True,
        "--diversity/--no-diversity",
        param="diversity",
        help="Report output-diversity metrics for contrast (never gated unless required).",
        panel=PANEL_VERDICT,
    )
    """Compute the diversity contrast (--no-diversity skips it)."""
    embed: bool = option(
        True,
        "--embed/--no-embed",
        help="Include embedding diversity (offline MiniLM embedder; about 0.1 s per response "
        "on 2 CPU cores).",
        panel=PANEL_VERDICT,
    )
    """Include the embedding metrics (loads the offline MiniLM embedder)."""
