"""Edits of a worked numeric chain, for responses of known faithfulness (`sets.support`).

A chain is a list of lines, its equations read by `faithcheck.problems.arith` (so the edits
work on any worked solution, reasoning-gym's `gsm_symbolic` ones included). One equation
on the answer's path (not the last, its result not a number the question writes) gets a
wrong result; then:

    slip          the wrong value carried through every later equation, the answer the
                  chain's new result (wrong but faithful)
    compensated   the same, then the right answer reached anyway: by an adjustment step
                  by the difference (a documented constant where the error allows) or by
                  a wrong last step
    corrected     the error noticed in prose at once ("wait, ...") and the chain goes on
                  from the right value (faithful)
    offpath       the chain untouched, plus a wrong side remark on two numbers of the
                  question that nothing uses (faithful)
"""

from __future__ import annotations

import random
import re
from fractions import Fraction

from faithcheck.checks.support import CONSTANTS
from faithcheck.problems.arith import find_chains, read_value

_NUM = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\d,])|(?<![\w.,])\d+(?![\d,])")
_ROLE_CONSTANTS = (2, 4, 7, 10, 12)
"""Documented constants the adjustment uses where the error allows (the issue's case)."""


def _fmt(value: Fraction | int, like: str) -> str:
    n = int(value)
    return f"{n:,}" if "," in like else str(n)


def _substitute(text: str, mapping: dict[Fraction, Fraction]) -> str:
    def one(m: re.Match[str]) -> str:
        v = Fraction(m.group().replace(",", ""))
        return _fmt(mapping[v], m.group()) if v in mapping else m.group()

    return _NUM.sub(one, text)


def _rewrite(line: str, k: int, mapping: dict[Fraction, Fraction], keep: bool) -> str | None:
    """Line with chain k's operands mapped and its results recomputed (None: cannot)."""
    chain = find_chains(line)[k]
    first, results = chain.sides[0], chain.sides[1:]
    if any(s.decimals != 0 or s.ops for s in results):
        return None
    new_first = _substitute(line[first.start : first.end], mapping)
    side = read_value(new_first)
    if side is None or side.value.denominator != 1:
        return None
    old = results[0].value
    if not keep:
        mapping[old] = side.value
    out = line[: first.start] + new_first
    cursor = first.end
    for s in results:
        text = line[s.start : s.end]
        out += line[cursor : s.start] + (text if keep else _fmt(side.value, text))
        cursor = s.end
    return out + line[cursor:]


def _propagate(
    lines: list[str], at: tuple[int, int], wrong: Fraction, keep_last: bool
) -> list[str] | None:
    """Lines with equation `at` (line, chain) given result `wrong`, carried through."""
    li, k = at
    chain = find_chains(lines[li])[k]
    true = chain.sides[-1].value
    mapping = {true: wrong}
    line = lines[li]
    res = chain.sides[-1]
    first = line[: res.start] + _fmt(wrong, line[res.start : res.end]) + line[res.end :]
    last = max(((i, len(find_chains(t)) - 1) for i, t in enumerate(lines) if find_chains(t)))
    out = lines[:li]
    for j in range(li, len(lines)):
        text = first if j == li else lines[j]
        for c in range(k + 1 if j == li else 0, len(find_chains(text))):
            new = _rewrite(text, c, mapping, keep_last and (j, c) == last)
            if new is None:
                return None
            text = new
        out.append(text)
    return out


def _targets(lines: list[str], given: set[Fraction]) -> list[tuple[int, int]]:
    """Equations whose result a later equation uses, not a number the question writes."""
    spots = [(i, k, c) for i, line in enumerate(lines) for k, c in enumerate(find_chains(line))]
    out = []
    for i, k, c in spots[:-1]:
        result = c.sides[-1]
        if result.decimals != 0 or result.value in given or result.value in CONSTANTS:
            continue
        later = " ".join(lines[i + 1 :])
        if c.correct and Fraction(result.value) in {
            Fraction(m.group().replace(",", "")) for m in _NUM.finditer(later)
        }:
            out.append((i, k))
    return out


def edits(
    lines: list[str],
    answer: Fraction | int,
    question: str,
    rng: random.Random,
    adjust: str,
    correct: str,
    aside: str,
) -> dict[str, list[str]]:
    """The edited chains by kind (see the module docs); a kind is absent when the chain
    has no equation to edit. `adjust` ({w}, {op}, {d}, {a}), `correct` ({lhs}, {t}, {w})
    and `aside` ({p}, {q}, {w}) are the phrasing's sentences."""
    given = {Fraction(m.group().replace(",", "")) for m in _NUM.finditer(question)}
    out: dict[str, list[str]] = {}
    targets = _targets(lines, given)
    numbers = sorted(given)
    if len(numbers) >= 2:
        p, q = rng.sample(numbers, 2)
        w = p + q + rng.choice((-3, -1, 1, 2, 5))
        if w > 0 and str(w) not in " ".join(lines):
            remark = aside.format(p=_fmt(p, ""), q=_fmt(q, ""), w=_fmt(w, ""))
            out["offpath"] = [lines[0], remark, *lines[1:]]
    if not targets:
        return out
    li, k = rng.choice(targets)
    chain = find_chains(lines[li])[k]
    true = chain.sides[-1].value
    deltas = [d for d in (-3, -2, -1, 1, 2, 3, 4, 6, 10) if true + d > 0]
    rng.shuffle(deltas)
    plain: list[tuple[Fraction, list[str], Fraction]] = []
    for d in deltas:
        wrong = true + d
        slipped = _propagate(lines, (li, k), wrong, keep_last=False)
        if slipped is None:
            continue
        found = [c for line in slipped for c in find_chains(line)]
        final = found[-1].sides[-1].value
        if final != answer and final > 0:
            plain.append((wrong, slipped, final))
    if not plain:
        return out
    by_constant = [x for x in plain if abs(answer - x[2]) in _ROLE_CONSTANTS]
    wrong, slipped, final = by_constant[0] if by_constant and rng.random() < 0.5 else plain[0]
    out["slip"] = slipped
    if rng.random() < 0.5:
        diff = Fraction(answer) - final
        op, by = ("+", diff) if diff > 0 else ("-", abs(diff))
        line = adjust.format(w=_fmt(final, ""), op=op, d=_fmt(by, ""), a=answer)
        out["compensated"] = [*slipped, line]
    else:
        kept = _propagate(lines, (li, k), wrong, keep_last=True)
        if kept is not None:
            out["compensated"] = kept
    line = lines[li]
    lhs = line[chain.sides[0].start : chain.sides[0].end]
    res = chain.sides[-1]
    w_text = _fmt(wrong, line[res.start : res.end])
    note = correct.format(lhs=lhs, t=line[res.start : res.end], w=w_text)
    out["corrected"] = [
        *lines[:li],
        line[: res.start] + w_text + line[res.end :] + " " + note,
        *lines[li + 1 :],
    ]
    return out
