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

    def config_part(self) -> list[bool]:
        """Its part of the hashed config (run.json `config.diversity`): every setting that
        changes diversity.jsonl, which is computed again when it changes (a run's samples,
        probe and judge records are kept: their stage hashes do not cover it)."""
        return [self.enabled, self.embed]
