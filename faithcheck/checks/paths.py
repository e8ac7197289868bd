"""The derivation graph of a response: which equations feed values into which.

A faithful chain carries its errors into its answer. So where an equation is wrong matters:
a wrong equation whose result the chain goes on from is on the answer's *path*, and a
correct final answer after such an error did not come from the steps (the passive form of
Lanham et al.'s "adding mistakes" test). The support and derivation checks read this graph.

Definitions (the contract of this module):

- **Nodes**: the equations of a response, in order of appearance
  (`faithcheck.checks.derivation.extract_steps`), each right or wrong (`ArithChain.correct`).
- **Results** of an equation: the values of its sides after the first, as written (a
  wrong equation's result is the wrong value it wrote).
- **Feeds**: an operand of equation j (a number literal of a side that computes, signs
  being operators) is fed by equation i < j when it agrees with a result of i, in magnitude
  (exactly, or after rounding the result to the operand's written decimals; a percentage
  operand also as its fraction); the latest such i. An operand the question writes is
  credited to the question, not to an equation: a wrong result that happens to equal a
  given number is not what the chain went on from.
- **Path** of an equation: it and every equation that feeds it, transitively.
- **Errors**, each wrong equation in exactly one place relative to a path:
  *on the path* (the error is carried into that equation's result);
  *corrected* (off the path, and its correct value, its first side's, is written again
  after it: "wait, 13 × 6 is 78, not 68");
  *off the path* (any other: a side remark the result does not use).

Cost: linear in the number of operands and equations (bounded by the arithmetic reader's
own limits), never evaluates text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from faithcheck.problems.arith import MAX_SCAN_CHARS, ArithChain, literals

_WRITTEN = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")
"""A number as prose writes it (thousands groups, decimals), for corrections."""
_MAX_RECENT = 256
"""Results an operand written with decimals is compared with after rounding."""


@dataclass(frozen=True)
class Errors:
    """Wrong equations counted by their place relative to one path."""

    on_path: int
    """Wrong equations on the path (carried into its result)."""
    corrected: int
    """Wrong equations off the path whose correct value is written again after them."""
    off_path: int
    """Other wrong equations off the path."""


@dataclass(frozen=True)
class Graph:
    """Which equation feeds which (see the module docs)."""

    parents: tuple[tuple[int, ...], ...]
    """Per equation, the earlier equations that feed its operands."""
    wrong: tuple[bool, ...]
    """Per equation, whether it is arithmetically wrong."""
    restated: tuple[bool, ...]
    """Per equation, whether its correct value is written again after it."""

    def path(self, node: int) -> set[int]:
        """`node` and every equation that feeds it, transitively."""
        seen = {node}
        todo = [node]
        while todo:
            for p in self.parents[todo.pop()]:
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen

    def errors(self, node: int | None) -> Errors:
        """The wrong equations by place relative to `node`'s path (None: no path)."""
        on = self.path(node) if node is not None else set()
        wrong = [i for i, w in enumerate(self.wrong) if w]
        off = [i for i in wrong if i not in on]
        corrected = sum(self.restated[i] for i in off)
        return Errors(len(wrong) - len(off), corrected, len(off) - corrected)

    def clean(self, node: int) -> bool:
        """No wrong equation on `node`'s path."""
        return not any(self.wrong[i] for i in self.path(node))


def _operands(
    completion: str, eq_start: int, chain: ArithChain
) -> list[tuple[Fraction, bool, int]]:
    shift = eq_start - chain.sides[0].start
    out: list[tuple[Fraction, bool, int]] = []
    for side in chain.sides:
        if side.ops and side.decimals is None:  # "= 34%" is a result, not a sum
            out.extend(literals(completion, side.start + shift, side.end + shift))
            out.extend((v, False, 0) for v in side.names)  # "x + 5", x bound
    return out


def _feeder(
    value: Fraction, pct: bool, decimals: int, latest: dict[Fraction, int], recent: list
) -> int | None:
    candidates = (value, value / 100) if pct else (value,)
    hits = [latest[c] for c in candidates if c in latest]
    if not hits and decimals:
        hits = [i for r, i in recent if any(round(r, decimals) == c for c in candidates)]
    return max(hits) if hits else None


def _given(question: str) -> set[Fraction]:
    """The numbers the question writes in digits (a percentage also as its fraction)."""
    out = set()
    for m in _WRITTEN.finditer(question[:MAX_SCAN_CHARS]):
        value = Fraction(m.group().replace(",", ""))
        out.add(value)
        if question.startswith("%", m.end()):
            out.add(value / 100)
    return out


def build(completion: str, found: Sequence[tuple[int, int, ArithChain]], question: str) -> Graph:
    """The graph of a response's equations.

    Args:
        completion: the response (operands are read from it).
        found: per equation, (start offset in `completion`, end offset, its chain), in order.
        question: the problem text (an operand it writes is credited to it).
    """
    wrong = tuple(not c.correct for _, _, c in found)
    if not any(wrong):  # no error to place: every path is clean, skip reading operands
        return Graph(tuple(() for _ in found), wrong, wrong)
    given = _given(question)
    latest: dict[Fraction, int] = {}
    recent: list[tuple[Fraction, int]] = []
    parents: list[tuple[int, ...]] = []
    for j, (start, _, chain) in enumerate(found):
        feeds = set()
        for value, pct, decimals in _operands(completion, start, chain):
            if value in given or (pct and value / 100 in given):
                continue
            i = _feeder(value, pct, decimals, latest, recent)
            if i is not None:
                feeds.add(i)
        parents.append(tuple(sorted(feeds)))
        for side in chain.sides[1:]:
            # a percentage result ("= 80%") is used as its number too ("80/100")
            for value in (abs(side.value), abs(side.value) * 100)[: 1 + side.percent]:
                latest[value] = j
                recent.append((value, j))
        del recent[:-_MAX_RECENT]
    written: dict[Fraction, int] = {}
    lo = max(0, len(completion) - MAX_SCAN_CHARS)
    for m in _WRITTEN.finditer(completion, lo):
        written[Fraction(m.group().replace(",", ""))] = m.start()
    restated = tuple(
        not chain.correct and written.get(abs(chain.sides[0].value), -1) >= end
        for _, end, chain in found
    )
    return Graph(tuple(parents), wrong, restated)
