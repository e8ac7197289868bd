"""Command-line options generated from the options the packages declare
(`faithcheck.records.option`): a command takes them as `**options` and `with_options`
gives it a typer parameter per declared option, named, typed, defaulted and helped as
declared, so that no option is written twice.

Typer reads a command's parameters with `inspect.signature`, which returns the
`__signature__` set here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer

from faithcheck.records import Param

F = TypeVar("F", bound=Callable[..., Any])


def typer_parameter(p: Param) -> inspect.Parameter:
    """The typer option of one declared option."""
    flag = p.flag
    extra: dict[str, Any] = {}
    if flag.envvar is not None:
        extra["envvar"] = flag.envvar
    if not flag.show_default:
        extra["show_default"] = False
    option = typer.Option(*flag.names, help=flag.help, rich_help_panel=flag.panel, **extra)
    return inspect.Parameter(
        p.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=p.default,
        annotation=Annotated[p.annotation, option],
    )


def pick(params: Sequence[Param], names: Sequence[str]) -> list[Param]:
    """The declared options of `names`, in that order (a command that takes some)."""
    by_name = {p.name: p for p in params}
    return [by_name[n] for n in names]


def with_options(params: Sequence[Param], *, after: str) -> Callable[[F], F]:
    """Give a command `def f(..., **options)` one option per `params`, listed after its
    own parameter `after` (so `--help` groups them as the command wants); their values
    reach it in `options`."""

    def wrap(func: F) -> F:
        own = list(inspect.signature(func, eval_str=True).parameters.values())
        own = [q for q in own if q.kind is not inspect.Parameter.VAR_KEYWORD]
        at = [q.name for q in own].index(after) + 1
        made = [typer_parameter(p) for p in params]
        clash = {q.name for q in own} & {q.name for q in made}
        assert not clash, f"{func.__name__}: declared twice: {sorted(clash)}"
        positional = [q.replace(kind=inspect.Parameter.KEYWORD_ONLY) for q in own]
        signature = inspect.Signature([*positional[:at], *made, *positional[at:]])

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            return func(**kwargs)

        command.__signature__ = signature  # type: ignore[attr-defined]
        command.__annotations__ = {q.name: q.annotation for q in signature.parameters.values()}
        return command  # type: ignore[return-value]

    return wrap
