"""Every `faithcheck …` command the README and the pages under docs/ show parses: the
subcommand exists, its options exist and take the values given, and every `--require` names a
gateable metric. A renamed option or metric then fails here instead of rotting in the docs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from typer.main import get_command

from faithcheck.cli import commands as cli
from faithcheck.verdict.gates import parse_require

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_SHELL_ENDS = {">", ">>", "2>", "|", "&&", ";"}


def _text() -> str:
    return "\n".join(page.read_text() for page in PAGES)


def _commands() -> list[list[str]]:
    """The pages' `faithcheck` command lines: in code blocks (continuations joined,
    comments and redirections dropped) and inline in backticks (those with arguments)."""
    text = _text()
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        lines += [ln.strip() for ln in block.replace("\\\n", " ").splitlines()]
    # Inline mentions with arguments; a bare `faithcheck compare` names a command.
    inline = re.findall(r"`(faithcheck [^`]+)`", text.replace("\n", " "))
    lines += [ln for ln in inline if len(ln.split()) > 2]
    out = []
    for line in lines:
        if not line.startswith("faithcheck "):
            continue
        words = shlex.split(line, comments=True)
        cut = next((i for i, w in enumerate(words) if w in _SHELL_ENDS), len(words))
        out.append(words[1:cut])
    return out


COMMANDS = _commands()


def test_the_pages_show_commands_of_every_kind() -> None:
    shown = {args[0] for args in COMMANDS if args}
    assert {"score", "compare", "report", "calibrate", "merge", "saturation", "gate"} <= shown


def test_the_readme_shows_the_recipes_commands() -> None:
    """The front door keeps a command line for each recipe, not only links."""
    readme = (ROOT / "README.md").read_text()
    for needed in ("faithcheck score", "--judge-model openai/o3", "faithcheck compare",
                   "faithcheck gate", "faithcheck saturation"):  # fmt: skip
        assert needed in readme, needed


def _parse(args: list[str]) -> click.Context:
    group = get_command(cli.app)
    ctx = group.make_context("faithcheck", list(args))
    protected = getattr(ctx, "_protected_args", None) or []
    name, sub, rest = group.resolve_command(ctx, [*protected, *ctx.args])  # type: ignore[attr-defined]
    assert sub is not None, f"no subcommand {name!r}"
    return sub.make_context(name or "", rest, parent=ctx)


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a)[:60] for a in COMMANDS])
def test_readme_command_parses(args: list[str]) -> None:
    ctx = _parse(args)
    for text in ctx.params.get("require") or []:
        parse_require(text)


def test_every_require_the_pages_mention_is_a_gateable_metric() -> None:
    text = _text()
    requires = re.findall(r"--require '([^']+)'", text)
    assert requires
    for text in requires:
        parse_require(text)


def test_a_report_path_to_a_metric_value_is_accepted() -> None:
    """`diversity.vendi.value` is how report.json spells it; the gate reads the metric."""
    assert parse_require("diversity.vendi.value>=2").metric == "diversity.vendi"
    assert parse_require("diversity.vendi>=2").metric == "diversity.vendi"
