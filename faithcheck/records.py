"""Typed records that flow between stages and land in the run directory.

Every record is a pydantic v2 model; the report schema *is* these models, and
`faithcheck schema` prints their JSON Schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
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


# Options: each one declared once, on the options model of the package that uses it; the
# command line (`faithcheck.cli.declared`) and the API's keyword names are read off it.

PANEL_MODEL = "Model and backend"
PANEL_DATA = "Data"
PANEL_SAMPLING = "Sampling"
PANEL_OUTPUT = "Output"
PANEL_PROBES = "Faithfulness probes"
PANEL_JUDGE = "Judge"
PANEL_VERDICT = "Verdict and contrast"

_SAME: Any = object()
"""A `Flag` value not given: the field's own."""


@dataclass(frozen=True)
class Flag:
    """How an options field is given on the command line and as a keyword of the API
    (`faithcheck.score(max_tokens=...)`): field metadata, read by `declared_params`."""

    names: tuple[str, ...]
    """The flags (`--samples`, `-k`; `--judge/--no-judge`); empty: `--` and the keyword
    with dashes."""
    help: str
    """The help text `--help` shows."""
    panel: str | None = None
    """The `--help` panel it is listed in (`PANEL_*`); None: the general one."""
    envvar: str | None = None
    """The environment variable the command line reads it from."""
    param: str | None = None
    """Its keyword; None: the field's name after the group's prefix."""
    cli_type: Any = _SAME
    """The type the command line parses, where it is not the field's (`--probes` is one
    comma-separated string)."""
    cli_default: Any = _SAME
    """The default the command line shows, where it is not the field's."""
    parse: Callable[[Any], Any] | None = None
    """Turns the keyword's value into the field's (and rejects a bad one with the
    command line's message)."""
    show_default: bool = True
    """Whether `--help` shows the default."""


@dataclass(frozen=True)
class Group:
    """Field metadata: the field is a model of options of its own, whose keywords take
    `prefix` (`judge_` + `backend`)."""

    prefix: str = ""


def option(
    default: Any,
    *names: str,
    help: str,
    panel: str | None = None,
    envvar: str | None = None,
    param: str | None = None,
    cli_type: Any = _SAME,
    cli_default: Any = _SAME,
    parse: Callable[[Any], Any] | None = None,
    show_default: bool = True,
    **field: Any,
) -> Any:
    """A field that is an option: its default, pydantic constraints (`field`) and how it
    is given (`Flag`), declared once. A `default` that is a class or a function is a
    default factory (for lists and dicts)."""
    flag = Flag(names, help, panel, envvar, param, cli_type, cli_default, parse, show_default)
    info = Field(default_factory=default, **field) if callable(default) else Field(default, **field)
    info.metadata.append(flag)
    return info


def path_text(path: str | Path | None) -> str | None:
    """A path option as text (as run.json keeps it): the `parse` of path options."""
    return str(path) if path else None


def group(factory: Callable[[], Any], prefix: str = "") -> Any:
    """A field holding another package's options model (its keywords take `prefix`)."""
    info = Field(default_factory=factory)
    info.metadata.append(Group(prefix))
    return info


@dataclass(frozen=True)
class Param:
    """One keyword of a model's declared options (`declared_params`)."""

    name: str
    """The keyword (`max_tokens`, `judge_backend`); the flag is `--` and it with dashes."""
    path: tuple[str, ...]
    """The field it sets, from the top model (`("judge", "backend")`)."""
    flag: Flag
    annotation: Any
    """The type the command line parses."""
    default: Any
    """The default the command line and the API take."""


def declared_params(model: type[BaseModel], prefix: str = "") -> list[Param]:
    """Every option of `model` and of its groups, in declaration order."""
    params: list[Param] = []
    for name, info in model.model_fields.items():
        meta = {type(m): m for m in info.metadata}
        if Group in meta:
            sub = declared_params(info.annotation, prefix + meta[Group].prefix)  # type: ignore[arg-type]
            params += [replace(p, path=(name, *p.path)) for p in sub]
        elif Flag in meta:
            flag: Flag = meta[Flag]
            default = info.get_default(call_default_factory=True)
            params.append(
                Param(
                    name=flag.param or prefix + name,
                    path=(name,),
                    flag=flag,
                    annotation=info.annotation if flag.cli_type is _SAME else flag.cli_type,
                    default=default if flag.cli_default is _SAME else flag.cli_default,
                )
            )
    return params


def gather(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """The field values (nested by group) that the keywords in `values` set, each through
    its `Flag.parse`; fields whose keyword is absent are left out (their defaults hold)."""
    out: dict[str, Any] = {}
    for p in declared_params(model):
        if p.name not in values:
            continue
        value = values[p.name]
        at = out
        for key in p.path[:-1]:
            at = at.setdefault(key, {})
        at[p.path[-1]] = p.flag.parse(value) if p.flag.parse is not None else value
    return out
