"""The package's import graph: no cycles (between modules, and between packages), no private
name imported across modules, no import of `faithcheck.cli` from the library, every
import going down the layers drawn in docs/architecture.md, and the CLI importing the
library only through the API and the short list that page gives.

Every import counts, module-level or inside a function (a lazy import is still a
dependency). This is the check behind docs/development.md's layout claims and
docs/architecture.md's layers; run it alone with `pytest tests/test_layering.py -q`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "faithcheck"
ARCHITECTURE = ROOT.parent / "docs" / "architecture.md"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("faithcheck"):
                target = node.module or ""
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    if full in mods:
                        graph[name].add(full)
                        continue
                    if target in mods:
                        graph[name].add(target)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append((name, target, alias.name))
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in mods}
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_no_private_names_cross_modules() -> None:
    _, private = _graph()
    assert private == []


def test_the_checker_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


# -- packages and layers ----------------------------------------------------------------------


def unit(module: str) -> str:
    """The package (or top-level module) a module belongs to, as docs/architecture.md names
    it: `faithcheck.judge.stage` -> `judge`; the package's `__init__` is the API's public
    face (`api`) and `__main__` is the command (`cli`)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    return "cli" if parts[1] == "__main__" else parts[1]


def _unit_graph() -> dict[str, set[str]]:
    graph, _ = _graph()
    units: dict[str, set[str]] = {}
    for source, targets in graph.items():
        units.setdefault(unit(source), set()).update(
            unit(t) for t in targets if unit(t) != unit(source)
        )
    return units


def layers(text: str) -> list[list[str]]:
    """The numbered list under `## Layers`: each item's units (the code spans before the
    dash), top layer first."""
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    found = []
    for line in section.splitlines():
        m = re.match(r"\d+\. (.*?) — ", line)
        if m:
            found.append(re.findall(r"`([\w.]+)`", m.group(1)))
    return found


def upward(graph: dict[str, set[str]], order: list[list[str]]) -> list[str]:
    """Every import that does not go to a strictly lower layer, as `a -> b`."""
    level = {u: i for i, names in enumerate(order) for u in names}
    return sorted(
        f"{a} -> {b}" for a, targets in graph.items() for b in targets if level[b] <= level[a]
    )


def test_no_package_cycles() -> None:
    assert _cycles(_unit_graph()) == []


def test_nothing_outside_cli_imports_cli() -> None:
    graph, _ = _graph()
    found = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if unit(m) != "cli"
        for t in targets
        if unit(t) == "cli"
    )
    assert found == []


def test_every_unit_has_one_place_in_the_architecture_doc() -> None:
    order = layers(ARCHITECTURE.read_text())
    named = [u for names in order for u in names]
    assert len(named) == len(set(named)), "a unit is named twice"
    assert sorted(named) == sorted(_unit_graph())


def test_imports_go_down_the_layers_of_the_architecture_doc() -> None:
    assert upward(_unit_graph(), layers(ARCHITECTURE.read_text())) == []


def test_the_layer_checker_sees_an_upward_and_a_sideways_import() -> None:
    doc = "x\n## Layers\n\nintro\n\n1. `a`, `b` — top\n2. `c` — bottom\n\n## More\n3. `d` — no\n"
    order = layers(doc)
    assert order == [["a", "b"], ["c"]]
    assert upward({"a": {"c"}, "b": set(), "c": set()}, order) == []
    assert upward({"a": {"b"}, "b": set(), "c": {"a"}}, order) == ["a -> b", "c -> a"]
    assert unit("faithcheck") == "api" and unit("faithcheck.__main__") == "cli"
    assert unit("faithcheck.judge.stage") == "judge" and unit("faithcheck.report") == "report"


# -- what the CLI imports ---------------------------------------------------------------------


def cli_allowed(text: str) -> dict[str, set[str] | None]:
    """The list under `## What the CLI imports`: module -> the names it may give (None:
    any), from lines `- `a`, `b` — why` and `- `m`: `x`, `y` — why`."""
    section = text.split("\n## What the CLI imports\n", 1)[1].split("\n## ", 1)[0]
    allowed: dict[str, set[str] | None] = {}
    for m in re.finditer(r"^- (.*?) — ", section, re.MULTILINE):
        modules, _, names = m.group(1).partition(": ")
        given = set(re.findall(r"`([\w.]+)`", names)) if names else None
        for module in re.findall(r"`([\w.]+)`", modules):
            allowed[module] = given
    return allowed


def _cli_imports() -> list[tuple[str, str, str]]:
    """(module, imported module, name) for every import of faithcheck in the CLI's modules
    (`import faithcheck.x` gives the name `*`)."""
    found = []
    for name, path in _modules().items():
        if unit(name) != "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("faithcheck"):
                found += [(name, node.module or "", a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(name, a.name, "*") for a in node.names if a.name.startswith("faith")]
    return found


def outside_the_api(
    imports: list[tuple[str, str, str]], allowed: dict[str, set[str] | None]
) -> list[str]:
    """The imports the allow-list does not name, as `module: from target import name`."""
    bad = []
    for module, target, name in imports:
        if target == "faithcheck.cli" or target.startswith("faithcheck.cli."):
            continue
        if target not in allowed or (allowed[target] is not None and name not in allowed[target]):
            bad.append(f"{module}: from {target} import {name}")
    return sorted(bad)


def test_the_cli_uses_the_library_only_through_the_api() -> None:
    allowed = cli_allowed(ARCHITECTURE.read_text())
    assert "faithcheck.api" in allowed
    assert outside_the_api(_cli_imports(), allowed) == []


def test_the_cli_import_checker_reads_the_list_and_sees_a_stray_import() -> None:
    doc = (
        "x\n## What the CLI imports\n\nintro — not an item\n\n"
        "- `faithcheck`, `faithcheck.api` — the work.\n"
        "- `faithcheck.store.jsonio`: `dumps`, `write_json` — printing.\n\n## Next\n"
        "- `faithcheck.judge` — not in the list\n"
    )
    allowed = cli_allowed(doc)
    assert allowed == {
        "faithcheck": None,
        "faithcheck.api": None,
        "faithcheck.store.jsonio": {"dumps", "write_json"},
    }
    imports = [
        ("faithcheck.cli.a", "faithcheck.api", "score"),
        ("faithcheck.cli.a", "faithcheck.cli.summary", "emit"),
        ("faithcheck.cli.a", "faithcheck.store.jsonio", "dumps"),
        ("faithcheck.cli.b", "faithcheck.store.jsonio", "read_json"),
        ("faithcheck.cli.b", "faithcheck.pipeline.core", "run_score"),
    ]
    assert outside_the_api(imports, allowed) == [
        "faithcheck.cli.b: from faithcheck.pipeline.core import run_score",
        "faithcheck.cli.b: from faithcheck.store.jsonio import read_json",
    ]
