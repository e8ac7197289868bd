"""Which problems a run reads (`faithcheck score`'s "Data" panel): the dataset or the
rollouts to re-score, its field names, the limit and the shard."""

from __future__ import annotations

import hashlib
from pathlib import Path

from faithcheck.errors import UsageError
from faithcheck.problems.load import FieldMap, load_problems, load_rollouts
from faithcheck.records import PANEL_DATA, Problem, Record, group, option, path_text


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`i/N` -> (i, N), 0 <= i < N; None for None."""
    if text is None:
        return None
    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--shard must look like i/N (e.g. 0/4), got {text!r}")
    index, count = int(parts[0]), int(parts[1])
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text}: need 0 <= i < N")
    return index, count


def in_shard(problem_id: str, index: int, count: int) -> bool:
    """Whether a problem belongs to shard `index` of `count` (0-based).

    By a hash of the problem id, not its position: the split does not depend on file
    order or `--limit`, every problem lands in exactly one shard, and the same id always
    lands in the same shard.
    """
    digest = hashlib.sha256(problem_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count == index


class SourceFields(Record):
    """Which source fields hold the problem's fields (`--id-field` and friends)."""

    id: str = option("id", param="id_field", help="Source field holding the id.", panel=PANEL_DATA)
    """The id's field."""
    question: str = option(
        "question",
        param="question_field",
        help="Source field holding the question.",
        panel=PANEL_DATA,
    )
    """The question's field."""
    answer: str = option(
        "answer",
        param="answer_field",
        help="Source field holding the gold answer.",
        panel=PANEL_DATA,
    )
    """The gold answer's field."""
    domain: str = option(
        "domain",
        param="domain_field",
        help="Source field holding the domain.",
        panel=PANEL_DATA,
    )
    """The domain's field."""


class ProblemOptions(Record):
    """Where a run's problems come from, and which of them it scores."""

    dataset: str = option(
        "math",
        "--dataset",
        "-d",
        help="Bundled set (math, science, graph), a .jsonl/.json/.parquet file, "
        "hf:org/name[:config]:split, or rg:generator?size=N&seed=S.",
        envvar="FAITHCHECK_DATASET",
        panel=PANEL_DATA,
    )
    """--dataset spec."""
    fields: SourceFields = group(SourceFields)
    """Source field names for id / question / answer / domain."""
    domain: str = option(
        "math",
        help="Domain for rows without one (math/science: math-verify; else exact).",
        panel=PANEL_DATA,
    )
    """Domain for rows without one."""
    limit: int | None = option(None, help="Use only the first N problems.", panel=PANEL_DATA)
    """Use only the first N problems."""
    shard: tuple[int, int] | None = option(
        None,
        cli_type=str | None,
        parse=parse_shard,
        help="Run only shard i of N (0-based, e.g. 0/4): problems split by a hash of their id; "
        "combine the shards with `faithcheck merge`.",
        panel=PANEL_DATA,
    )
    """(i, N): keep only the problems of shard i of N (`--shard i/N`; see `in_shard`)."""
    from_samples: str | None = option(
        None,
        cli_type=Path | None,
        parse=path_text,
        help="Re-score saved rollouts with --model instead of sampling; replaces --dataset. "
        "faithcheck JSONL (id, question, answer, response), lm-eval --log_samples files, "
        "verl generation dumps, TRL completion logs (see --from-format).",
        panel=PANEL_DATA,
    )
    """Re-score saved rollouts from this JSONL file instead of sampling."""
    from_format: str = option(
        "auto",
        help="Format of --from-samples: auto (detected from the first line), faithcheck, "
        "jsonl, lm-eval, verl, trl.",
        panel=PANEL_DATA,
    )
    """--from-format: the rollouts' format (`faithcheck.problems.rollouts`; auto detects it)."""

    def field_map(self) -> FieldMap:
        """The source field names as the loaders take them."""
        return FieldMap(**self.fields.model_dump())

    def read(self) -> tuple[list[Problem], dict[str, list[str]] | None]:
        """The problems (all of them: neither limited nor sharded) and, with
        --from-samples, the responses to re-score by problem id.

        Raises:
            DataError: the dataset or rollouts file cannot be read.
        """
        fields = self.field_map()
        if self.from_samples:
            return load_rollouts(
                self.from_samples, fields=fields, default_domain=self.domain, fmt=self.from_format
            )
        return load_problems(self.dataset, fields=fields, default_domain=self.domain), None

    def check(self) -> None:
        """Reject values the run cannot use, with the command line's message."""
        if self.limit is not None and self.limit < 1:
            raise UsageError("--limit must be at least 1")
