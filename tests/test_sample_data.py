"""Checks for the bundled sample datasets in data/samples/.

Every file is loaded line by line with `json`: fields, types, unique ids, sizes and
domains are checked. Graph answers are recomputed from the question text (flood fill
for islands, Dijkstra for shortest paths); math and science answers are recomputed from
per-item arithmetic expressions kept below, evaluated with a tiny `ast`-based evaluator.
"""

from __future__ import annotations

import ast
import heapq
import json
import math
import operator
import re
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
FILES = {"math": "math.jsonl", "science": "science.jsonl", "graph": "graph.jsonl"}
FIELDS = {"id", "question", "answer", "domain"}

EXPRESSIONS = {
    "math-001": "20 - (3*4 + 2*1.5)",
    "math-002": "(240 - 240*3/4) / 2",
    "math-003": "9*4 + (15 - 9)",
    "math-004": "80*2.5 + 60*1.5",
    "math-005": "120*(1 - 0.25)*(1 + 0.10)",
    "math-006": "(342 - 54) / 18",
    "math-007": "2*(12 + 8)*7",
    "math-008": "15*6*5*4 / 3",
    "math-009": "(500 - 500*0.40) / 25",
    "math-010": "96 / (3 + 1) * 3",
    "math-011": "(7*60 + 45 + 2*60 + 35) - 9*60",
    "math-012": "640*(1 - 0.45) / 4",
    "math-013": "14*4 + 23*2",
    "math-014": "4*12 - 7*5",
    "math-015": "450/100*6*1.80",
    "math-016": "60 / (12 - 4.50)",
    "math-017": "(54/6) * (2*54/6)",
    "math-018": "150 - 38 - 2*38 + 60",
    "math-019": "84*(1 + 0.15) / 3",
    "math-020": "18/45 * (2*60)",
    "math-021": "(38 - 2*4 - 6)/2 + 6",
    "math-022": "5*36/24 * 60",
    "math-023": "60/12 * 3/4",
    "math-024": "250*(1 - 0.30) - 45",
    "math-025": "1200*8 / 24",
    "math-026": "85*5 - (82 + 91 + 77 + 88)",
    "math-027": "3 + (15 - 9 - 1)*2",
    "math-028": "12/3 * 2",
    "math-029": "45*(14 - 8) - 50",
    "math-030": "10*5*1.5*1000 / 250 / 60",
    "sci-001": "0 + 3*8",
    "sci-002": "0.5*2*6**2",
    "sci-003": "(2*45/10)**0.5",
    "sci-004": "540 / 200",
    "sci-005": "0.5*12",
    "sci-006": "9 / 0.3",
    "sci-007": "1 / (1/6 + 1/3)",
    "sci-008": "90 / (2*1 + 16)",
    "sci-009": "2.5 * (23 + 35.5)",
    "sci-010": "0.5*4*5**2",
    "sci-011": "2*10*15",
    "sci-012": "50 / 0.25",
    "sci-013": "1200 / 4",
    "sci-014": "60*5 / 1000",
    "sci-015": "50*4",
    "sci-016": "1500*2",
    "sci-017": "2*4200*10",
    "sci-018": "0.5 / (250/1000)",
    "sci-019": "200*3 / 1.5",
    "sci-020": "2*450 / 300",
    "sci-021": "0.2*15",
    "sci-022": "20**2 / (2*10)",
    "sci-023": "(30 - 10) / 5",
    "sci-024": "200*0.15",
    "sci-025": "0.5*400*0.1**2",
    "sci-026": "400/500 * 100",
    "sci-027": "3 * (12 + 4*1)",
    "sci-028": "1000*10*5",
    "sci-029": "12 / (4 + 2)",
    "sci-030": "1150 / 230",
}

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_EDGE_RE = re.compile(r"^([A-Z])-([A-Z])(?: \(weight (\d+)\))?$", re.MULTILINE)
_ENDPOINTS_RE = re.compile(r"from ([A-Z]) to ([A-Z])\?$")


def _eval_node(node: ast.AST) -> float:
    """Evaluate numbers, + - * / ** and unary signs; reject anything else."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval_node(node.left), _eval_node(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval_node(node.operand))
    raise ValueError(f"unsupported expression node: {ast.dump(node)}")


def safe_eval(expr: str) -> float:
    """Evaluate a plain arithmetic expression string without eval()."""
    return _eval_node(ast.parse(expr, mode="eval").body)


def load(domain: str) -> list[dict]:
    """Load one sample file as a list of dicts, one per line."""
    text = (SAMPLES / FILES[domain]).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def parse_grid(question: str) -> list[str]:
    """Return the 0/1 grid rows embedded in a question, checked against its stated size."""
    rows = [line for line in question.splitlines() if re.fullmatch(r"[01]+", line)]
    n_rows = int(re.search(r"(\d+) rows", question).group(1))
    n_cols = int(re.search(r"(\d+) columns", question).group(1))
    assert len(rows) == n_rows and all(len(r) == n_cols for r in rows)
    return rows


def island_sizes(grid: list[str]) -> list[int]:
    """Sizes of the 4-connected islands of 1s, found by flood fill."""
    seen: set[tuple[int, int]] = set()
    sizes = []
    for i, row in enumerate(grid):
        for j, cell in enumerate(row):
            if cell == "1" and (i, j) not in seen:
                sizes.append(_flood(grid, i, j, seen))
    return sizes


def _flood(grid: list[str], i: int, j: int, seen: set[tuple[int, int]]) -> int:
    stack, size = [(i, j)], 0
    seen.add((i, j))
    while stack:
        a, b = stack.pop()
        size += 1
        for na, nb in ((a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)):
            inside = 0 <= na < len(grid) and 0 <= nb < len(grid[0])
            if inside and grid[na][nb] == "1" and (na, nb) not in seen:
                seen.add((na, nb))
                stack.append((na, nb))
    return size


def shortest_path(question: str) -> int:
    """Dijkstra over the edge list in the question (unweighted edges count 1)."""
    adj: dict[str, list[tuple[str, int]]] = {}
    for a, b, w in _EDGE_RE.findall(question):
        weight = int(w) if w else 1
        adj.setdefault(a, []).append((b, weight))
        adj.setdefault(b, []).append((a, weight))
    source, target = _ENDPOINTS_RE.search(question).groups()
    dist, heap = {source: 0}, [(0, source)]
    while heap:
        d, u = heapq.heappop(heap)
        if u == target:
            return d
        if d > dist[u]:
            continue
        for v, w in adj.get(u, []):
            if d + w < dist.get(v, math.inf):
                dist[v] = d + w
                heapq.heappush(heap, (d + w, v))
    raise AssertionError(f"{target} unreachable from {source}")


def solve_graph(question: str) -> int:
    """Recompute a graph puzzle's answer from its question text."""
    if "island" in question:
        sizes = island_sizes(parse_grid(question))
        return max(sizes) if "largest island" in question else len(sizes)
    return shortest_path(question)


@pytest.mark.parametrize("domain", sorted(FILES))
def test_file_format(domain: str) -> None:
    items = load(domain)
    assert 25 <= len(items) <= 40
    for item in items:
        assert set(item) == FIELDS
        assert all(isinstance(item[key], str) for key in FIELDS)
        assert item["domain"] == domain
        assert item["question"].strip()
        assert re.fullmatch(r"-?\d+(\.\d+)?", item["answer"]), item["id"]
        float(item["answer"])
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))


def test_ids_unique_across_files() -> None:
    ids = [item["id"] for domain in FILES for item in load(domain)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("domain", ["math", "science"])
def test_arithmetic_answers(domain: str) -> None:
    items = load(domain)
    assert {item["id"] for item in items} <= set(EXPRESSIONS)
    for item in items:
        expected = safe_eval(EXPRESSIONS[item["id"]])
        assert math.isclose(float(item["answer"]), expected, rel_tol=1e-9), item["id"]


def test_graph_answers() -> None:
    for item in load("graph"):
        assert int(item["answer"]) == solve_graph(item["question"]), item["id"]


def test_safe_eval_rejects_names() -> None:
    assert safe_eval("(2 + 3) * 4 ** 2 / -8") == -10
    with pytest.raises(ValueError):
        safe_eval("__import__('os')")
