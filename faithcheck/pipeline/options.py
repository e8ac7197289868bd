"""`ScoreOptions`: everything `faithcheck score` was asked to do, composed of the options
each package declares (`faithcheck.records.option`) for itself:

- `engine` (`faithcheck.backends.options.EngineOptions`): backend, dtype, engine args;
- `problems` (`faithcheck.problems.options.ProblemOptions`): dataset, fields, limit, shard;
- `sampling` (`faithcheck.sampling.SamplingOptions`): samples, temperature, prompt;
- `probes` (`faithcheck.probes.ProbeConfig`), `judge` and `jury`
  (`faithcheck.judge.options.JudgeOptions`), `diversity`
  (`faithcheck.diversity.options.DiversityOptions`);
- and the run's own: `model`, `out`, `force`, `chunk_size`.

`score_options` builds them from keywords named as on the command line (`max_tokens`,
`judge_backend`): the one path for the CLI and the API (`faithcheck.score(**options)`).
The command line's options are generated from the same declarations
(`faithcheck.cli.declared`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from faithcheck.backends.options import EngineOptions
from faithcheck.diversity.options import DiversityOptions
from faithcheck.errors import UsageError
from faithcheck.judge.options import JudgeOptions
from faithcheck.models import DEFAULT_MODEL
from faithcheck.probes.records import ProbeConfig
from faithcheck.problems.options import ProblemOptions
from faithcheck.records import (
    PANEL_OUTPUT,
    Param,
    Record,
    declared_params,
    gather,
    group,
    option,
    path_text,
)
from faithcheck.sampling import SamplingOptions


class ScoreOptions(Record):
    """Everything `faithcheck score` was asked to do: each package's options, composed.

    Written to run.json flat, as before the packages declared their own (`_FLAT`): the
    fields of `engine`, `problems`, `sampling` and `diversity` at the top level, keys in
    their old order; read back from that form.
    """

    model: str
    """--model: alias, checkpoint folder, or hub id."""
    engine: EngineOptions = group(EngineOptions)
    """How the model is loaded and run."""
    problems: ProblemOptions = group(ProblemOptions)
    """Which problems the run reads."""
    sampling: SamplingOptions = group(SamplingOptions)
    """How responses are sampled."""
    out: str | None = option(
        None,
        "--out",
        "-o",
        cli_type=Path | None,
        parse=path_text,
        help="Run directory (default runs/<model>-<time>).",
        panel=PANEL_OUTPUT,
    )
    """Run directory."""
    force: bool = option(
        False, help="Discard a run with a different config in --out.", panel=PANEL_OUTPUT
    )
    """Discard an existing run with another config."""
    probes: ProbeConfig = group(ProbeConfig)
    """Which faithfulness probes to run, and how."""
    judge: JudgeOptions = group(JudgeOptions, prefix="judge_")
    """Whether and how to run the judge (the first judge of a jury)."""
    jury: list[JudgeOptions] = Field(default_factory=list)
    """The other judges of a jury (--judge-model given more than once), each with its
    own settings; empty: one judge."""
    diversity: DiversityOptions = group(DiversityOptions)
    """Whether and how to compute the diversity contrast."""
    chunk_size: int | None = None
    """Problems per engine call; None: 16 on vLLM (bigger batches, more throughput), 1 on hf
    (it samples one request at a time anyway, so this only makes progress finer)."""

    def check(self) -> None:
        """Reject what the run cannot do, with the command line's one-line message
        (before anything loads)."""
        self.sampling.check()
        self.problems.check()
        if self.probes.mistakes == "llm" and not self.judge.enabled:
            raise UsageError("--mistakes llm needs the judge model (drop --no-judge)")

    @model_validator(mode="before")
    @classmethod
    def _from_flat(cls, data: Any) -> Any:
        """Read the flat form run.json holds (and flat keywords: `ScoreOptions(samples=4)`)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, model in _FLAT.items():
            if isinstance(data.get(name), dict | Record):
                continue  # already nested
            part = {
                f: data.pop(key)
                for f in model.model_fields
                if (key := _FLAT_KEYS.get((name, f), f)) in data
                and not (key == name and isinstance(data[key], dict | Record))
            }
            if part:
                data[name] = part
        return data

    @model_serializer(mode="wrap")
    def _to_flat(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _FLAT:
            part = data.pop(name, None) or {}
            data |= {_FLAT_KEYS.get((name, f), f): v for f, v in part.items()}
        return {k: data[k] for k in _WRITTEN_ORDER if k in data} | data


_FLAT: dict[str, type[Record]] = {
    "engine": EngineOptions,
    "problems": ProblemOptions,
    "sampling": SamplingOptions,
    "diversity": DiversityOptions,
}
"""The groups written flat: their fields at the top level of run.json's options."""

_FLAT_KEYS = {("diversity", "enabled"): "diversity", ("diversity", "embed"): "diversity_embed"}
"""A flat group's fields written under another name than their own."""

_WRITTEN_ORDER = (
    *("model", "dataset", "fields", "domain", "backend", "dtype", "max_model_len"),
    *("tensor_parallel_size", "gpu_memory_utilization", "samples", "limit", "shard"),
    *("temperature", "top_p", "max_tokens", "seed", "prompt_format", "prompt_template"),
    *("out", "force", "trust_remote_code", "from_samples", "from_format", "probes"),
    *("base_url", "api_key_env", "max_concurrency", "judge", "jury", "diversity"),
    *("diversity_embed", "engine_args", "revision", "chunk_size"),
)
"""The key order of run.json's options as written when `ScoreOptions` was one flat
model; keys added since follow, in declaration order."""


def score_params() -> list[Param]:
    """The keywords of `score_options` (and `faithcheck.score`), the CLI's `score` options
    (`--` and the keyword with dashes), in declaration order."""
    return declared_params(ScoreOptions)


def check_names(values: Mapping[str, Any]) -> None:
    """Refuse a keyword that is no `faithcheck score` option.

    Raises:
        UsageError: the first unknown keyword, by name.
    """
    unknown = sorted(set(values) - {p.name for p in score_params()})
    if unknown:
        raise UsageError(
            f"unknown option {unknown[0]!r} (faithcheck score options, dashes as underscores)"
        )


def score_options(model: str | None = None, **values: Any) -> ScoreOptions:
    """`ScoreOptions` from keywords named and defaulted as the `faithcheck score` options
    (`--max-tokens` is `max_tokens`, `score_params`), with every check the command line
    makes: the one place both the CLI and the Python API build a run's options. `model`:
    None is $FAITHCHECK_MODEL, else the default model.

    Raises:
        UsageError: an unknown keyword or a bad value, with the command line's message.
    """
    from faithcheck.judge.choose import jury_options  # loads the judge's planning

    check_names(values)
    params = score_params()
    fields = gather(ScoreOptions, values)
    judge = fields.pop("judge", {})
    if judge.get("samples") is None:  # as many as the probes use, unless given
        judge["samples"] = fields.get("probes", {}).get("probe_samples")
    fields |= jury_options(judge.pop("model", None), **judge)
    chosen = model or os.environ.get("FAITHCHECK_MODEL") or DEFAULT_MODEL
    try:
        return ScoreOptions.model_validate({"model": chosen} | fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(x) for x in first["loc"])
        named = [p.name for p in params if loc[: len(p.path)] == p.path]
        where = "--" + (named[0] if named else "-".join(loc)).replace("_", "-")
        raise UsageError(f"{where}: {first['msg']}") from None
